//! [`LocalStore`]: the block files of this node, over its data directories.
//!
//! Invariants:
//! - a block file at its final name is complete: writes go to a temporary file in the same leaf
//!   directory, are fsynced when `data_fsync` is set, then renamed (and the directory fsynced);
//! - after a successful write the primary directory holds the block in exactly one encoding;
//! - read-only directories are read, never written (no marker, no block, no move-aside);
//! - a block is returned only after its hash was verified; a file that fails verification is
//!   renamed to `<name>.corrupted` so that the next read or write does not see it.
//!
//! Operations on the same block are serialised by striped locks (readers share, writers and
//! move-aside are exclusive), so a concurrent write of the other encoding cannot make a block
//! disappear. Every operation runs on a blocking thread; the async methods are thin wrappers.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;

use super::data_block::DataBlock;
use super::dir_layout::{open_layout, DataLayout};
use super::error::BlockError;
use super::list::{leaf_dir, spawn_lister, BlockFile, BlockLister};
use super::{COMPRESSED_SUFFIX, CORRUPTED_SUFFIX, DECOMPRESS_MARGIN, DEFAULT_MAX_PLAIN_LEN};
use crate::config::{Config, DataDir};
use crate::util::file::sync_dir;
use crate::util::ids::Hash;

/// Number of lock stripes (blocks are mapped to a stripe by one byte of their hash).
const LOCK_STRIPES: usize = 256;

/// What the local store needs from the configuration.
#[derive(Clone, Debug)]
pub struct LocalStoreConfig {
    pub metadata_dir: PathBuf,
    pub data_dirs: Vec<DataDir>,
    /// Fsync block files and their directories before a write returns.
    pub data_fsync: bool,
    /// Largest plaintext accepted when decompressing a stored block.
    pub max_plain_len: usize,
}

impl LocalStoreConfig {
    /// Takes the data directories, `data_fsync` and a decompression bound derived from
    /// `block_size` (at least [`DEFAULT_MAX_PLAIN_LEN`]) from the node's configuration.
    pub fn from_config(config: &Config) -> Self {
        let block = usize::try_from(config.block_size).unwrap_or(usize::MAX);
        LocalStoreConfig {
            metadata_dir: config.metadata_dir.clone(),
            data_dirs: config.data_dirs.clone(),
            data_fsync: config.data_fsync,
            max_plain_len: block
                .saturating_add(DECOMPRESS_MARGIN)
                .max(DEFAULT_MAX_PLAIN_LEN),
        }
    }
}

/// The block files of this node. Cheap to clone (shared state).
#[derive(Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

struct Inner {
    layout: DataLayout,
    fsync: bool,
    max_plain_len: usize,
    locks: Vec<RwLock<()>>,
}

impl LocalStore {
    /// Opens the store: checks every data directory's marker, adapts and persists the data
    /// layout, creates the markers of new directories. Fails with [`BlockError::WrongDisk`] if a
    /// known directory's marker is missing or different.
    pub async fn open(config: LocalStoreConfig) -> Result<LocalStore, BlockError> {
        let LocalStoreConfig {
            metadata_dir,
            data_dirs,
            data_fsync,
            max_plain_len,
        } = config;
        let layout = tokio::task::spawn_blocking(move || open_layout(&metadata_dir, &data_dirs))
            .await
            .map_err(|source| BlockError::Task { source })??;
        let inner = Inner {
            layout,
            fsync: data_fsync,
            max_plain_len,
            locks: (0..LOCK_STRIPES).map(|_| RwLock::new(())).collect(),
        };
        Ok(LocalStore {
            inner: Arc::new(inner),
        })
    }

    /// The data layout in use (directories, markers, primary directory of each slot).
    pub fn layout(&self) -> &DataLayout {
        &self.inner.layout
    }

    /// Largest plaintext this store accepts when decompressing.
    pub fn max_plain_len(&self) -> usize {
        self.inner.max_plain_len
    }

    /// Stores `block` under `hash` in its primary directory, atomically; removes the other
    /// encoding of the block there, if any. Does not verify the hash (the caller has). A no-op if
    /// the same encoding with the same length is already there.
    pub async fn write_block(&self, hash: &Hash, block: &DataBlock) -> Result<(), BlockError> {
        let (hash, block) = (*hash, block.clone());
        self.blocking(move |s| s.write(&hash, &block)).await
    }

    /// Reads and verifies a block, in its stored encoding. Looks in the primary directory, then
    /// in the others. A corrupt file is moved aside and skipped; if no valid copy remains the
    /// result is [`BlockError::Corrupted`] (fetch the block from another node).
    pub async fn read_block(&self, hash: &Hash) -> Result<DataBlock, BlockError> {
        let hash = *hash;
        self.blocking(move |s| s.read(&hash).map(|(block, _)| block))
            .await
    }

    /// Like [`LocalStore::read_block`], but returns the plaintext (decompressed only once).
    pub async fn read_block_plain(&self, hash: &Hash) -> Result<Bytes, BlockError> {
        let hash = *hash;
        self.blocking(move |s| s.read(&hash).map(|(_, plain)| plain))
            .await
    }

    /// Where the block is stored (the first file found in read order), without reading it.
    pub async fn has_block(&self, hash: &Hash) -> Result<Option<BlockFile>, BlockError> {
        let hash = *hash;
        self.blocking(move |s| {
            let _guard = s.lock(&hash).read().unwrap_or_else(PoisonError::into_inner);
            Ok(s.find(&hash)?.into_iter().next())
        })
        .await
    }

    /// Deletes every copy of the block in every writable directory; returns whether any file
    /// was removed. Copies in read-only directories are left alone.
    pub async fn delete_block(&self, hash: &Hash) -> Result<bool, BlockError> {
        let hash = *hash;
        self.blocking(move |s| s.delete(&hash)).await
    }

    /// Reads one specific file (as listed by [`LocalStore::list_blocks`]) and verifies it; a
    /// corrupt file is moved aside and reported as [`BlockError::Corrupted`]. For scrub.
    pub async fn verify_file(&self, file: &BlockFile) -> Result<(), BlockError> {
        let file = file.clone();
        self.blocking(move |s| {
            let res = {
                let _guard = s
                    .lock(&file.hash)
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                s.read_file(&file)
            };
            match res {
                Ok(block) => match block.verify_bounded(&file.hash, s.max_plain_len) {
                    Ok(_) => Ok(()),
                    Err(e) => s.on_bad_file(&file, e),
                },
                Err(BlockError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                    Err(BlockError::NotFound { hash: file.hash })
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Renames a block file to `<name>.corrupted` so that it is no longer seen; returns the new
    /// path, or `None` if the file is in a read-only directory (left in place) or already gone.
    pub async fn move_aside(&self, file: &BlockFile) -> Result<Option<PathBuf>, BlockError> {
        let file = file.clone();
        self.blocking(move |s| {
            let _guard = s
                .lock(&file.hash)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            s.rename_aside(&file)
        })
        .await
    }

    /// Enumerates the block files of every data directory in increasing hash order, starting
    /// after `after` (from the beginning if `None`). Must be called within a Tokio runtime; the
    /// walk holds one blocking thread until it ends or the lister is dropped.
    pub fn list_blocks(&self, after: Option<Hash>) -> BlockLister {
        let roots = self
            .inner
            .layout
            .dirs
            .iter()
            .map(|d| d.path.clone())
            .collect();
        spawn_lister(roots, after)
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, BlockError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, BlockError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|source| BlockError::Task { source })?
    }
}

impl Inner {
    fn lock(&self, hash: &Hash) -> &RwLock<()> {
        &self.locks[usize::from(hash.0[2]) % LOCK_STRIPES]
    }

    /// The leaf directory of `hash` in data directory `dir`.
    fn leaf(&self, dir: usize, hash: &Hash) -> PathBuf {
        leaf_dir(&self.layout.dirs[dir].path, DataLayout::slot_of(hash))
    }

    fn file_path(&self, dir: usize, hash: &Hash, compressed: bool) -> PathBuf {
        self.leaf(dir, hash).join(file_name(hash, compressed))
    }

    /// Every file of the block, in read order (primary directory first; `.zst` before plain).
    fn find(&self, hash: &Hash) -> Result<Vec<BlockFile>, BlockError> {
        let mut found = Vec::new();
        for dir in self.layout.read_order(hash) {
            for compressed in [true, false] {
                let path = self.file_path(dir, hash, compressed);
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => found.push(BlockFile {
                        hash: *hash,
                        path,
                        compressed,
                        size: m.len(),
                        dir,
                    }),
                    Ok(_) => {}
                    Err(e)
                        if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
                    Err(e) => return Err(BlockError::Io { path, source: e }),
                }
            }
        }
        Ok(found)
    }

    fn read_file(&self, file: &BlockFile) -> Result<DataBlock, BlockError> {
        let data = Bytes::from(std::fs::read(&file.path).map_err(BlockError::io(&file.path))?);
        Ok(if file.compressed {
            DataBlock::Compressed(data)
        } else {
            DataBlock::Plain(data)
        })
    }

    /// Returns the first valid copy with its plaintext; moves aside the corrupt ones met.
    fn read(&self, hash: &Hash) -> Result<(DataBlock, Bytes), BlockError> {
        let mut corrupt = Vec::new();
        let mut found = None;
        {
            let _guard = self
                .lock(hash)
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            for file in self.find(hash)? {
                let block = match self.read_file(&file) {
                    Ok(b) => b,
                    Err(BlockError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                        continue
                    }
                    Err(e) => return Err(e),
                };
                match block.verify_bounded(hash, self.max_plain_len) {
                    Ok(plain) => {
                        found = Some((block, plain));
                        break;
                    }
                    Err(e @ BlockError::TooLarge { .. }) => return Err(e),
                    Err(_) => corrupt.push(file),
                }
            }
        }
        let mut first_corrupt = None;
        for file in corrupt {
            self.quarantine(&file)?;
            first_corrupt.get_or_insert(file.path);
        }
        match (found, first_corrupt) {
            (Some(ok), _) => Ok(ok),
            (None, Some(path)) => Err(BlockError::Corrupted { hash: *hash, path }),
            (None, None) => Err(BlockError::NotFound { hash: *hash }),
        }
    }

    /// Handles a verification failure of one file: corrupt content is moved aside.
    fn on_bad_file(&self, file: &BlockFile, err: BlockError) -> Result<(), BlockError> {
        match err {
            BlockError::HashMismatch { .. } | BlockError::Decompress { .. } => {
                self.quarantine(file)?;
                Err(BlockError::Corrupted {
                    hash: file.hash,
                    path: file.path.clone(),
                })
            }
            other => Err(other),
        }
    }

    /// Moves a file found corrupt aside, unless a concurrent write replaced it meanwhile.
    fn quarantine(&self, file: &BlockFile) -> Result<(), BlockError> {
        let _guard = self
            .lock(&file.hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match self.read_file(file) {
            Ok(b) if b.verify_bounded(&file.hash, self.max_plain_len).is_ok() => return Ok(()),
            Err(BlockError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Ok(())
            }
            _ => {}
        }
        match self.rename_aside(file)? {
            Some(to) => {
                tracing::warn!(hash = %file.hash, to = %to.display(), "corrupt block file moved aside")
            }
            None => {
                tracing::warn!(hash = %file.hash, path = %file.path.display(), "corrupt block file in a read-only directory")
            }
        }
        Ok(())
    }

    fn rename_aside(&self, file: &BlockFile) -> Result<Option<PathBuf>, BlockError> {
        if self.layout.dirs.get(file.dir).is_none_or(|d| d.read_only) {
            return Ok(None);
        }
        let mut to = file.path.clone().into_os_string();
        to.push(CORRUPTED_SUFFIX);
        let to = PathBuf::from(to);
        match std::fs::rename(&file.path, &to) {
            Ok(()) => Ok(Some(to)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlockError::io(&file.path)(e)),
        }
    }

    fn write(&self, hash: &Hash, block: &DataBlock) -> Result<(), BlockError> {
        let dir = self.layout.primary_dir(hash);
        let compressed = block.is_compressed();
        let data = block.inner_bytes();
        let leaf = self.leaf(dir, hash);
        let target = leaf.join(file_name(hash, compressed));
        let other = leaf.join(file_name(hash, !compressed));
        let _guard = self
            .lock(hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Ok(m) = std::fs::metadata(&target) {
            if m.is_file() && m.len() == data.len() as u64 {
                return remove_if_exists(&other).map(|_| ());
            }
        }
        self.ensure_leaf(&leaf)?;
        let tmp = leaf.join(format!(
            "{}.tmp{:016x}",
            hash.to_hex(),
            rand::random::<u64>()
        ));
        let written =
            write_new_file(&tmp, data, self.fsync).and_then(|()| std::fs::rename(&tmp, &target));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(BlockError::Io { path: tmp, source });
        }
        remove_if_exists(&other)?;
        if self.fsync {
            sync_dir(&leaf).map_err(BlockError::io(&leaf))?;
        }
        Ok(())
    }

    /// Creates a leaf directory if needed (and, with fsync, makes the new entries durable).
    fn ensure_leaf(&self, leaf: &Path) -> Result<(), BlockError> {
        if leaf.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(leaf).map_err(BlockError::io(leaf))?;
        if self.fsync {
            for dir in leaf.ancestors().skip(1).take(2) {
                sync_dir(dir).map_err(BlockError::io(dir))?;
            }
        }
        Ok(())
    }

    fn delete(&self, hash: &Hash) -> Result<bool, BlockError> {
        let _guard = self
            .lock(hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut removed = false;
        for (dir, entry) in self.layout.dirs.iter().enumerate() {
            if entry.read_only {
                continue;
            }
            for compressed in [true, false] {
                removed |= remove_if_exists(&self.file_path(dir, hash, compressed))?;
            }
        }
        Ok(removed)
    }
}

/// `<hash hex>` or `<hash hex>.zst`.
fn file_name(hash: &Hash, compressed: bool) -> String {
    let suffix = if compressed { COMPRESSED_SUFFIX } else { "" };
    format!("{}{suffix}", hash.to_hex())
}

/// Creates `path` (which must not exist) with `data`, fsynced if asked.
fn write_new_file(path: &Path, data: &[u8], fsync: bool) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(data)?;
    if fsync {
        f.sync_all()?;
    }
    Ok(())
}

/// Removes a file; `Ok(false)` if it did not exist.
fn remove_if_exists(path: &Path) -> Result<bool, BlockError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(BlockError::io(path)(e)),
    }
}
