//! Block store (DESIGN.md §8), local part: the files that hold data blocks on this node.
//!
//! This module owns:
//! - the encoding of a block ([`data_block::DataBlock`]: plaintext or zstd, named by the BLAKE2
//!   hash of the plaintext, compressed only when that makes it smaller);
//! - the placement of block files over the configured data directories ([`dir_layout`]: each of
//!   the 65536 `<hash[0]>/<hash[1]>` leaf directories is assigned to one writable directory in
//!   proportion to its capacity by [`slots`], persisted in `metadata_dir/data_layout`), and the
//!   marker file that proves each directory is the disk recorded in the metadata (`marker.rs`);
//! - the disk I/O on block files ([`local::LocalStore`]): atomic writes, verified reads that move
//!   corrupt files aside, deletion, and an ordered listing for scrub and repair.
//!
//! File names: `<data_dir>/<hash[0] hex>/<hash[1] hex>/<hash hex>` for a plain block, the same
//! with a `.zst` suffix for a compressed one. Temporary files (`<hash hex>.tmp<random>`) and
//! corrupt files moved aside (`<name>.corrupted`) live beside them and are never listed.
//!
//! On top: [`manager::BlockManager`] replicates blocks (put with write quorum, get from the
//! closest replica with hedged fallback) and answers other nodes; [`rc`] keeps local reference
//! counts in step with the `block_ref` table; [`resync`] fetches missing blocks, deletes
//! unreferenced ones after their delay, offloads, and scrubs.

pub mod data_block;
pub mod dir_layout;
pub mod error;
pub mod list;
pub mod local;
pub mod manager;
mod marker;
pub mod rc;
pub mod resync;
pub mod slots;

#[cfg(test)]
mod local_tests;

pub use data_block::DataBlock;
pub use error::{BlockError, DataDirProblem, WrongDiskReason};
pub use list::{BlockFile, BlockLister};
pub use local::{LocalStore, LocalStoreConfig};

/// Largest plaintext accepted by default when decompressing a block: the largest block size
/// in common use (64 MiB) plus 1 MiB of margin. A store configured with a larger `block_size`
/// uses that size plus the same margin instead (see [`LocalStoreConfig::max_plain_len`]).
pub const DEFAULT_MAX_PLAIN_LEN: usize = (64 << 20) + DECOMPRESS_MARGIN;

/// Margin added to the configured block size when bounding decompression.
pub const DECOMPRESS_MARGIN: usize = 1 << 20;

/// Name of the file, in `metadata_dir`, that records the data directories and block placement.
pub const DATA_LAYOUT_FILE: &str = "data_layout";

/// Name of the marker file at the root of each data directory.
pub const MARKER_FILE: &str = "garage-marker";

/// Suffix of compressed block files.
pub const COMPRESSED_SUFFIX: &str = ".zst";

/// Suffix given to a corrupt block file when it is moved aside.
pub const CORRUPTED_SUFFIX: &str = ".corrupted";
