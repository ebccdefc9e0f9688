//! The marker file at the root of each data directory (DESIGN.md §8).
//!
//! Format: one line holding the directory's 32-byte random id in hex (64 characters), written
//! atomically. The same id is recorded in `metadata_dir/data_layout`; at start a missing or
//! different marker means that another disk (or no disk) is mounted at that path.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::error::{BlockError, WrongDiskReason};
use super::MARKER_FILE;
use crate::util::file::write_atomic;
use crate::util::ids::Uuid;

/// Path of the marker file of data directory `dir`.
pub(super) fn marker_path(dir: &Path) -> PathBuf {
    dir.join(MARKER_FILE)
}

/// Reads the marker of `dir`: `None` when the file (or the directory) does not exist.
pub(super) fn read_marker(dir: &Path) -> Result<Option<Uuid>, BlockError> {
    let path = marker_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None)
        }
        Err(e) if e.kind() == ErrorKind::InvalidData => {
            return Err(BlockError::WrongDisk {
                dir: dir.to_path_buf(),
                reason: WrongDiskReason::UnreadableMarker { marker: path },
            })
        }
        Err(source) => return Err(BlockError::Io { path, source }),
    };
    match Uuid::from_hex(text.trim()) {
        Ok(id) => Ok(Some(id)),
        Err(_) => Err(BlockError::WrongDisk {
            dir: dir.to_path_buf(),
            reason: WrongDiskReason::UnreadableMarker { marker: path },
        }),
    }
}

/// Creates `dir` if needed and writes its marker atomically.
pub(super) fn write_marker(dir: &Path, id: &Uuid) -> Result<(), BlockError> {
    std::fs::create_dir_all(dir).map_err(BlockError::io(dir))?;
    let path = marker_path(dir);
    write_atomic(&path, format!("{}\n", id.to_hex()).as_bytes(), Some(0o644))
        .map_err(|source| BlockError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip_and_format() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        assert_eq!(read_marker(&dir).expect("absent dir"), None);
        let id = Uuid([0xab; 32]);
        write_marker(&dir, &id).expect("write");
        assert_eq!(read_marker(&dir).expect("read"), Some(id));
        let text = std::fs::read_to_string(marker_path(&dir)).expect("read file");
        assert_eq!(text, format!("{}\n", "ab".repeat(32)));
    }

    #[test]
    fn garbage_marker_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(marker_path(tmp.path()), "hello").expect("write");
        let err = read_marker(tmp.path()).expect_err("garbage");
        assert!(matches!(
            err,
            BlockError::WrongDisk {
                reason: WrongDiskReason::UnreadableMarker { .. },
                ..
            }
        ));
    }
}
