//! The client side of SigV4: signing a request with the `Authorization` header, presigning a
//! URL, and encoding an aws-chunked body with chunk signatures and trailers. Used by the tests
//! of this module and by integration tests that speak raw HTTP; it follows exactly the
//! canonicalisation of the verifier (see [`super::canonical`]).

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue};

use super::canonical::{
    canonical_query, canonical_request, canonical_uri, uri_encode, CanonicalParts,
};
use super::checksum::Checksum;
use super::date::{format_amz_date, format_date_stamp, unix_secs};
use super::error::Error;
use super::keys::{scope, sha256, string_to_sign, SigningContext, SigningKey, ALGORITHM};
use super::payload::UNSIGNED_PAYLOAD;
use super::presigned::{
    X_AMZ_ALGORITHM, X_AMZ_CREDENTIAL, X_AMZ_DATE, X_AMZ_EXPIRES, X_AMZ_SIGNATURE,
    X_AMZ_SIGNED_HEADERS,
};

/// Who signs, for which endpoint, and when.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

/// The result of signing: every intermediate value, for tests and debugging.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The canonical request (lossy UTF-8 if a header value was not UTF-8).
    pub canonical_request: String,
    pub string_to_sign: String,
    /// Lower-case hex.
    pub signature: String,
    /// The value of the `Authorization` header (header mode), or the full query string to send
    /// (presigned mode, including `X-Amz-Signature`).
    pub value: String,
    /// What chunk signatures chain from (the seed signature is this signature).
    pub context: SigningContext,
}

/// Signs a request with the `Authorization` header. Every header of `headers` is signed (they
/// must include `host`; add `x-amz-content-sha256` for S3); `x-amz-date` is added from
/// `params.time` if the request has neither `x-amz-date` nor `Date` (a date header given by the
/// caller must say `params.time`), and `authorization` is set. `path` and `query` are as they will be
/// sent (percent-encoded).
pub fn sign_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &mut HeaderMap,
    payload_hash: &str,
    params: &SigningParams<'_>,
) -> Result<Signed, Error> {
    let secs = unix_secs(params.time);
    let timestamp = format_amz_date(secs);
    if !headers.contains_key("x-amz-date") && !headers.contains_key(http::header::DATE) {
        headers.insert("x-amz-date", header_value(&timestamp)?);
    }
    headers.remove(http::header::AUTHORIZATION);
    let mut signed_headers: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    signed_headers.sort();
    signed_headers.dedup();

    let signed = sign_parts(
        method,
        path,
        &canonical_query(query, false),
        headers,
        &signed_headers,
        payload_hash,
        params,
    );
    let value = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={}",
        params.access_key_id,
        signed.context.scope(),
        signed_headers.join(";"),
        signed.signature
    );
    headers.insert(http::header::AUTHORIZATION, header_value(&value)?);
    Ok(Signed { value, ..signed })
}

/// Presigns a URL valid `expires_secs` seconds from `params.time`, signing the given headers
/// (at least `host`). The payload is `UNSIGNED-PAYLOAD`. Returns in `value` the query string to
/// send: `query` followed by the `X-Amz-*` parameters.
pub fn presign(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    expires_secs: u64,
    params: &SigningParams<'_>,
) -> Signed {
    let secs = unix_secs(params.time);
    let mut signed_headers: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    signed_headers.sort();
    signed_headers.dedup();
    let credential = format!(
        "{}/{}",
        params.access_key_id,
        scope(&format_date_stamp(secs), params.region, params.service)
    );
    let mut full_query = query.to_string();
    for (name, value) in [
        (X_AMZ_ALGORITHM, ALGORITHM.to_string()),
        (X_AMZ_CREDENTIAL, credential),
        (X_AMZ_DATE, format_amz_date(secs)),
        (X_AMZ_EXPIRES, expires_secs.to_string()),
        (X_AMZ_SIGNED_HEADERS, signed_headers.join(";")),
    ] {
        if !full_query.is_empty() {
            full_query.push('&');
        }
        full_query.push_str(name);
        full_query.push('=');
        full_query.push_str(&uri_encode(value.as_bytes(), true));
    }
    let signed = sign_parts(
        method,
        path,
        &canonical_query(&full_query, true),
        headers,
        &signed_headers,
        UNSIGNED_PAYLOAD,
        params,
    );
    let value = format!("{full_query}&{X_AMZ_SIGNATURE}={}", signed.signature);
    Signed { value, ..signed }
}

fn sign_parts(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
    params: &SigningParams<'_>,
) -> Signed {
    let secs = unix_secs(params.time);
    let timestamp = format_amz_date(secs);
    let date_stamp = format_date_stamp(secs);
    let scope = scope(&date_stamp, params.region, params.service);
    let creq = canonical_request(&CanonicalParts {
        method,
        canonical_uri: &canonical_uri(path),
        canonical_query,
        headers,
        signed_headers,
        payload_hash,
    });
    let sts = string_to_sign(&timestamp, &scope, &creq);
    let key = SigningKey::derive(
        params.secret_key,
        &date_stamp,
        params.region,
        params.service,
    );
    let signature = key.sign(&sts);
    Signed {
        canonical_request: String::from_utf8_lossy(&creq).into_owned(),
        string_to_sign: sts,
        signature: hex::encode(signature),
        value: String::new(),
        context: SigningContext::new(timestamp, scope, key, signature),
    }
}

fn header_value(s: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(s)
        .map_err(|_| Error::invalid_argument(format!("invalid header value {s:?}")))
}

/// Encodes a body as aws-chunked, `chunk_size` bytes per chunk (the last may be shorter):
/// - with `signing`, each chunk carries `;chunk-signature=` chained from the seed signature
///   (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, or `…-TRAILER` with a `trailer`, which is then
///   signed by `x-amz-trailer-signature`);
/// - without, chunks are bare (`STREAMING-UNSIGNED-PAYLOAD-TRAILER` with a `trailer`).
pub fn encode_aws_chunked(
    data: &[u8],
    chunk_size: usize,
    signing: Option<&SigningContext>,
    trailer: Option<&Checksum>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 100 + 256);
    let mut prev = signing.map(|s| *s.seed_signature());
    let mut push_chunk = |out: &mut Vec<u8>, piece: &[u8]| {
        out.extend_from_slice(format!("{:x}", piece.len()).as_bytes());
        if let (Some(ctx), Some(p)) = (signing, prev.as_mut()) {
            let (sig, _) = ctx.chunk_signature(p, &sha256(piece));
            out.extend_from_slice(format!(";chunk-signature={}", hex::encode(sig)).as_bytes());
            *p = sig;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(piece);
        if !piece.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
    };
    for piece in data.chunks(chunk_size.max(1)) {
        push_chunk(&mut out, piece);
    }
    push_chunk(&mut out, &[]);
    if let Some(checksum) = trailer {
        let line = format!(
            "{}:{}",
            checksum.algorithm().header_name(),
            checksum.to_base64()
        );
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let (Some(ctx), Some(p)) = (signing, prev) {
            let (sig, _) = ctx.trailer_signature(&p, format!("{line}\n").as_bytes());
            out.extend_from_slice(
                format!("x-amz-trailer-signature:{}\r\n", hex::encode(sig)).as_bytes(),
            );
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}
