//! Presigned URLs: AWS's documented example (GET Object, valid 86400 s), expiry, tampering,
//! and malformed query parameters.

use std::time::Duration;

use http::HeaderValue;

use super::sign::presign;
use super::tests_requests::{headers, params, t2013, verify_at, HOST, KEY_ID};
use super::verify::AuthKind;
use super::ContentSha256;

/// "Authenticating Requests: Using Query Parameters", the GET Object example.
#[test]
fn aws_s3_presigned_example() {
    let h = headers(&[("host", HOST)]);
    let signed = presign("GET", "/test.txt", "", &h, 86400, &params(t2013()));
    let expected_query = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    assert_eq!(signed.value, expected_query);
    assert!(signed
        .canonical_request
        .ends_with("\nhost\nUNSIGNED-PAYLOAD"));

    let at = |secs: u64| t2013() + Duration::from_secs(secs);
    let v = verify_at(
        "GET",
        "/test.txt",
        expected_query,
        &h,
        "us-east-1",
        at(3600),
    )
    .unwrap()
    .unwrap();
    assert_eq!(v.kind, AuthKind::Presigned);
    assert_eq!(v.content_sha256, ContentSha256::UnsignedPayload);
    assert!(verify_at(
        "GET",
        "/test.txt",
        expected_query,
        &h,
        "us-east-1",
        at(86400)
    )
    .is_ok());

    let e = verify_at(
        "GET",
        "/test.txt",
        expected_query,
        &h,
        "us-east-1",
        at(86401),
    )
    .unwrap_err();
    assert_eq!(e.s3_code(), "AccessDenied");
    assert_eq!(e.to_string(), "Access Denied: Request has expired");

    let early = t2013() - Duration::from_secs(3600);
    let e = verify_at("GET", "/test.txt", expected_query, &h, "us-east-1", early).unwrap_err();
    assert_eq!(e.s3_code(), "AccessDenied");

    let e = verify_at("GET", "/test.txt", expected_query, &h, "garage", at(1)).unwrap_err();
    assert_eq!(e.s3_code(), "AuthorizationQueryParametersError");
    assert!(e
        .to_string()
        .contains("the region 'us-east-1' is wrong; expecting 'garage'"));

    // Tampering: the signature, a parameter, the path, the signed host.
    let bad_sig = expected_query.replace("d404", "d405");
    let bad_expires = expected_query.replace("86400", "86401");
    for (path, query, hh) in [
        ("/test.txt", bad_sig.as_str(), h.clone()),
        ("/test.txt", bad_expires.as_str(), h.clone()),
        ("/test.txt2", expected_query, h.clone()),
        (
            "/test.txt",
            expected_query,
            headers(&[("host", "other.example.com")]),
        ),
    ] {
        let e = verify_at("GET", path, query, &hh, "us-east-1", at(1)).unwrap_err();
        assert_eq!(e.s3_code(), "SignatureDoesNotMatch", "{path} {query}");
    }
    // Extra query parameters are signed too.
    let extra = format!("{expected_query}&response-content-type=text%2Fplain");
    let e = verify_at("GET", "/test.txt", &extra, &h, "us-east-1", at(1)).unwrap_err();
    assert_eq!(e.s3_code(), "SignatureDoesNotMatch");
    let signed = presign(
        "GET",
        "/test.txt",
        "response-content-type=text%2Fplain",
        &h,
        60,
        &params(t2013()),
    );
    assert!(verify_at("GET", "/test.txt", &signed.value, &h, "us-east-1", at(1)).is_ok());
}

#[test]
fn presigned_errors() {
    let h = headers(&[("host", HOST)]);
    let good = presign("GET", "/k", "", &h, 3600, &params(t2013())).value;
    let code = |q: &str| {
        verify_at("GET", "/k", q, &h, "us-east-1", t2013())
            .unwrap_err()
            .s3_code()
    };
    let qe = "AuthorizationQueryParametersError";
    assert!(verify_at("GET", "/k", &good, &h, "us-east-1", t2013()).is_ok());
    assert_eq!(
        code(&good.replace("X-Amz-Expires=3600", "X-Amz-Expires=604801")),
        qe
    );
    assert_eq!(
        code(&good.replace("X-Amz-Expires=3600", "X-Amz-Expires=soon")),
        qe
    );
    assert_eq!(code(&good.replace("X-Amz-Expires=3600&", "")), qe);
    assert_eq!(
        code(&good.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")),
        qe
    );
    assert_eq!(
        code(&good.replace("X-Amz-Date=20130524T000000Z", "X-Amz-Date=yesterday")),
        qe
    );
    assert_eq!(code(&good.replace("%2Fs3%2F", "%2Fs4%2F")), qe);
    assert_eq!(
        code(&good.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date")),
        qe
    );
    assert_eq!(code(&format!("{good}&X-Amz-Date=20130524T000000Z")), qe);
    assert_eq!(code(&good.replace(KEY_ID, "nobody")), "InvalidAccessKeyId");
    assert_eq!(code("X-Amz-Signature=%FF%FE"), qe);
    // An x-amz-* header the URL did not sign.
    let mut extra = h.clone();
    extra.insert("x-amz-acl", HeaderValue::from_static("public-read"));
    let e = verify_at("GET", "/k", &good, &extra, "us-east-1", t2013()).unwrap_err();
    assert_eq!(e.s3_code(), "AccessDenied");
    // The maximum validity is accepted.
    let week = presign("GET", "/k", "", &h, 604_800, &params(t2013())).value;
    let later = t2013() + Duration::from_secs(604_800);
    assert!(verify_at("GET", "/k", &week, &h, "us-east-1", later).is_ok());
}
