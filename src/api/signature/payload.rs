//! What `x-amz-content-sha256` says about the body, and the check of a body against it.
//!
//! | header value | [`ContentSha256`] | what the caller must do with the body |
//! |---|---|---|
//! | 64 hex digits | `Sha256(h)` | hash it and call [`ContentSha256::verify_sha256`] (or [`ContentSha256::verify_body`]) |
//! | `UNSIGNED-PAYLOAD` | `UnsignedPayload` | nothing |
//! | `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` | `StreamingSigned` | decode aws-chunked, verifying chunk signatures |
//! | `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` | `StreamingSignedTrailer` | same, plus the signed trailer |
//! | `STREAMING-UNSIGNED-PAYLOAD-TRAILER` | `StreamingUnsignedTrailer` | decode aws-chunked without signatures, check the trailer checksum |
//!
//! The SigV4a variants (`STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD…`) are refused with
//! `InvalidRequest`; any other value is `InvalidArgument`.

use super::error::Error;
use super::keys::{ct_eq, parse_hex32, sha256};

pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The payload hash of a request, as declared by `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentSha256 {
    /// The body must hash to this SHA-256.
    Sha256([u8; 32]),
    /// The body is not covered by the signature.
    UnsignedPayload,
    /// aws-chunked body with a signature per chunk.
    StreamingSigned,
    /// aws-chunked body with a signature per chunk and signed trailing headers.
    StreamingSignedTrailer,
    /// aws-chunked body without signatures, with trailing headers (checksums).
    StreamingUnsignedTrailer,
}

impl ContentSha256 {
    /// Parses the value of `x-amz-content-sha256`.
    pub fn parse(value: &str) -> Result<Self, Error> {
        match value {
            UNSIGNED_PAYLOAD => Ok(ContentSha256::UnsignedPayload),
            STREAMING_SIGNED => Ok(ContentSha256::StreamingSigned),
            STREAMING_SIGNED_TRAILER => Ok(ContentSha256::StreamingSignedTrailer),
            STREAMING_UNSIGNED_TRAILER => Ok(ContentSha256::StreamingUnsignedTrailer),
            v if v.starts_with("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD") => {
                Err(Error::invalid_request(
                    "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported; use AWS4-HMAC-SHA256",
                ))
            }
            v => parse_hex32(v).map(ContentSha256::Sha256).ok_or_else(|| {
                Error::invalid_argument(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, \
                     STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, \
                     STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid SHA-256 value",
                )
            }),
        }
    }

    /// The string this value stands for in the canonical request (lower-case hex for a hash).
    pub fn as_canonical(&self) -> String {
        match self {
            ContentSha256::Sha256(h) => hex::encode(h),
            ContentSha256::UnsignedPayload => UNSIGNED_PAYLOAD.into(),
            ContentSha256::StreamingSigned => STREAMING_SIGNED.into(),
            ContentSha256::StreamingSignedTrailer => STREAMING_SIGNED_TRAILER.into(),
            ContentSha256::StreamingUnsignedTrailer => STREAMING_UNSIGNED_TRAILER.into(),
        }
    }

    /// Whether the body is aws-chunked (one of the `STREAMING-…` values).
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            ContentSha256::StreamingSigned
                | ContentSha256::StreamingSignedTrailer
                | ContentSha256::StreamingUnsignedTrailer
        )
    }

    /// For `Sha256(expected)`, checks the SHA-256 the caller computed over the whole body
    /// (`XAmzContentSHA256Mismatch` if different); nothing to check for the other values.
    pub fn verify_sha256(&self, computed: &[u8; 32]) -> Result<(), Error> {
        match self {
            ContentSha256::Sha256(expected) if !ct_eq(expected, computed) => {
                Err(Error::XAmzContentSHA256Mismatch {
                    client_computed: hex::encode(expected),
                    s3_computed: hex::encode(computed),
                })
            }
            _ => Ok(()),
        }
    }

    /// [`Self::verify_sha256`] of a whole body held in memory.
    pub fn verify_body(&self, body: &[u8]) -> Result<(), Error> {
        match self {
            ContentSha256::Sha256(_) => self.verify_sha256(&sha256(body)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::signature::canonical::EMPTY_SHA256_HEX;

    #[test]
    fn parse_values() {
        assert_eq!(
            ContentSha256::parse(UNSIGNED_PAYLOAD).unwrap(),
            ContentSha256::UnsignedPayload
        );
        for v in [
            STREAMING_SIGNED,
            STREAMING_SIGNED_TRAILER,
            STREAMING_UNSIGNED_TRAILER,
        ] {
            let c = ContentSha256::parse(v).unwrap();
            assert!(c.is_streaming());
            assert_eq!(c.as_canonical(), v);
        }
        let h = ContentSha256::parse(EMPTY_SHA256_HEX).unwrap();
        assert_eq!(h.as_canonical(), EMPTY_SHA256_HEX);
        assert!(!h.is_streaming());
        assert_eq!(
            ContentSha256::parse("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")
                .unwrap_err()
                .s3_code(),
            "InvalidRequest"
        );
        for v in ["", "unsigned-payload", "abc", &"0".repeat(65)] {
            assert_eq!(
                ContentSha256::parse(v).unwrap_err().s3_code(),
                "InvalidArgument"
            );
        }
    }

    #[test]
    fn body_check() {
        let h = ContentSha256::parse(EMPTY_SHA256_HEX).unwrap();
        assert!(h.verify_body(b"").is_ok());
        let e = h.verify_body(b"x").unwrap_err();
        assert_eq!(e.s3_code(), "XAmzContentSHA256Mismatch");
        assert_eq!(e.http_status(), 400);
        assert!(ContentSha256::UnsignedPayload.verify_body(b"x").is_ok());
        assert!(h.verify_sha256(&sha256(b"")).is_ok());
    }
}
