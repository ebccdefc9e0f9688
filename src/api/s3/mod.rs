//! The S3 API endpoint (`[s3_api] api_bind_addr`): an HTTP/1.1 server (hyper, keep-alive,
//! TCP_NODELAY) that authenticates each request with SigV4, routes it to its operation, and
//! answers errors as S3 XML. Operations not implemented answer 501 NotImplemented.
//!
//! Files: `router` (bucket/key/operation), `request` (authentication and bodies), `error`,
//! `xml`, and one file per group of operations: `bucket`, `list`, `put`, `get`, `delete`, `copy`,
//! `multipart`, `website`, `cors`, `lifecycle`, `post_object` (with `post_policy` and
//! `form_body`); `quota` checks writes against the bucket's quotas; SSE-C (customer-provided
//! keys) is in `encryption`.
//!
//! Two operations are not authenticated by a SigV4 header: CORS preflight (`OPTIONS`, answered
//! from the bucket's CORS rules) and browser uploads (`POST` of a multipart form, signed by its
//! policy). A request with an `Origin` header gets the CORS headers of the bucket's matching
//! rule on its answer, errors included.

pub mod bucket;
pub mod copy;
pub mod cors;
pub mod delete;
pub mod encryption;
pub mod error;
pub mod form_body;
pub mod get;
pub mod lifecycle;
pub mod list;
pub mod mpu_checksum;
pub mod multipart;
pub mod post_object;
pub mod post_policy;
pub mod put;
pub mod quota;
pub mod request;
pub mod router;
pub mod version_time;
pub mod website;
pub mod xml;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::block::manager::BlockManager;
use crate::model::helper::ModelHelper;
use crate::model::key::Key;
use crate::model::Model;
use error::S3Error;
use request::ReqCtx;
use router::Endpoint;

/// Body of responses.
pub type ResBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// A complete body.
pub fn full_body(data: impl Into<Bytes>) -> ResBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty_body() -> ResBody {
    full_body(Bytes::new())
}

/// What the S3 endpoint needs.
pub struct S3Api {
    pub model: Arc<Model>,
    pub helper: ModelHelper,
    pub blocks: Arc<BlockManager>,
    pub region: String,
    pub root_domain: Option<String>,
    pub block_size: usize,
}

fn request_id() -> String {
    hex::encode(rand::random::<[u8; 8]>()).to_uppercase()
}

/// The XML error answer.
pub fn error_response(e: &S3Error, resource: &str, request_id: &str) -> Response<ResBody> {
    let status = e.status();
    let mut builder = Response::builder()
        .status(status)
        .header("x-amz-request-id", request_id);
    if status == StatusCode::NOT_MODIFIED {
        return builder
            .body(empty_body())
            .unwrap_or_else(|_| Response::new(empty_body()));
    }
    let mut x = xml::Xml::plain("Error");
    x.elem("Code", e.code())
        .elem("Message", &e.to_string())
        .elem("Resource", resource)
        .elem("RequestId", request_id);
    builder = builder.header(http::header::CONTENT_TYPE, "application/xml");
    builder
        .body(full_body(x.finish("Error")))
        .unwrap_or_else(|_| Response::new(empty_body()))
}

impl S3Api {
    async fn handle_request(
        self: Arc<Self>,
        req: Request<Incoming>,
        addr: SocketAddr,
    ) -> Response<ResBody> {
        let rid = request_id();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let resource = path.clone();
        // What the CORS headers of the answer need, for requests from a browser.
        let cors_req = req
            .headers()
            .contains_key(http::header::ORIGIN)
            .then(|| (req.headers().clone(), self.pre_route(&req).ok()));
        let mut key = cors_req.is_some().then_some(None);
        let res = self.handle_inner(req, &rid, &mut key).await;
        let mut resp = match res {
            Ok(r) => r,
            Err(e) => {
                if e.status().is_server_error() {
                    warn!("{} {} from {}: {}", method, path, addr, e);
                } else {
                    debug!("{} {} from {}: {} {}", method, path, addr, e.code(), e);
                }
                let mut r = error_response(&e, &resource, &rid);
                if method == http::Method::HEAD {
                    *r.body_mut() = empty_body();
                }
                r
            }
        };
        if let Some((headers, Some(route))) = cors_req {
            if let (Some(bucket), false) = (&route.bucket, method == http::Method::OPTIONS) {
                let key = key.flatten();
                if let Some(rules) = cors::bucket_rules(&self, bucket, key.as_ref()).await {
                    cors::apply_cors_headers(&rules, &method, &headers, resp.headers_mut());
                }
            }
        }
        debug!("{} {} -> {}", method, path, resp.status());
        resp
    }

    /// Routes a request before authentication.
    fn pre_route(&self, req: &Request<Incoming>) -> Result<router::Route, S3Error> {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        router::route(
            req.method(),
            req.uri().path(),
            req.uri().query().unwrap_or(""),
            host,
            self.root_domain.as_deref(),
            req.headers().contains_key("x-amz-copy-source"),
        )
    }

    /// Runs a request; when `key` is `Some`, it receives the key the request was authenticated
    /// with (the CORS rules of a bucket known by a local alias need it).
    async fn handle_inner(
        self: &Arc<Self>,
        req: Request<Incoming>,
        rid: &str,
        key: &mut Option<Option<Key>>,
    ) -> Result<Response<ResBody>, S3Error> {
        if req.method() == http::Method::OPTIONS {
            let route = self.pre_route(&req)?;
            return cors::handle_options(self, route.bucket.as_deref(), req.headers()).await;
        }
        if req.method() == http::Method::POST && post_object::is_form(req.headers()) {
            let route = self.pre_route(&req)?;
            if route.endpoint == Endpoint::PostObject {
                let mut form_key = None;
                let res = post_object::post_object(self.clone(), req, route, rid, &mut form_key);
                let res = res.await;
                if let Some(k) = key.as_mut() {
                    *k = form_key;
                }
                return res;
            }
        }
        let ctx = ReqCtx::authenticate(self.clone(), req, rid).await?;
        if let Some(k) = key.as_mut() {
            *k = Some(ctx.key.clone());
        }
        let mut resp = match ctx.route.endpoint.clone() {
            Endpoint::ListBuckets => bucket::list_buckets(&ctx).await,
            Endpoint::CreateBucket => bucket::create_bucket(ctx).await,
            Endpoint::DeleteBucket => bucket::delete_bucket(&ctx).await,
            Endpoint::HeadBucket => bucket::head_bucket(&ctx).await,
            Endpoint::GetBucketLocation => bucket::get_location(&ctx).await,
            Endpoint::GetBucketVersioning => bucket::get_versioning(&ctx).await,
            Endpoint::ListObjects => list::list_objects(&ctx, false).await,
            Endpoint::ListObjectsV2 => list::list_objects(&ctx, true).await,
            Endpoint::DeleteObjects => delete::delete_objects(ctx).await,
            Endpoint::PutObject => put::put_object(ctx).await,
            Endpoint::CopyObject => copy::copy_object(&ctx).await,
            Endpoint::GetObject => get::get_object(&ctx, false).await,
            Endpoint::HeadObject => get::get_object(&ctx, true).await,
            Endpoint::DeleteObject => delete::delete_object(&ctx).await,
            Endpoint::CreateMultipartUpload => multipart::create(&ctx).await,
            Endpoint::UploadPart => multipart::upload_part(ctx).await,
            Endpoint::UploadPartCopy => copy::upload_part_copy(&ctx).await,
            Endpoint::CompleteMultipartUpload => multipart::complete(ctx).await,
            Endpoint::AbortMultipartUpload => multipart::abort(&ctx).await,
            Endpoint::ListParts => multipart::list_parts(&ctx).await,
            Endpoint::ListMultipartUploads => multipart::list_uploads(&ctx).await,
            Endpoint::PutBucketWebsite => website::put_website(ctx).await,
            Endpoint::GetBucketWebsite => website::get_website(&ctx).await,
            Endpoint::DeleteBucketWebsite => website::delete_website(&ctx).await,
            Endpoint::GetBucketCors => cors::get_bucket_cors(&ctx).await,
            Endpoint::PutBucketCors => cors::put_bucket_cors(ctx).await,
            Endpoint::DeleteBucketCors => cors::delete_bucket_cors(&ctx).await,
            // Answered before authentication.
            Endpoint::Options => Err(S3Error::MethodNotAllowed),
            Endpoint::PostObject => Err(S3Error::InvalidRequest(
                "Bucket POST must be of the enclosure-type multipart/form-data".into(),
            )),
            Endpoint::PutBucketLifecycle => lifecycle::put_lifecycle(ctx).await,
            Endpoint::GetBucketLifecycle => lifecycle::get_lifecycle(&ctx).await,
            Endpoint::DeleteBucketLifecycle => lifecycle::delete_lifecycle(&ctx).await,
            Endpoint::Unsupported(what) => Err(S3Error::NotImplemented(format!(
                "{what} is not implemented by this server"
            ))),
        }?;
        resp.headers_mut().insert(
            "x-amz-request-id",
            http::HeaderValue::from_str(rid).unwrap_or(http::HeaderValue::from_static("0")),
        );
        Ok(resp)
    }
}

impl crate::api::http::HttpHandler for S3Api {
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl std::future::Future<Output = Response<ResBody>> + Send {
        self.handle_request(req, peer)
    }
}

/// Binds and starts the S3 endpoint.
pub async fn start(
    api: Arc<S3Api>,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    crate::api::http::start("S3 API", api, addr, stop).await
}
