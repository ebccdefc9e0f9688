//! Encoding of one data block: its plaintext, or a zstd frame of it.
//!
//! A block is named by the BLAKE2 hash ([`blake2sum`]) of its plaintext, whatever its encoding.
//! [`DataBlock::from_plain`] compresses with the configured level and keeps the compressed form
//! only when it is strictly smaller. Decompression is bounded ([`DEFAULT_MAX_PLAIN_LEN`] or an
//! explicit limit) so that a hostile or damaged frame cannot make the node allocate without end.
//!
//! Compression, decompression and hashing are CPU work: these functions are synchronous and
//! callers on the async runtime run them in `tokio::task::spawn_blocking`.

use std::io::Read;

use bytes::Bytes;

use super::error::BlockError;
use super::DEFAULT_MAX_PLAIN_LEN;
use crate::config::CompressionLevel;
use crate::util::ids::{blake2sum, Hash};

/// A data block as stored on disk and sent between nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataBlock {
    /// The plaintext itself.
    Plain(Bytes),
    /// A zstd frame (or several concatenated frames) whose decompression is the plaintext.
    Compressed(Bytes),
}

impl DataBlock {
    /// Encodes `data` with `level`: compressed when compression is enabled, succeeds and makes
    /// the block strictly smaller; plain otherwise.
    pub fn from_plain(data: Bytes, level: CompressionLevel) -> DataBlock {
        let CompressionLevel::Level(level) = level else {
            return DataBlock::Plain(data);
        };
        match zstd::bulk::compress(&data, level) {
            Ok(c) if c.len() < data.len() => DataBlock::Compressed(Bytes::from(c)),
            Ok(_) => DataBlock::Plain(data),
            Err(e) => {
                tracing::warn!(error = %e, level, "zstd compression failed, storing block uncompressed");
                DataBlock::Plain(data)
            }
        }
    }

    /// Whether the block is in its compressed form.
    pub fn is_compressed(&self) -> bool {
        matches!(self, DataBlock::Compressed(_))
    }

    /// The bytes as stored (plaintext or zstd frame).
    pub fn inner_bytes(&self) -> &Bytes {
        match self {
            DataBlock::Plain(b) | DataBlock::Compressed(b) => b,
        }
    }

    /// Length of the stored form in bytes.
    pub fn stored_len(&self) -> usize {
        self.inner_bytes().len()
    }

    /// The plaintext, decompressing with the default bound [`DEFAULT_MAX_PLAIN_LEN`].
    pub fn into_plain(self) -> Result<Bytes, BlockError> {
        self.into_plain_bounded(DEFAULT_MAX_PLAIN_LEN)
    }

    /// The plaintext; decompression fails with [`BlockError::TooLarge`] beyond `max_len` bytes,
    /// having allocated at most about `max_len` bytes.
    pub fn into_plain_bounded(self, max_len: usize) -> Result<Bytes, BlockError> {
        match self {
            DataBlock::Plain(b) => Ok(b),
            DataBlock::Compressed(c) => decompress_bounded(&c, max_len).map(Bytes::from),
        }
    }

    /// Checks that the plaintext hashes to `hash` (decompressing with the default bound).
    pub fn verify(&self, hash: &Hash) -> Result<(), BlockError> {
        self.verify_bounded(hash, DEFAULT_MAX_PLAIN_LEN).map(|_| ())
    }

    /// Checks that the plaintext hashes to `hash`, decompressing at most `max_len` bytes; returns
    /// the plaintext so that a caller who needs it does not decompress twice.
    pub fn verify_bounded(&self, hash: &Hash, max_len: usize) -> Result<Bytes, BlockError> {
        let plain = self.clone().into_plain_bounded(max_len)?;
        let actual = blake2sum(&plain);
        if actual != *hash {
            return Err(BlockError::HashMismatch {
                expected: *hash,
                actual,
            });
        }
        Ok(plain)
    }
}

/// Decompresses a zstd stream, refusing to produce more than `max_len` bytes.
fn decompress_bounded(data: &[u8], max_len: usize) -> Result<Vec<u8>, BlockError> {
    let decompress = |source| BlockError::Decompress { source };
    // The frame header usually announces the content size: allocate it once (within the bound).
    let hint = zstd::zstd_safe::get_frame_content_size(data)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .map_or(0, |n| n.min(max_len));
    let mut out = Vec::with_capacity(hint);
    let decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(decompress)?;
    // Reading one byte past the bound tells "exactly max_len" from "more than max_len".
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(decompress)?;
    if out.len() > max_len {
        return Err(BlockError::TooLarge { limit: max_len });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Bytes {
        let line = b"The quick brown fox jumps over the lazy dog. 0123456789\n";
        Bytes::from(line.iter().copied().cycle().take(n).collect::<Vec<u8>>())
    }

    fn random(n: usize) -> Bytes {
        Bytes::from((0..n).map(|_| rand::random::<u8>()).collect::<Vec<u8>>())
    }

    #[test]
    fn compressible_data_is_compressed_and_round_trips() {
        let data = text(1 << 20);
        let hash = blake2sum(&data);
        let block = DataBlock::from_plain(data.clone(), CompressionLevel::Level(1));
        assert!(block.is_compressed());
        assert!(block.stored_len() < data.len() / 10);
        block.verify(&hash).expect("valid");
        assert_eq!(block.into_plain().expect("plain"), data);
    }

    #[test]
    fn negative_level_is_accepted() {
        let data = text(100_000);
        let block = DataBlock::from_plain(data.clone(), CompressionLevel::Level(-5));
        assert!(block.is_compressed());
        assert_eq!(block.into_plain().expect("plain"), data);
    }

    #[test]
    fn random_data_and_level_none_stay_plain() {
        let data = random(64 * 1024);
        let block = DataBlock::from_plain(data.clone(), CompressionLevel::Level(3));
        assert_eq!(block, DataBlock::Plain(data));
        let data = text(64 * 1024);
        let block = DataBlock::from_plain(data.clone(), CompressionLevel::None);
        assert_eq!(block, DataBlock::Plain(data));
        // Empty input: a zstd frame is never smaller than nothing.
        let block = DataBlock::from_plain(Bytes::new(), CompressionLevel::Level(1));
        assert!(!block.is_compressed());
    }

    #[test]
    fn verify_detects_wrong_hash() {
        let data = text(10_000);
        let block = DataBlock::from_plain(data, CompressionLevel::Level(1));
        let err = block.verify(&blake2sum(b"other")).expect_err("mismatch");
        assert!(matches!(err, BlockError::HashMismatch { .. }));
    }

    #[test]
    fn garbage_frame_is_a_decompress_error() {
        let block = DataBlock::Compressed(Bytes::from_static(b"definitely not zstd"));
        let err = block.into_plain().expect_err("garbage");
        assert!(matches!(err, BlockError::Decompress { .. }), "{err}");
    }

    #[test]
    fn decompression_is_bounded() {
        // Exactly at the bound is fine, one byte more is refused.
        let data = text(4096);
        let block = DataBlock::from_plain(data.clone(), CompressionLevel::Level(1));
        assert_eq!(block.clone().into_plain_bounded(4096).expect("fits"), data);
        let err = block.into_plain_bounded(4095).expect_err("too large");
        assert!(matches!(err, BlockError::TooLarge { limit: 4095 }));
    }

    #[test]
    fn decompression_bomb_is_bounded() {
        // 1 MiB of zeros compresses to a few bytes; 80 concatenated frames claim 80 MiB of
        // plaintext from a few kilobytes, more than the default bound.
        let frame = zstd::bulk::compress(&vec![0u8; 1 << 20], 1).expect("compress");
        assert!(frame.len() < 1024);
        let bomb: Vec<u8> = frame
            .iter()
            .copied()
            .cycle()
            .take(frame.len() * 80)
            .collect();
        let err = DataBlock::Compressed(Bytes::from(bomb))
            .into_plain()
            .expect_err("bomb refused");
        assert!(matches!(err, BlockError::TooLarge { limit } if limit == DEFAULT_MAX_PLAIN_LEN));
    }
}
