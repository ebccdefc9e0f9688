//! Fixed-size identifiers: [`Hash`] (32 bytes, BLAKE2 or SHA-256 output), [`Uuid`] (32 random
//! bytes) and [`NodeId`] (a node's Ed25519 public key). All are shown as lowercase hex; `short()`
//! gives the 16-hex-character prefix used in CLI tables.

use std::fmt;

use blake2::{Blake2b512, Digest};
use serde::{Deserialize, Serialize};

/// Error returned when a hex string is not a valid 32-byte identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid identifier {input:?}: expected 64 hex characters")]
pub struct ParseIdError {
    pub input: String,
}

/// Declares a 32-byte identifier newtype with hex display, parsing and serde as bytes.
macro_rules! fixed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Builds an identifier from a slice; `None` unless it is exactly 32 bytes.
            pub fn try_from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 32]>::try_from(bytes).ok().map(Self)
            }
            /// The raw bytes.
            pub fn as_slice(&self) -> &[u8] {
                &self.0
            }
            /// Full lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// First 8 bytes as hex, for human-facing tables.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..8])
            }
            /// Parses 64 hex characters.
            pub fn from_hex(s: &str) -> Result<Self, ParseIdError> {
                let err = || ParseIdError { input: s.to_string() };
                let v = hex::decode(s.trim()).map_err(|_| err())?;
                Self::try_from_slice(&v).ok_or_else(err)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let buf: serde_bytes::ByteBuf = serde_bytes::ByteBuf::deserialize(d)?;
                Self::try_from_slice(&buf).ok_or_else(|| {
                    serde::de::Error::invalid_length(buf.len(), &"32 bytes")
                })
            }
        }
    };
}

fixed_id!(
    /// A 32-byte content or partition hash.
    Hash
);
fixed_id!(
    /// A random 32-byte identifier (bucket ids, version ids, upload ids).
    Uuid
);
fixed_id!(
    /// A node's identity: its Ed25519 public key.
    NodeId
);

impl Uuid {
    /// A new random identifier.
    pub fn random() -> Self {
        Self(rand::random())
    }
}

/// BLAKE2b-512 truncated to 32 bytes: the hash of block contents and of partition keys.
pub fn blake2sum(data: &[u8]) -> Hash {
    let full = Blake2b512::digest(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&full[..32]);
    Hash(out)
}

/// SHA-256 of `data`.
pub fn sha256sum(data: &[u8]) -> Hash {
    Hash(sha2::Sha256::digest(data).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_short() {
        let h = blake2sum(b"hello");
        let parsed: Hash = h.to_hex().parse().expect("valid hex");
        assert_eq!(parsed, h);
        assert_eq!(h.short().len(), 16);
        assert!(h.to_hex().starts_with(&h.short()));
    }

    #[test]
    fn rejects_bad_hex() {
        assert!(Hash::from_hex("zz").is_err());
        assert!(Hash::from_hex("abcd").is_err());
        assert!(NodeId::from_hex(&"0".repeat(66)).is_err());
    }

    #[test]
    fn serde_as_bytes() {
        let id = Uuid::random();
        let enc = rmp_serde::to_vec(&id).expect("encode");
        assert_eq!(enc.len(), 2 + 32, "bin8 header + 32 bytes");
        let dec: Uuid = rmp_serde::from_slice(&enc).expect("decode");
        assert_eq!(dec, id);
        let short = rmp_serde::to_vec(&serde_bytes::Bytes::new(&[1, 2, 3])).expect("encode");
        assert!(rmp_serde::from_slice::<Uuid>(&short).is_err());
    }

    #[test]
    fn blake2_known_value() {
        // BLAKE2b-512("") starts with 786a02f7...
        assert!(blake2sum(b"").to_hex().starts_with("786a02f742015903"));
    }
}
