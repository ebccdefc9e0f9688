//! A node's long-term Ed25519 key pair, stored in `metadata_dir/node_key` (64 bytes: the 32-byte
//! seed followed by the 32-byte public key, file mode 0600) and `metadata_dir/node_key.pub` (the
//! 32-byte public key, which is the node id). Created on first start, reused afterwards.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::util::file::write_atomic;
use crate::util::ids::NodeId;

/// File name of the secret key inside `metadata_dir`.
pub const SECRET_KEY_FILE: &str = "node_key";
/// File name of the public key inside `metadata_dir`.
pub const PUBLIC_KEY_FILE: &str = "node_key.pub";

/// Why the node key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    #[error("cannot read node key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write node key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("node key file {path} is corrupt ({reason}); restore it from a backup, or delete it to give this node a new identity")]
    Corrupt { path: PathBuf, reason: String },
    #[error("no node key in {dir}: has `garage server` been started with this metadata_dir?")]
    Missing { dir: PathBuf },
}

/// A node's key pair.
#[derive(Clone, Debug)]
pub struct NodeKey {
    pub secret: SigningKey,
}

impl NodeKey {
    /// The node id (public key).
    pub fn id(&self) -> NodeId {
        NodeId(self.secret.verifying_key().to_bytes())
    }

    /// A fresh random key pair (used for throw-away CLI identities).
    pub fn generate() -> Self {
        Self {
            secret: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// Loads the key of `metadata_dir`, creating it if there is none.
    pub fn load_or_create(metadata_dir: &Path) -> Result<Self, NodeKeyError> {
        let path = metadata_dir.join(SECRET_KEY_FILE);
        if path.exists() {
            return Self::load(metadata_dir);
        }
        let key = Self::generate();
        let mut bytes = key.secret.to_bytes().to_vec();
        bytes.extend_from_slice(key.secret.verifying_key().as_bytes());
        write_atomic(&path, &bytes, Some(0o600)).map_err(|source| NodeKeyError::Write {
            path: path.clone(),
            source,
        })?;
        let pub_path = metadata_dir.join(PUBLIC_KEY_FILE);
        write_atomic(&pub_path, key.id().as_slice(), Some(0o644)).map_err(|source| {
            NodeKeyError::Write {
                path: pub_path,
                source,
            }
        })?;
        Ok(key)
    }

    /// Loads an existing key of `metadata_dir`.
    pub fn load(metadata_dir: &Path) -> Result<Self, NodeKeyError> {
        let path = metadata_dir.join(SECRET_KEY_FILE);
        let bytes = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                NodeKeyError::Missing {
                    dir: metadata_dir.to_path_buf(),
                }
            } else {
                NodeKeyError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let corrupt = |reason: &str| NodeKeyError::Corrupt {
            path: path.clone(),
            reason: reason.to_string(),
        };
        if bytes.len() != 64 {
            return Err(corrupt(&format!(
                "expected 64 bytes, found {}",
                bytes.len()
            )));
        }
        let seed: [u8; 32] = bytes[..32].try_into().map_err(|_| corrupt("short seed"))?;
        let secret = SigningKey::from_bytes(&seed);
        if secret.verifying_key().as_bytes() != &bytes[32..] {
            return Err(corrupt("public half does not match the secret half"));
        }
        Ok(Self { secret })
    }

    /// Reads only the public key (node id) of `metadata_dir`, as the CLI does to reach the
    /// local daemon.
    pub fn read_public(metadata_dir: &Path) -> Result<NodeId, NodeKeyError> {
        let path = metadata_dir.join(PUBLIC_KEY_FILE);
        let bytes = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                NodeKeyError::Missing {
                    dir: metadata_dir.to_path_buf(),
                }
            } else {
                NodeKeyError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        NodeId::try_from_slice(&bytes).ok_or_else(|| NodeKeyError::Corrupt {
            path,
            reason: format!("expected 32 bytes, found {}", bytes.len()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = NodeKey::load_or_create(dir.path()).expect("create");
        let b = NodeKey::load_or_create(dir.path()).expect("load");
        assert_eq!(a.id(), b.id());
        assert_eq!(NodeKey::read_public(dir.path()).expect("pub"), a.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_and_missing_keys_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            NodeKey::load(dir.path()),
            Err(NodeKeyError::Missing { .. })
        ));
        std::fs::write(dir.path().join(SECRET_KEY_FILE), b"short").expect("write");
        let e = NodeKey::load_or_create(dir.path()).expect_err("corrupt");
        assert!(e.to_string().contains("64 bytes"), "{e}");
        let mut bytes = vec![1u8; 64];
        bytes[40] = 0;
        std::fs::write(dir.path().join(SECRET_KEY_FILE), &bytes).expect("write");
        let e = NodeKey::load(dir.path()).expect_err("mismatch");
        assert!(e.to_string().contains("does not match"), "{e}");
    }
}
