//! CORS: the bucket configuration (PutBucketCors, GetBucketCors, DeleteBucketCors), and the
//! rule matching that answers preflight `OPTIONS` requests and decorates actual requests.
//!
//! The matching part ([`find_matching_rule`], [`add_cors_headers`], [`preflight`],
//! [`apply_cors_headers`]) depends only on the bucket's rules and `http` types, so every
//! endpoint that serves a bucket (S3 API, website) can use it:
//! - an origin pattern has at most one `*` wildcard and is compared case-sensitively;
//! - a method must be listed exactly (GET, PUT, HEAD, POST, DELETE);
//! - every header named by `Access-Control-Request-Headers` must match an allowed header
//!   (case-insensitive, at most one `*` wildcard per pattern);
//! - the first rule that matches wins, as in S3.
//!
//! The configuration is stored in the bucket table (`BucketParams::cors_config`, last writer
//! wins); the XML document is the one of S3 (`CORSConfiguration` / `CORSRule`).

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde::Deserialize;

use super::error::S3Error;
use super::request::{Need, ReqCtx};
use super::xml::{parse, Xml};
use super::{empty_body, full_body, ResBody, S3Api};
use crate::model::bucket::CorsRule;
use crate::model::key::Key;

/// Largest PutBucketCors body (as S3: 64 KiB).
pub const MAX_CORS_BODY: usize = 64 << 10;
/// Most rules in one configuration (as S3).
pub const MAX_CORS_RULES: usize = 100;
/// Methods a rule may allow.
pub const CORS_METHODS: &[&str] = &["GET", "PUT", "HEAD", "POST", "DELETE"];
/// Longest rule ID (as S3).
const MAX_ID_LEN: usize = 255;

const ALLOW_ORIGIN: &str = "access-control-allow-origin";
const ALLOW_METHODS: &str = "access-control-allow-methods";
const ALLOW_HEADERS: &str = "access-control-allow-headers";
const EXPOSE_HEADERS: &str = "access-control-expose-headers";
const MAX_AGE: &str = "access-control-max-age";
const REQUEST_METHOD: &str = "access-control-request-method";
const REQUEST_HEADERS: &str = "access-control-request-headers";

// ---------------------------------------------------------------------------------------------
// Matching (endpoint-independent)
// ---------------------------------------------------------------------------------------------

/// Why a preflight request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsError {
    #[error("Insufficient information. Origin request header needed.")]
    MissingOrigin,
    #[error("Invalid Access-Control-Request-Method: the header is missing or not valid")]
    MissingMethod,
    /// No configuration, or no rule matches.
    #[error("CORS request not allowed")]
    Forbidden,
}

impl From<CorsError> for S3Error {
    fn from(e: CorsError) -> Self {
        match e {
            CorsError::MissingOrigin | CorsError::MissingMethod => {
                S3Error::BadRequest(e.to_string())
            }
            CorsError::Forbidden => S3Error::CorsForbidden,
        }
    }
}

/// `pattern` with at most one `*` (matching any run of characters) against `value`.
fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, suffix)) => {
            value.len() >= prefix.len() + suffix.len()
                && value.starts_with(prefix)
                && value.ends_with(suffix)
        }
    }
}

/// The first rule allowing `origin`, `method` and every one of `request_headers`.
pub fn find_matching_rule<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    request_headers: &[String],
) -> Option<&'a CorsRule> {
    rules.iter().find(|rule| {
        rule.allowed_origins
            .iter()
            .any(|o| wildcard_match(o, origin))
            && rule.allowed_methods.iter().any(|m| m == method)
            && request_headers.iter().all(|h| {
                let h = h.to_ascii_lowercase();
                rule.allowed_headers
                    .iter()
                    .any(|a| wildcard_match(&a.to_ascii_lowercase(), &h))
            })
    })
}

fn set(out: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        out.insert(name, v);
    }
}

/// Adds the CORS headers of a matching `rule` for `origin` to a response: allowed origin (`*`
/// when the rule allows every origin, else the origin itself), methods, headers, exposed
/// headers, max age, and `Vary: Origin`.
pub fn add_cors_headers(out: &mut HeaderMap, rule: &CorsRule, origin: &str) {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    set(out, ALLOW_ORIGIN, if any_origin { "*" } else { origin });
    set(out, ALLOW_METHODS, &rule.allowed_methods.join(", "));
    if !rule.allowed_headers.is_empty() {
        set(out, ALLOW_HEADERS, &rule.allowed_headers.join(", "));
    }
    if !rule.expose_headers.is_empty() {
        set(out, EXPOSE_HEADERS, &rule.expose_headers.join(", "));
    }
    if let Some(age) = rule.max_age_seconds {
        set(out, MAX_AGE, &age.to_string());
    }
    out.append(http::header::VARY, HeaderValue::from_static("Origin"));
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The header names listed by `Access-Control-Request-Headers` (lower case).
pub fn requested_headers(h: &HeaderMap) -> Vec<String> {
    h.get_all(REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Answers a preflight request: given the bucket's rules (`None`: no configuration) and the
/// request headers, the headers of the 200 answer. The requested headers are echoed in
/// `Access-Control-Allow-Headers`, as S3 does.
pub fn preflight(rules: Option<&[CorsRule]>, req: &HeaderMap) -> Result<HeaderMap, CorsError> {
    let origin = header_str(req, "origin").ok_or(CorsError::MissingOrigin)?;
    let method = header_str(req, REQUEST_METHOD).ok_or(CorsError::MissingMethod)?;
    let headers = requested_headers(req);
    let rule = rules
        .and_then(|r| find_matching_rule(r, origin, method, &headers))
        .ok_or(CorsError::Forbidden)?;
    let mut out = HeaderMap::new();
    add_cors_headers(&mut out, rule, origin);
    if !headers.is_empty() {
        set(&mut out, ALLOW_HEADERS, &headers.join(", "));
    }
    Ok(out)
}

/// For an actual (non-preflight) request carrying `Origin`: adds the headers of the first rule
/// allowing its origin and method to the response. Does nothing without `Origin` or match.
pub fn apply_cors_headers(
    rules: &[CorsRule],
    method: &Method,
    req: &HeaderMap,
    out: &mut HeaderMap,
) {
    let Some(origin) = header_str(req, "origin") else {
        return;
    };
    if let Some(rule) = find_matching_rule(rules, origin, method.as_str(), &[]) {
        add_cors_headers(out, rule, origin);
    }
}

/// The CORS rules of a bucket known by `name` (to `key` when authenticated); `None` when the
/// bucket or its configuration does not exist.
pub async fn bucket_rules(api: &S3Api, name: &str, key: Option<&Key>) -> Option<Vec<CorsRule>> {
    let id = api.helper.resolve_bucket(name, key).await.ok()??;
    let bucket = api.helper.get_bucket(&id).await.ok()??;
    bucket.params()?.cors_config.get().clone()
}

/// OPTIONS on a bucket or object of the S3 endpoint (unauthenticated, as S3).
pub async fn handle_options(
    api: &S3Api,
    bucket: Option<&str>,
    req: &HeaderMap,
) -> Result<Response<ResBody>, S3Error> {
    // `preflight` checks the request headers before the rules: a request without Origin is a
    // bad request even when the bucket has no configuration.
    let rules = match bucket {
        Some(name) => bucket_rules(api, name, None).await,
        None => None,
    };
    let headers = preflight(rules.as_deref(), req)?;
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))?;
    resp.headers_mut().extend(headers);
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------
// The XML configuration
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorsConfigurationXml {
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<String>,
    #[serde(rename = "CORSRule", default)]
    rules: Vec<CorsRuleXml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorsRuleXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds")]
    max_age_seconds: Option<String>,
}

fn check_wildcards(what: &str, values: &[String]) -> Result<(), S3Error> {
    for v in values {
        if v.matches('*').count() > 1 {
            return Err(S3Error::InvalidRequest(format!(
                "{what} {v:?} can not have more than one wildcard."
            )));
        }
        if HeaderValue::from_str(v).is_err() {
            return Err(S3Error::InvalidRequest(format!(
                "{what} {v:?} contains characters not allowed in an HTTP header"
            )));
        }
    }
    Ok(())
}

/// Parses and validates a `CORSConfiguration` document.
pub fn parse_cors_config(body: &[u8]) -> Result<Vec<CorsRule>, S3Error> {
    let conf: CorsConfigurationXml = parse(body)?;
    if conf.rules.is_empty() {
        return Err(S3Error::MalformedXml(
            "a CORSConfiguration needs at least one CORSRule".into(),
        ));
    }
    if conf.rules.len() > MAX_CORS_RULES {
        return Err(S3Error::InvalidRequest(format!(
            "a CORS configuration may have at most {MAX_CORS_RULES} rules"
        )));
    }
    let mut rules = Vec::with_capacity(conf.rules.len());
    for r in conf.rules {
        let trim = |v: Vec<String>| -> Vec<String> {
            v.into_iter().map(|s| s.trim().to_string()).collect()
        };
        let (origins, methods) = (trim(r.allowed_origins), trim(r.allowed_methods));
        if origins.is_empty() || methods.is_empty() {
            return Err(S3Error::MalformedXml(
                "each CORSRule needs at least one AllowedOrigin and one AllowedMethod".into(),
            ));
        }
        if let Some(m) = methods.iter().find(|m| !CORS_METHODS.contains(&m.as_str())) {
            return Err(S3Error::InvalidRequest(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            )));
        }
        let headers = trim(r.allowed_headers);
        let expose = trim(r.expose_headers);
        check_wildcards("AllowedOrigin", &origins)?;
        check_wildcards("AllowedHeader", &headers)?;
        check_wildcards("ExposeHeader", &expose)?;
        if r.id.as_ref().is_some_and(|id| id.len() > MAX_ID_LEN) {
            return Err(S3Error::InvalidArgument(format!(
                "a CORSRule ID has at most {MAX_ID_LEN} characters"
            )));
        }
        let max_age_seconds = match r.max_age_seconds {
            None => None,
            Some(s) => Some(s.trim().parse::<u64>().map_err(|_| {
                S3Error::MalformedXml(format!("MaxAgeSeconds {s:?} is not a number"))
            })?),
        };
        rules.push(CorsRule {
            id: r.id,
            allowed_origins: origins,
            allowed_methods: methods,
            allowed_headers: headers,
            expose_headers: expose,
            max_age_seconds,
        });
    }
    Ok(rules)
}

/// The `CORSConfiguration` document of some rules.
pub fn cors_config_xml(rules: &[CorsRule]) -> String {
    let mut x = Xml::new("CORSConfiguration");
    for r in rules {
        x.open("CORSRule");
        if let Some(id) = &r.id {
            x.elem("ID", id);
        }
        for (tag, values) in [
            ("AllowedOrigin", &r.allowed_origins),
            ("AllowedMethod", &r.allowed_methods),
            ("AllowedHeader", &r.allowed_headers),
            ("ExposeHeader", &r.expose_headers),
        ] {
            for v in values {
                x.elem(tag, v);
            }
        }
        if let Some(age) = r.max_age_seconds {
            x.elem("MaxAgeSeconds", &age.to_string());
        }
        x.close("CORSRule");
    }
    x.finish("CORSConfiguration")
}

// ---------------------------------------------------------------------------------------------
// S3 operations
// ---------------------------------------------------------------------------------------------

async fn store_rules(ctx: &ReqCtx, rules: Option<Vec<CorsRule>>) -> Result<(), S3Error> {
    let mut bucket = ctx.bucket(Need::Owner).await?;
    let params = bucket
        .params_mut()
        .ok_or_else(|| S3Error::NoSuchBucket(ctx.bucket_name().unwrap_or("").to_string()))?;
    params.cors_config.update(rules);
    ctx.api.model.buckets.insert(&bucket).await?;
    Ok(())
}

/// PUT /bucket?cors
pub async fn put_bucket_cors(mut ctx: ReqCtx) -> Result<Response<ResBody>, S3Error> {
    ctx.bucket(Need::Owner).await?;
    let body = ctx.read_small_body(MAX_CORS_BODY).await?;
    let rules = parse_cors_config(&body)?;
    store_rules(&ctx, Some(rules)).await?;
    Response::builder()
        .status(StatusCode::OK)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// GET /bucket?cors
pub async fn get_bucket_cors(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Read).await?;
    let rules = bucket
        .params()
        .and_then(|p| p.cors_config.get().clone())
        .ok_or(S3Error::NoSuchCorsConfiguration)?;
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(cors_config_xml(&rules)))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// DELETE /bucket?cors
pub async fn delete_bucket_cors(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    store_rules(ctx, None).await?;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        CorsRule {
            id: None,
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(600),
        }
    }

    fn hdrs(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "https://a.example"));
        assert!(wildcard_match(
            "https://*.example.com",
            "https://a.b.example.com"
        ));
        assert!(!wildcard_match(
            "https://*.example.com",
            "http://a.example.com"
        ));
        assert!(!wildcard_match(
            "https://*.example.com",
            "https://example.com"
        ));
        assert!(wildcard_match("http://x", "http://x"));
        assert!(!wildcard_match("http://x", "http://X"));
        // Prefix and suffix may not overlap.
        assert!(!wildcard_match("ab*ba", "aba"));
    }

    #[test]
    fn matching_rules() {
        let rules = vec![
            rule(&["https://a.example"], &["GET"], &[]),
            rule(
                &["https://*.example"],
                &["PUT", "GET"],
                &["x-amz-*", "Content-Type"],
            ),
            rule(&["*"], &["HEAD"], &["*"]),
        ];
        let m = |o: &str, m: &str, h: &[&str]| {
            let h: Vec<String> = h.iter().map(|s| s.to_string()).collect();
            find_matching_rule(&rules, o, m, &h).map(|r| r.allowed_methods.clone())
        };
        assert_eq!(m("https://a.example", "GET", &[]), Some(vec!["GET".into()]));
        // The first rule does not allow headers: the second one matches.
        assert_eq!(
            m("https://a.example", "GET", &["content-type"]).map(|v| v.len()),
            Some(2)
        );
        assert_eq!(
            m("https://b.example", "PUT", &["X-Amz-Date", "CONTENT-TYPE"]).map(|v| v.len()),
            Some(2)
        );
        assert_eq!(m("https://b.example", "PUT", &["authorization"]), None);
        assert_eq!(m("https://b.example", "DELETE", &[]), None);
        assert_eq!(
            m("https://other", "HEAD", &["anything"]),
            Some(vec!["HEAD".into()])
        );
        assert_eq!(m("https://other", "GET", &[]), None);
        assert_eq!(m("https://b.example", "get", &[]), None);
    }

    #[test]
    fn preflight_answers() {
        let rules = vec![rule(&["https://a.example"], &["GET", "PUT"], &["*"])];
        assert_eq!(
            preflight(Some(&rules), &hdrs(&[(REQUEST_METHOD, "GET")])),
            Err(CorsError::MissingOrigin)
        );
        assert_eq!(
            preflight(Some(&rules), &hdrs(&[("origin", "https://a.example")])),
            Err(CorsError::MissingMethod)
        );
        assert_eq!(
            preflight(
                None,
                &hdrs(&[("origin", "https://a.example"), (REQUEST_METHOD, "GET")])
            ),
            Err(CorsError::Forbidden)
        );
        let out = preflight(
            Some(&rules),
            &hdrs(&[
                ("origin", "https://a.example"),
                (REQUEST_METHOD, "PUT"),
                (REQUEST_HEADERS, "Content-Type, X-Amz-Date"),
            ]),
        )
        .expect("allowed");
        let get = |n: &str| out.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(get(ALLOW_ORIGIN), "https://a.example");
        assert_eq!(get(ALLOW_METHODS), "GET, PUT");
        assert_eq!(get(ALLOW_HEADERS), "content-type, x-amz-date");
        assert_eq!(get(EXPOSE_HEADERS), "ETag");
        assert_eq!(get(MAX_AGE), "600");
        assert_eq!(get("vary"), "Origin");

        let mut out = HeaderMap::new();
        let any = vec![rule(&["*"], &["GET"], &[])];
        apply_cors_headers(
            &any,
            &Method::GET,
            &hdrs(&[("origin", "https://z")]),
            &mut out,
        );
        assert_eq!(out.get(ALLOW_ORIGIN).map(|v| v.as_bytes()), Some(&b"*"[..]));
        let mut out = HeaderMap::new();
        apply_cors_headers(
            &any,
            &Method::PUT,
            &hdrs(&[("origin", "https://z")]),
            &mut out,
        );
        assert!(out.is_empty());
        apply_cors_headers(&any, &Method::GET, &HeaderMap::new(), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn xml_round_trip_and_validation() {
        let doc = br#"<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <CORSRule><ID>r1</ID><AllowedOrigin>https://*.example</AllowedOrigin>
            <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
            <AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>
            <MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>
            <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
            </CORSConfiguration>"#;
        let rules = parse_cors_config(doc).expect("valid");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].id.as_deref(), Some("r1"));
        assert_eq!(rules[0].allowed_methods, vec!["GET", "PUT"]);
        assert_eq!(rules[0].max_age_seconds, Some(3000));
        assert_eq!(rules[1].allowed_headers, Vec::<String>::new());
        let again = parse_cors_config(cors_config_xml(&rules).as_bytes()).expect("round trip");
        assert_eq!(again, rules);

        let code = |d: &str| parse_cors_config(d.as_bytes()).map_err(|e| e.code());
        let wrap =
            |r: &str| format!("<CORSConfiguration><CORSRule>{r}</CORSRule></CORSConfiguration>");
        assert_eq!(code("<CORSConfiguration>"), Err("MalformedXML"));
        assert_eq!(code("not xml"), Err("MalformedXML"));
        assert_eq!(
            code("<CORSConfiguration></CORSConfiguration>"),
            Err("MalformedXML")
        );
        assert_eq!(
            code(&wrap("<AllowedOrigin>*</AllowedOrigin>")),
            Err("MalformedXML")
        );
        assert_eq!(
            code(&wrap(
                "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"
            )),
            Err("InvalidRequest")
        );
        assert_eq!(
            code(&wrap(
                "<AllowedOrigin>*a*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            )),
            Err("InvalidRequest")
        );
        assert_eq!(
            code(&wrap(
                "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Bogus/>"
            )),
            Err("MalformedXML")
        );
        assert_eq!(
            code(&wrap(
                "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>x</MaxAgeSeconds>"
            )),
            Err("MalformedXML")
        );
    }
}
