//! CORS: PutBucketCors / GetBucketCors / DeleteBucketCors with the SDK, preflight `OPTIONS`
//! and the CORS headers of actual requests (successes and errors) with raw HTTP.

use std::time::SystemTime;

use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use garage::api::signature::sign::{sign_request, SigningParams};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::s3util::*;
use crate::*;

const APP: &str = "https://app.example";

/// A request signed with the node's key (header mechanism), sent raw with `extra` headers
/// (unsigned, such as `Origin`).
pub fn signed_request(
    node: &SingleNode,
    method: &str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let payload_hash = hex::encode(Sha256::digest(body));
    let mut headers = HeaderMap::new();
    let value = |s: &str| HeaderValue::from_str(s).expect("header value");
    headers.insert("host", value(&format!("127.0.0.1:{}", node.s3_port)));
    headers.insert("x-amz-content-sha256", value(&payload_hash));
    let params = SigningParams {
        access_key_id: &node.key_id,
        secret_key: &node.secret,
        region: "garage",
        service: "s3",
        time: SystemTime::now(),
    };
    sign_request(method, path, query, &mut headers, &payload_hash, &params).expect("sign");
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().expect("ascii header").to_string()))
        .collect();
    all.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let target = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    raw_request(node.s3_port, method, &target, &all, body)
}

fn owned(h: &[(&str, &str)]) -> Vec<(String, String)> {
    h.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn options(node: &SingleNode, path: &str, h: &[(&str, &str)]) -> RawResponse {
    raw_request(node.s3_port, "OPTIONS", path, &owned(h), b"")
}

fn assert_error(r: &RawResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(xml_text(&r.text(), "Code"), Some(code), "{}", r.text());
}

fn cors_rules() -> CorsConfiguration {
    let app = CorsRule::builder()
        .id("app")
        .allowed_origins(APP)
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_headers("Content-Type")
        .allowed_headers("x-amz-*")
        .expose_headers("ETag")
        .max_age_seconds(600)
        .build()
        .expect("rule");
    let any = CorsRule::builder()
        .allowed_origins("https://*.other.example")
        .allowed_methods("HEAD")
        .build()
        .expect("rule");
    CorsConfiguration::builder()
        .cors_rules(app)
        .cors_rules(any)
        .build()
        .expect("configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_cors_configuration() {
    let node = SingleNode::start().await;
    let c = node.client();

    assert_s3_err(
        c.get_bucket_cors().bucket(BUCKET).send().await,
        "NoSuchCORSConfiguration",
        404,
    );
    c.put_bucket_cors()
        .bucket(BUCKET)
        .cors_configuration(cors_rules())
        .send()
        .await
        .expect("PutBucketCors");
    let got = c
        .get_bucket_cors()
        .bucket(BUCKET)
        .send()
        .await
        .expect("GetBucketCors");
    let rules = got.cors_rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].id(), Some("app"));
    assert_eq!(rules[0].allowed_origins(), [APP]);
    assert_eq!(rules[0].allowed_methods(), ["GET", "PUT"]);
    assert_eq!(rules[0].allowed_headers(), ["Content-Type", "x-amz-*"]);
    assert_eq!(rules[0].expose_headers(), ["ETag"]);
    assert_eq!(rules[0].max_age_seconds(), Some(600));
    assert_eq!(rules[1].id(), None);
    assert_eq!(rules[1].allowed_methods(), ["HEAD"]);
    assert!(rules[1].allowed_headers().is_empty());

    // Bad documents: nothing changes.
    let bad = |body: &str| signed_request(&node, "PUT", "/default", "cors", &[], body.as_bytes());
    assert_error(&bad("<CORSConfiguration>"), 400, "MalformedXML");
    assert_error(&bad("{}"), 400, "MalformedXML");
    assert_error(
        &bad("<CORSConfiguration></CORSConfiguration>"),
        400,
        "MalformedXML",
    );
    assert_error(
        &bad("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"),
        400,
        "InvalidRequest",
    );
    assert_error(
        &bad("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Unknown>1</Unknown></CORSRule></CORSConfiguration>"),
        400,
        "MalformedXML",
    );
    let too_many = format!(
        "<CORSConfiguration>{}</CORSConfiguration>",
        "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
            .repeat(101)
    );
    assert_error(&bad(&too_many), 400, "InvalidRequest");
    let huge = format!(
        "<CORSConfiguration><CORSRule><ID>{}</ID></CORSRule></CORSConfiguration>",
        "x".repeat(70 << 10)
    );
    assert_error(&bad(&huge), 400, "EntityTooLarge");
    assert_eq!(
        c.get_bucket_cors()
            .bucket(BUCKET)
            .send()
            .await
            .expect("GetBucketCors")
            .cors_rules()
            .len(),
        2
    );

    // A bucket that does not exist.
    assert_s3_err(
        c.get_bucket_cors().bucket("nonexistent").send().await,
        "NoSuchBucket",
        404,
    );

    c.delete_bucket_cors()
        .bucket(BUCKET)
        .send()
        .await
        .expect("DeleteBucketCors");
    let r = signed_request(&node, "DELETE", "/default", "cors", &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_s3_err(
        c.get_bucket_cors().bucket(BUCKET).send().await,
        "NoSuchCORSConfiguration",
        404,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_and_actual_requests() {
    let node = SingleNode::start().await;
    let c = node.client();
    let preflight_put = [
        ("Origin", APP),
        ("Access-Control-Request-Method", "PUT"),
        ("Access-Control-Request-Headers", "content-type, x-amz-date"),
    ];

    // No configuration: refused.
    let r = options(&node, "/default/some/key", &preflight_put);
    assert_error(&r, 403, "AccessForbidden");
    assert!(r.text().contains("CORSResponse"), "{}", r.text());

    c.put_bucket_cors()
        .bucket(BUCKET)
        .cors_configuration(cors_rules())
        .send()
        .await
        .expect("PutBucketCors");

    // Allowed preflight, on an object and on the bucket.
    for path in ["/default/some/key", "/default"] {
        let r = options(&node, path, &preflight_put);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), Some(APP));
        assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("content-type, x-amz-date")
        );
        assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
        assert_eq!(r.header("access-control-max-age"), Some("600"));
        assert_eq!(r.header("vary"), Some("Origin"));
    }
    // The wildcard origin rule.
    let r = options(
        &node,
        "/default/k",
        &[
            ("Origin", "https://x.other.example"),
            ("Access-Control-Request-Method", "HEAD"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://x.other.example")
    );

    // Refusals: other origin, method, header; missing headers; unknown bucket.
    for h in [
        vec![
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        vec![("Origin", APP), ("Access-Control-Request-Method", "DELETE")],
        vec![
            ("Origin", APP),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
        vec![
            ("Origin", "https://x.other.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
    ] {
        let r = options(&node, "/default/k", &h);
        assert_error(&r, 403, "AccessForbidden");
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    assert_error(
        &options(
            &node,
            "/default/k",
            &[("Access-Control-Request-Method", "GET")],
        ),
        400,
        "BadRequest",
    );
    assert_error(
        &options(&node, "/default/k", &[("Origin", APP)]),
        400,
        "BadRequest",
    );
    assert_error(
        &options(&node, "/nonexistent/k", &preflight_put),
        403,
        "AccessForbidden",
    );

    // Actual requests from the allowed origin get the headers, errors included.
    let body = data(5000, 7);
    let r = signed_request(
        &node,
        "PUT",
        "/default/cors-obj",
        "",
        &[("Origin", APP)],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
    let r = signed_request(
        &node,
        "GET",
        "/default/cors-obj",
        "",
        &[("Origin", APP)],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = signed_request(
        &node,
        "GET",
        "/default/missing",
        "",
        &[("Origin", APP)],
        b"",
    );
    assert_error(&r, 404, "NoSuchKey");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    // A bucket known by a local alias of the key: its rules apply to the key's requests.
    node.cli(&["bucket", "alias", "--local", &node.key_id, BUCKET, "mine"]);
    let r = signed_request(&node, "GET", "/mine/cors-obj", "", &[("Origin", APP)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    // Anonymous and refused, still with the headers (as S3).
    let r = raw_request(
        node.s3_port,
        "GET",
        "/default/cors-obj",
        &owned(&[("Origin", APP)]),
        b"",
    );
    assert_error(&r, 403, "AccessDenied");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    // Another origin, a method the rule does not allow, or no Origin: no headers.
    for (method, origin) in [
        ("GET", Some("https://evil.example")),
        ("DELETE", Some(APP)),
        ("GET", None),
    ] {
        let extra: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let r = signed_request(&node, method, "/default/cors-obj", "", &extra, b"");
        assert!(r.status < 300, "{method}: {}", r.text());
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "{method} {origin:?}"
        );
        if method == "DELETE" {
            // Put it back for the next iteration.
            put(&c, BUCKET, "cors-obj", &body).await;
        }
    }

    // Without configuration, preflight is refused again and actual requests get no headers.
    c.delete_bucket_cors()
        .bucket(BUCKET)
        .send()
        .await
        .expect("DeleteBucketCors");
    assert_error(
        &options(&node, "/default/some/key", &preflight_put),
        403,
        "AccessForbidden",
    );
    let r = signed_request(
        &node,
        "GET",
        "/default/cors-obj",
        "",
        &[("Origin", APP)],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
}
