//! SSE-C: server-side encryption with customer-provided keys.
//!
//! The client sends `x-amz-server-side-encryption-customer-{algorithm,key,key-MD5}` (algorithm
//! `AES256`, a base64 256-bit key and the base64 MD5 of the key) with every request that writes
//! or reads the object's data, and `x-amz-copy-source-server-side-encryption-customer-*` for the
//! source of a copy. The key is never stored: the object's metadata records only the key's MD5,
//! to tell a missing key (400 InvalidRequest) from a wrong one (403 AccessDenied).
//!
//! Data is encrypted with AES-256-GCM, one sealed unit per block (and one for inline data): a
//! fresh random 96-bit nonce, then the ciphertext and its 16-byte tag. Blocks of encrypted
//! objects are therefore content-addressed by the hash of the sealed bytes (no deduplication),
//! while the block sizes recorded in the version stay plaintext sizes so that ranges and part
//! numbers keep working: a read opens whole blocks, then slices them.
//!
//! The ETag of an SSE-C object is not the MD5 of its data (which would let anyone holding the
//! metadata confirm a guess of the content): it is 128 random bits in hex (multipart: the usual
//! MD5 of the parts' ETags with `-N`).

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;
use md5::{Digest, Md5};

use super::error::S3Error;
use crate::model::object::ObjectEncryption;

/// The only algorithm of SSE-C.
pub const ALGORITHM: &str = "AES256";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes a sealed unit has more than its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Prefix of the SSE-C headers of an object written or read.
const REQUEST_PREFIX: &str = "x-amz-server-side-encryption-customer-";
/// Prefix of the SSE-C headers of the source of a copy.
const COPY_SOURCE_PREFIX: &str = "x-amz-copy-source-server-side-encryption-customer-";
/// Header of SSE-S3 / SSE-KMS, which cannot be combined with SSE-C.
const SSE_HEADER: &str = "x-amz-server-side-encryption";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A customer-provided key, checked against its MD5. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SseKey {
    key: [u8; 32],
    md5_b64: String,
}

impl fmt::Debug for SseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseKey")
            .field("key_md5", &self.md5_b64)
            .finish_non_exhaustive()
    }
}

impl SseKey {
    /// A key from its raw bytes.
    pub fn new(key: [u8; 32]) -> Self {
        let md5_b64 = B64.encode(Md5::digest(key));
        Self { key, md5_b64 }
    }

    /// The base64 MD5 of the key.
    pub fn key_md5(&self) -> &str {
        &self.md5_b64
    }

    /// What the object's metadata records of this key.
    pub fn stored(&self) -> ObjectEncryption {
        ObjectEncryption::SseC {
            key_md5: self.md5_b64.clone(),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key))
    }

    /// Seals `plain`: nonce ‖ ciphertext ‖ tag.
    pub fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, S3Error> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .cipher()
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut out[NONCE_LEN..])
            .map_err(|_| S3Error::Internal("cannot encrypt the object's data".into()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens data sealed by [`Self::encrypt`] with this key.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>, S3Error> {
        let bad = || {
            S3Error::Internal(
                "the object's stored data cannot be decrypted with the given key".into(),
            )
        };
        if sealed.len() < OVERHEAD {
            return Err(bad());
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut out = ciphertext.to_vec();
        self.cipher()
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                b"",
                &mut out,
                Tag::from_slice(tag),
            )
            .map_err(|_| bad())?;
        Ok(out)
    }
}

/// Seals `data` when `key` is given; else returns it as is.
pub fn seal(key: Option<&SseKey>, data: Bytes) -> Result<Bytes, S3Error> {
    match key {
        Some(k) => k.encrypt(&data).map(Bytes::from),
        None => Ok(data),
    }
}

/// Opens `data` when `key` is given; else returns it as is. Empty stored data is an empty
/// object (a sealed unit is never empty: a multipart upload of empty parts has no unit at all).
pub fn open(key: Option<&SseKey>, data: Bytes) -> Result<Bytes, S3Error> {
    match key {
        Some(k) if !data.is_empty() => k.decrypt(&data).map(Bytes::from),
        _ => Ok(data),
    }
}

/// The SSE-C key of a request (`x-amz-server-side-encryption-customer-*`), if it gives one.
pub fn request_key(h: &HeaderMap) -> Result<Option<SseKey>, S3Error> {
    let key = parse_key(h, REQUEST_PREFIX)?;
    if key.is_some() && h.contains_key(SSE_HEADER) {
        return Err(S3Error::InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified".into(),
        ));
    }
    Ok(key)
}

/// The SSE-C key of the source of a copy (`x-amz-copy-source-server-side-encryption-customer-*`).
pub fn copy_source_key(h: &HeaderMap) -> Result<Option<SseKey>, S3Error> {
    parse_key(h, COPY_SOURCE_PREFIX)
}

fn parse_key(h: &HeaderMap, prefix: &str) -> Result<Option<SseKey>, S3Error> {
    let get = |n: &str| {
        h.get(format!("{prefix}{n}"))
            .map(|v| v.to_str().map(str::trim).unwrap_or("\u{fffd}"))
    };
    let (algorithm, key, md5) = (get("algorithm"), get("key"), get("key-md5"));
    if algorithm.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    let invalid = |m: &str| Err(S3Error::InvalidArgument(m.to_string()));
    if algorithm != Some(ALGORITHM) {
        return invalid("Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm (AES256).");
    }
    let Some(key) = key else {
        return invalid("Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.");
    };
    let Some(md5) = md5 else {
        return invalid("Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.");
    };
    let raw = B64
        .decode(key)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok());
    let Some(raw) = raw else {
        return invalid("The secret key was invalid for the specified algorithm: it must be the base64 encoding of 32 bytes.");
    };
    let key = SseKey::new(raw);
    let given_md5 = B64.decode(md5).ok();
    if given_md5.as_deref() != Some(Md5::digest(raw).as_slice()) {
        return invalid(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        );
    }
    Ok(Some(key))
}

/// The key to read (or copy from) an object stored with encryption `stored`, given the key of
/// the request: none for a plain object, the matching key for an SSE-C one.
pub fn key_for_read(
    stored: Option<&ObjectEncryption>,
    given: Option<SseKey>,
) -> Result<Option<SseKey>, S3Error> {
    match (stored, given) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(S3Error::InvalidRequest(
            "The encryption parameters are not applicable to this object.".into(),
        )),
        (Some(ObjectEncryption::SseC { .. }), None) => Err(S3Error::InvalidRequest(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.".into(),
        )),
        (Some(ObjectEncryption::SseC { key_md5 }), Some(k)) if *key_md5 == k.md5_b64 => Ok(Some(k)),
        (Some(ObjectEncryption::SseC { .. }), Some(_)) => Err(S3Error::AccessDenied(
            "The SSE-C key provided does not match the key the object was stored with.".into(),
        )),
    }
}

/// The key to write a part of a multipart upload created with encryption `upload`, given the
/// key of the part request: the same key as at CreateMultipartUpload, or none for both.
pub fn key_for_part(
    upload: Option<&ObjectEncryption>,
    given: Option<SseKey>,
) -> Result<Option<SseKey>, S3Error> {
    match (upload, given) {
        (None, None) => Ok(None),
        (Some(ObjectEncryption::SseC { key_md5 }), Some(k)) if *key_md5 == k.md5_b64 => Ok(Some(k)),
        (Some(_), None) => Err(S3Error::InvalidRequest(
            "The multipart upload was initiated with SSE-C: each part must be sent with the same customer-provided key.".into(),
        )),
        _ => Err(S3Error::InvalidArgument(
            "The provided encryption parameters did not match the ones used originally to initiate the multipart upload.".into(),
        )),
    }
}

/// Adds the SSE-C answer headers (algorithm and key MD5) of an object encrypted with `enc`.
pub fn response_headers(
    mut resp: http::response::Builder,
    enc: Option<&ObjectEncryption>,
) -> http::response::Builder {
    if let Some(ObjectEncryption::SseC { key_md5 }) = enc {
        resp = resp
            .header(format!("{REQUEST_PREFIX}algorithm"), ALGORITHM)
            .header(format!("{REQUEST_PREFIX}key-md5"), key_md5.as_str());
    }
    resp
}

/// The ETag of data whose MD5 is `md5_hex`, stored encrypted with `key` or not.
pub fn etag(key: Option<&SseKey>, md5_hex: String) -> String {
    match key {
        Some(_) => hex::encode(rand::random::<[u8; 16]>()),
        None => md5_hex,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(
        prefix: &str,
        algo: Option<&str>,
        key: Option<&str>,
        md5: Option<&str>,
    ) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in [("algorithm", algo), ("key", key), ("key-md5", md5)] {
            if let Some(v) = v {
                h.insert(
                    http::HeaderName::from_bytes(format!("{prefix}{n}").as_bytes()).expect("name"),
                    v.parse().expect("value"),
                );
            }
        }
        h
    }

    fn invalid_argument(r: Result<Option<SseKey>, S3Error>) -> bool {
        matches!(r, Err(S3Error::InvalidArgument(_)))
    }

    #[test]
    fn parses_and_checks_headers() {
        let raw = [7u8; 32];
        let k = B64.encode(raw);
        let m = B64.encode(Md5::digest(raw));
        let p = REQUEST_PREFIX;
        let key = request_key(&headers(p, Some("AES256"), Some(&k), Some(&m)))
            .expect("valid")
            .expect("a key");
        assert_eq!(key.key_md5(), m);
        assert!(
            !format!("{key:?}").contains(&k),
            "Debug must not show the key"
        );
        assert!(request_key(&HeaderMap::new()).expect("none").is_none());
        // Only the copy-source headers: no key for the destination.
        let src = headers(COPY_SOURCE_PREFIX, Some("AES256"), Some(&k), Some(&m));
        assert!(request_key(&src).expect("none").is_none());
        assert!(copy_source_key(&src).expect("valid").is_some());
        for (a, kk, mm) in [
            (None, Some(k.as_str()), Some(m.as_str())),
            (Some("AES128"), Some(&k), Some(&m)),
            (Some("AES256"), None, Some(&m)),
            (Some("AES256"), Some(&k), None),
            (Some("AES256"), Some("bm90IGEga2V5"), Some(&m)),
            (Some("AES256"), Some("%%%"), Some(&m)),
            (Some("AES256"), Some(&k), Some("AAAAAAAAAAAAAAAAAAAAAA==")),
            (Some("AES256"), Some(&k), Some("not base64!")),
        ] {
            assert!(
                invalid_argument(request_key(&headers(p, a, kk, mm))),
                "{a:?} {kk:?} {mm:?}"
            );
        }
        let mut with_sse = headers(p, Some("AES256"), Some(&k), Some(&m));
        with_sse.insert(SSE_HEADER, "AES256".parse().expect("value"));
        assert!(invalid_argument(request_key(&with_sse)));
    }

    #[test]
    fn seal_and_open() {
        let key = SseKey::new([1; 32]);
        let plain = b"some secret data".repeat(100);
        let a = key.encrypt(&plain).expect("encrypt");
        let b = key.encrypt(&plain).expect("encrypt");
        assert_eq!(a.len(), plain.len() + OVERHEAD);
        assert_ne!(a, b, "a fresh nonce for each unit");
        assert!(!a.windows(16).any(|w| w == &plain[..16]));
        assert_eq!(key.decrypt(&a).expect("decrypt"), plain);
        assert_eq!(key.decrypt(&key.encrypt(b"").expect("e")).expect("d"), b"");
        assert!(SseKey::new([2; 32]).decrypt(&a).is_err());
        let mut tampered = a.clone();
        tampered[20] ^= 1;
        assert!(key.decrypt(&tampered).is_err());
        assert!(key.decrypt(&a[..OVERHEAD - 1]).is_err());
    }

    #[test]
    fn read_and_part_rules() {
        let key = SseKey::new([3; 32]);
        let other = SseKey::new([4; 32]);
        let stored = key.stored();
        assert!(matches!(key_for_read(None, None), Ok(None)));
        assert!(matches!(
            key_for_read(None, Some(key.clone())),
            Err(S3Error::InvalidRequest(_))
        ));
        assert!(matches!(
            key_for_read(Some(&stored), None),
            Err(S3Error::InvalidRequest(_))
        ));
        assert!(matches!(
            key_for_read(Some(&stored), Some(other.clone())),
            Err(S3Error::AccessDenied(_))
        ));
        assert!(matches!(
            key_for_read(Some(&stored), Some(key.clone())),
            Ok(Some(_))
        ));
        assert!(matches!(key_for_part(None, None), Ok(None)));
        assert!(matches!(
            key_for_part(Some(&stored), Some(key.clone())),
            Ok(Some(_))
        ));
        assert!(key_for_part(Some(&stored), None).is_err());
        assert!(key_for_part(Some(&stored), Some(other)).is_err());
        assert!(key_for_part(None, Some(key)).is_err());
    }
}
