//! PostObject: a browser upload, `POST /bucket` (vhost: `POST /`) with a multipart/form-data
//! body, authenticated by its form instead of an `Authorization` header.
//!
//! The fields before the `file` field (at most [`MAX_FORM_HEAD`] bytes of names and values, and
//! at most `form_body::HEAD_READ_LIMIT` bytes of body in all) are read into memory: `key`
//! (where `${filename}` stands for the file's name), `policy` (see [`super::post_policy`]),
//! `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
//! `x-amz-signature` (SigV4 signing key of the credential's day, region and service over the
//! base64 policy), `Content-Type` and the other stored headers, `x-amz-meta-*`, checksums,
//! `success_action_status` / `success_action_redirect` (or `redirect`). Fields after the file
//! are ignored, as S3 does.
//!
//! Then the file is streamed through the PutObject path (`put::save_object`), bounded by the
//! policy's content-length-range: too large fails as soon as the limit is crossed, too small at
//! the end, before the object becomes visible. The key needs write permission on the bucket.
//!
//! Answer: a redirect (303 to the URL with `bucket`, `key`, `etag` query parameters), or
//! `success_action_status` 200 (empty), 201 (`PostResponse` XML) or 204 (empty, the default).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use http::header::{HeaderName, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyStream;
use hyper::body::Incoming;

use super::error::S3Error;
use super::form_body::{FormBody, FormBodyError};
use super::post_policy::parse_policy;
use super::put::{object_headers, save_object, MAX_PUT_SIZE};
use super::request::{Need, ReqBody, ReqCtx};
use super::router::{Route, MAX_KEY_LEN};
use super::xml::Xml;
use super::{empty_body, full_body, ResBody, S3Api};
use crate::api::signature::canonical::uri_encode;
use crate::api::signature::date::{format_date_stamp, parse_amz_date, unix_secs};
use crate::api::signature::header::Credential;
use crate::api::signature::keys::{ct_eq, parse_hex32, ALGORITHM};
use crate::api::signature::{
    AuthKind, ContentSha256, Error as SigError, SigningContext, SigningKey, VerifiedRequest,
};
use crate::model::key::Key;

/// Largest total size of the form fields before the file (names and values).
pub const MAX_FORM_HEAD: usize = 64 << 10;

/// Form fields stored as object headers (besides `x-amz-meta-*` and `x-amz-checksum-*`).
const HEADER_FIELDS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// Whether a request body is a multipart form.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn form_error(e: multer::Error) -> S3Error {
    match e {
        multer::Error::StreamReadFailed(e) => match e.downcast_ref::<FormBodyError>() {
            Some(FormBodyError::HeadTooLarge) => S3Error::MaxPostPreDataLengthExceeded,
            _ => S3Error::IncompleteBody,
        },
        other => S3Error::MalformedPostRequest(other.to_string()),
    }
}

/// The fields before the file (lower-case names), and the file field.
async fn read_form_head(
    form: &mut multer::Multipart<'static>,
) -> Result<(BTreeMap<String, String>, multer::Field<'static>), S3Error> {
    let mut fields = BTreeMap::new();
    let mut size = 0usize;
    loop {
        let mut field = form
            .next_field()
            .await
            .map_err(form_error)?
            .ok_or_else(|| {
                S3Error::InvalidArgument(
                    "POST requires exactly one file upload per request.".into(),
                )
            })?;
        let name = field
            .name()
            .ok_or_else(|| S3Error::MalformedPostRequest("a form field has no name".into()))?
            .to_ascii_lowercase();
        if name == "file" {
            return Ok((fields, field));
        }
        size += name.len();
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            size += chunk.len();
            if size > MAX_FORM_HEAD {
                return Err(S3Error::MaxPostPreDataLengthExceeded);
            }
            value.extend_from_slice(&chunk);
        }
        if size > MAX_FORM_HEAD {
            return Err(S3Error::MaxPostPreDataLengthExceeded);
        }
        let value = String::from_utf8(value)
            .map_err(|_| S3Error::InvalidArgument(format!("form field {name} is not UTF-8")))?;
        if fields.insert(name.clone(), value).is_some() {
            return Err(S3Error::InvalidArgument(format!(
                "form field {name} appears more than once"
            )));
        }
    }
}

fn required<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, S3Error> {
    fields.get(name).map(String::as_str).ok_or_else(|| {
        S3Error::InvalidArgument(format!("Bucket POST must contain a field named '{name}'"))
    })
}

/// Checks the form's signature; returns the key and what the rest of the request needs.
async fn authenticate(
    api: &S3Api,
    fields: &BTreeMap<String, String>,
) -> Result<(Key, VerifiedRequest), S3Error> {
    let algorithm = required(fields, "x-amz-algorithm")?;
    if algorithm != ALGORITHM {
        return Err(S3Error::InvalidArgument(format!(
            "unsupported x-amz-algorithm {algorithm:?}: use {ALGORITHM}"
        )));
    }
    let credential = Credential::parse(required(fields, "x-amz-credential")?)
        .map_err(S3Error::InvalidArgument)?;
    credential
        .check_scope(&api.region, "s3")
        .map_err(S3Error::InvalidArgument)?;
    let date = required(fields, "x-amz-date")?;
    let secs = parse_amz_date(date)
        .ok_or_else(|| S3Error::InvalidArgument(format!("invalid x-amz-date {date:?}")))?;
    if format_date_stamp(secs) != credential.date {
        return Err(S3Error::InvalidArgument(format!(
            "the credential date {} is not the day of x-amz-date {date}",
            credential.date
        )));
    }
    let policy = required(fields, "policy")?;
    let signature = required(fields, "x-amz-signature")?;
    let key = api
        .helper
        .get_key(&credential.access_key_id)
        .await?
        .ok_or_else(|| SigError::InvalidAccessKeyId {
            access_key_id: credential.access_key_id.clone(),
        })?;
    let secret = key
        .params()
        .map(|p| p.secret_key.clone())
        .unwrap_or_default();
    let signing = SigningKey::derive(
        &secret,
        &credential.date,
        &credential.region,
        &credential.service,
    );
    let expected = signing.sign(policy);
    let provided = parse_hex32(signature)
        .filter(|p| ct_eq(p, &expected))
        .ok_or_else(|| SigError::SignatureDoesNotMatch {
            canonical_request: String::new(),
            string_to_sign: policy.to_string(),
        })?;
    let verified = VerifiedRequest {
        access_key_id: credential.access_key_id.clone(),
        kind: AuthKind::PostPolicy,
        content_sha256: ContentSha256::UnsignedPayload,
        signing: SigningContext::new(date.to_string(), credential.scope(), signing, provided),
    };
    Ok((key, verified))
}

/// The headers the object is stored with, from the form fields.
fn stored_headers(
    fields: &BTreeMap<String, String>,
    file_type: Option<String>,
) -> Result<HeaderMap, S3Error> {
    let mut h = HeaderMap::new();
    for (name, value) in fields {
        if HEADER_FIELDS.contains(&name.as_str())
            || name.starts_with("x-amz-meta-")
            || name.starts_with("x-amz-checksum-")
        {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                S3Error::InvalidArgument(format!("invalid form field name {name:?}"))
            })?;
            let v = HeaderValue::from_str(value).map_err(|_| {
                S3Error::InvalidArgument(format!("invalid value of form field {name}"))
            })?;
            h.insert(n, v);
        }
    }
    if !h.contains_key(CONTENT_TYPE) {
        if let Some(v) = file_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
            h.insert(CONTENT_TYPE, v);
        }
    }
    Ok(h)
}

/// The file's content, failing once more than `max` bytes came, or at its end if fewer than
/// `min` did.
fn bounded_file(field: multer::Field<'static>, min: u64, max: u64) -> ReqBody {
    Box::pin(futures::stream::unfold(
        Some((field, 0u64)),
        move |state| async move {
            let (mut field, n) = state?;
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    let n = n + chunk.len() as u64;
                    if n > max {
                        Some((Err(S3Error::EntityTooLarge), None))
                    } else {
                        Some((Ok::<Bytes, S3Error>(chunk), Some((field, n))))
                    }
                }
                Ok(None) if n < min => {
                    Some((Err(S3Error::PolicyEntityTooSmall { size: n, min }), None))
                }
                Ok(None) => None,
                Err(e) => Some((Err(form_error(e)), None)),
            }
        },
    ))
}

/// POST /bucket with a multipart/form-data body. `key_out` receives the authenticated key.
pub async fn post_object(
    api: Arc<S3Api>,
    req: Request<Incoming>,
    route: Route,
    request_id: &str,
    key_out: &mut Option<Key>,
) -> Result<Response<ResBody>, S3Error> {
    let bucket_name = route
        .bucket
        .clone()
        .ok_or_else(|| S3Error::InvalidRequest("no bucket in the request".into()))?;
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        S3Error::MalformedPostRequest(format!("invalid Content-Type {content_type:?}: {e}"))
    })?;
    let raw =
        BodyStream::new(body).try_filter_map(|frame| async move { Ok(frame.into_data().ok()) });
    let (raw, head) = FormBody::new(Box::pin(raw));
    let mut form = multer::Multipart::new(raw, boundary);
    let (fields, file) = read_form_head(&mut form).await?;
    head.lift();

    let (key, verified) = authenticate(&api, &fields).await?;
    *key_out = Some(key.clone());
    let policy = parse_policy(required(&fields, "policy")?)?;

    let filename = file.file_name().unwrap_or("").to_string();
    let object_key = required(&fields, "key")?.replace("${filename}", &filename);
    if object_key.is_empty() {
        return Err(S3Error::InvalidArgument(
            "User key must have a length greater than 0.".into(),
        ));
    }
    if object_key.len() > MAX_KEY_LEN {
        return Err(S3Error::KeyTooLongError);
    }
    let mut values = fields.clone();
    values.insert("key".into(), object_key.clone());
    values.insert("bucket".into(), bucket_name.clone());
    policy.check(
        unix_secs(std::time::SystemTime::now()),
        &values,
        fields.keys(),
    )?;

    let headers = stored_headers(&fields, file.content_type().map(|m| m.to_string()))?;
    let ctx = ReqCtx::from_parts(
        api.clone(),
        request_id,
        parts.method,
        headers,
        route,
        key,
        verified,
        Box::pin(futures::stream::empty()),
    );
    let bucket = ctx.bucket(Need::Write).await?;
    let (min, max) = policy.length_range();
    let body = bounded_file(file, min, max.min(MAX_PUT_SIZE));
    let meta = save_object(
        &ctx,
        bucket.id,
        &object_key,
        object_headers(&ctx.headers),
        body,
        &super::quota::limits(&bucket),
    )
    .await?;
    let etag = format!("\"{}\"", meta.etag);

    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = match parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let location = match api.root_domain.as_deref() {
        Some(_) if parts.uri.path() == "/" || parts.uri.path().is_empty() => {
            format!(
                "{scheme}://{host}/{}",
                uri_encode(object_key.as_bytes(), false)
            )
        }
        _ => format!(
            "{scheme}://{host}/{}/{}",
            uri_encode(bucket_name.as_bytes(), true),
            uri_encode(object_key.as_bytes(), false)
        ),
    };
    let builder = Response::builder().header(http::header::ETAG, etag.as_str());

    let redirect = fields
        .get("success_action_redirect")
        .or_else(|| fields.get("redirect"))
        .filter(|u| u.parse::<http::Uri>().is_ok_and(|u| u.scheme().is_some()));
    let resp = if let Some(url) = redirect {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            uri_encode(bucket_name.as_bytes(), true),
            uri_encode(object_key.as_bytes(), true),
            uri_encode(etag.as_bytes(), true)
        );
        builder
            .status(StatusCode::SEE_OTHER)
            .header(http::header::LOCATION, target.as_str())
            .body(empty_body())
    } else {
        let builder = builder.header(http::header::LOCATION, location.as_str());
        match fields.get("success_action_status").map(String::as_str) {
            Some("200") => builder.status(StatusCode::OK).body(empty_body()),
            Some("201") => {
                let mut x = Xml::plain("PostResponse");
                x.elem("Location", &location)
                    .elem("Bucket", &bucket_name)
                    .elem("Key", &object_key)
                    .elem("ETag", &etag);
                builder
                    .status(StatusCode::CREATED)
                    .header(CONTENT_TYPE, "application/xml")
                    .body(full_body(x.finish("PostResponse")))
            }
            _ => builder.status(StatusCode::NO_CONTENT).body(empty_body()),
        }
    };
    resp.map_err(|e| S3Error::Internal(e.to_string()))
}
