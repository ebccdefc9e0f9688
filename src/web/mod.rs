//! The static website endpoint (`[s3_web] bind_addr`, DESIGN.md §11): the Host header (port
//! ignored) names a bucket, as `<bucket><root_domain>` or as a global alias equal to the host;
//! only buckets with a website configuration (`garage bucket website --allow` or
//! PutBucketWebsite) are served, anything else is a plain 404.
//!
//! Order of decisions for a GET or HEAD: `RedirectAllRequestsTo` (301 to the same key on another
//! host); routing rules that do not depend on the outcome (see `routing`); the object itself —
//! `/` and paths ending in `/` serve the index document (in sub-folders too), a folder requested
//! without its slash is redirected (302) when `<key>/<index>` exists, ranges and conditional
//! requests behave as on the S3 endpoint (a 304 carries the ETag and Last-Modified); then routing
//! rules conditioned on the error the request would get; then, for a missing object, the bucket's
//! error document with status 404, or a plain 404. Other methods get 405. The bucket's CORS rules
//! answer preflight (OPTIONS) requests and add their headers to answers of requests with an
//! `Origin`.
//! Paths are object keys, never files: `..`, encoded slashes and NUL are just key bytes.

mod routing;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::watch;
use tracing::warn;

use crate::api::s3::cors::{self, CorsError};
use crate::api::s3::error::S3Error;
use crate::api::s3::get::{find_object, object_response};
use crate::api::s3::router::{host_without_port, MAX_KEY_LEN};
use crate::api::s3::{empty_body, full_body, ResBody, S3Api};
use crate::api::signature::canonical::{percent_decode, uri_encode};
use crate::model::bucket::{CorsRule, WebsiteConfig};
use crate::model::object::{ObjectMeta, ObjectVersion};
use crate::util::ids::Uuid;
use crate::util::time::msec_to_http_date;
use routing::{apply_rule, find_rule, redirect_all, Decision, Origin, Outcome, Redirect};

/// The website server.
pub struct WebServer {
    pub api: Arc<S3Api>,
    pub root_domain: Option<String>,
    pub default_index: String,
}

fn plain(status: StatusCode, text: &str) -> Response<ResBody> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full_body(format!("{text}\n")))
        .unwrap_or_else(|_| Response::new(empty_body()))
}

fn not_found() -> Response<ResBody> {
    plain(StatusCode::NOT_FOUND, "Not found")
}

fn redirect(r: Redirect) -> Result<Response<ResBody>, S3Error> {
    Response::builder()
        .status(r.status)
        .header(http::header::LOCATION, r.location)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// The bucket name a Host header designates: `<bucket>.<root_domain>` gives `bucket`, any
/// other host is taken whole (a global alias). The port is ignored; names are lower-cased.
pub fn bucket_from_host(host: &str, root_domain: Option<&str>) -> String {
    let host = host_without_port(host).to_ascii_lowercase();
    if let Some(root) = root_domain {
        let root = root.trim_start_matches('.').to_ascii_lowercase();
        if let Some(b) = host.strip_suffix(&root).and_then(|b| b.strip_suffix('.')) {
            if !b.is_empty() {
                return b.to_string();
            }
        }
    }
    host
}

/// The 304 answer to a conditional request: validators and caching headers, no body.
fn not_modified(version: &ObjectVersion, meta: &ObjectMeta) -> Result<Response<ResBody>, S3Error> {
    let mut r = Response::builder()
        .status(StatusCode::NOT_MODIFIED)
        .header(http::header::ETAG, format!("\"{}\"", meta.etag))
        .header(
            http::header::LAST_MODIFIED,
            msec_to_http_date(version.timestamp),
        );
    for (name, value) in &meta.headers.other {
        if matches!(name.as_str(), "cache-control" | "expires") {
            r = r.header(name.as_str(), value.as_str());
        }
    }
    r.body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

impl WebServer {
    async fn answer(&self, req: Request<Incoming>) -> Response<ResBody> {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("")
            .to_string();
        let name = bucket_from_host(&host, self.root_domain.as_deref());
        let head = match *req.method() {
            http::Method::GET => false,
            http::Method::HEAD => true,
            http::Method::OPTIONS => return self.preflight(&name, req.headers()).await,
            _ => {
                let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
                r.headers_mut().insert(
                    http::header::ALLOW,
                    http::HeaderValue::from_static("GET, HEAD, OPTIONS"),
                );
                return r;
            }
        };
        let headers = req.headers();
        let protocol = match headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .map(str::trim)
        {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let origin = Origin {
            protocol,
            host: &host,
        };
        let mut resp = match self
            .serve(&name, origin, req.uri().path(), headers, head)
            .await
        {
            Ok(r) => r,
            Err(e) if e.status().is_server_error() => {
                warn!("website {}: {}", name, e);
                plain(e.status(), "Internal error")
            }
            Err(e) => plain(e.status(), &e.to_string()),
        };
        if headers.contains_key(http::header::ORIGIN) {
            if let Some(rules) = self.cors_rules(&name).await {
                cors::apply_cors_headers(&rules, req.method(), headers, resp.headers_mut());
            }
        }
        if head {
            let (parts, _) = resp.into_parts();
            return Response::from_parts(parts, empty_body());
        }
        resp
    }

    /// The CORS rules of the website bucket `name` (none if it is not a website).
    async fn cors_rules(&self, name: &str) -> Option<Vec<CorsRule>> {
        let helper = &self.api.helper;
        let id = helper.resolve_bucket(name, None).await.ok()??;
        let bucket = helper.get_bucket(&id).await.ok()??;
        let params = bucket.params()?;
        params.website_config.get().as_ref()?;
        params.cors_config.get().clone()
    }

    /// Answers a CORS preflight request from the website bucket's CORS rules.
    async fn preflight(&self, name: &str, headers: &http::HeaderMap) -> Response<ResBody> {
        let rules = self.cors_rules(name).await;
        match cors::preflight(rules.as_deref(), headers) {
            Ok(h) => {
                let mut r = Response::new(empty_body());
                r.headers_mut().extend(h);
                r
            }
            Err(e @ (CorsError::MissingOrigin | CorsError::MissingMethod)) => {
                plain(StatusCode::BAD_REQUEST, &e.to_string())
            }
            Err(CorsError::Forbidden) => plain(
                StatusCode::FORBIDDEN,
                "CORS request not allowed: no CORS rule of this website matches",
            ),
        }
    }

    async fn serve(
        &self,
        bucket_name: &str,
        origin: Origin<'_>,
        raw_path: &str,
        headers: &http::HeaderMap,
        head: bool,
    ) -> Result<Response<ResBody>, S3Error> {
        let helper = &self.api.helper;
        let Some(id) = helper.resolve_bucket(bucket_name, None).await? else {
            return Ok(not_found());
        };
        let Some(bucket) = helper.get_bucket(&id).await? else {
            return Ok(not_found());
        };
        let Some(website) = bucket.params().and_then(|p| p.website_config.get().clone()) else {
            return Ok(not_found());
        };
        let path = String::from_utf8(percent_decode(raw_path.as_bytes(), false))
            .map_err(|_| S3Error::InvalidArgument("the path is not valid UTF-8".into()))?;
        let key = path.strip_prefix('/').unwrap_or(&path);
        if let Some(all) = &website.redirect_all {
            return redirect(redirect_all(all, origin, key));
        }
        let rules = &website.routing_rules;
        let first = find_rule(rules, key, Outcome::Unknown);
        if let Decision::Apply(rule) = first {
            return redirect(apply_rule(rule, origin, key));
        }
        let served = self
            .serve_object(&bucket.id, &website, key, headers, head)
            .await;
        if first == Decision::NeedOutcome {
            let outcome = match &served {
                Ok(_) => Outcome::Success,
                Err(e) => Outcome::Error(e.status().as_u16()),
            };
            if let Decision::Apply(rule) = find_rule(rules, key, outcome) {
                return redirect(apply_rule(rule, origin, key));
            }
        }
        match served {
            Err(S3Error::NoSuchKey) => self.error_document(&bucket.id, &website, head).await,
            other => other,
        }
    }

    /// The object a key designates (the index document for folders), or a folder redirect.
    async fn serve_object(
        &self,
        bucket: &Uuid,
        website: &WebsiteConfig,
        key: &str,
        headers: &http::HeaderMap,
        head: bool,
    ) -> Result<Response<ResBody>, S3Error> {
        let index = if website.index_document.is_empty() {
            &self.default_index
        } else {
            &website.index_document
        };
        let folder = key.is_empty() || key.ends_with('/');
        let full_key = if folder {
            format!("{key}{index}")
        } else {
            key.to_string()
        };
        match self.find(bucket, &full_key).await {
            Ok((v, meta)) => {
                match object_response(&self.api, &v, &meta, headers, &BTreeMap::new(), head, false)
                    .await
                {
                    Err(S3Error::NotModified) => not_modified(&v, &meta),
                    other => other,
                }
            }
            Err(S3Error::NoSuchKey) if !folder => {
                // A folder asked for without its final slash.
                if self.find(bucket, &format!("{key}/{index}")).await.is_ok() {
                    let location = format!("/{}/", uri_encode(key.as_bytes(), false));
                    return redirect(Redirect {
                        status: StatusCode::FOUND,
                        location,
                    });
                }
                Err(S3Error::NoSuchKey)
            }
            Err(e) => Err(e),
        }
    }

    /// The bucket's error document with status 404, or a plain 404.
    async fn error_document(
        &self,
        bucket: &Uuid,
        website: &WebsiteConfig,
        head: bool,
    ) -> Result<Response<ResBody>, S3Error> {
        let Some(err_doc) = &website.error_document else {
            return Ok(not_found());
        };
        let Ok((v, meta)) = self.find(bucket, err_doc).await else {
            return Ok(not_found());
        };
        let no_conditions = http::HeaderMap::new();
        let mut r = object_response(
            &self.api,
            &v,
            &meta,
            &no_conditions,
            &BTreeMap::new(),
            head,
            false,
        )
        .await?;
        *r.status_mut() = StatusCode::NOT_FOUND;
        Ok(r)
    }

    /// The visible version of a key; keys too long to exist are simply missing.
    async fn find(&self, bucket: &Uuid, key: &str) -> Result<(ObjectVersion, ObjectMeta), S3Error> {
        if key.len() > MAX_KEY_LEN {
            return Err(S3Error::NoSuchKey);
        }
        let (_, v, meta) = find_object(&self.api, bucket, key).await?;
        Ok((v, meta))
    }
}

impl crate::api::http::HttpHandler for WebServer {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> Response<ResBody> {
        self.answer(req).await
    }
}

/// Binds and starts the website endpoint.
pub async fn start(
    server: Arc<WebServer>,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    crate::api::http::start("Web endpoint", server, addr, stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_to_bucket() {
        let root = Some(".web.garage");
        assert_eq!(bucket_from_host("blog.web.garage:3902", root), "blog");
        assert_eq!(bucket_from_host("Blog.WEB.garage", root), "blog");
        assert_eq!(bucket_from_host("a.b.web.garage", root), "a.b");
        assert_eq!(bucket_from_host("www.example.com", root), "www.example.com");
        assert_eq!(bucket_from_host("web.garage", root), "web.garage");
        assert_eq!(bucket_from_host(".web.garage", root), ".web.garage");
        assert_eq!(bucket_from_host("xweb.garage", root), "xweb.garage");
        assert_eq!(bucket_from_host("Example.COM:80", None), "example.com");
    }
}
