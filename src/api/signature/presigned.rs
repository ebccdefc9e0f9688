//! Query-string authentication (presigned URLs):
//!
//! ```text
//! ?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<key>%2F<YYYYMMDD>%2F<region>%2Fs3%2Faws4_request
//!  &X-Amz-Date=<YYYYMMDDTHHMMSSZ>&X-Amz-Expires=<seconds>&X-Amz-SignedHeaders=host&X-Amz-Signature=<hex>
//! ```
//! All six parameters are required, each once (`AuthorizationQueryParametersError` otherwise).
//! `X-Amz-Expires` is at most 604800 (7 days). The URL is valid from `X-Amz-Date` (15 minutes
//! of clock skew tolerated) until `X-Amz-Date + X-Amz-Expires`; after that it is `AccessDenied`
//! with "Request has expired". The canonical query is that of the URL without
//! `X-Amz-Signature`; the payload hash is the `x-amz-content-sha256` header if sent, else an
//! `X-Amz-Content-Sha256` query parameter if present, else `UNSIGNED-PAYLOAD`.

use super::canonical::{canonical_query, parse_query};
use super::date::{format_amz_date, format_date_stamp, parse_amz_date, unix_secs};
use super::error::Error;
use super::header::{parse_signed_headers, shorten, Credential};
use super::keys::ALGORITHM;
use super::payload::{ContentSha256, UNSIGNED_PAYLOAD};
use super::verify::{
    candidates, check_signed_headers, AuthKind, PendingAuth, RequestParts, SignedHeadersError,
    VerifyConfig, MAX_CLOCK_SKEW_SECS,
};

/// Longest validity of a presigned URL: 7 days.
pub const MAX_EXPIRES_SECS: u64 = 7 * 24 * 3600;

pub const X_AMZ_ALGORITHM: &str = "X-Amz-Algorithm";
pub const X_AMZ_CREDENTIAL: &str = "X-Amz-Credential";
pub const X_AMZ_DATE: &str = "X-Amz-Date";
pub const X_AMZ_EXPIRES: &str = "X-Amz-Expires";
pub const X_AMZ_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
pub const X_AMZ_SIGNATURE: &str = "X-Amz-Signature";
const X_AMZ_CONTENT_SHA256: &str = "X-Amz-Content-Sha256";

/// Whether the query carries SigV4 query authentication: `X-Amz-Algorithm`,
/// `X-Amz-Credential` or `X-Amz-Signature` is present (the other parameters alone do not make
/// a presigned URL). SigV2 query authentication (`AWSAccessKeyId` with `Signature`) is refused
/// with `InvalidRequest`.
pub(super) fn is_presigned(query: &str) -> Result<bool, Error> {
    let params = parse_query(query);
    let has = |name: &str| params.iter().any(|(n, _)| n.as_slice() == name.as_bytes());
    if has("AWSAccessKeyId") && has("Signature") {
        return Err(Error::invalid_request(
            "The authorization mechanism you have provided is not supported. \
             Please use AWS4-HMAC-SHA256.",
        ));
    }
    Ok([X_AMZ_ALGORITHM, X_AMZ_CREDENTIAL, X_AMZ_SIGNATURE]
        .iter()
        .any(|name| has(name)))
}

/// The value of an authentication parameter, checking it appears at most once.
fn param<'a>(params: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Result<Option<&'a str>, Error> {
    let mut found = params
        .iter()
        .filter(|(n, _)| n.as_slice() == name.as_bytes());
    let first = found.next();
    if found.next().is_some() {
        return Err(Error::query_error(format!("{name} appears more than once")));
    }
    first
        .map(|(_, v)| {
            std::str::from_utf8(v)
                .map_err(|_| Error::query_error(format!("{name} is not valid UTF-8")))
        })
        .transpose()
}

/// First phase of the verification of a presigned URL.
pub(super) fn check_presigned(
    req: &RequestParts<'_>,
    cfg: &VerifyConfig<'_>,
) -> Result<PendingAuth, Error> {
    let params = parse_query(req.query);
    let get = |name: &str| -> Result<&str, Error> {
        param(&params, name)?.ok_or_else(|| {
            Error::query_error(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, \
                 X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, \
                 and X-Amz-Expires parameters.",
            )
        })
    };
    let algorithm = get(X_AMZ_ALGORITHM)?;
    let credential = get(X_AMZ_CREDENTIAL)?;
    let signature = get(X_AMZ_SIGNATURE)?;
    let date = get(X_AMZ_DATE)?;
    let signed_headers = get(X_AMZ_SIGNED_HEADERS)?;
    let expires = get(X_AMZ_EXPIRES)?;

    if algorithm != ALGORITHM {
        return Err(Error::query_error(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\", not {:?}",
            shorten(algorithm)
        )));
    }
    let credential = Credential::parse(credential).map_err(Error::query_error)?;
    credential
        .check_scope(cfg.region, cfg.service)
        .map_err(Error::query_error)?;
    let request_secs = parse_amz_date(date).ok_or_else(|| {
        Error::query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires = parse_expires(expires)?;
    let date_stamp = format_date_stamp(request_secs);
    if credential.date != date_stamp {
        return Err(Error::query_error(format!(
            "invalid credential date '{}': it is not the day of X-Amz-Date {date}",
            credential.date
        )));
    }
    check_validity(request_secs, expires, unix_secs(cfg.now))?;

    let signed_headers = parse_signed_headers(signed_headers).map_err(Error::query_error)?;
    check_signed_headers(req.headers, &signed_headers).map_err(|e| match e {
        SignedHeadersError::HostNotSigned(m) => Error::query_error(m),
        SignedHeadersError::Unsigned(m) => Error::access_denied(m),
    })?;

    let payload_hash = match req.content_sha256 {
        Some(h) => h,
        None => param(&params, X_AMZ_CONTENT_SHA256)?.unwrap_or(UNSIGNED_PAYLOAD),
    };
    let content_sha256 = ContentSha256::parse(payload_hash)?;
    let timestamp = format_amz_date(request_secs);
    let scope = credential.scope();
    let canonical_query = canonical_query(req.query, true);
    let candidates = candidates(
        req,
        &canonical_query,
        &signed_headers,
        payload_hash,
        &timestamp,
        &scope,
    );
    Ok(PendingAuth {
        kind: AuthKind::Presigned,
        access_key_id: credential.access_key_id,
        timestamp,
        date_stamp,
        region: credential.region,
        service: credential.service,
        scope,
        candidates,
        signature: signature.to_string(),
        content_sha256,
    })
}

fn parse_expires(s: &str) -> Result<u64, Error> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Error::query_error(format!(
            "X-Amz-Expires should be a non-negative number of seconds, not {:?}",
            shorten(s)
        )));
    }
    let secs: u64 = s
        .parse()
        .map_err(|_| Error::query_error("X-Amz-Expires should be a number"))?;
    if secs > MAX_EXPIRES_SECS {
        return Err(Error::query_error(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES_SECS}"
        )));
    }
    Ok(secs)
}

/// A presigned URL is valid from its date (minus the tolerated skew) until date + expires.
fn check_validity(request_secs: i64, expires: u64, now_secs: i64) -> Result<(), Error> {
    if request_secs > now_secs.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(Error::access_denied("Request is not yet valid"));
    }
    // `expires` ≤ 7 days, so the sum cannot overflow for any parsable date.
    if now_secs > request_secs.saturating_add(expires as i64) {
        return Err(Error::access_denied("Request has expired"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert!(!is_presigned("").unwrap());
        assert!(!is_presigned("uploads&prefix=a").unwrap());
        assert!(is_presigned("X-Amz-Signature=00").unwrap());
        assert!(is_presigned("X-Amz-Credential=a").unwrap());
        assert!(!is_presigned("X-Amz-Date=20130524T000000Z&X-Amz-Expires=1").unwrap());
        assert!(is_presigned("a=b&X-Amz-Algorithm=AWS4-HMAC-SHA256").unwrap());
        assert_eq!(
            is_presigned("AWSAccessKeyId=A&Signature=s&Expires=1")
                .unwrap_err()
                .s3_code(),
            "InvalidRequest"
        );
    }

    #[test]
    fn expires() {
        assert_eq!(parse_expires("0").unwrap(), 0);
        assert_eq!(parse_expires("604800").unwrap(), 604_800);
        for bad in ["604801", "-1", "", "1e3", " 1", "99999999999999999999999"] {
            assert_eq!(
                parse_expires(bad).unwrap_err().s3_code(),
                "AuthorizationQueryParametersError",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn validity_window() {
        let t = 1_000_000;
        assert!(check_validity(t, 60, t).is_ok());
        assert!(check_validity(t, 60, t + 60).is_ok());
        let e = check_validity(t, 60, t + 61).unwrap_err();
        assert_eq!(e.s3_code(), "AccessDenied");
        assert!(e.to_string().contains("Request has expired"));
        assert!(check_validity(t + 900, 60, t).is_ok());
        let e = check_validity(t + 901, 60, t).unwrap_err();
        assert!(e.to_string().contains("not yet valid"));
        assert!(check_validity(i64::MAX, 604_800, i64::MIN).is_err());
        assert!(check_validity(i64::MIN, 604_800, i64::MAX).is_err());
    }
}
