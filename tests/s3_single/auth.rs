//! Hostile keys, key length, authentication failures and presigned URLs.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;

use crate::listing::list_v2_all;
use crate::s3util::*;
use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_authentication_and_presigned_urls() {
    let node = SingleNode::start().await;
    let c = node.client();

    // Keys that look like paths or need encoding are stored verbatim.
    let long_ok = "k".repeat(1024);
    let hostile = [
        "../x",
        "../../etc/passwd",
        "a//b",
        "/leading",
        "//double-leading",
        "%",
        "%2F",
        "a%20b",
        "sp ace",
        " leading space",
        "trailing space ",
        "tab\there",
        "ü/ñ/日本",
        "plus+and=equals&amp?q#frag",
        "./dot",
        "a/./b/../c",
        "<xml>&\"'",
        long_ok.as_str(),
    ];
    for (i, k) in hostile.iter().enumerate() {
        let body = data(100 + i, i as u64);
        put(&c, BUCKET, k, &body).await;
        assert_eq!(get_bytes(&c, BUCKET, k).await, body, "key {k:?}");
    }
    let (keys, _, _) = list_v2_all(&c, None, None, 1000, None).await;
    let mut want: Vec<String> = hostile.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(keys, want);
    for k in hostile {
        c.delete_object()
            .bucket(BUCKET)
            .key(k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteObject {k:?}: {e:?}"));
    }
    let (keys, _, _) = list_v2_all(&c, None, None, 1000, None).await;
    assert!(keys.is_empty(), "{keys:?}");
    // 1025 bytes is too long, also counted in bytes of UTF-8.
    let too_long = "k".repeat(1025);
    assert_s3_err(
        c.put_object()
            .bucket(BUCKET)
            .key(&too_long)
            .body(b"x".to_vec().into())
            .send()
            .await,
        "KeyTooLongError",
        400,
    );
    let too_long_utf8 = "é".repeat(513);
    assert_s3_err(
        c.put_object()
            .bucket(BUCKET)
            .key(&too_long_utf8)
            .body(b"x".to_vec().into())
            .send()
            .await,
        "KeyTooLongError",
        400,
    );
    assert_s3_err(
        c.get_object().bucket(BUCKET).key(&too_long).send().await,
        "KeyTooLongError",
        400,
    );

    // Authentication failures.
    put(&c, BUCKET, "obj", b"content").await;
    let wrong_region = client(node.s3_port, &node.key_id, &node.secret, "us-east-1");
    assert_s3_err(
        wrong_region.list_buckets().send().await,
        "AuthorizationHeaderMalformed",
        400,
    );
    assert_s3_err(
        wrong_region
            .get_object()
            .bucket(BUCKET)
            .key("obj")
            .send()
            .await,
        "AuthorizationHeaderMalformed",
        400,
    );
    let mut bad_secret = node.secret.clone();
    let last = if bad_secret.ends_with('0') { "1" } else { "0" };
    bad_secret.replace_range(bad_secret.len() - 1.., last);
    let wrong_secret = client(node.s3_port, &node.key_id, &bad_secret, "garage");
    assert_s3_err(
        wrong_secret.list_buckets().send().await,
        "SignatureDoesNotMatch",
        403,
    );
    assert_s3_err(
        wrong_secret
            .put_object()
            .bucket(BUCKET)
            .key("obj")
            .body(b"evil".to_vec().into())
            .send()
            .await,
        "SignatureDoesNotMatch",
        403,
    );
    let unknown = client(
        node.s3_port,
        "GK000000000000000000000000",
        &node.secret,
        "garage",
    );
    assert_s3_err(
        unknown.list_buckets().send().await,
        "InvalidAccessKeyId",
        403,
    );
    assert_s3_err(
        unknown.get_object().bucket(BUCKET).key("obj").send().await,
        "InvalidAccessKeyId",
        403,
    );
    assert_eq!(get_bytes(&c, BUCKET, "obj").await, b"content");
    // An unsigned request.
    let r = raw_request(node.s3_port, "GET", &format!("/{BUCKET}/obj"), &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(xml_text(&r.text(), "Code"), Some("AccessDenied"));

    // Presigned GET through a hand-written HTTP/1.1 request.
    let presign = |cfg: PresigningConfig| {
        let c = c.clone();
        async move {
            c.get_object()
                .bucket(BUCKET)
                .key("obj")
                .presigned(cfg)
                .await
                .expect("presign")
        }
    };
    let fetch = |p: aws_sdk_s3::presigning::PresignedRequest| {
        let (port, path, headers) = presigned_target(&p);
        tokio::task::spawn_blocking(move || raw_request(port, "GET", &path, &headers, b""))
    };
    let ok = presign(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg")).await;
    assert!(ok.uri().contains("X-Amz-Signature="), "{}", ok.uri());
    let r = fetch(ok).await.expect("raw GET");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"content");
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(b"content")).as_str())
    );
    // Expired an hour ago.
    let expired = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(7200))
        .expires_in(Duration::from_secs(3600))
        .build()
        .expect("cfg");
    let r = fetch(presign(expired).await).await.expect("raw GET");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(xml_text(&r.text(), "Code"), Some("AccessDenied"));
    // Presigned PUT (unsigned payload) without Content-Type: stored as binary/octet-stream.
    let p = c
        .put_object()
        .bucket(BUCKET)
        .key("presigned put")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg"))
        .await
        .expect("presign PUT");
    assert_eq!(p.method(), "PUT");
    let (port, path, headers) = presigned_target(&p);
    let r = tokio::task::spawn_blocking(move || {
        raw_request(port, "PUT", &path, &headers, b"uploaded by URL")
    })
    .await
    .expect("raw PUT");
    assert_eq!(r.status, 200, "{}", r.text());
    let got = c
        .get_object()
        .bucket(BUCKET)
        .key("presigned put")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.content_type(), Some("binary/octet-stream"));
    assert_eq!(read_body(got.body).await, b"uploaded by URL");

    // A presigned URL whose signature was tampered with.
    let p = presign(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg")).await;
    let uri = p.uri().to_string();
    let path = uri
        .split_once("127.0.0.1")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .expect("path");
    let tampered = path.replace("/obj?", "/other?");
    let port = node.s3_port;
    let r = tokio::task::spawn_blocking(move || raw_request(port, "GET", &tampered, &[], b""))
        .await
        .expect("raw GET");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(xml_text(&r.text(), "Code"), Some("SignatureDoesNotMatch"));
}

/// Where a presigned request goes: the port of the endpoint its URL names (its `Host` is
/// signed), its path and query, and its headers.
fn presigned_target(
    p: &aws_sdk_s3::presigning::PresignedRequest,
) -> (u16, String, Vec<(String, String)>) {
    let uri = p.uri().to_string();
    let rest = uri
        .strip_prefix("http://127.0.0.1:")
        .expect("presigned URL on the test endpoint");
    let slash = rest.find('/').expect("path of the presigned URL");
    let port = rest[..slash].parse().expect("port of the presigned URL");
    let headers = p
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    (port, rest[slash..].to_string(), headers)
}
