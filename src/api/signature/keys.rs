//! The cryptographic core of SigV4: signing-key derivation, the strings to sign (request, chunk,
//! trailer) and the [`SigningContext`] that chains chunk signatures from the seed signature.
//!
//! ```text
//! kDate    = HMAC("AWS4" + secret, YYYYMMDD)      kRegion = HMAC(kDate, region)
//! kService = HMAC(kRegion, service)               kSigning = HMAC(kService, "aws4_request")
//! request: "AWS4-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256(canonical request)>"
//! chunk:   "AWS4-HMAC-SHA256-PAYLOAD\n<timestamp>\n<scope>\n<previous sig>\n<sha256("")>\n<hex sha256(data)>"
//! trailer: "AWS4-HMAC-SHA256-TRAILER\n<timestamp>\n<scope>\n<previous sig>\n<hex sha256(trailer lines)>"
//! signature = hex(HMAC(kSigning, string to sign))
//! ```
//! where scope is `YYYYMMDD/<region>/<service>/aws4_request` and the trailer lines are
//! `name:value\n` for each trailing header. Signatures are compared in constant time.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::canonical::EMPTY_SHA256_HEX;

/// The only algorithm supported, as it appears in `Authorization` and `X-Amz-Algorithm`.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const SCOPE_TERMINAL: &str = "aws4_request";

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SHA-256 of some bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Parses a 64-character hex signature or hash (either case).
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Constant-time equality of two 32-byte values.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// A derived signing key (`kSigning`). Its `Debug` output hides the bytes.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// Derives the signing key of a secret for one day, region and service.
    pub fn derive(secret: &str, date_stamp: &str, region: &str, service: &str) -> Self {
        let mut k_secret = Vec::with_capacity(4 + secret.len());
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret.as_bytes());
        let k_date = hmac(&k_secret, date_stamp.as_bytes());
        let k_region = hmac(&k_date, region.as_bytes());
        let k_service = hmac(&k_region, service.as_bytes());
        SigningKey(hmac(&k_service, SCOPE_TERMINAL.as_bytes()))
    }

    /// HMAC-SHA256 of a string to sign: the raw signature.
    pub fn sign(&self, string_to_sign: &str) -> [u8; 32] {
        hmac(&self.0, string_to_sign.as_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// The credential scope `YYYYMMDD/<region>/<service>/aws4_request`.
pub fn scope(date_stamp: &str, region: &str, service: &str) -> String {
    format!("{date_stamp}/{region}/{service}/{SCOPE_TERMINAL}")
}

/// The string to sign of a request.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        hex::encode(sha256(canonical_request))
    )
}

/// The string to sign of one chunk of an aws-chunked body.
pub fn chunk_string_to_sign(
    timestamp: &str,
    scope: &str,
    previous_signature: &[u8; 32],
    data_sha256: &[u8; 32],
) -> String {
    format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n{}\n{EMPTY_SHA256_HEX}\n{}",
        hex::encode(previous_signature),
        hex::encode(data_sha256)
    )
}

/// The string to sign of the trailing headers of an aws-chunked body; `canonical_trailers` is
/// `name:value\n` for each trailing header.
pub fn trailer_string_to_sign(
    timestamp: &str,
    scope: &str,
    previous_signature: &[u8; 32],
    canonical_trailers: &[u8],
) -> String {
    format!(
        "AWS4-HMAC-SHA256-TRAILER\n{timestamp}\n{scope}\n{}\n{}",
        hex::encode(previous_signature),
        hex::encode(sha256(canonical_trailers))
    )
}

/// What the chunks of a streaming body are signed with: the request's timestamp and scope, the
/// signing key, and the seed signature (the signature of the request itself), from which the
/// chain of chunk signatures starts.
#[derive(Clone, Debug)]
pub struct SigningContext {
    timestamp: String,
    scope: String,
    key: SigningKey,
    seed_signature: [u8; 32],
}

impl SigningContext {
    /// A context from its parts (`timestamp` as `YYYYMMDDTHHMMSSZ`, `scope` as in the
    /// credential).
    pub fn new(
        timestamp: String,
        scope: String,
        key: SigningKey,
        seed_signature: [u8; 32],
    ) -> Self {
        SigningContext {
            timestamp,
            scope,
            key,
            seed_signature,
        }
    }

    /// The request timestamp, `YYYYMMDDTHHMMSSZ`.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The credential scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The signature of the request (the first "previous signature" of the chunk chain).
    pub fn seed_signature(&self) -> &[u8; 32] {
        &self.seed_signature
    }

    /// The signature of a chunk whose data hashes to `data_sha256`, and its string to sign.
    pub fn chunk_signature(
        &self,
        previous: &[u8; 32],
        data_sha256: &[u8; 32],
    ) -> ([u8; 32], String) {
        let sts = chunk_string_to_sign(&self.timestamp, &self.scope, previous, data_sha256);
        (self.key.sign(&sts), sts)
    }

    /// The signature of the trailing headers, and its string to sign.
    pub fn trailer_signature(
        &self,
        previous: &[u8; 32],
        canonical_trailers: &[u8],
    ) -> ([u8; 32], String) {
        let sts =
            trailer_string_to_sign(&self.timestamp, &self.scope, previous, canonical_trailers);
        (self.key.sign(&sts), sts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    /// AWS's "Signature Calculation: Transfer Payload in Multiple Chunks" example: the chain
    /// from the seed signature through the two data chunks and the final empty chunk.
    #[test]
    fn aws_chunk_chain() {
        let key = SigningKey::derive(SECRET, "20130524", "us-east-1", "s3");
        let seed = parse_hex32("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
            .unwrap();
        let ctx = SigningContext::new(
            "20130524T000000Z".into(),
            scope("20130524", "us-east-1", "s3"),
            key,
            seed,
        );
        let mut prev = *ctx.seed_signature();
        for (data, expected) in [
            (
                vec![b'a'; 65536],
                "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            ),
            (
                vec![b'a'; 1024],
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            ),
            (
                vec![],
                "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
            ),
        ] {
            let (sig, _) = ctx.chunk_signature(&prev, &sha256(&data));
            assert_eq!(hex::encode(sig), expected);
            prev = sig;
        }
    }

    #[test]
    fn hex32() {
        assert!(parse_hex32(EMPTY_SHA256_HEX).is_some());
        assert!(parse_hex32(&EMPTY_SHA256_HEX.to_uppercase()).is_some());
        assert!(parse_hex32(&EMPTY_SHA256_HEX[1..]).is_none());
        assert!(parse_hex32(&format!("{}g", &EMPTY_SHA256_HEX[1..])).is_none());
        assert!(parse_hex32("é").is_none());
        let a = sha256(b"a");
        assert!(ct_eq(&a, &sha256(b"a")));
        assert!(!ct_eq(&a, &sha256(b"b")));
        assert_eq!(
            format!("{:?}", SigningKey::derive("s", "d", "r", "s")),
            "SigningKey(..)"
        );
    }
}
