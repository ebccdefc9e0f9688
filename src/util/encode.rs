//! Versioned encoding of persisted values: `VERSION_MARKER || msgpack(value)`.
//!
//! Each persisted type names its marker and its previous format. Decoding tries the current
//! marker first, then the previous format (recursively) and migrates the result forward, so a
//! value written by any older release stays readable. The first format of a type uses
//! [`NoPrevious`] as its predecessor.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Errors of versioned encoding.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode {type_name}: {source}")]
    Encode {
        type_name: &'static str,
        source: rmp_serde::encode::Error,
    },
    #[error("cannot decode {type_name}: {source}")]
    Decode {
        type_name: &'static str,
        source: rmp_serde::decode::Error,
    },
    #[error("no known version marker at the start of the data ({len} bytes)")]
    UnknownVersion { len: usize },
}

/// A type with a versioned on-disk / on-wire format.
pub trait Migrate: Serialize + DeserializeOwned + Sized {
    /// Bytes prepended to every encoded value of this version. Must differ from the markers of
    /// every other version of the same type.
    const VERSION_MARKER: &'static [u8];
    /// The format this one replaces ([`NoPrevious`] for a first version).
    type Previous: Migrate;
    /// Converts a value of the previous format into this one.
    fn migrate(previous: Self::Previous) -> Self;

    /// Encodes with the version marker (struct fields by name, so fields can be added later).
    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Self::VERSION_MARKER.to_vec();
        let body = rmp_serde::to_vec_named(self).map_err(|source| EncodeError::Encode {
            type_name: std::any::type_name::<Self>(),
            source,
        })?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes a value written by this version or any previous one.
    fn decode(bytes: &[u8]) -> Result<Self, EncodeError> {
        match bytes.strip_prefix(Self::VERSION_MARKER) {
            Some(body) => rmp_serde::from_slice(body).map_err(|source| EncodeError::Decode {
                type_name: std::any::type_name::<Self>(),
                source,
            }),
            None => Self::Previous::decode(bytes).map(Self::migrate),
        }
    }
}

/// The predecessor of a first format: it never decodes anything.
#[derive(Serialize, Deserialize)]
pub enum NoPrevious {}

impl Migrate for NoPrevious {
    const VERSION_MARKER: &'static [u8] = b"";
    type Previous = NoPrevious;
    fn migrate(previous: NoPrevious) -> Self {
        previous
    }
    fn decode(bytes: &[u8]) -> Result<Self, EncodeError> {
        Err(EncodeError::UnknownVersion { len: bytes.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct ConfigV1 {
        name: String,
    }
    impl Migrate for ConfigV1 {
        const VERSION_MARKER: &'static [u8] = b"Gtst1";
        type Previous = NoPrevious;
        fn migrate(p: NoPrevious) -> Self {
            match p {}
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct ConfigV2 {
        name: String,
        replicas: u8,
    }
    impl Migrate for ConfigV2 {
        const VERSION_MARKER: &'static [u8] = b"Gtst2";
        type Previous = ConfigV1;
        fn migrate(p: ConfigV1) -> Self {
            Self {
                name: p.name,
                replicas: 3,
            }
        }
    }

    #[test]
    fn current_version_round_trips() {
        let v = ConfigV2 {
            name: "x".into(),
            replicas: 2,
        };
        let enc = v.encode().expect("encode");
        assert!(enc.starts_with(b"Gtst2"));
        assert_eq!(ConfigV2::decode(&enc).expect("decode"), v);
    }

    #[test]
    fn older_version_is_migrated() {
        let old = ConfigV1 { name: "old".into() }.encode().expect("encode");
        let v = ConfigV2::decode(&old).expect("decode through migration");
        assert_eq!(
            v,
            ConfigV2 {
                name: "old".into(),
                replicas: 3
            }
        );
    }

    #[test]
    fn golden_bytes() {
        let enc = ConfigV1 { name: "a".into() }.encode().expect("encode");
        // marker, fixmap(1), fixstr "name", fixstr "a"
        assert_eq!(enc, b"Gtst1\x81\xa4name\xa1a".to_vec());
    }

    #[test]
    fn unknown_marker_and_garbage_are_errors() {
        assert!(matches!(
            ConfigV2::decode(b"nonsense"),
            Err(EncodeError::UnknownVersion { .. })
        ));
        assert!(ConfigV2::decode(b"Gtst2\xc1").is_err());
        assert!(ConfigV2::decode(b"").is_err());
    }
}
