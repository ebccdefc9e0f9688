//! Throughput of the block manager of one in-process node against plain files, same bytes, same
//! run.
//!
//! One node (`Garage::start` + `bootstrap_single_node`: rf 1, one-node layout, resync and scrub
//! workers running) per compression setting (zstd level 1, the default; `none`). For each data
//! set (text-like, compressible; random, incompressible), writes `BENCH_MIB` MiB (default 128)
//! as 1 MiB blocks with `BlockManager::put_block` (compress, RPC to the node itself, verify,
//! reference-count bookkeeping, atomic file write) and reads them back with `get_block` (read,
//! verify, decompress, verify again on the caller's side), one block at a time; then writes and
//! reads the same plaintext blocks as plain files with `std::fs::write` / `std::fs::read` in a
//! directory on the same file system. `data_fsync = false` on both sides; reads hit the page
//! cache on both sides. `store rd` reads the same blocks with `LocalStore::read_block_plain`
//! (one verification, no RPC): the gap to `get` is the cost of the manager's read path. Each round writes fresh blocks (a block already stored is not written
//! again). Figures are the best of `BENCH_REPEAT` rounds (default 3): the machine may be shared.
//!
//! Run: `cargo bench --bench block` (set `BENCH_DIR` to measure another file system).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use garage::config::{parse_config, SecretOverrides};
use garage::net::frame::Priority;
use garage::server::Garage;
use garage::util::ids::{blake2sum, Hash};

const BLOCK: usize = 1 << 20;

/// Builds the `i`-th block of a data set.
type MakeBlock = fn(u64) -> Bytes;
const RPC_SECRET: &str = "1799bccfd7411eddcf9ebd316bc1f5287ad12a68094e1c6ac6abde7e6feae1ec";

/// Pseudo-text: words of a small vocabulary and numbers, roughly 3:1 with zstd level 1.
fn text_block(seed: u64) -> Bytes {
    let words = [
        "object ",
        "bucket ",
        "garage ",
        "replica ",
        "partition ",
        "layout ",
        "block ",
        "node ",
        "zone ",
        "the ",
        "a ",
        "of ",
        "to ",
        "and ",
        "store ",
        "data ",
        "hash ",
        "quorum ",
        "write ",
        "read ",
    ];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(BLOCK + 64);
    out.extend_from_slice(format!("block {seed}\n").as_bytes());
    while out.len() < BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        if x % 7 == 0 {
            out.extend_from_slice(format!("{} ", x % 100_000).as_bytes());
        }
    }
    out.truncate(BLOCK);
    Bytes::from(out)
}

/// Incompressible bytes (xorshift; distinct per seed).
fn random_block(seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut out = Vec::with_capacity(BLOCK);
    while out.len() < BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(out)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn start_node(root: &Path, compression: &str) -> Arc<Garage> {
    let port = free_port();
    let text = format!(
        "metadata_dir = \"{m}\"\ndata_dir = \"{d}\"\nreplication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{port}\"\nrpc_secret = \"{RPC_SECRET}\"\ncompression_level = {compression}\n",
        m = root.join("meta").display(),
        d = root.join("data").display(),
    );
    let config = parse_config(&text, "bench", &SecretOverrides::default()).expect("config");
    let g = Garage::start(config).await.expect("start node");
    g.bootstrap_single_node().await.expect("single-node layout");
    g
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Best-of-rounds figures of one (compression, data set) case.
#[derive(Default)]
struct Figures {
    put: f64,
    get: f64,
    /// The same blocks read with `LocalStore::read_block_plain` (no RPC, one verification).
    store_read: f64,
    file_write: f64,
    file_read: f64,
    stored: u64,
}

fn dir_size(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += dir_size(&p);
        } else if let Ok(m) = e.metadata() {
            n += m.len();
        }
    }
    n
}

async fn run_case(
    g: &Garage,
    files_root: &Path,
    make: MakeBlock,
    seed_base: u64,
    blocks: usize,
    repeat: usize,
) -> Figures {
    let mut f = Figures::default();
    let total = blocks * BLOCK;
    for round in 0..repeat {
        let seed0 = seed_base + (round * blocks) as u64;
        let data: Vec<(Hash, Bytes)> = (0..blocks as u64)
            .map(|i| {
                let b = make(seed0 + i);
                (blake2sum(&b), b)
            })
            .collect();

        let data_dir = &g.node.config.data_dirs[0].path;
        let before = dir_size(data_dir);
        let t = Instant::now();
        for (h, b) in &data {
            g.blocks
                .put_block(*h, b.clone(), Priority::Normal)
                .await
                .expect("put_block");
        }
        f.put = f.put.max(mbps(total, t.elapsed()));
        f.stored = dir_size(data_dir) - before;

        let t = Instant::now();
        for (h, b) in &data {
            let got = g
                .blocks
                .get_block(h, Priority::Normal)
                .await
                .expect("get_block");
            assert_eq!(got.len(), b.len());
        }
        f.get = f.get.max(mbps(total, t.elapsed()));

        let t = Instant::now();
        for (h, b) in &data {
            let got = g
                .blocks
                .local
                .read_block_plain(h)
                .await
                .expect("read_block_plain");
            assert_eq!(got.len(), b.len());
        }
        f.store_read = f.store_read.max(mbps(total, t.elapsed()));

        let dir = files_root.join(format!("round{round}-{seed_base}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let t = Instant::now();
        for (h, b) in &data {
            std::fs::write(dir.join(h.to_hex()), b).expect("write file");
        }
        f.file_write = f.file_write.max(mbps(total, t.elapsed()));
        let t = Instant::now();
        for (h, b) in &data {
            let got = std::fs::read(dir.join(h.to_hex())).expect("read file");
            assert_eq!(got.len(), b.len());
        }
        f.file_read = f.file_read.max(mbps(total, t.elapsed()));
        std::fs::remove_dir_all(&dir).expect("clean files");
    }
    f
}

fn main() {
    let mib: usize = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let repeat: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let base = std::env::var_os("BENCH_DIR").map(std::path::PathBuf::from);
    let tmp = match &base {
        Some(b) => tempfile::tempdir_in(b),
        None => tempfile::tempdir(),
    }
    .expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    println!(
        "BlockManager::put_block/get_block on one in-process node (rf 1) vs plain files, {} MiB of 1 MiB blocks per round, best of {repeat}, in {}",
        mib,
        tmp.path().display()
    );
    println!(
        "{:<7} {:<11} {:>9} {:>9} {:>13} {:>12} {:>12} {:>7} {:>7} {:>7}",
        "data",
        "compression",
        "put MB/s",
        "get MB/s",
        "store rd MB/s",
        "file wr MB/s",
        "file rd MB/s",
        "put/wr",
        "get/rd",
        "stored"
    );
    let sets: [(&str, MakeBlock); 2] = [("text", text_block), ("random", random_block)];
    for (ci, (cname, clevel)) in [("zstd 1", "1"), ("none", "\"none\"")]
        .into_iter()
        .enumerate()
    {
        let root = tmp.path().join(format!("node{ci}"));
        let files = tmp.path().join(format!("files{ci}"));
        rt.block_on(async {
            let g = start_node(&root, clevel).await;
            for (si, (dname, make)) in sets.iter().enumerate() {
                let seed = ((ci * 2 + si) as u64) << 32;
                let f = run_case(&g, &files, *make, seed, mib, repeat).await;
                println!(
                    "{:<7} {:<11} {:>9.0} {:>9.0} {:>13.0} {:>12.0} {:>12.0} {:>7.2} {:>7.2} {:>6.0}%",
                    dname,
                    cname,
                    f.put,
                    f.get,
                    f.store_read,
                    f.file_write,
                    f.file_read,
                    f.put / f.file_write,
                    f.get / f.file_read,
                    100.0 * f.stored as f64 / (mib * BLOCK) as f64
                );
            }
            g.node.shutdown().await.expect("shutdown");
        });
    }
}
