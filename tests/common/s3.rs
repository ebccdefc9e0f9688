//! Helpers for the S3 integration tests: an `aws-sdk-s3` client for a plain-HTTP endpoint (no
//! retries, bounded timeouts), assertions on S3 errors (code and HTTP status), deterministic test
//! data, and a hand-written HTTP/1.1 client for the few requests the SDK cannot make as-is
//! (presigned URLs).
//!
//! Include with `#[path = "common/s3.rs"] mod s3util;` next to `mod common;`.
#![allow(dead_code)]

use std::fmt::Debug;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;

/// Upper bound of one S3 operation (and of reading one response body).
pub const OP_TIMEOUT: Duration = Duration::from_secs(60);

/// A client for `http://127.0.0.1:<port>` with path-style addressing. Retries are disabled so
/// that every failure shows, and every operation is bounded by [`OP_TIMEOUT`].
pub fn client(port: u16, key_id: &str, secret: &str, region: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(Credentials::new(key_id, secret, None, None, "garage-tests"))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_timeout(OP_TIMEOUT)
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// The S3 error code and HTTP status of a failed SDK call.
pub fn err_parts<T: Debug, E: ProvideErrorMetadata + Debug>(
    r: Result<T, SdkError<E>>,
) -> (Option<String>, u16) {
    match r {
        Ok(v) => panic!("the request should have failed, got {v:?}"),
        Err(e) => {
            let status = e
                .raw_response()
                .map(|r| r.status().as_u16())
                .unwrap_or_else(|| panic!("the request failed without an HTTP response: {e:?}"));
            (e.code().map(String::from), status)
        }
    }
}

/// Asserts that an SDK call failed with S3 error `code` and HTTP `status`.
#[track_caller]
pub fn assert_s3_err<T: Debug, E: ProvideErrorMetadata + Debug>(
    r: Result<T, SdkError<E>>,
    code: &str,
    status: u16,
) {
    let (c, s) = err_parts(r);
    assert_eq!(
        (c.as_deref(), s),
        (Some(code), status),
        "expected error {code} with status {status}"
    );
}

/// Asserts that an SDK call failed with HTTP `status` (HEAD answers have no body, hence no code).
#[track_caller]
pub fn assert_status<T: Debug, E: ProvideErrorMetadata + Debug>(
    r: Result<T, SdkError<E>>,
    status: u16,
) {
    let (_, s) = err_parts(r);
    assert_eq!(s, status, "expected HTTP status {status}");
}

/// Deterministic, incompressible-looking bytes (xorshift64*).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// GetObject of a whole object, body read with a bound.
pub async fn get_bytes(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {bucket}/{key}: {e:?}"));
    read_body(out.body).await
}

/// Reads a response body, for at most [`OP_TIMEOUT`].
pub async fn read_body(body: aws_sdk_s3::primitives::ByteStream) -> Vec<u8> {
    tokio::time::timeout(OP_TIMEOUT, body.collect())
        .await
        .expect("response body read in time")
        .expect("response body")
        .into_bytes()
        .to_vec()
}

/// PutObject of `body`.
pub async fn put(c: &Client, bucket: &str, key: &str, body: &[u8]) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject {bucket}/{key}: {e:?}"));
}

/// CreateMultipartUpload of `key`; returns the upload id.
pub async fn create_upload(c: &Client, bucket: &str, key: &str) -> String {
    c.create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload {bucket}/{key}: {e:?}"))
        .upload_id()
        .expect("upload id")
        .to_string()
}

/// A whole multipart upload of `key`: `parts` as parts 1, 2, …, then CompleteMultipartUpload.
pub async fn put_multipart(c: &Client, bucket: &str, key: &str, parts: &[Vec<u8>]) {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let id = create_upload(c, bucket, key).await;
    let mut done = CompletedMultipartUpload::builder();
    for (n, body) in (1..).zip(parts) {
        let etag = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(body.clone().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {n} of {bucket}/{key}: {e:?}"))
            .e_tag()
            .expect("part ETag")
            .to_string();
        done = done.parts(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(done.build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload {bucket}/{key}: {e:?}"));
}

/// Polls an async condition every 100 ms until it returns `Some`, for at most `timeout`.
pub async fn wait_async<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), written by hand, with
/// `body` (and its `Content-Length` when not empty); the answer is read to its end within a
/// bound. A `Host` header in `headers` is replaced by the real one.
pub fn raw_request(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let host = format!("127.0.0.1:{port}");
    raw_request_host(port, method, path_and_query, &host, headers, body)
}

/// As [`raw_request`], with the given `Host` header (the connection still goes to
/// 127.0.0.1:`port`).
pub fn raw_request_host(
    port: u16,
    method: &str,
    path_and_query: &str,
    host: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect to the endpoint");
    sock.set_read_timeout(Some(OP_TIMEOUT)).expect("timeout");
    let mut req = format!("{method} {path_and_query} HTTP/1.1\r\nHost: {host}\r\n");
    for (n, v) in headers {
        if !n.eq_ignore_ascii_case("host") {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).expect("send request");
    // A request refused for its size is answered before its body is read: the server may close
    // the connection (and reset it) before the whole body is sent, after its answer.
    let sent = sock.write_all(body);
    let mut raw = vec![];
    if let Err(e) = sock.read_to_end(&mut raw) {
        assert!(
            !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset,
            "read answer: {e} (sending the body: {sent:?})"
        );
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of the answer's head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// The text of the first `<tag>…</tag>` of an XML document.
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// `[s3_api]` configuration lines for a node listening on `port`, region `garage`.
pub fn s3_config(port: u16) -> String {
    format!("\n[s3_api]\napi_bind_addr = \"127.0.0.1:{port}\"\ns3_region = \"garage\"\n")
}

/// The value after `label` on the first line of `text` that starts with it (after spaces).
pub fn line_value(text: &str, label: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_string())
}

/// The (key id, secret) printed by `garage key create`.
pub fn created_key(out: &str) -> (String, String) {
    let id = line_value(out, "Key ID:").unwrap_or_else(|| panic!("Key ID in:\n{out}"));
    let secret = line_value(out, "Secret key:").unwrap_or_else(|| panic!("Secret key in:\n{out}"));
    (id, secret)
}

/// A `garage server --single-node` daemon with an S3 endpoint, killed when dropped.
pub struct SingleNode {
    pub dir: crate::common::NodeDir,
    pub child: std::process::Child,
    pub s3_port: u16,
    pub key_id: String,
    pub secret: String,
}

impl SingleNode {
    /// Starts the daemon, reads the key printed on its stdout, and waits until the S3 endpoint
    /// answers ListBuckets with it.
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// As [`Self::start`], with `extra` configuration appended after the `[s3_api]` section
    /// (further sections, such as `[s3_web]`).
    pub async fn start_with(extra: &str) -> Self {
        use std::io::BufRead;
        use std::process::{Command, Stdio};

        let s3_port = crate::common::free_port();
        let dir = crate::common::NodeDir::new(&format!("{}{extra}", s3_config(s3_port)));
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut child = Command::new(crate::common::garage_bin())
            .arg("-c")
            .arg(&dir.config)
            .args(["server", "--single-node"])
            .env("RUST_LOG", "garage=debug")
            .env_remove("GARAGE_RPC_SECRET")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn garage server --single-node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Reads stdout to its end (so the daemon never blocks on a full pipe).
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut printed = String::new();
        let mut node = None;
        while node.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "no \"Secret key:\" line on stdout ({e}); stdout:\n{printed}\nlog:\n{}",
                        dir.log()
                    );
                }
            };
            printed.push_str(&line);
            printed.push('\n');
            if line.trim_start().starts_with("Secret key:") {
                let key_id = line_value(&printed, "Access key id:").expect("access key id line");
                let secret = line_value(&printed, "Secret key:").expect("secret line");
                node = Some((key_id, secret));
            }
        }
        let (key_id, secret) = node.expect("key");
        let me = Self {
            dir,
            child,
            s3_port,
            key_id,
            secret,
        };
        let c = me.client();
        wait_async(Duration::from_secs(30), || async {
            c.list_buckets().send().await.ok().map(|_| ())
        })
        .await
        .unwrap_or_else(|| panic!("S3 endpoint never answered; log:\n{}", me.dir.log()));
        me
    }

    /// A client with the single-node key.
    pub fn client(&self) -> Client {
        client(self.s3_port, &self.key_id, &self.secret, "garage")
    }

    /// Runs a CLI command against the daemon; it must succeed; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.dir.run(args);
        assert!(
            out.status.success(),
            "garage {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates a key through the CLI; returns (key id, secret).
    pub fn create_key(&self, name: &str) -> (String, String) {
        created_key(&self.cli(&["key", "create", name]))
    }
}

impl Drop for SingleNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
