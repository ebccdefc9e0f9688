//! The few NaCl/libsodium primitives the handshake and box-stream are built from, expressed with
//! the RustCrypto / dalek crates so that their byte-level behaviour matches libsodium:
//!
//! - `auth`: libsodium `crypto_auth`, i.e. HMAC-SHA-512 truncated to its first 32 bytes;
//! - `sha256` over a concatenation of parts;
//! - Ed25519 → Curve25519 conversion of public keys (birational map to the Montgomery form) and of
//!   secret keys (the clamped first half of SHA-512 of the seed, as
//!   `crypto_sign_ed25519_sk_to_curve25519`);
//! - X25519 Diffie-Hellman that rejects an all-zero (non-contributory) result, as libsodium's
//!   `crypto_scalarmult` does;
//! - `crypto_secretbox` (XSalsa20-Poly1305): combined form (`tag || ciphertext`) and detached form.
//!
//! Nothing here panics on peer input: failures are reported as `None` / `false`.

use crypto_secretbox::aead::{Aead, AeadInPlace, KeyInit};
use crypto_secretbox::{Key, Nonce, Tag, XSalsa20Poly1305};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Length of a secretbox authentication tag (Poly1305).
pub const MAC_LEN: usize = 16;

/// A 24-byte secretbox nonce.
pub type NonceBytes = [u8; 24];

/// The all-zero nonce used by the handshake boxes (each key is used for exactly one box).
pub const ZERO_NONCE: NonceBytes = [0u8; 24];

type HmacSha512 = Hmac<Sha512>;

/// libsodium `crypto_auth`: HMAC-SHA-512 of `msg` under `key`, truncated to 32 bytes.
pub fn auth(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut mac = hmac_with(key);
    mac.update(msg);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 32];
    out.copy_from_slice(&full[..32]);
    out
}

/// libsodium `crypto_auth_verify`: constant-time check of a 32-byte truncated HMAC-SHA-512 tag.
pub fn auth_verify(key: &[u8; 32], msg: &[u8], tag: &[u8]) -> bool {
    if tag.len() != 32 {
        return false;
    }
    let mut mac = hmac_with(key);
    mac.update(msg);
    mac.verify_truncated_left(tag).is_ok()
}

fn hmac_with(key: &[u8; 32]) -> HmacSha512 {
    // HMAC accepts keys of any length: this constructor cannot fail for a 32-byte key.
    match <HmacSha512 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Converts an Ed25519 public key to its Curve25519 (Montgomery u-coordinate) form.
/// `None` if the bytes are not a valid compressed Edwards point.
pub fn ed25519_pk_to_curve25519(pk: &[u8; 32]) -> Option<[u8; 32]> {
    let vk = VerifyingKey::from_bytes(pk).ok()?;
    Some(vk.to_montgomery().to_bytes())
}

/// Converts an Ed25519 secret key to a Curve25519 secret scalar (clamped, as libsodium does).
pub fn ed25519_sk_to_curve25519(sk: &SigningKey) -> [u8; 32] {
    let mut s = sk.to_scalar_bytes();
    s[0] &= 248;
    s[31] &= 127;
    s[31] |= 64;
    s
}

/// Curve25519 public key of a Curve25519 secret scalar.
#[cfg(test)]
pub fn curve25519_public(sk: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*sk, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// X25519 shared secret; `None` when the result is all zeros (the peer sent a low-order point).
pub fn dh(sk: &[u8; 32], pk: &[u8; 32]) -> Option<[u8; 32]> {
    let shared = x25519_dalek::x25519(*sk, *pk);
    let acc = shared.iter().fold(0u8, |acc, b| acc | b);
    if acc == 0 {
        None
    } else {
        Some(shared)
    }
}

fn cipher(key: &[u8; 32]) -> XSalsa20Poly1305 {
    XSalsa20Poly1305::new(Key::from_slice(key))
}

/// `crypto_secretbox_easy`: returns `tag (16) || ciphertext`.
pub fn seal(key: &[u8; 32], nonce: &NonceBytes, msg: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; MAC_LEN + msg.len()];
    out[MAC_LEN..].copy_from_slice(msg);
    let mac = seal_detached(key, nonce, &mut out[MAC_LEN..]);
    out[..MAC_LEN].copy_from_slice(&mac);
    out
}

/// `crypto_secretbox_open_easy`: `None` if the box is too short or its MAC does not verify.
pub fn open(key: &[u8; 32], nonce: &NonceBytes, boxed: &[u8]) -> Option<Vec<u8>> {
    if boxed.len() < MAC_LEN {
        return None;
    }
    cipher(key).decrypt(Nonce::from_slice(nonce), boxed).ok()
}

/// `crypto_secretbox_detached`: encrypts `buf` in place and returns its MAC.
pub fn seal_detached(key: &[u8; 32], nonce: &NonceBytes, buf: &mut [u8]) -> [u8; MAC_LEN] {
    match cipher(key).encrypt_in_place_detached(Nonce::from_slice(nonce), b"", buf) {
        Ok(tag) => {
            let mut out = [0u8; MAC_LEN];
            out.copy_from_slice(&tag);
            out
        }
        // The only failure of this implementation is non-empty associated data.
        Err(_) => unreachable!("secretbox sealing without associated data cannot fail"),
    }
}

/// `crypto_secretbox_open_detached`: decrypts `buf` in place if `mac` verifies; on failure `buf`
/// is left as ciphertext and `false` is returned.
pub fn open_detached(key: &[u8; 32], nonce: &NonceBytes, buf: &mut [u8], mac: &[u8]) -> bool {
    if mac.len() != MAC_LEN {
        return false;
    }
    cipher(key)
        .decrypt_in_place_detached(Nonce::from_slice(nonce), b"", buf, Tag::from_slice(mac))
        .is_ok()
}

/// Adds one to a 24-byte big-endian counter (wrapping), as box-stream nonces do.
pub fn increment_nonce(nonce: &mut NonceBytes) {
    for b in nonce.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_increment_carries_big_endian() {
        let mut n = [0u8; 24];
        n[23] = 0xff;
        n[22] = 0xff;
        increment_nonce(&mut n);
        assert_eq!(n[21], 1);
        assert_eq!(n[22], 0);
        assert_eq!(n[23], 0);
        let mut all = [0xffu8; 24];
        increment_nonce(&mut all);
        assert_eq!(all, [0u8; 24]);
    }

    #[test]
    fn detached_and_combined_boxes_agree() {
        let key = [7u8; 32];
        let nonce = [9u8; 24];
        let msg = b"hello box".to_vec();
        let combined = seal(&key, &nonce, &msg);
        let mut buf = msg.clone();
        let mac = seal_detached(&key, &nonce, &mut buf);
        assert_eq!(&combined[..MAC_LEN], &mac[..]);
        assert_eq!(&combined[MAC_LEN..], &buf[..]);
        assert!(open_detached(&key, &nonce, &mut buf, &mac));
        assert_eq!(buf, msg);
        assert_eq!(open(&key, &nonce, &combined), Some(msg));
        assert_eq!(open(&key, &nonce, &combined[..10]), None);
    }

    #[test]
    fn auth_is_truncated_hmac_sha512() {
        let key = [1u8; 32];
        let tag = auth(&key, b"msg");
        assert!(auth_verify(&key, b"msg", &tag));
        assert!(!auth_verify(&key, b"msh", &tag));
        assert!(!auth_verify(&key, b"msg", &tag[..31]));
    }

    #[test]
    fn dh_rejects_low_order_points() {
        let sk = [5u8; 32];
        assert_eq!(dh(&sk, &[0u8; 32]), None);
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(dh(&sk, &one), None);
    }
}
