//! Enumeration of the block files on disk, for scrub and `garage repair blocks`.
//!
//! The walk goes through the 65536 leaf directories in hash order and, within a leaf, sorts the
//! files of every data directory together, so blocks come out in increasing hash order and a
//! long scan can resume after the last hash it handled. A block present in several directories,
//! or in both encodings, comes out once per file. Temporary and moved-aside files are skipped.
//! The walk runs on a blocking thread and hands files over through a bounded channel: it goes no
//! faster than the consumer, and stops when the [`BlockLister`] is dropped.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::error::BlockError;
use super::slots::SLOTS;
use super::COMPRESSED_SUFFIX;
use crate::util::ids::Hash;

/// Files handed over ahead of the consumer.
const LIST_CHANNEL: usize = 256;

/// One block file found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockFile {
    pub hash: Hash,
    pub path: PathBuf,
    /// Whether this is the zstd (`.zst`) form.
    pub compressed: bool,
    /// Size of the file in bytes (the stored form).
    pub size: u64,
    /// Index of the data directory, in configuration order.
    pub dir: usize,
}

/// A running enumeration of block files, in increasing hash order.
pub struct BlockLister {
    rx: mpsc::Receiver<Result<BlockFile, BlockError>>,
}

impl BlockLister {
    /// The next file, an error about one leaf directory (the walk goes on after it), or `None`
    /// at the end.
    pub async fn next(&mut self) -> Option<Result<BlockFile, BlockError>> {
        self.rx.recv().await
    }
}

/// Starts walking `roots` (the data directories in configuration order) for blocks whose hash
/// is greater than `after` (all blocks if `None`).
pub(super) fn spawn_lister(roots: Vec<PathBuf>, after: Option<Hash>) -> BlockLister {
    let (tx, rx) = mpsc::channel(LIST_CHANNEL);
    tokio::task::spawn_blocking(move || walk(&roots, after, &tx));
    BlockLister { rx }
}

fn walk(roots: &[PathBuf], after: Option<Hash>, tx: &mpsc::Sender<Result<BlockFile, BlockError>>) {
    let first_slot = after.map_or(0, |h| super::dir_layout::DataLayout::slot_of(&h));
    for slot in first_slot..SLOTS {
        let mut files = Vec::new();
        for (dir, root) in roots.iter().enumerate() {
            let leaf = leaf_dir(root, slot);
            if let Err(e) = scan_leaf(&leaf, dir, &mut files) {
                if tx.blocking_send(Err(e)).is_err() {
                    return;
                }
            }
        }
        files.sort_by(|a: &BlockFile, b| {
            (a.hash, a.dir, a.compressed).cmp(&(b.hash, b.dir, b.compressed))
        });
        for f in files
            .into_iter()
            .filter(|f| after.is_none_or(|a| f.hash > a))
        {
            if tx.blocking_send(Ok(f)).is_err() {
                return;
            }
        }
    }
}

/// `root/<slot high byte hex>/<slot low byte hex>`.
pub(super) fn leaf_dir(root: &Path, slot: usize) -> PathBuf {
    root.join(format!("{:02x}", (slot >> 8) & 0xff))
        .join(format!("{:02x}", slot & 0xff))
}

/// Adds the block files of one leaf directory (absent is empty).
fn scan_leaf(leaf: &Path, dir: usize, out: &mut Vec<BlockFile>) -> Result<(), BlockError> {
    let entries = match std::fs::read_dir(leaf) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BlockError::io(leaf)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(BlockError::io(leaf))?;
        let name = entry.file_name();
        let Some((hash, compressed)) = name.to_str().and_then(parse_block_name) else {
            continue;
        };
        let path = entry.path();
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Deleted since the directory was read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BlockError::Io { path, source: e }),
        };
        if meta.is_file() {
            out.push(BlockFile {
                hash,
                path,
                compressed,
                size: meta.len(),
                dir,
            });
        }
    }
    Ok(())
}

/// Parses `<64 hex>` or `<64 hex>.zst`; anything else is not a block file.
pub(super) fn parse_block_name(name: &str) -> Option<(Hash, bool)> {
    let (hex, compressed) = match name.strip_suffix(COMPRESSED_SUFFIX) {
        Some(h) => (h, true),
        None => (name, false),
    };
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.len() != 64 || !hex.bytes().all(lower_hex) {
        return None;
    }
    Hash::from_hex(hex).ok().map(|h| (h, compressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_names() {
        let h = crate::util::ids::blake2sum(b"x");
        assert_eq!(parse_block_name(&h.to_hex()), Some((h, false)));
        assert_eq!(parse_block_name(&format!("{h}.zst")), Some((h, true)));
        assert_eq!(parse_block_name(&format!("{h}.zst.corrupted")), None);
        assert_eq!(parse_block_name(&format!("{h}.tmp1234")), None);
        assert_eq!(parse_block_name("garage-marker"), None);
        assert_eq!(parse_block_name(&h.to_hex().to_uppercase()), None);
        assert_eq!(leaf_dir(Path::new("/d"), 0xab01), PathBuf::from("/d/ab/01"));
    }
}
