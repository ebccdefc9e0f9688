//! The static website endpoint (`[s3_web]` on an ephemeral port, root domain `.web.garage`): website access set through the CLI
//! (`garage bucket website`) and through S3 (`put_bucket_website` with aws-sdk-s3), then plain
//! HTTP/1.1 requests written by hand with the Host header under test.
//!
//! Covered: Host as `<bucket>.<root_domain>` with and without port and as a global alias; buckets
//! without website access; index documents at `/` and in sub-folders; error document (404) and
//! plain 404; folder redirects; redirect-all; routing rules on key prefixes and on error codes;
//! HEAD, Range, If-None-Match (304 with validators); 405; hostile paths; the S3 calls
//! themselves (round trip, delete, errors and permissions).

use std::time::Duration;

use crate::common::wait_for;
use crate::s3 as raw_s3;
use crate::s3util::*;
use crate::*;
use aws_sdk_s3::types::{
    Condition, ErrorDocument, IndexDocument, Protocol, Redirect, RedirectAllRequestsTo,
    RoutingRule, WebsiteConfiguration,
};
use aws_sdk_s3::Client;
const ROOT: &str = "web.garage";

/// A node (the single node, or node 1 of the cluster) with a website endpoint.
struct Site {
    node: SingleNode,
    web_port: u16,
    client: Client,
}

impl Site {
    async fn start() -> Self {
        let web_port = crate::common::free_port();
        let extra = format!(
            "\n[s3_web]\nbind_addr = \"127.0.0.1:{web_port}\"\nroot_domain = \".{ROOT}\"\nindex = \"index.html\"\n"
        );
        let node = SingleNode::start_with(&extra).await;
        let up = wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", web_port)).ok()
        });
        assert!(
            up.is_some(),
            "web endpoint never listened; log:\n{}",
            node.dir.log()
        );
        let client = node.client();
        Self {
            node,
            web_port,
            client,
        }
    }

    /// A request to the web endpoint with this Host header.
    async fn req(
        &self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> RawResponse {
        let port = self.web_port;
        let (method, host, path) = (method.to_string(), host.to_string(), path.to_string());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || {
            raw_request_host(port, &method, &path, &host, &headers, b"")
        })
        .await
        .expect("request thread")
    }

    async fn get(&self, host: &str, path: &str) -> RawResponse {
        self.req("GET", host, path, &[]).await
    }

    /// The vhost of a bucket, with the endpoint's port.
    fn vhost(&self, bucket: &str) -> String {
        format!("{bucket}.{ROOT}:{}", self.web_port)
    }

    async fn put(&self, key: &str, body: &[u8], content_type: &str) {
        self.client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .content_type(content_type)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
    }
}

#[track_caller]
fn assert_answer(r: &RawResponse, status: u16, body: &str) {
    assert_eq!(
        (r.status, r.text().as_str()),
        (status, body),
        "answer {r:?}"
    );
}

/// Website access through the CLI: vhosts with and without port, global alias, index documents,
/// error document, folder redirect, HEAD, Range, conditional requests, 405, hostile paths, and
/// `--deny`.
#[tokio::test(flavor = "multi_thread")]
async fn cli_website_serving() {
    let site = Site::start().await;
    let host = site.vhost(BUCKET);

    // Before website access is allowed, nothing is served.
    site.put("index.html", b"home", "text/html").await;
    assert_eq!(site.get(&host, "/").await.status, 404);

    site.node.cli(&[
        "bucket",
        "website",
        "--allow",
        "-e",
        "errors/404.html",
        BUCKET,
    ]);
    let info = site.node.cli(&["bucket", "info", BUCKET]);
    assert!(info.contains("Website access: enabled"), "{info}");
    site.put("sub/index.html", b"sub home", "text/html").await;
    site.put("folder/index.html", b"folder home", "text/html")
        .await;
    site.put("page.html", b"0123456789", "text/html").await;
    site.put("errors/404.html", b"custom not found", "text/html")
        .await;

    // Host forms: with port, without port, upper case, global alias.
    let r = site.get(&host, "/").await;
    assert_answer(&r, 200, "home");
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_answer(
        &site.get(&format!("{BUCKET}.{ROOT}"), "/").await,
        200,
        "home",
    );
    assert_answer(&site.get("DEFAULT.WEB.GARAGE", "/").await, 200, "home");
    site.node
        .cli(&["bucket", "alias", BUCKET, "www.example.test"]);
    assert_answer(&site.get("www.example.test:8080", "/").await, 200, "home");
    assert_answer(
        &site.get("www.example.test", "/page.html").await,
        200,
        "0123456789",
    );

    // Other hosts: an unknown bucket, a bucket without website access.
    assert_eq!(site.get("nosuchbucket.web.garage", "/").await.status, 404);
    site.client
        .create_bucket()
        .bucket("private")
        .send()
        .await
        .expect("CreateBucket private");
    site.client
        .put_object()
        .bucket("private")
        .key("index.html")
        .body(b"secret".to_vec().into())
        .send()
        .await
        .expect("PutObject private/index.html");
    let r = site.get(&site.vhost("private"), "/").await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("secret"));

    // Index documents, folder redirect, error document.
    assert_answer(&site.get(&host, "/sub/").await, 200, "sub home");
    let r = site.get(&host, "/folder").await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some("/folder/"));
    assert_answer(&site.get(&host, "/folder/").await, 200, "folder home");
    assert_answer(
        &site.get(&host, "/missing.html").await,
        404,
        "custom not found",
    );
    assert_answer(
        &site.get(&host, "/nofolder/").await,
        404,
        "custom not found",
    );

    // HEAD: headers of the object, no body.
    let r = site.req("HEAD", &host, "/page.html", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10"));
    assert!(r.body.is_empty());
    let r = site.req("HEAD", &host, "/missing.html", &[]).await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());

    // Range.
    let r = site
        .req("GET", &host, "/page.html", &[("Range", "bytes=2-5")])
        .await;
    assert_answer(&r, 206, "2345");
    assert_eq!(r.header("content-range"), Some("bytes 2-5/10"));
    let r = site
        .req("GET", &host, "/page.html", &[("Range", "bytes=50-")])
        .await;
    assert_eq!(r.status, 416);

    // Conditional requests: 304 with validators.
    let r = site.get(&host, "/page.html").await;
    let etag = r.header("etag").expect("ETag").to_string();
    let last_modified = r
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    let r = site
        .req(
            "GET",
            &host,
            "/page.html",
            &[("If-None-Match", etag.as_str())],
        )
        .await;
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("last-modified"), Some(last_modified.as_str()));
    assert!(r.body.is_empty());
    let r = site
        .req(
            "GET",
            &host,
            "/page.html",
            &[("If-None-Match", "\"other\"")],
        )
        .await;
    assert_answer(&r, 200, "0123456789");
    let r = site
        .req(
            "GET",
            &host,
            "/page.html",
            &[("If-Modified-Since", last_modified.as_str())],
        )
        .await;
    assert_eq!(r.status, 304);

    // Other methods.
    for m in ["POST", "PUT", "DELETE"] {
        let r = site.req(m, &host, "/page.html", &[]).await;
        assert_eq!(r.status, 405, "{m}");
        assert!(
            r.header("allow").is_some_and(|a| a.contains("GET")),
            "{r:?}"
        );
    }

    // Hostile paths are object keys, never files; nothing crashes.
    assert_answer(
        &site.get(&host, "/../page.html").await,
        404,
        "custom not found",
    );
    assert_answer(
        &site.get(&host, "/sub/../page.html").await,
        404,
        "custom not found",
    );
    assert_answer(&site.get(&host, "/sub%2Findex.html").await, 200, "sub home");
    assert_answer(
        &site.get(&host, "/page%00.html").await,
        404,
        "custom not found",
    );
    let long = format!("/{}", "a".repeat(5000));
    assert_answer(&site.get(&host, &long).await, 404, "custom not found");
    assert_eq!(site.get(&host, "/%FF%FE").await.status, 400);
    assert_eq!(
        site.get(&host, "/%2e%2e/%2e%2e/etc/passwd").await.status,
        404
    );

    // --deny turns it off (and S3 then has no configuration to show).
    site.node.cli(&["bucket", "website", "--deny", BUCKET]);
    assert_eq!(site.get(&host, "/").await.status, 404);
    assert_s3_err(
        site.client.get_bucket_website().bucket(BUCKET).send().await,
        "NoSuchWebsiteConfiguration",
        404,
    );
}

fn rule(condition: Option<Condition>, redirect: Redirect) -> RoutingRule {
    RoutingRule::builder()
        .set_condition(condition)
        .redirect(redirect)
        .build()
}

/// Website configuration through S3: round trip, routing rules on the web endpoint, plain 404
/// without error document, delete, redirect-all.
#[tokio::test(flavor = "multi_thread")]
async fn s3_website_configuration() {
    let site = Site::start().await;
    let host = site.vhost(BUCKET);
    let c = &site.client;

    assert_s3_err(
        c.get_bucket_website().bucket(BUCKET).send().await,
        "NoSuchWebsiteConfiguration",
        404,
    );
    site.put("index.html", b"home", "text/html").await;
    site.put("new/a.html", b"new a", "text/html").await;
    site.put("missing/present.html", b"present", "text/html")
        .await;

    let rules = vec![
        // Prefix only: decided before the lookup, even when the object exists.
        rule(
            Some(Condition::builder().key_prefix_equals("old/").build()),
            Redirect::builder()
                .replace_key_prefix_with("new/")
                .http_redirect_code("302")
                .build(),
        ),
        // Prefix and error code: only when the object is missing.
        rule(
            Some(
                Condition::builder()
                    .key_prefix_equals("missing/")
                    .http_error_code_returned_equals("404")
                    .build(),
            ),
            Redirect::builder()
                .host_name("fallback.example")
                .protocol(Protocol::Https)
                .replace_key_with("notfound.html")
                .build(),
        ),
    ];
    let conf = WebsiteConfiguration::builder()
        .index_document(
            IndexDocument::builder()
                .suffix("index.html")
                .build()
                .expect("suffix"),
        )
        .set_routing_rules(Some(rules.clone()))
        .build();
    c.put_bucket_website()
        .bucket(BUCKET)
        .website_configuration(conf)
        .send()
        .await
        .expect("PutBucketWebsite");

    // Round trip.
    let got = c
        .get_bucket_website()
        .bucket(BUCKET)
        .send()
        .await
        .expect("GetBucketWebsite");
    assert_eq!(got.index_document().map(|i| i.suffix()), Some("index.html"));
    assert!(got.error_document().is_none());
    assert!(got.redirect_all_requests_to().is_none());
    assert_eq!(got.routing_rules(), rules.as_slice());
    // The S3 call enabled website access, as the CLI shows.
    let info = site.node.cli(&["bucket", "info", BUCKET]);
    assert!(
        info.contains("Website access: enabled (index index.html, 2 routing rules)"),
        "{info}"
    );

    assert_answer(&site.get(&host, "/").await, 200, "home");
    let r = site.get(&host, "/old/a.html").await;
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some(format!("http://{host}/new/a.html").as_str())
    );
    // Behind a TLS proxy the request's protocol is kept.
    let r = site
        .req(
            "GET",
            &host,
            "/old/x%20y",
            &[("X-Forwarded-Proto", "https")],
        )
        .await;
    assert_eq!(
        r.header("location"),
        Some(format!("https://{host}/new/x%20y").as_str())
    );
    let r = site.get(&host, "/missing/gone.html").await;
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some("https://fallback.example/notfound.html")
    );
    assert_answer(
        &site.get(&host, "/missing/present.html").await,
        200,
        "present",
    );
    // No rule and no error document: plain 404.
    let r = site.get(&host, "/nothing.html").await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("Not found"), "{r:?}");

    // Replacing the configuration: an error document, and a catch-all rule on 404 that is
    // listed after it (the error document is never reached then).
    let conf = WebsiteConfiguration::builder()
        .index_document(
            IndexDocument::builder()
                .suffix("index.html")
                .build()
                .expect("suffix"),
        )
        .error_document(
            ErrorDocument::builder()
                .key("index.html")
                .build()
                .expect("key"),
        )
        .build();
    c.put_bucket_website()
        .bucket(BUCKET)
        .website_configuration(conf)
        .send()
        .await
        .expect("PutBucketWebsite (error document)");
    assert_answer(&site.get(&host, "/old/a.html").await, 404, "home");
    let got = c
        .get_bucket_website()
        .bucket(BUCKET)
        .send()
        .await
        .expect("GetBucketWebsite");
    assert_eq!(got.error_document().map(|e| e.key()), Some("index.html"));
    assert!(got.routing_rules().is_empty());
    let conf = WebsiteConfiguration::builder()
        .index_document(
            IndexDocument::builder()
                .suffix("index.html")
                .build()
                .expect("suffix"),
        )
        .error_document(
            ErrorDocument::builder()
                .key("index.html")
                .build()
                .expect("key"),
        )
        .routing_rules(rule(
            Some(
                Condition::builder()
                    .http_error_code_returned_equals("404")
                    .build(),
            ),
            Redirect::builder()
                .replace_key_with("")
                .host_name("x.test")
                .build(),
        ))
        .build();
    c.put_bucket_website()
        .bucket(BUCKET)
        .website_configuration(conf)
        .send()
        .await
        .expect("PutBucketWebsite (404 rule)");
    let r = site.get(&host, "/gone").await;
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("http://x.test/"))
    );
    assert_answer(&site.get(&host, "/").await, 200, "home");

    // Redirect-all.
    let conf = WebsiteConfiguration::builder()
        .redirect_all_requests_to(
            RedirectAllRequestsTo::builder()
                .host_name("example.org")
                .protocol(Protocol::Https)
                .build()
                .expect("host"),
        )
        .build();
    c.put_bucket_website()
        .bucket(BUCKET)
        .website_configuration(conf)
        .send()
        .await
        .expect("PutBucketWebsite (redirect all)");
    let got = c
        .get_bucket_website()
        .bucket(BUCKET)
        .send()
        .await
        .expect("GetBucketWebsite");
    let all = got.redirect_all_requests_to().expect("redirect all");
    assert_eq!(
        (all.host_name(), all.protocol()),
        ("example.org", Some(&Protocol::Https))
    );
    assert!(got.index_document().is_none());
    let info = site.node.cli(&["bucket", "info", BUCKET]);
    assert!(
        info.contains("Website access: enabled (all requests redirected to https://example.org)"),
        "{info}"
    );
    for (path, location) in [
        ("/", "https://example.org/"),
        ("/a/b.html", "https://example.org/a/b.html"),
        ("/index.html", "https://example.org/index.html"),
    ] {
        let r = site.get(&host, path).await;
        assert_eq!(
            (r.status, r.header("location")),
            (301, Some(location)),
            "{path}"
        );
    }

    // Delete: 204, then nothing is served and there is nothing to get; deleting again is fine.
    c.delete_bucket_website()
        .bucket(BUCKET)
        .send()
        .await
        .expect("DeleteBucketWebsite");
    assert_eq!(site.get(&host, "/").await.status, 404);
    assert_s3_err(
        c.get_bucket_website().bucket(BUCKET).send().await,
        "NoSuchWebsiteConfiguration",
        404,
    );
    c.delete_bucket_website()
        .bucket(BUCKET)
        .send()
        .await
        .expect("DeleteBucketWebsite again");
    let info = site.node.cli(&["bucket", "info", BUCKET]);
    assert!(info.contains("Website access: disabled"), "{info}");
}

/// Bad website configurations: malformed XML, invalid combinations, oversized bodies, and a key
/// without owner permission. None of them changes the stored configuration.
#[tokio::test(flavor = "multi_thread")]
async fn s3_website_errors() {
    let site = Site::start().await;
    let c = &site.client;
    let index = || {
        IndexDocument::builder()
            .suffix("index.html")
            .build()
            .expect("suffix")
    };

    // Raw bodies through the signed client.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", site.node.s3_port)
        .parse()
        .expect("addr");
    let (key_id, secret) = (site.node.key_id.clone(), site.node.secret.clone());
    let answers = tokio::task::spawn_blocking(move || {
        let s3 = raw_s3::S3::new(addr, &key_id, &secret);
        let big = format!(
            "<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument>{}</WebsiteConfiguration>",
            " ".repeat(300 * 1024)
        );
        let bodies: Vec<Vec<u8>> = vec![
            b"<WebsiteConfiguration><IndexDocument><Suffix>i".to_vec(),
            b"this is not xml".to_vec(),
            b"".to_vec(),
            b"<CORSConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument></CORSConfiguration>".to_vec(),
            b"<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><Unknown/></WebsiteConfiguration>".to_vec(),
            b"<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules><RoutingRule><Condition><KeyPrefixEquals>a</KeyPrefixEquals></Condition></RoutingRule></RoutingRules></WebsiteConfiguration>".to_vec(),
            b"<WebsiteConfiguration></WebsiteConfiguration>".to_vec(),
            big.into_bytes(),
        ];
        bodies
            .iter()
            .map(|b| s3.request("PUT", &format!("/{BUCKET}?website"), b))
            .collect::<Vec<_>>()
    })
    .await
    .expect("raw requests");
    let expected = [
        (400, "MalformedXML"),
        (400, "MalformedXML"),
        (400, "MalformedXML"),
        (400, "MalformedXML"),
        (400, "MalformedXML"),
        (400, "MalformedXML"),
        (400, "InvalidArgument"),
        (400, "EntityTooLarge"),
    ];
    for (i, (r, (status, code))) in answers.iter().zip(expected).enumerate() {
        let r = r.as_ref().unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status, status, "body {i}: {}", r.text());
        assert_eq!(
            xml_text(&r.text(), "Code"),
            Some(code),
            "body {i}: {}",
            r.text()
        );
    }

    // Invalid combinations the SDK lets through.
    let both = WebsiteConfiguration::builder()
        .index_document(index())
        .redirect_all_requests_to(
            RedirectAllRequestsTo::builder()
                .host_name("example.org")
                .build()
                .expect("host"),
        )
        .build();
    let two_replacements = WebsiteConfiguration::builder()
        .index_document(index())
        .routing_rules(rule(
            None,
            Redirect::builder()
                .replace_key_with("a")
                .replace_key_prefix_with("b")
                .build(),
        ))
        .build();
    let bad_code = WebsiteConfiguration::builder()
        .index_document(index())
        .routing_rules(rule(
            None,
            Redirect::builder().http_redirect_code("200").build(),
        ))
        .build();
    let bad_suffix = WebsiteConfiguration::builder()
        .index_document(
            IndexDocument::builder()
                .suffix("a/b")
                .build()
                .expect("suffix"),
        )
        .build();
    for conf in [both, two_replacements, bad_code, bad_suffix] {
        assert_s3_err(
            c.put_bucket_website()
                .bucket(BUCKET)
                .website_configuration(conf.clone())
                .send()
                .await,
            "InvalidArgument",
            400,
        );
    }
    // Nothing was stored.
    assert_s3_err(
        c.get_bucket_website().bucket(BUCKET).send().await,
        "NoSuchWebsiteConfiguration",
        404,
    );

    // A key with read and write permissions but not owner.
    let (id, secret) = site.node.create_key("writer");
    site.node
        .cli(&["bucket", "allow", "--read", "--write", BUCKET, "--key", &id]);
    let writer = client(site.node.s3_port, &id, &secret, "garage");
    let conf = WebsiteConfiguration::builder()
        .index_document(index())
        .build();
    assert_s3_err(
        writer
            .put_bucket_website()
            .bucket(BUCKET)
            .website_configuration(conf.clone())
            .send()
            .await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        writer.get_bucket_website().bucket(BUCKET).send().await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        writer.delete_bucket_website().bucket(BUCKET).send().await,
        "AccessDenied",
        403,
    );
    // The owner can; then the writer still cannot delete it.
    c.put_bucket_website()
        .bucket(BUCKET)
        .website_configuration(conf)
        .send()
        .await
        .expect("PutBucketWebsite by the owner");
    assert_s3_err(
        writer.delete_bucket_website().bucket(BUCKET).send().await,
        "AccessDenied",
        403,
    );
    c.get_bucket_website()
        .bucket(BUCKET)
        .send()
        .await
        .expect("still configured");
    // Unknown bucket.
    assert_s3_err(
        c.get_bucket_website().bucket("nosuchbucket").send().await,
        "NoSuchBucket",
        404,
    );
}

/// The bucket's CORS rules on the website endpoint: preflight answers and headers on GET.
#[tokio::test(flavor = "multi_thread")]
async fn website_cors() {
    use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
    let site = Site::start().await;
    let host = site.vhost(BUCKET);
    site.node.cli(&["bucket", "website", "--allow", BUCKET]);
    site.put("index.html", b"home", "text/html").await;
    let origin = [
        ("Origin", "https://app.example"),
        ("Access-Control-Request-Method", "GET"),
    ];

    // No CORS configuration: preflight refused, GET without CORS headers.
    let r = site.req("OPTIONS", &host, "/index.html", &origin).await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = site
        .req("GET", &host, "/", &[("Origin", "https://app.example")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);

    site.client
        .put_bucket_cors()
        .bucket(BUCKET)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins("https://*.example")
                        .allowed_methods("GET")
                        .allowed_headers("*")
                        .max_age_seconds(600)
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("cors"),
        )
        .send()
        .await
        .expect("PutBucketCors");

    let r = site.req("OPTIONS", &host, "/index.html", &origin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    // Another method or origin: refused; missing headers: 400.
    let r = site
        .req(
            "OPTIONS",
            &host,
            "/index.html",
            &[
                ("Origin", "https://app.example"),
                ("Access-Control-Request-Method", "DELETE"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = site
        .req(
            "OPTIONS",
            &host,
            "/",
            &[
                ("Origin", "https://evil.test"),
                ("Access-Control-Request-Method", "GET"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = site.req("OPTIONS", &host, "/", &[]).await;
    assert_eq!(r.status, 400, "{r:?}");
    // Actual requests get the headers of the matching rule.
    let r = site
        .req("GET", &host, "/", &[("Origin", "https://app.example")])
        .await;
    assert_answer(&r, 200, "home");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = site
        .req("GET", &host, "/", &[("Origin", "https://evil.test")])
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // Not a website: preflight refused even with rules.
    site.node.cli(&["bucket", "website", "--deny", BUCKET]);
    let r = site.req("OPTIONS", &host, "/index.html", &origin).await;
    assert_eq!(r.status, 403, "{r:?}");
}
