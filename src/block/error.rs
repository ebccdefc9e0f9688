//! Errors of the block store. Every message names the file or directory concerned and, where the
//! operator has something to do, says what.

use std::path::PathBuf;

use crate::util::encode::EncodeError;
use crate::util::ids::{Hash, Uuid};

/// Errors of the local block store and of block encoding.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A file system operation failed.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A stored file does not hold the block its name says; it was moved aside when possible.
    #[error(
        "block {hash} is corrupted on disk ({}): its content does not match its hash; the file was \
         moved aside (unless its directory is read-only) and the block must be fetched from \
         another node",
        .path.display()
    )]
    Corrupted { hash: Hash, path: PathBuf },

    /// No data directory holds the block.
    #[error("block {hash} is not stored on this node")]
    NotFound { hash: Hash },

    /// A data directory is not the disk recorded in the metadata (DESIGN.md §8).
    #[error(
        "data directory {}: {reason}; refusing to start so that blocks are not written to the \
         wrong disk (or to the root file system under an unmounted mount point)",
        .dir.display()
    )]
    WrongDisk {
        dir: PathBuf,
        reason: WrongDiskReason,
    },

    /// The plaintext of a block does not hash to the expected value.
    #[error("block content hashes to {actual}, expected {expected}")]
    HashMismatch { expected: Hash, actual: Hash },

    /// The zstd data of a compressed block is invalid.
    #[error("cannot decompress block: {source}")]
    Decompress { source: std::io::Error },

    /// Decompressing a block would produce more than the allowed number of bytes.
    #[error("decompressed block exceeds {limit} bytes (the largest block this node accepts)")]
    TooLarge { limit: usize },

    /// The data layout file in the metadata directory cannot be read or written.
    #[error(
        "cannot use the data layout file {}: {source}; if it is damaged, restore it from a \
         backup (deleting it makes every data directory look like a foreign disk)",
        .path.display()
    )]
    LayoutFile { path: PathBuf, source: EncodeError },

    /// The data layout file decodes but is inconsistent.
    #[error(
        "the data layout file {} is inconsistent ({problem}); restore it from a backup",
        .path.display()
    )]
    LayoutInvalid {
        path: PathBuf,
        problem: &'static str,
    },

    /// The `data_dir` configuration cannot be used.
    #[error("invalid `data_dir` configuration: {problem}")]
    Config { problem: DataDirProblem },

    /// The metadata database failed.
    #[error("block store metadata error: {message}")]
    Db { message: String },

    /// No cluster layout: blocks have nowhere to go.
    #[error("no cluster layout yet: assign roles with `garage layout assign` and apply them")]
    NoLayout,

    /// Talking to other nodes failed.
    #[error("block transfer failed: {message}")]
    Rpc { message: String },

    /// No replica could provide a valid copy.
    #[error("block {hash:?} is unavailable from every replica: {errors}")]
    Unavailable { hash: Hash, errors: String },

    /// A blocking task of the block store panicked or was cancelled.
    #[error("block store task failed: {source}")]
    Task { source: tokio::task::JoinError },
}

/// Why a data directory is refused at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrongDiskReason {
    /// The directory is recorded in the metadata but its marker file is missing.
    #[error(
        "the marker file {} is missing although this directory was initialised before: the disk \
         is probably not mounted; mount it, or remove the directory from `data_dir`",
        .marker.display()
    )]
    MissingMarker { marker: PathBuf },

    /// The marker holds another id than the one recorded for this directory.
    #[error(
        "its marker holds id {}, but this node recorded id {} for it: another disk is mounted \
         here (disks swapped?); mount the right disk",
        .found.short(),
        .expected.short()
    )]
    MarkerMismatch { expected: Uuid, found: Uuid },

    /// A directory new to this node holds the marker of another node or data layout.
    #[error(
        "it holds the marker {} (id {}) of another Garage node or of a lost metadata directory; \
         if you really want to reuse this disk, delete that marker file",
        .marker.display(),
        .found.short()
    )]
    ForeignMarker { marker: PathBuf, found: Uuid },

    /// The marker file exists but does not contain an id.
    #[error(
        "the marker file {} does not contain a data directory id; restore it or delete it if the \
         directory is new",
        .marker.display()
    )]
    UnreadableMarker { marker: PathBuf },

    /// Two configured directories hold the same marker (the same disk reached twice).
    #[error(
        "it holds the same marker as {}: the same disk is listed twice (bind mount or symlink?)",
        .other.display()
    )]
    DuplicateMarker { other: PathBuf },
}

/// What is wrong with the `data_dir` list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataDirProblem {
    #[error("the list of data directories is empty")]
    Empty,
    #[error("every data directory is read-only: new blocks need at least one writable directory")]
    NoWritable,
    #[error("{count} data directories are listed; at most {max} are supported")]
    TooMany { count: usize, max: usize },
    #[error("{} is listed twice", .path.display())]
    Duplicate { path: PathBuf },
    #[error(
        "{} has capacity 0: give it a capacity, or set `read_only = true` to only read from it",
        .path.display()
    )]
    ZeroCapacity { path: PathBuf },
}

impl BlockError {
    /// Builds an [`BlockError::Io`] for `path`; use with `map_err(BlockError::io(&path))`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BlockError + '_ {
        move |source| BlockError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
