//! A minimal (raw, SDK-free) S3 client for the tests: path-style requests signed with the crate's SigV4 signer
//! (`Authorization` header, `x-amz-content-sha256` = hex SHA-256 of the body), sent as one
//! HTTP/1.1 request per connection (`Connection: close`) over a tokio `TcpStream`. Responses
//! are read to the end; chunked bodies are decoded. Blocking API (each client owns a small
//! runtime) so that it mixes with the process-based helpers.
//!
//! Include with `#[path = "common/s3.rs"] mod s3;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use garage::api::signature::sign::{sign_request, SigningParams};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest time one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (for error messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client for one S3 endpoint and one key.
pub struct S3 {
    pub addr: SocketAddr,
    pub key_id: String,
    pub secret: String,
    pub region: String,
    rt: tokio::runtime::Runtime,
}

impl S3 {
    pub fn new(addr: SocketAddr, key_id: &str, secret: &str) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            addr,
            key_id: key_id.to_string(),
            secret: secret.to_string(),
            region: "garage".to_string(),
            rt,
        }
    }

    /// Sends one signed request; `path` (with an optional `?query`) is sent as given (already
    /// percent-encoded).
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Result<Resp, String> {
        let (only_path, query) = path.split_once('?').unwrap_or((path, ""));
        self.request_with_query(method, only_path, query, body)
    }

    /// Sends one signed request with a query string (`lifecycle`, `a=1&b=2`; already encoded).
    pub fn request_with_query(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<Resp, String> {
        let host = self.addr.to_string();
        let payload_hash = hex::encode(Sha256::digest(body));
        let mut headers = HeaderMap::new();
        let value = |s: &str| HeaderValue::from_str(s).expect("header value");
        headers.insert("host", value(&host));
        headers.insert("x-amz-content-sha256", value(&payload_hash));
        let params = SigningParams {
            access_key_id: &self.key_id,
            secret_key: &self.secret,
            region: &self.region,
            service: "s3",
            time: SystemTime::now(),
        };
        sign_request(method, path, query, &mut headers, &payload_hash, &params)
            .map_err(|e| format!("signing: {e}"))?;
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        for (name, v) in headers.iter() {
            head.push_str(&format!(
                "{}: {}\r\n",
                name,
                v.to_str().expect("ascii header")
            ));
        }
        head.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        ));
        let addr = self.addr;
        let exchange = async move {
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            stream
                .write_all(head.as_bytes())
                .await
                .map_err(|e| format!("send: {e}"))?;
            stream
                .write_all(body)
                .await
                .map_err(|e| format!("send body: {e}"))?;
            let mut raw = Vec::new();
            stream
                .read_to_end(&mut raw)
                .await
                .map_err(|e| format!("receive: {e}"))?;
            parse_response(&raw)
        };
        self.rt.block_on(async move {
            tokio::time::timeout(REQUEST_TIMEOUT, exchange)
                .await
                .map_err(|_| format!("no complete answer within {REQUEST_TIMEOUT:?}"))?
        })
    }

    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<Resp, String> {
        self.request("PUT", &format!("/{bucket}/{key}"), body)
    }

    pub fn get(&self, bucket: &str, key: &str) -> Result<Resp, String> {
        self.request("GET", &format!("/{bucket}/{key}"), b"")
    }

    pub fn delete(&self, bucket: &str, key: &str) -> Result<Resp, String> {
        self.request("DELETE", &format!("/{bucket}/{key}"), b"")
    }

    /// PUT that must answer 200 within `timeout` (retried while the cluster settles).
    pub fn put_ok(&self, bucket: &str, key: &str, body: &[u8], timeout: Duration) {
        let mut last = String::new();
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            match self.put(bucket, key, body) {
                Ok(r) if r.status == 200 => return,
                Ok(r) => last = format!("status {}: {}", r.status, r.text()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("PUT /{bucket}/{key} never succeeded: {last}");
    }

    /// GET that must answer 200 within `timeout`; returns the body.
    pub fn get_ok(&self, bucket: &str, key: &str, timeout: Duration) -> Vec<u8> {
        let mut last = String::new();
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            match self.get(bucket, key) {
                Ok(r) if r.status == 200 => return r.body,
                Ok(r) => last = format!("status {}: {}", r.status, r.text()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("GET /{bucket}/{key} never succeeded: {last}");
    }
}

/// Parses a complete HTTP/1.1 response (connection closed by the server).
fn parse_response(raw: &[u8]) -> Result<Resp, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {} bytes", raw.len()))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|e| format!("header: {e}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        let len: usize = len.parse().map_err(|_| format!("content-length {len:?}"))?;
        if rest.len() < len {
            return Err(format!("body truncated: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// Decodes a chunked body (trailers ignored); fails if the final chunk is missing.
fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body truncated (no chunk size line)")?;
        let line = std::str::from_utf8(&data[..eol]).map_err(|e| e.to_string())?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunked body truncated".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
