//! PostObject (browser uploads): multipart forms built and signed here (policy, SigV4 over the
//! base64 policy), sent raw; uploads read back with the SDK; one test per rejection.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use garage::api::signature::SigningKey;
use garage::util::time::msec_to_rfc3339;
use serde_json::{json, Value};

use crate::s3util::*;
use crate::*;

const BOUNDARY: &str = "----garage-test-boundary-7MA4YWxkTrZu0gW";

/// A form to POST: the policy conditions and fields (before the file), who signs it, the file,
/// and fields after the file.
struct Form {
    conditions: Vec<Value>,
    fields: Vec<(String, String)>,
    /// Seconds from now until the policy expires (negative: already expired).
    expires_in: i64,
    key_id: String,
    secret: String,
    /// Replaces the base64 policy (after signing nothing else).
    raw_policy: Option<String>,
    /// (file name, content type, content); `None`: no file field.
    file: Option<(String, String, Vec<u8>)>,
    after_file: Vec<(String, String)>,
}

impl Form {
    /// A form for `key` with the conditions that cover the signature fields and `key`.
    fn new(node: &SingleNode, key: &str, content: &[u8]) -> Self {
        Form {
            conditions: vec![
                json!({"bucket": BUCKET}),
                json!(["starts-with", "$key", ""]),
            ],
            fields: vec![("key".into(), key.into())],
            expires_in: 3600,
            key_id: node.key_id.clone(),
            secret: node.secret.clone(),
            raw_policy: None,
            file: Some(("hello.txt".into(), "text/plain".into(), content.to_vec())),
            after_file: vec![],
        }
    }

    /// Adds a field and an `eq` condition for it.
    fn field(mut self, name: &str, value: &str) -> Self {
        self.conditions
            .push(json!(["eq", format!("${name}"), value]));
        self.fields.push((name.into(), value.into()));
        self
    }

    fn condition(mut self, c: Value) -> Self {
        self.conditions.push(c);
        self
    }

    /// The multipart body.
    fn body(&self) -> Vec<u8> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let amz_date = garage::api::signature::date::format_amz_date(now);
        let day = &amz_date[..8];
        let credential = format!("{}/{day}/garage/s3/aws4_request", self.key_id);
        let mut conditions = self.conditions.clone();
        conditions.push(json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}));
        conditions.push(json!({"x-amz-credential": credential}));
        conditions.push(json!({"x-amz-date": amz_date}));
        let expiration = msec_to_rfc3339(((now + self.expires_in) * 1000) as u64);
        let policy = json!({"expiration": expiration, "conditions": conditions});
        let policy = self
            .raw_policy
            .clone()
            .unwrap_or_else(|| B64.encode(policy.to_string()));
        let signature =
            hex::encode(SigningKey::derive(&self.secret, day, "garage", "s3").sign(&policy));
        let mut fields = self.fields.clone();
        for (n, v) in [
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", credential.as_str()),
            ("x-amz-date", amz_date.as_str()),
            ("policy", policy.as_str()),
            ("x-amz-signature", signature.as_str()),
        ] {
            fields.push((n.into(), v.into()));
        }
        let mut body = Vec::new();
        let text_field = |body: &mut Vec<u8>, n: &str, v: &str| {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        };
        for (n, v) in &fields {
            text_field(&mut body, n, v);
        }
        if let Some((name, ct, content)) = &self.file {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        for (n, v) in &self.after_file {
            text_field(&mut body, n, v);
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    fn send(&self, node: &SingleNode, path: &str) -> RawResponse {
        raw_request(
            node.s3_port,
            "POST",
            path,
            &[(
                "Content-Type".to_string(),
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )],
            &self.body(),
        )
    }
}

fn assert_error(r: &RawResponse, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(xml_text(&r.text(), "Code"), Some(code), "{}", r.text());
    xml_text(&r.text(), "Message").unwrap_or("").to_string()
}

async fn exists(node: &SingleNode, key: &str) -> bool {
    node.client()
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_uploads() {
    let node = SingleNode::start().await;
    let c = node.client();

    // 201 with a PostResponse; ${filename}; stored headers and metadata; a field after the
    // file is ignored; a file of several blocks.
    let content = data(3 * MIB + 1234, 11);
    let mut form = Form::new(&node, "uploads/${filename}", &content)
        .field("Content-Type", "text/plain; charset=utf-8")
        .field("x-amz-meta-tag", "v1")
        .field("success_action_status", "201")
        .condition(json!(["content-length-range", 1, 10 * MIB]));
    form.fields.push(("x-ignore-me".into(), "anything".into()));
    form.after_file
        .push(("x-amz-meta-after".into(), "ignored".into()));
    let r = form.send(&node, "/default");
    assert_eq!(r.status, 201, "{}", r.text());
    let etag = format!("\"{}\"", md5_hex(&content));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let text = r.text();
    assert_eq!(xml_text(&text, "Bucket"), Some(BUCKET));
    assert_eq!(xml_text(&text, "Key"), Some("uploads/hello.txt"));
    let escaped = format!("&quot;{}&quot;", md5_hex(&content));
    assert_eq!(xml_text(&text, "ETag"), Some(escaped.as_str()));
    let location = xml_text(&text, "Location").expect("Location");
    assert!(
        location.ends_with("/default/uploads/hello.txt"),
        "{location}"
    );
    let got = c
        .get_object()
        .bucket(BUCKET)
        .key("uploads/hello.txt")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.content_type(), Some("text/plain; charset=utf-8"));
    let meta = got.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("tag").map(String::as_str), Some("v1"));
    assert_eq!(meta.get("after"), None);
    assert_eq!(read_body(got.body).await, content);

    // Default answer 204; small (inline) file; the file part's type when no Content-Type field.
    let small = b"small file".to_vec();
    let r = Form::new(&node, "small", &small).send(&node, "/default");
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let got = c
        .get_object()
        .bucket(BUCKET)
        .key("small")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(read_body(got.body).await, small);

    // 200.
    let r = Form::new(&node, "two-hundred", b"x")
        .field("success_action_status", "200")
        .send(&node, "/default");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get_bytes(&c, BUCKET, "two-hundred").await, b"x");

    // Redirect: 303 to the URL with bucket, key and etag.
    let r = Form::new(&node, "redir key", b"abc")
        .field("success_action_redirect", "https://app.example/done?x=1")
        .send(&node, "/default");
    assert_eq!(r.status, 303, "{}", r.text());
    let quoted = md5_hex(b"abc");
    assert_eq!(
        r.header("location"),
        Some(
            format!(
                "https://app.example/done?x=1&bucket=default&key=redir%20key&etag=%22{quoted}%22"
            )
            .as_str()
        )
    );
    assert_eq!(get_bytes(&c, BUCKET, "redir key").await, b"abc");

    // CORS headers on the POST answer, as on every request.
    c.put_bucket_cors()
        .bucket(BUCKET)
        .cors_configuration(
            aws_sdk_s3::types::CorsConfiguration::builder()
                .cors_rules(
                    aws_sdk_s3::types::CorsRule::builder()
                        .allowed_origins("https://app.example")
                        .allowed_methods("POST")
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("PutBucketCors");
    let form = Form::new(&node, "from-browser", b"b");
    let r = raw_request(
        node.s3_port,
        "POST",
        "/default",
        &[
            (
                "Content-Type".to_string(),
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
            ("Origin".to_string(), "https://app.example".to_string()),
        ],
        &form.body(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_rejections() {
    let node = SingleNode::start().await;

    // Expired policy.
    let mut f = Form::new(&node, "expired", b"x");
    f.expires_in = -10;
    let m = assert_error(&f.send(&node, "/default"), 403, "AccessDenied");
    assert!(m.contains("expired"), "{m}");

    // Wrong secret; unknown key.
    let mut f = Form::new(&node, "badsig", b"x");
    f.secret = "not-the-secret".into();
    assert_error(&f.send(&node, "/default"), 403, "SignatureDoesNotMatch");
    let mut f = Form::new(&node, "badkey", b"x");
    f.key_id = "GK00000000000000000000000".into();
    assert_error(&f.send(&node, "/default"), 403, "InvalidAccessKeyId");

    // Policy replaced after signing (the signature is kept).
    let text = String::from_utf8(Form::new(&node, "tampered", b"x").body()).expect("UTF-8");
    let signed = field_value(&text, "policy");
    let forged_policy = B64.encode(
        json!({"expiration": "2099-01-01T00:00:00Z", "conditions": [{"bucket": BUCKET}]})
            .to_string(),
    );
    let r = raw_request(
        node.s3_port,
        "POST",
        "/default",
        &[(
            "Content-Type".to_string(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )],
        text.replace(&signed, &forged_policy).as_bytes(),
    );
    assert_error(&r, 403, "SignatureDoesNotMatch");

    // Not a policy document (signed all the same).
    let mut f = Form::new(&node, "badpolicy", b"x");
    f.raw_policy = Some(B64.encode("not json"));
    assert_error(&f.send(&node, "/default"), 400, "InvalidPolicyDocument");

    // File larger / smaller than content-length-range: nothing stored.
    let f = Form::new(&node, "too-large", &[7u8; 100]).condition(json!([
        "content-length-range",
        1,
        10
    ]));
    assert_error(&f.send(&node, "/default"), 400, "EntityTooLarge");
    assert!(!exists(&node, "too-large").await);
    let big = data(2 * MIB, 3);
    let f = Form::new(&node, "too-large-blocks", &big).condition(json!([
        "content-length-range",
        1,
        MIB
    ]));
    assert_error(&f.send(&node, "/default"), 400, "EntityTooLarge");
    assert!(!exists(&node, "too-large-blocks").await);
    let f = Form::new(&node, "too-small", &[7u8; 100]).condition(json!([
        "content-length-range",
        200,
        1000
    ]));
    assert_error(&f.send(&node, "/default"), 400, "EntityTooSmall");
    assert!(!exists(&node, "too-small").await);
    let f = Form::new(&node, "too-small-blocks", &big).condition(json!([
        "content-length-range",
        3 * MIB,
        4 * MIB
    ]));
    assert_error(&f.send(&node, "/default"), 400, "EntityTooSmall");
    assert!(!exists(&node, "too-small-blocks").await);

    // A field the policy does not cover.
    let mut f = Form::new(&node, "extra", b"x");
    f.fields.push(("x-amz-meta-extra".into(), "1".into()));
    let m = assert_error(&f.send(&node, "/default"), 403, "AccessDenied");
    assert!(m.contains("Extra input fields: x-amz-meta-extra"), "{m}");

    // Conditions that fail: key prefix, field value, bucket.
    let f =
        Form::new(&node, "elsewhere/k", b"x").condition(json!(["starts-with", "$key", "uploads/"]));
    let m = assert_error(&f.send(&node, "/default"), 403, "AccessDenied");
    assert!(m.contains("Policy Condition failed"), "{m}");
    let mut f = Form::new(&node, "meta", b"x").field("x-amz-meta-a", "expected");
    f.fields.last_mut().expect("field").1 = "other".into();
    assert_error(&f.send(&node, "/default"), 403, "AccessDenied");
    let mut f = Form::new(&node, "bucket", b"x");
    f.conditions[0] = json!({"bucket": "another-bucket"});
    assert_error(&f.send(&node, "/default"), 403, "AccessDenied");

    // Missing key field; missing file.
    let mut f = Form::new(&node, "k", b"x");
    f.fields.retain(|(n, _)| n != "key");
    assert_error(&f.send(&node, "/default"), 400, "InvalidArgument");
    let mut f = Form::new(&node, "nofile", b"x");
    f.file = None;
    assert_error(&f.send(&node, "/default"), 400, "InvalidArgument");

    // Fields before the file too large.
    let mut f = Form::new(&node, "big-head", b"x");
    f.fields.push(("x-ignore-pad".into(), "p".repeat(70 << 10)));
    assert_error(
        &f.send(&node, "/default"),
        400,
        "MaxPostPreDataLengthExceededError",
    );

    // Whatever precedes the file is bounded: a long preamble without boundary, a part whose
    // headers never end.
    for junk in [
        "p".repeat(300 << 10),
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Long: {}",
            "h".repeat(300 << 10)
        ),
    ] {
        let r = raw_request(
            node.s3_port,
            "POST",
            "/default",
            &[(
                "Content-Type".to_string(),
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )],
            junk.as_bytes(),
        );
        assert_error(&r, 400, "MaxPostPreDataLengthExceededError");
    }

    // Not a multipart body: a form without boundary.
    let r = raw_request(
        node.s3_port,
        "POST",
        "/default",
        &[(
            "Content-Type".to_string(),
            "multipart/form-data".to_string(),
        )],
        b"--x\r\n",
    );
    assert_error(&r, 400, "MalformedPOSTRequest");
    let r = raw_request(
        node.s3_port,
        "POST",
        "/default",
        &[(
            "Content-Type".to_string(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )],
        b"garbage without any boundary",
    );
    assert!(r.status == 400, "{} {}", r.status, r.text());

    // A key without write permission on the bucket.
    let (id, secret) = node.create_key("reader");
    node.cli(&["bucket", "allow", "--read", "--key", &id, BUCKET]);
    let mut f = Form::new(&node, "no-write", b"x");
    f.key_id = id;
    f.secret = secret;
    assert_error(&f.send(&node, "/default"), 403, "AccessDenied");
    assert!(!exists(&node, "no-write").await);
}

/// The value of a text field of a multipart body.
fn field_value(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"\r\n\r\n");
    let start = body.find(&marker).expect("field") + marker.len();
    let end = body[start..].find("\r\n").expect("end of field") + start;
    body[start..end].to_string()
}
