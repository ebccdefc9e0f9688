//! Throughput of the local block store against plain `std::fs` files, same bytes, same run.
//!
//! For each data set (text-like, compressible; random, incompressible) and each compression
//! setting (zstd level 1, none), writes `BENCH_MIB` MiB (default 256) as 1 MiB blocks with
//! `DataBlock::from_plain` + `LocalStore::write_block`, reads them back with
//! `LocalStore::read_block_plain` (read, verify the hash, decompress), and does the same with
//! `std::fs::write` / `std::fs::read` of the plaintext into one directory. Sequential, one block
//! at a time, `data_fsync = false`; reads hit the page cache in both cases. Writes are timed on
//! a second pass, once the leaf directories exist (steady state of a node); the first pass into
//! a fresh store, which also creates them, is shown as `1st write`.
//!
//! Each figure is the best of `BENCH_REPEAT` runs (default 3), since the machine may be shared.
//! A last line per data set gives the CPU cost alone (hash, compression, decompression).
//!
//! Run: `cargo bench --bench block_local` (set `BENCH_DIR` to measure another file system).

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use garage::block::{DataBlock, LocalStore, LocalStoreConfig, DEFAULT_MAX_PLAIN_LEN};
use garage::config::{CompressionLevel, DataDir};
use garage::util::ids::{blake2sum, Hash};

const BLOCK: usize = 1 << 20;

/// Builds the `i`-th block of a data set.
type MakeBlock = fn(u64) -> Bytes;

/// Pseudo-text: words from a small vocabulary with numbers, roughly 3:1 with zstd level 1.
fn text_block(seed: u64) -> Bytes {
    let words = [
        "object",
        "bucket",
        "garage",
        "replica",
        "partition",
        "layout",
        "block",
        "node",
        "zone",
        "the",
        "a",
        "of",
        "to",
        "and",
        "store",
        "data",
        "hash",
        "quorum",
        "write",
        "read",
    ];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(BLOCK + 64);
    while out.len() < BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        if x % 5 == 0 {
            out.extend_from_slice(format!(" {}", (x >> 20) % 100_000).as_bytes());
        }
        out.push(if x % 11 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(BLOCK);
    Bytes::from(out)
}

/// Incompressible bytes (the seed is unused).
fn random_block(_seed: u64) -> Bytes {
    Bytes::from(
        (0..BLOCK)
            .map(|_| rand::random::<u8>())
            .collect::<Vec<u8>>(),
    )
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

struct Row {
    first_write: f64,
    write: f64,
    write_fs: f64,
    read: f64,
    read_fs: f64,
    stored: usize,
}

async fn run(root: &Path, blocks: &[(Hash, Bytes)], level: CompressionLevel) -> Row {
    let total: usize = blocks.iter().map(|(_, b)| b.len()).sum();
    let cfg = LocalStoreConfig {
        metadata_dir: root.join("meta"),
        data_dirs: vec![DataDir {
            path: root.join("data"),
            capacity: None,
            read_only: false,
        }],
        data_fsync: false,
        max_plain_len: DEFAULT_MAX_PLAIN_LEN,
    };
    let store = LocalStore::open(cfg).await.expect("open store");

    // Baseline: the same plaintext as plain files in one directory. Both sides write every
    // file once and delete it (the store's first pass also creates its leaf directories, as on
    // a fresh node: reported as `1st write`), then the timed pass writes them again.
    let fs_dir = root.join("fs");
    std::fs::create_dir_all(&fs_dir).expect("mkdir");
    let write_fs_pass = || {
        let t = Instant::now();
        for (h, data) in blocks {
            std::fs::write(fs_dir.join(h.to_hex()), data).expect("fs write");
        }
        t.elapsed()
    };
    write_fs_pass();
    for (h, _) in blocks {
        std::fs::remove_file(fs_dir.join(h.to_hex())).expect("fs delete");
    }
    let write_fs = mbps(total, write_fs_pass());

    let mut stored = 0;
    let mut times = Vec::new();
    for pass in 0..2 {
        let t = Instant::now();
        stored = 0;
        for (h, data) in blocks {
            let block = DataBlock::from_plain(data.clone(), level);
            stored += block.stored_len();
            store.write_block(h, &block).await.expect("write_block");
        }
        times.push(t.elapsed());
        if pass == 0 {
            for (h, _) in blocks {
                store.delete_block(h).await.expect("delete_block");
            }
        }
    }
    let first_write = mbps(total, times[0]);
    let write = mbps(total, times[1]);

    let t = Instant::now();
    let mut n = 0;
    for (h, _) in blocks {
        n += std::fs::read(fs_dir.join(h.to_hex()))
            .expect("fs read")
            .len();
    }
    let read_fs = mbps(n, t.elapsed());

    let t = Instant::now();
    let mut n = 0;
    for (h, _) in blocks {
        n += store.read_block_plain(h).await.expect("read_block").len();
    }
    let read = mbps(n, t.elapsed());

    Row {
        first_write,
        write,
        write_fs,
        read,
        read_fs,
        stored,
    }
}

/// CPU cost alone, on one block of the set: hashing, zstd level 1, decompression.
fn cpu_line(name: &str, sample: &Bytes) {
    let n = 64;
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        mbps(n * sample.len(), t.elapsed())
    };
    let hash = time(&mut || {
        std::hint::black_box(blake2sum(sample));
    });
    let compress = time(&mut || {
        std::hint::black_box(zstd::bulk::compress(sample, 1).expect("compress"));
    });
    let frame = Bytes::from(zstd::bulk::compress(sample, 1).expect("compress"));
    let decompress = time(&mut || {
        let b = DataBlock::Compressed(frame.clone());
        std::hint::black_box(b.into_plain().expect("decompress"));
    });
    println!(
        "  cpu {name:<10} blake2 {hash:.0} MB/s, zstd-1 {compress:.0} MB/s, unzstd \
         {decompress:.0} MB/s"
    );
}

fn best(a: Row, b: Row) -> Row {
    Row {
        first_write: a.first_write.max(b.first_write),
        write: a.write.max(b.write),
        write_fs: a.write_fs.max(b.write_fs),
        read: a.read.max(b.read),
        read_fs: a.read_fs.max(b.read_fs),
        stored: a.stored,
    }
}

fn main() {
    let mib: usize = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let repeat: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    println!(
        "block_local: {mib} x 1 MiB blocks, sequential, data_fsync = false, in {}, best of {repeat}",
        base.display()
    );
    println!(
        "{:<10} {:<6} {:>11} {:>11} {:>6} {:>11} {:>11} {:>6} {:>8} {:>10}",
        "data",
        "level",
        "write MB/s",
        "std::fs",
        "ratio",
        "read MB/s",
        "std::fs",
        "ratio",
        "stored",
        "1st write"
    );
    let sets: [(&str, MakeBlock); 2] = [("text-like", text_block), ("random", random_block)];
    for (name, make) in sets {
        let blocks: Vec<(Hash, Bytes)> = (0..mib as u64)
            .map(|i| {
                let b = make(i);
                (blake2sum(&b), b)
            })
            .collect();
        let total = mib * BLOCK;
        for (label, level) in [
            ("1", CompressionLevel::Level(1)),
            ("none", CompressionLevel::None),
        ] {
            let mut r: Option<Row> = None;
            for _ in 0..repeat {
                let dir = tempfile::tempdir_in(&base).expect("tempdir");
                let this = rt.block_on(run(dir.path(), &blocks, level));
                r = Some(match r {
                    Some(prev) => best(prev, this),
                    None => this,
                });
            }
            let Some(r) = r else { return };
            println!(
                "{:<10} {:<6} {:>11.0} {:>11.0} {:>6.2} {:>11.0} {:>11.0} {:>6.2} {:>7.0}% {:>10.0}",
                name,
                label,
                r.write,
                r.write_fs,
                r.write / r.write_fs,
                r.read,
                r.read_fs,
                r.read / r.read_fs,
                100.0 * r.stored as f64 / total as f64,
                r.first_write
            );
        }
        cpu_line(name, &blocks[0].1);
    }
}
