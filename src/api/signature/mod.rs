//! AWS Signature Version 4 for S3, independent of the HTTP stack: requests are given as plain
//! parts (method, raw path, raw query, `http::HeaderMap`), the clock is a parameter, and secret
//! keys come from the caller.
//!
//! What a request goes through:
//! 1. [`check_request`] (no secret needed) parses the `Authorization` header ([`header`]) or
//!    the presigned query ([`presigned`]), checks scope, date, clock skew or expiry, signed
//!    headers and `x-amz-content-sha256`, and builds the canonical request ([`canonical`]).
//!    It gives a [`PendingAuth`] naming the access key id (or `None`: anonymous request).
//! 2. The caller looks up the secret key and calls [`PendingAuth::verify`] (or uses
//!    [`verify_request`] with a [`SecretKeys`] callback): constant-time comparison, giving a
//!    [`VerifiedRequest`] with the [`ContentSha256`] that says what the body check must be,
//!    and the [`SigningContext`] of streaming bodies.
//! 3. The body: a hex SHA-256 is checked by the caller once the body is read
//!    ([`ContentSha256::verify_sha256`], `XAmzContentSHA256Mismatch`); aws-chunked bodies go
//!    through [`decode_aws_chunked`] (configured by [`ChunkedConfig::from_request`]), which
//!    verifies chunk and trailer signatures, the trailing checksum and the decoded length.
//!    `Content-MD5` and `x-amz-checksum-*` headers are checked with [`checksum`].
//!
//! Errors are an [`Error`] whose variants are S3 error codes ([`Error::s3_code`],
//! [`Error::http_status`]). Nothing here panics on any input.
//!
//! [`sign`] is the client side (Authorization header, presigned URL, aws-chunked encoding),
//! used by tests. The canonical URI rule (S3 encodes paths once and never normalises them) is
//! documented in [`canonical`].
//!
//! Files: `error` (error codes), `date` (timestamps), `canonical` (canonical request), `keys`
//! (signing key, strings to sign), `header` (Authorization header), `verify` (verification,
//! header mechanism), `presigned` (query mechanism), `payload` (`x-amz-content-sha256`),
//! `checksum` (CRC32/CRC32C/CRC64NVME/SHA1/SHA256/MD5), `chunk_parser` and `streaming`
//! (aws-chunked bodies), `sign` (client side).

pub mod canonical;
pub mod checksum;
mod chunk_parser;
pub mod date;
pub mod error;
pub mod header;
pub mod keys;
pub mod payload;
pub mod presigned;
pub mod sign;
pub mod streaming;
pub mod verify;

#[cfg(test)]
mod tests_presigned;
#[cfg(test)]
mod tests_requests;
#[cfg(test)]
mod tests_streaming;
#[cfg(test)]
mod tests_suite;

pub use checksum::{Checksum, ChecksumAlgorithm, Checksummer};
pub use chunk_parser::{MAX_CHUNK_SIZE, MAX_LINE_LEN};
pub use error::Error;
pub use keys::{SigningContext, SigningKey};
pub use payload::ContentSha256;
pub use presigned::MAX_EXPIRES_SECS;
pub use streaming::{
    decode_aws_chunked, AwsChunkedStream, ChunkedConfig, ChunkedMode, TrailerHandle, Trailers,
};
pub use verify::{
    check_request, verify_request, AuthKind, PendingAuth, RequestParts, SecretKeys,
    VerifiedRequest, VerifyConfig, MAX_CLOCK_SKEW_SECS,
};
