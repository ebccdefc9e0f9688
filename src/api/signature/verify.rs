//! Verification of a request's signature, with the `Authorization` header or (see
//! [`super::presigned`]) with query parameters.
//!
//! Verification has two phases so that the key lookup can be asynchronous: [`check_request`]
//! parses and checks everything that needs no secret (mechanism, scope, date and clock skew,
//! signed headers, payload hash) and computes the canonical request, giving a [`PendingAuth`]
//! that names the access key id; the caller looks the secret up and calls
//! [`PendingAuth::verify`], which compares signatures in constant time and gives a
//! [`VerifiedRequest`]. [`verify_request`] does both with a synchronous [`SecretKeys`].
//!
//! Rules (as S3 applies them):
//! - at most one mechanism: `Authorization` header *or* `X-Amz-*` query parameters (both:
//!   `InvalidArgument`); neither: anonymous, `Ok(None)`;
//! - the credential scope must name this endpoint's region (`AuthorizationHeaderMalformed`
//!   naming the expected region), service and `aws4_request`, and the day of the request date;
//! - the date is `X-Amz-Date`, else `Date`; more than 15 minutes from `now` is
//!   `RequestTimeTooSkewed`;
//! - `host` must be signed, and so must every `x-amz-*` header present (`AccessDenied`);
//! - `x-amz-content-sha256` is required with the header mechanism (`MissingSecurityHeader`).

use std::time::SystemTime;

use http::HeaderMap;

use super::canonical::{
    canonical_query, canonical_request, canonical_uri_candidates, CanonicalParts,
};
use super::date::{format_amz_date, format_date_stamp, parse_amz_date, parse_http_date, unix_secs};
use super::error::Error;
use super::header::{parse_authorization, shorten};
use super::keys::{ct_eq, parse_hex32, string_to_sign, SigningContext, SigningKey};
use super::payload::ContentSha256;
use super::presigned;

/// Largest accepted difference between the request date and the server clock, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// The parts of an HTTP request that authentication reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The path exactly as sent (percent-encoded), without the query.
    pub path: &'a str,
    /// The query string as sent, without `?` (empty if none).
    pub query: &'a str,
    /// The request headers. They must include `host` (over HTTP/2 the caller adds it from the
    /// `:authority`).
    pub headers: &'a HeaderMap,
    /// The payload hash declared by the client: the value of `x-amz-content-sha256` (filled by
    /// [`RequestParts::new`]). A non-S3 caller may set it to the hex SHA-256 of the body.
    pub content_sha256: Option<&'a str>,
}

impl<'a> RequestParts<'a> {
    /// The parts of a request; `content_sha256` is read from the `x-amz-content-sha256` header.
    pub fn new(method: &'a str, path: &'a str, query: &'a str, headers: &'a HeaderMap) -> Self {
        let content_sha256 = headers
            .get("x-amz-content-sha256")
            .map(|v| v.to_str().unwrap_or("(invalid header value)"));
        RequestParts {
            method,
            path,
            query,
            headers,
            content_sha256,
        }
    }
}

/// What the requests are checked against.
#[derive(Debug, Clone, Copy)]
pub struct VerifyConfig<'a> {
    /// This endpoint's region (`s3_region` in the configuration).
    pub region: &'a str,
    /// The service name of the scope: `s3` for the S3 API.
    pub service: &'a str,
    /// The current time (a parameter, for tests).
    pub now: SystemTime,
}

/// Where the secret keys come from: given an access key id, its secret, or `None` if the key
/// does not exist (`InvalidAccessKeyId`).
pub trait SecretKeys {
    fn secret_key(&self, access_key_id: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> SecretKeys for F {
    fn secret_key(&self, access_key_id: &str) -> Option<String> {
        self(access_key_id)
    }
}

/// The authentication mechanism of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: AWS4-HMAC-SHA256 …`
    Header,
    /// `?X-Amz-Algorithm=AWS4-HMAC-SHA256&…` (presigned URL).
    Presigned,
    /// A browser POST form, whose `x-amz-signature` field signs its base64 policy.
    PostPolicy,
}

/// A request whose authentication was checked up to the signature itself, which needs the
/// secret key of [`PendingAuth::access_key_id`].
#[derive(Debug, Clone)]
pub struct PendingAuth {
    pub(super) kind: AuthKind,
    pub(super) access_key_id: String,
    pub(super) timestamp: String,
    pub(super) date_stamp: String,
    pub(super) region: String,
    pub(super) service: String,
    pub(super) scope: String,
    /// (canonical request, string to sign), preferred first.
    pub(super) candidates: Vec<(Vec<u8>, String)>,
    pub(super) signature: String,
    pub(super) content_sha256: ContentSha256,
}

/// A request whose signature is valid. What remains for the caller is the body: see
/// [`ContentSha256`] and [`super::streaming`].
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    pub access_key_id: String,
    pub kind: AuthKind,
    pub content_sha256: ContentSha256,
    /// Timestamp, scope, signing key and seed signature, for the chunks of a streaming body.
    pub signing: SigningContext,
}

impl PendingAuth {
    /// The access key id whose secret [`Self::verify`] needs.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The mechanism used.
    pub fn kind(&self) -> AuthKind {
        self.kind
    }

    /// The payload hash the client declared.
    pub fn content_sha256(&self) -> ContentSha256 {
        self.content_sha256
    }

    /// The canonical request we computed (the preferred one), for debugging.
    pub fn canonical_request(&self) -> String {
        self.candidates
            .first()
            .map(|(c, _)| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default()
    }

    /// The string to sign we computed (the preferred one).
    pub fn string_to_sign(&self) -> &str {
        self.candidates.first().map_or("", |(_, s)| s.as_str())
    }

    /// Checks the signature with the secret key of the access key id.
    pub fn verify(self, secret_key: &str) -> Result<VerifiedRequest, Error> {
        let key = SigningKey::derive(secret_key, &self.date_stamp, &self.region, &self.service);
        let provided = parse_hex32(&self.signature);
        let matched = provided.and_then(|provided| {
            let mut found = None;
            // Every candidate is computed, so the time does not tell which one matched.
            for (_, sts) in &self.candidates {
                if ct_eq(&key.sign(sts), &provided) && found.is_none() {
                    found = Some(provided);
                }
            }
            found
        });
        match matched {
            Some(seed) => Ok(VerifiedRequest {
                signing: SigningContext::new(self.timestamp, self.scope, key, seed),
                access_key_id: self.access_key_id,
                kind: self.kind,
                content_sha256: self.content_sha256,
            }),
            None => Err(Error::SignatureDoesNotMatch {
                canonical_request: self.canonical_request(),
                string_to_sign: self.string_to_sign().to_string(),
            }),
        }
    }
}

/// First phase: checks everything but the signature. `Ok(None)` for a request without any
/// authentication (anonymous).
pub fn check_request(
    req: &RequestParts<'_>,
    cfg: &VerifyConfig<'_>,
) -> Result<Option<PendingAuth>, Error> {
    let mut auth_headers = req.headers.get_all(http::header::AUTHORIZATION).iter();
    let auth_header = auth_headers.next();
    if auth_headers.next().is_some() {
        return Err(Error::invalid_argument(
            "more than one Authorization header",
        ));
    }
    let presigned = presigned::is_presigned(req.query)?;
    match (auth_header, presigned) {
        (Some(_), true) => Err(Error::invalid_argument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        )),
        (Some(value), false) => check_header_auth(req, cfg, value.as_bytes()).map(Some),
        (None, true) => presigned::check_presigned(req, cfg).map(Some),
        (None, false) => Ok(None),
    }
}

/// Both phases with a synchronous key lookup. `Ok(None)` for an anonymous request.
pub fn verify_request(
    req: &RequestParts<'_>,
    cfg: &VerifyConfig<'_>,
    keys: &impl SecretKeys,
) -> Result<Option<VerifiedRequest>, Error> {
    let Some(pending) = check_request(req, cfg)? else {
        return Ok(None);
    };
    let secret =
        keys.secret_key(pending.access_key_id())
            .ok_or_else(|| Error::InvalidAccessKeyId {
                access_key_id: shorten(pending.access_key_id()).to_string(),
            })?;
    pending.verify(&secret).map(Some)
}

fn check_header_auth(
    req: &RequestParts<'_>,
    cfg: &VerifyConfig<'_>,
    value: &[u8],
) -> Result<PendingAuth, Error> {
    let auth = parse_authorization(value)?;
    auth.credential
        .check_scope(cfg.region, cfg.service)
        .map_err(Error::header_malformed)?;

    let (request_secs, timestamp) = request_date(req.headers)?;
    check_skew(request_secs, cfg.now)?;
    let date_stamp = format_date_stamp(request_secs);
    if auth.credential.date != date_stamp {
        return Err(Error::header_malformed(format!(
            "invalid credential date '{}': it is not the day of the request date {timestamp}",
            auth.credential.date
        )));
    }
    check_signed_headers(req.headers, &auth.signed_headers).map_err(|e| match e {
        SignedHeadersError::HostNotSigned(m) => Error::header_malformed(m),
        SignedHeadersError::Unsigned(m) => Error::access_denied(m),
    })?;

    let declared = req.content_sha256.ok_or(Error::MissingSecurityHeader {
        header: "x-amz-content-sha256",
    })?;
    let content_sha256 = ContentSha256::parse(declared)?;
    let canonical_query = canonical_query(req.query, false);
    let scope = auth.credential.scope();
    let candidates = candidates(
        req,
        &canonical_query,
        &auth.signed_headers,
        declared,
        &timestamp,
        &scope,
    );
    Ok(PendingAuth {
        kind: AuthKind::Header,
        access_key_id: auth.credential.access_key_id,
        timestamp,
        date_stamp,
        region: auth.credential.region,
        service: auth.credential.service,
        scope,
        candidates,
        signature: auth.signature,
        content_sha256,
    })
}

/// The request date of the header mechanism: `X-Amz-Date`, else `Date`; with the timestamp
/// string of the string to sign.
fn request_date(headers: &HeaderMap) -> Result<(i64, String), Error> {
    let invalid =
        || Error::access_denied("AWS authentication requires a valid Date or x-amz-date header");
    if let Some(v) = headers.get("x-amz-date") {
        let s = v.to_str().map_err(|_| invalid())?;
        let secs = parse_amz_date(s.trim()).ok_or_else(invalid)?;
        Ok((secs, format_amz_date(secs)))
    } else if let Some(v) = headers.get(http::header::DATE) {
        let secs = parse_http_date(v.to_str().map_err(|_| invalid())?).ok_or_else(invalid)?;
        Ok((secs, format_amz_date(secs)))
    } else {
        Err(invalid())
    }
}

/// `RequestTimeTooSkewed` if the request date is more than 15 minutes from `now`.
pub(super) fn check_skew(request_secs: i64, now: SystemTime) -> Result<(), Error> {
    let now_secs = unix_secs(now);
    if request_secs.abs_diff(now_secs) > MAX_CLOCK_SKEW_SECS as u64 {
        return Err(Error::RequestTimeTooSkewed {
            request_time: format_amz_date(request_secs),
            server_time: format_amz_date(now_secs),
        });
    }
    Ok(())
}

pub(super) enum SignedHeadersError {
    HostNotSigned(String),
    Unsigned(String),
}

/// `host` must be signed, and every `x-amz-*` header present must be.
pub(super) fn check_signed_headers(
    headers: &HeaderMap,
    signed: &[String],
) -> Result<(), SignedHeadersError> {
    if !signed.iter().any(|h| h == "host") {
        return Err(SignedHeadersError::HostNotSigned(
            "the host header must be signed".into(),
        ));
    }
    let unsigned: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-amz-") && !signed.iter().any(|s| s == k))
        .collect();
    if !unsigned.is_empty() {
        return Err(SignedHeadersError::Unsigned(format!(
            "There were headers present in the request which were not signed: {}",
            shorten(&unsigned.join(", "))
        )));
    }
    Ok(())
}

/// The (canonical request, string to sign) pairs for every accepted canonical URI.
pub(super) fn candidates(
    req: &RequestParts<'_>,
    canonical_query: &str,
    signed_headers: &[String],
    payload_hash: &str,
    timestamp: &str,
    scope: &str,
) -> Vec<(Vec<u8>, String)> {
    canonical_uri_candidates(req.path)
        .iter()
        .map(|uri| {
            let creq = canonical_request(&CanonicalParts {
                method: req.method,
                canonical_uri: uri,
                canonical_query,
                headers: req.headers,
                signed_headers,
                payload_hash,
            });
            let sts = string_to_sign(timestamp, scope, &creq);
            (creq, sts)
        })
        .collect()
}
