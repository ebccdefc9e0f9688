//! A request in progress: authenticated (SigV4 checked against the key table), routed, with its
//! body as a stream that is already decoded (aws-chunked) and size-limited. Payload hashes that
//! can only be checked at the end (`x-amz-content-sha256` hex, `Content-MD5`, checksums) are
//! checked by the operation before anything becomes visible.

use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use http::{HeaderMap, Request};
use http_body_util::BodyStream;
use hyper::body::Incoming;

use super::error::S3Error;
use super::router::{route, Route};
use super::S3Api;
use crate::api::signature::checksum::{Checksum, ChecksumAlgorithm};
use crate::api::signature::{
    check_request, decode_aws_chunked, ChunkedConfig, ContentSha256, RequestParts, TrailerHandle,
    VerifiedRequest, VerifyConfig,
};
use crate::model::bucket::{Bucket, BucketKeyPerm};
use crate::model::key::Key;
use crate::util::ids::Uuid;

/// The request body as a stream of decoded bytes.
pub type ReqBody = Pin<Box<dyn Stream<Item = Result<Bytes, S3Error>> + Send>>;

/// Largest XML request body read into memory.
pub const MAX_XML_BODY: usize = 1 << 20;

/// An authenticated, routed request.
pub struct ReqCtx {
    pub api: Arc<S3Api>,
    pub request_id: String,
    pub method: http::Method,
    pub headers: HeaderMap,
    pub route: Route,
    pub key: Key,
    pub verified: VerifiedRequest,
    body: std::sync::Mutex<Option<ReqBody>>,
    /// Trailers of an aws-chunked body, readable once the body is consumed.
    pub trailers: Option<TrailerHandle>,
}

impl ReqCtx {
    /// Checks the signature, finds the key, routes the request and prepares its body.
    pub async fn authenticate(
        api: Arc<S3Api>,
        req: Request<Incoming>,
        rid: &str,
    ) -> Result<Self, S3Error> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or("").to_string();
        let mut headers = parts.headers;
        if !headers.contains_key(http::header::HOST) {
            if let Some(a) = parts.uri.authority() {
                if let Ok(v) = http::HeaderValue::from_str(a.as_str()) {
                    headers.insert(http::header::HOST, v);
                }
            }
        }
        let cfg = VerifyConfig {
            region: &api.region,
            service: "s3",
            now: SystemTime::now(),
        };
        let pending = check_request(
            &RequestParts::new(parts.method.as_str(), &path, &query, &headers),
            &cfg,
        )?
        .ok_or_else(|| {
            S3Error::AccessDenied(
                "anonymous requests are not allowed: sign your request with an access key".into(),
            )
        })?;
        let key = api
            .helper
            .get_key(pending.access_key_id())
            .await?
            .ok_or_else(|| {
                S3Error::Signature(crate::api::signature::Error::InvalidAccessKeyId {
                    access_key_id: pending.access_key_id().to_string(),
                })
            })?;
        let secret = key
            .params()
            .map(|p| p.secret_key.clone())
            .unwrap_or_default();
        let verified = pending.verify(&secret)?;

        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok());
        let route = route(
            &parts.method,
            &path,
            &query,
            host,
            api.root_domain.as_deref(),
            headers.contains_key("x-amz-copy-source"),
        )?;

        let raw = BodyStream::new(body)
            .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
            .map_err(|e| S3Error::IncompleteBody.with_context(e.to_string()));
        let (body, trailers): (ReqBody, Option<TrailerHandle>) =
            match ChunkedConfig::from_request(&verified, &headers)? {
                Some(cfg) => {
                    let raw = raw.map_err(|e| std::io::Error::other(e.to_string()));
                    let (stream, handle) = decode_aws_chunked(Box::pin(raw), cfg);
                    (Box::pin(stream.map_err(S3Error::from)), Some(handle))
                }
                None => (Box::pin(raw), None),
            };
        Ok(Self {
            api,
            request_id: rid.to_string(),
            method: parts.method,
            headers,
            route,
            key,
            verified,
            body: std::sync::Mutex::new(Some(body)),
            trailers,
        })
    }

    /// A request authenticated otherwise than by its headers (a POST form's policy signature):
    /// `headers` are the ones the operation reads, `body` the already extracted payload.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        api: Arc<S3Api>,
        request_id: &str,
        method: http::Method,
        headers: HeaderMap,
        route: Route,
        key: Key,
        verified: VerifiedRequest,
        body: ReqBody,
    ) -> Self {
        Self {
            api,
            request_id: request_id.to_string(),
            method,
            headers,
            route,
            key,
            verified,
            body: std::sync::Mutex::new(Some(body)),
            trailers: None,
        }
    }

    /// Takes the body stream (once).
    pub fn take_body(&mut self) -> ReqBody {
        self.body
            .lock()
            .ok()
            .and_then(|mut b| b.take())
            .unwrap_or_else(|| Box::pin(futures::stream::empty()))
    }

    /// Reads a small body entirely (XML documents), checking its payload hash and the
    /// `Content-MD5` / `x-amz-checksum-*` headers given for it.
    pub async fn read_small_body(&mut self, limit: usize) -> Result<Bytes, S3Error> {
        let mut body = self.take_body();
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if buf.len() + chunk.len() > limit {
                return Err(S3Error::EntityTooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        if let ContentSha256::Sha256(_) = self.verified.content_sha256 {
            self.verified.content_sha256.verify_body(&buf)?;
        }
        for algo in ChecksumAlgorithm::ALL {
            if let Some(v) = self.header(algo.header_name()) {
                Checksum::from_base64(algo, v)?.verify(&Checksum::compute(algo, &buf))?;
            }
        }
        Ok(buf.freeze())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn bucket_name(&self) -> Result<&str, S3Error> {
        self.route
            .bucket
            .as_deref()
            .ok_or_else(|| S3Error::InvalidRequest("no bucket in the request".into()))
    }

    pub fn object_key(&self) -> Result<&str, S3Error> {
        self.route
            .key
            .as_deref()
            .ok_or_else(|| S3Error::InvalidRequest("no object key in the request".into()))
    }

    /// Resolves the request's bucket and checks the key's permission on it.
    pub async fn bucket(&self, need: Need) -> Result<Bucket, S3Error> {
        let name = self.bucket_name()?;
        self.bucket_by_name(name, need).await
    }

    /// Resolves a bucket name for this key and checks a permission.
    pub async fn bucket_by_name(&self, name: &str, need: Need) -> Result<Bucket, S3Error> {
        let id = self
            .api
            .helper
            .resolve_bucket(name, Some(&self.key))
            .await?
            .ok_or_else(|| S3Error::NoSuchBucket(name.to_string()))?;
        let bucket = self
            .api
            .helper
            .get_bucket(&id)
            .await?
            .ok_or_else(|| S3Error::NoSuchBucket(name.to_string()))?;
        let perm = self.perm(&bucket.id);
        let ok = match need {
            Need::Read => perm.allow_read,
            Need::Write => perm.allow_write,
            Need::Owner => perm.allow_owner,
            Need::Any => perm.is_any(),
        };
        if !ok {
            return Err(S3Error::AccessDenied(format!(
                "key {} has no {} permission on bucket {}",
                self.key.key_id,
                need.name(),
                name
            )));
        }
        Ok(bucket)
    }

    /// This key's permissions on a bucket (as seen by the bucket, the authoritative side).
    pub fn perm(&self, bucket: &Uuid) -> BucketKeyPerm {
        self.key.bucket_perm(bucket)
    }
}

/// Permission needed by an operation.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    Read,
    Write,
    Owner,
    Any,
}

impl Need {
    fn name(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Write => "write",
            Need::Owner => "owner",
            Need::Any => "",
        }
    }
}

impl S3Error {
    /// An incomplete-body error whose cause is logged.
    fn with_context(self, context: String) -> Self {
        tracing::debug!("request body error: {}", context);
        self
    }
}
