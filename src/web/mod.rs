//! The static website endpoint (`[s3_web] bind_addr`, DESIGN.md §11): the Host header (port
//! ignored) names a bucket, as `<bucket><root_domain>` or as a global alias equal to the host;
//! only buckets with website access are served. `/` and paths ending in `/` serve the index
//! document (in sub-folders too); a missing object serves the bucket's error document with status
//! 404 (or a plain 404); a folder requested without its slash is redirected. GET and HEAD behave
//! as on the S3 endpoint (ranges, conditional requests, stored headers); other methods get 405.
//! Paths are object keys, never files: `..`, encoded slashes and NUL are just key bytes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::watch;
use tracing::warn;

use crate::api::s3::error::S3Error;
use crate::api::s3::get::{find_object, object_response};
use crate::api::s3::router::host_without_port;
use crate::api::s3::{empty_body, full_body, ResBody, S3Api};
use crate::api::signature::canonical::percent_decode;

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

impl WebServer {
    /// The bucket name a Host header designates.
    fn bucket_name(&self, host: &str) -> String {
        let host = host_without_port(host).to_ascii_lowercase();
        if let Some(root) = &self.root_domain {
            let root = root.trim_start_matches('.').to_ascii_lowercase();
            if let Some(b) = host.strip_suffix(&root).and_then(|b| b.strip_suffix('.')) {
                if !b.is_empty() {
                    return b.to_string();
                }
            }
        }
        host
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<ResBody> {
        let head = match *req.method() {
            http::Method::GET => false,
            http::Method::HEAD => true,
            http::Method::OPTIONS => {
                return plain(
                    StatusCode::FORBIDDEN,
                    "CORS is not configured for this website",
                )
            }
            _ => return plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        };
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("");
        let name = self.bucket_name(host);
        let resp = match self
            .serve(&name, req.uri().path(), req.headers(), head)
            .await
        {
            Ok(r) => r,
            Err(e) => match e {
                S3Error::NotModified => Response::builder()
                    .status(StatusCode::NOT_MODIFIED)
                    .body(empty_body())
                    .unwrap_or_else(|_| Response::new(empty_body())),
                e if e.status().is_client_error() => plain(e.status(), &e.to_string()),
                e => {
                    warn!("website {}: {}", name, e);
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
                }
            },
        };
        if head {
            let (parts, _) = resp.into_parts();
            return Response::from_parts(parts, empty_body());
        }
        resp
    }

    async fn serve(
        &self,
        bucket_name: &str,
        raw_path: &str,
        headers: &http::HeaderMap,
        head: bool,
    ) -> Result<Response<ResBody>, S3Error> {
        let not_found = || plain(StatusCode::NOT_FOUND, "Not found");
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
        let mut key = path.strip_prefix('/').unwrap_or(&path).to_string();
        let index = if website.index_document.is_empty() {
            self.default_index.clone()
        } else {
            website.index_document.clone()
        };
        if key.is_empty() || key.ends_with('/') {
            key.push_str(&index);
        }
        let query = BTreeMap::new();
        match find_object(&self.api, &bucket.id, &key).await {
            Ok((_, v, meta)) => {
                object_response(&self.api, &v, &meta, headers, &query, head, false).await
            }
            Err(S3Error::NoSuchKey) => {
                // A folder asked for without its final slash.
                if !path.ends_with('/') {
                    let folder_index = format!("{key}/{index}");
                    if find_object(&self.api, &bucket.id, &folder_index)
                        .await
                        .is_ok()
                    {
                        return Response::builder()
                            .status(StatusCode::FOUND)
                            .header(http::header::LOCATION, format!("{raw_path}/"))
                            .body(empty_body())
                            .map_err(|e| S3Error::Internal(e.to_string()));
                    }
                }
                if let Some(err_doc) = &website.error_document {
                    if let Ok((_, v, meta)) = find_object(&self.api, &bucket.id, err_doc).await {
                        let mut r = object_response(
                            &self.api,
                            &v,
                            &meta,
                            &http::HeaderMap::new(),
                            &query,
                            head,
                            false,
                        )
                        .await?;
                        *r.status_mut() = StatusCode::NOT_FOUND;
                        return Ok(r);
                    }
                }
                Ok(not_found())
            }
            Err(e) => Err(e),
        }
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
        // Only the name mapping is tested here; serving is covered by integration tests.
        let root = Some(".web.garage".to_string());
        let name = |host: &str, root: &Option<String>| {
            let host = host_without_port(host).to_ascii_lowercase();
            match root {
                Some(r) => {
                    let r = r.trim_start_matches('.');
                    host.strip_suffix(r)
                        .and_then(|b| b.strip_suffix('.'))
                        .filter(|b| !b.is_empty())
                        .map(String::from)
                        .unwrap_or(host.clone())
                }
                None => host,
            }
        };
        assert_eq!(name("blog.web.garage:3902", &root), "blog");
        assert_eq!(name("www.example.com", &root), "www.example.com");
        assert_eq!(name("Example.COM", &None), "example.com");
    }
}
