//! Verification of whole requests with the `Authorization` header: the S3 examples of AWS's
//! documentation ("Signature Calculations for the Authorization Header", the seeds of the
//! chunked-upload examples), then the error cases: clock skew, wrong region, malformed headers,
//! unsigned headers, unknown keys; and helpers shared with the other test files.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::canonical::EMPTY_SHA256_HEX;
use super::date::{parse_amz_date, system_time};
use super::sign::{sign_request, SigningParams};
use super::verify::{check_request, verify_request, AuthKind, RequestParts, VerifyConfig};
use super::{ContentSha256, Error, VerifiedRequest};

pub(super) const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub(super) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

pub(super) fn t2013() -> SystemTime {
    system_time(parse_amz_date("20130524T000000Z").expect("date"))
}

pub(super) fn params(time: SystemTime) -> SigningParams<'static> {
    SigningParams {
        access_key_id: KEY_ID,
        secret_key: SECRET,
        region: "us-east-1",
        service: "s3",
        time,
    }
}

pub(super) fn headers(list: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in list {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

pub(super) fn verify_at(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    region: &str,
    now: SystemTime,
) -> Result<Option<VerifiedRequest>, Error> {
    let cfg = VerifyConfig {
        region,
        service: "s3",
        now,
    };
    let keys = |id: &str| (id == KEY_ID).then(|| SECRET.to_string());
    verify_request(
        &RequestParts::new(method, path, query, headers),
        &cfg,
        &keys,
    )
}

fn verify(method: &str, path: &str, query: &str, h: &HeaderMap) -> Result<VerifiedRequest, Error> {
    verify_at(method, path, query, h, "us-east-1", t2013()).map(|v| v.expect("authenticated"))
}

pub(super) const HOST: &str = "examplebucket.s3.amazonaws.com";

/// method, path, query, headers besides `host`, expected SignedHeaders, expected signature.
type Example<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    &'a str,
    &'a str,
);

/// The four examples of "Signature Calculations for the Authorization Header: Transferring
/// Payload in a Single Chunk".
#[test]
fn aws_s3_header_examples() {
    let put_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    let cases: Vec<Example<'_>> = vec![
        (
            "GET",
            "/test.txt",
            "",
            vec![
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ],
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        (
            "PUT",
            "/test$file.text",
            "",
            vec![
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ("x-amz-content-sha256", put_hash),
            ],
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
        (
            "GET",
            "/",
            "lifecycle",
            vec![("x-amz-content-sha256", EMPTY_SHA256_HEX)],
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "GET",
            "/",
            "max-keys=2&prefix=J",
            vec![("x-amz-content-sha256", EMPTY_SHA256_HEX)],
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ];
    for (method, path, query, extra, signed_headers, signature) in cases {
        let mut h = headers(&[("host", HOST)]);
        for (n, v) in &extra {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let payload = h["x-amz-content-sha256"].to_str().unwrap().to_string();
        let signed = sign_request(method, path, query, &mut h, &payload, &params(t2013())).unwrap();
        assert_eq!(
            signed.value,
            format!(
                "AWS4-HMAC-SHA256 Credential={KEY_ID}/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders={signed_headers}, Signature={signature}"
            )
        );
        let v = verify(method, path, query, &h).unwrap();
        assert_eq!(v.access_key_id, KEY_ID);
        assert_eq!(v.kind, AuthKind::Header);
        assert_eq!(hex::encode(v.signing.seed_signature()), signature);
    }

    // The PUT example as a real client sends it, with the key encoded once: same signature.
    let mut h = headers(&[
        ("host", HOST),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", put_hash),
    ]);
    sign_request(
        "PUT",
        "/test$file.text",
        "",
        &mut h,
        put_hash,
        &params(t2013()),
    )
    .unwrap();
    let v = verify("PUT", "/test%24file.text", "", &h).unwrap();
    assert!(v
        .content_sha256
        .verify_body(b"Welcome to Amazon S3.")
        .is_ok());
    let e = v
        .content_sha256
        .verify_body(b"Welcome to Amazon S4.")
        .unwrap_err();
    assert_eq!(e.s3_code(), "XAmzContentSHA256Mismatch");
    // A different key is a different request.
    let e = verify("PUT", "/test%25file.text", "", &h).unwrap_err();
    assert_eq!(e.s3_code(), "SignatureDoesNotMatch");
}

/// The seed signatures of the two chunked-upload examples ("Transfer Payload in Multiple
/// Chunks" and "trailing headers").
#[test]
fn aws_s3_streaming_seeds() {
    let base = [
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
    ];
    let mut h = headers(&base);
    h.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    );
    h.insert("content-length", HeaderValue::from_static("66824"));
    h.insert("authorization", HeaderValue::from_static(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"));
    let v = verify("PUT", "/examplebucket/chunkObject.txt", "", &h).unwrap();
    assert_eq!(v.content_sha256, ContentSha256::StreamingSigned);
    assert_eq!(v.signing.scope(), "20130524/us-east-1/s3/aws4_request");

    let mut h = headers(&base);
    h.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
    );
    h.insert(
        "x-amz-trailer",
        HeaderValue::from_static("x-amz-checksum-crc32c"),
    );
    h.insert("content-length", HeaderValue::from_static("66824"));
    h.insert("authorization", HeaderValue::from_static(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"));
    let v = verify("PUT", "/examplebucket/chunkObject.txt", "", &h).unwrap();
    assert_eq!(v.content_sha256, ContentSha256::StreamingSignedTrailer);
}

/// A signed GET of the first documentation example, for the error cases.
fn signed_get(time: SystemTime) -> HeaderMap {
    let mut h = headers(&[("host", HOST), ("x-amz-content-sha256", EMPTY_SHA256_HEX)]);
    sign_request(
        "GET",
        "/test.txt",
        "",
        &mut h,
        EMPTY_SHA256_HEX,
        &params(time),
    )
    .unwrap();
    h
}

fn code_of(h: &HeaderMap) -> &'static str {
    verify("GET", "/test.txt", "", h).unwrap_err().s3_code()
}

#[test]
fn clock_skew() {
    let h = signed_get(t2013());
    for (offset, ok) in [
        (0i64, true),
        (900, true),
        (-900, true),
        (901, false),
        (-901, false),
        (86400, false),
    ] {
        let now = system_time(parse_amz_date("20130524T000000Z").unwrap() + offset);
        let r = verify_at("GET", "/test.txt", "", &h, "us-east-1", now);
        if ok {
            assert!(r.is_ok(), "{offset}");
        } else {
            assert_eq!(r.unwrap_err().s3_code(), "RequestTimeTooSkewed", "{offset}");
        }
    }
    // With only a Date header.
    let mut h = headers(&[
        ("host", HOST),
        ("x-amz-content-sha256", EMPTY_SHA256_HEX),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
    ]);
    sign_request(
        "GET",
        "/test.txt",
        "",
        &mut h,
        EMPTY_SHA256_HEX,
        &params(t2013()),
    )
    .unwrap();
    assert!(!h.contains_key("x-amz-date"));
    assert!(verify("GET", "/test.txt", "", &h).is_ok());
    let late = t2013() + Duration::from_secs(3600);
    let e = verify_at("GET", "/test.txt", "", &h, "us-east-1", late).unwrap_err();
    assert_eq!(e.s3_code(), "RequestTimeTooSkewed");
    assert_eq!(e.http_status(), 403);
}

#[test]
fn wrong_region_names_the_configured_one() {
    let h = signed_get(t2013());
    let e = verify_at("GET", "/test.txt", "", &h, "garage", t2013()).unwrap_err();
    assert_eq!(e.s3_code(), "AuthorizationHeaderMalformed");
    assert_eq!(e.http_status(), 400);
    assert!(
        e.to_string()
            .contains("the region 'us-east-1' is wrong; expecting 'garage'"),
        "{e}"
    );
}

#[test]
fn header_errors() {
    let good = signed_get(t2013());
    let auth = good["authorization"].to_str().unwrap().to_string();
    let with_auth = |value: &[u8]| {
        let mut h = good.clone();
        h.insert("authorization", HeaderValue::from_bytes(value).unwrap());
        h
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"AWS4-HMAC-SHA256".to_vec(), "AuthorizationHeaderMalformed"),
        (
            auth.replace("Signature=", "Signatur=").into_bytes(),
            "AuthorizationHeaderMalformed",
        ),
        (
            auth.replace("/s3/", "/iam/").into_bytes(),
            "AuthorizationHeaderMalformed",
        ),
        (
            auth.replace("/20130524/", "/20130525/").into_bytes(),
            "AuthorizationHeaderMalformed",
        ),
        (
            auth.replace("host;", "").into_bytes(),
            "AuthorizationHeaderMalformed",
        ),
        (
            auth.replace(KEY_ID, "GKunknown").into_bytes(),
            "InvalidAccessKeyId",
        ),
        (
            format!("{}0", &auth[..auth.len() - 1]).into_bytes(),
            "SignatureDoesNotMatch",
        ),
        (
            auth.replace("Signature=", "Signature=zz").into_bytes(),
            "SignatureDoesNotMatch",
        ),
        (
            b"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=".to_vec(),
            "InvalidRequest",
        ),
        (b"garbage".to_vec(), "InvalidArgument"),
        (b"\xff\xfe garbage".to_vec(), "AuthorizationHeaderMalformed"),
        (
            b"AWS4-HMAC-SHA256 \x80\x81".to_vec(),
            "AuthorizationHeaderMalformed",
        ),
    ];
    for (value, code) in cases {
        assert_eq!(
            code_of(&with_auth(&value)),
            code,
            "{}",
            String::from_utf8_lossy(&value)
        );
    }
    // Signature checked with x-amz-content-sha256 removed: required.
    let mut h = good.clone();
    h.remove("x-amz-content-sha256");
    assert_eq!(code_of(&h), "MissingSecurityHeader");
    let mut h = good.clone();
    h.insert("x-amz-content-sha256", HeaderValue::from_static("nope"));
    assert_eq!(code_of(&h), "InvalidArgument");
    // No usable date.
    let mut h = good.clone();
    h.remove("x-amz-date");
    assert_eq!(code_of(&h), "AccessDenied");
    let mut h = good.clone();
    h.insert(
        "x-amz-date",
        HeaderValue::from_static("2013-05-24T00:00:00Z"),
    );
    assert_eq!(code_of(&h), "AccessDenied");
    // An unsigned x-amz-* header.
    let mut h = good.clone();
    h.insert("x-amz-meta-evil", HeaderValue::from_static("1"));
    let e = verify("GET", "/test.txt", "", &h).unwrap_err();
    assert_eq!(e.s3_code(), "AccessDenied");
    assert!(e.to_string().contains("x-amz-meta-evil"));
    // Two Authorization headers; header and query mechanisms together.
    let mut h = good.clone();
    h.append("authorization", HeaderValue::from_str(&auth).unwrap());
    assert_eq!(code_of(&h), "InvalidArgument");
    let e = verify("GET", "/test.txt", "X-Amz-Signature=00", &good).unwrap_err();
    assert_eq!(e.s3_code(), "InvalidArgument");
    // Anonymous.
    let anon = headers(&[("host", HOST)]);
    assert!(
        verify_at("GET", "/test.txt", "", &anon, "us-east-1", t2013())
            .unwrap()
            .is_none()
    );
}

#[test]
fn two_phase_verification() {
    let h = signed_get(t2013());
    let cfg = VerifyConfig {
        region: "us-east-1",
        service: "s3",
        now: t2013(),
    };
    let req = RequestParts::new("GET", "/test.txt", "", &h);
    let pending = check_request(&req, &cfg).unwrap().unwrap();
    assert_eq!(pending.access_key_id(), KEY_ID);
    assert!(pending
        .canonical_request()
        .starts_with("GET\n/test.txt\n\nhost:"));
    let e = pending.clone().verify("wrong secret").unwrap_err();
    match e {
        Error::SignatureDoesNotMatch {
            canonical_request,
            string_to_sign,
        } => {
            assert!(canonical_request.ends_with(EMPTY_SHA256_HEX));
            assert!(string_to_sign.starts_with("AWS4-HMAC-SHA256\n20130524T000000Z\n"));
        }
        other => panic!("{other:?}"),
    }
    assert!(pending.verify(SECRET).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary authorization headers, paths and query strings never panic.
    #[test]
    fn never_panics(
        auth in proptest::collection::vec(any::<u8>(), 0..300),
        path in "\\PC{0,40}",
        query in "[a-zA-Z0-9%&=+;/_.~-]{0,80}",
        presigned in any::<bool>(),
    ) {
        let mut h = headers(&[("host", HOST), ("x-amz-content-sha256", EMPTY_SHA256_HEX)]);
        let mut q = query.clone();
        if presigned {
            q.push_str("&X-Amz-Signature=");
            q.push_str(&String::from_utf8_lossy(&auth));
        } else if let Ok(v) = HeaderValue::from_bytes(&auth) {
            h.insert("authorization", v);
        }
        let mut prefixed = b"AWS4-HMAC-SHA256 Credential=".to_vec();
        prefixed.extend_from_slice(&auth);
        let _ = verify_at("PUT", &path, &q, &h, "us-east-1", t2013());
        if let Ok(v) = HeaderValue::from_bytes(&prefixed) {
            h.insert("authorization", v);
            let _ = verify_at("PUT", &path, &query, &h, "us-east-1", t2013());
        }
    }
}
