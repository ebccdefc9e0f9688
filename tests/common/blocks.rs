//! Helpers for the block store tests: test data, block hashes of an object, block files on disk
//! (find, verify, damage), a single-node daemon started with `--single-node`, and a three-node
//! cluster (rf 3) set up through the CLI with a key and a bucket, each node with an S3 endpoint.
//!
//! Include with `#[path = "common/blocks.rs"] mod blocks;` next to `mod common;`,
//! `#[path = "common/cluster.rs"] mod cluster;` and `#[path = "common/s3.rs"] mod s3;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use garage::util::ids::{blake2sum, Hash};
use rand::RngCore;

use crate::cluster::{self, Node, CONVERGE};
use crate::common::{free_port, garage_bin, signal, wait_exit, wait_for, Daemon, NodeDir};
use crate::s3::S3;

/// Block size configured in these tests (small, so that objects span several blocks cheaply).
pub const BLOCK_SIZE: usize = 64 * 1024;

/// Text-like, compressible data (differs with `seed`).
pub fn text_data(len: usize, seed: u64) -> Vec<u8> {
    let words = [
        "garage ", "block ", "replica ", "zone ", "store ", "the ", "of ", "data ", "hash ",
    ];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 16);
    out.extend_from_slice(format!("seed {seed}\n").as_bytes());
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        if x % 13 == 0 {
            out.extend_from_slice(format!("{}\n", x % 1000).as_bytes());
        }
    }
    out.truncate(len);
    out
}

/// Random, incompressible data.
pub fn random_data(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

/// The hashes of the blocks an object of `data` is cut into (`BLOCK_SIZE` blocks).
pub fn block_hashes(data: &[u8]) -> Vec<Hash> {
    data.chunks(BLOCK_SIZE).map(blake2sum).collect()
}

/// The file of a block in a data directory: (path, compressed), if present.
pub fn block_file(data_dir: &Path, hash: &Hash) -> Option<(PathBuf, bool)> {
    let hex = hash.to_hex();
    let leaf = data_dir.join(&hex[0..2]).join(&hex[2..4]);
    let zst = leaf.join(format!("{hex}.zst"));
    if zst.is_file() {
        return Some((zst, true));
    }
    let plain = leaf.join(&hex);
    plain.is_file().then_some((plain, false))
}

/// Whether a block file holds the block (decompressed if `.zst`, then hashed).
pub fn file_is_valid(path: &Path, compressed: bool, hash: &Hash) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let plain = if compressed {
        match zstd::stream::decode_all(&bytes[..]) {
            Ok(p) => p,
            Err(_) => return false,
        }
    } else {
        bytes
    };
    blake2sum(&plain) == *hash
}

/// Whether `data_dir` holds a valid copy of the block.
pub fn has_valid_block(data_dir: &Path, hash: &Hash) -> bool {
    block_file(data_dir, hash).is_some_and(|(p, c)| file_is_valid(&p, c, hash))
}

/// Flips one bit in the middle of a file, in place (same length).
pub fn flip_bit(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read block file");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x10;
    std::fs::write(path, bytes).expect("write block file");
}

/// Files of a leaf directory whose name starts with the block's hash and ends with `.corrupted`.
pub fn corrupted_files(data_dir: &Path, hash: &Hash) -> Vec<PathBuf> {
    let hex = hash.to_hex();
    let leaf = data_dir.join(&hex[0..2]).join(&hex[2..4]);
    let Ok(rd) = std::fs::read_dir(&leaf) else {
        return vec![];
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&hex) && name.ends_with(".corrupted")
        })
        .collect()
}

/// Number of block files (`<hash>` or `<hash>.zst`) under a data directory.
pub fn count_block_files(data_dir: &Path) -> usize {
    let mut n = 0;
    let Ok(top) = std::fs::read_dir(data_dir) else {
        return 0;
    };
    for a in top.flatten().filter(|e| e.path().is_dir()) {
        for b in std::fs::read_dir(a.path()).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(b.path()).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".zst").unwrap_or(&name);
                if stem.len() == 64 && stem.chars().all(|c| c.is_ascii_hexdigit()) {
                    n += 1;
                }
            }
        }
    }
    n
}

/// Runs a CLI command against a node directory; it must succeed. Returns stdout.
pub fn cli_ok(dir: &NodeDir, args: &[&str]) -> String {
    let out = dir.run(args);
    assert!(
        out.status.success(),
        "garage {} failed: {}\nstdout: {}",
        args.join(" "),
        cluster::stderr(&out),
        cluster::stdout(&out)
    );
    cluster::stdout(&out)
}

/// Runs a CLI command that must fail with exit code 1 and an `Error:` line; returns stderr.
pub fn cli_fails(dir: &NodeDir, args: &[&str]) -> String {
    let out = dir.run(args);
    let err = cluster::stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "garage {} should fail; stderr: {err}\nstdout: {}",
        args.join(" "),
        cluster::stdout(&out)
    );
    assert!(err.trim_start().starts_with("Error: "), "{err}");
    err
}

/// The reference count shown by `garage block info`.
pub fn refcount(dir: &NodeDir, hash: &Hash) -> Option<u64> {
    let out = dir.run(&["block", "info", &hash.to_hex()]);
    if !out.status.success() {
        return None;
    }
    cluster::stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("Reference count: "))
        .and_then(|v| v.trim().parse().ok())
}

/// A single node started with `garage server --single-node` (rf 1), with an S3 endpoint.
pub struct SingleNode {
    pub dir: NodeDir,
    pub s3_addr: SocketAddr,
    pub daemon: Option<Daemon>,
    pub key_id: String,
    pub secret: String,
}

impl SingleNode {
    /// A node directory with `extra` top-level configuration lines and `block_size` =
    /// [`BLOCK_SIZE`].
    pub fn new(extra: &str) -> Self {
        let s3_port = free_port();
        let s3_addr: SocketAddr = format!("127.0.0.1:{s3_port}").parse().expect("addr");
        let dir = NodeDir::new(&format!(
            "block_size = {BLOCK_SIZE}\n{extra}\n[s3_api]\napi_bind_addr = \"{s3_addr}\"\ns3_region = \"garage\"\n"
        ));
        Self {
            dir,
            s3_addr,
            daemon: None,
            key_id: String::new(),
            secret: String::new(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the daemon and waits for the key it prints.
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "already running");
        let out_path = self.dir.path().join("stdout.txt");
        let out = std::fs::File::create(&out_path).expect("stdout file");
        let log_path = self.dir.path().join("server.log");
        let _ = std::fs::rename(&log_path, self.dir.path().join("server.log.old"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.dir.config)
            .args(["server", "--single-node"])
            .env("RUST_LOG", "garage=info")
            .env_remove("GARAGE_RPC_SECRET")
            .stdout(out)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn garage server --single-node");
        self.daemon = Some(Daemon { child });
        let (id, secret) = wait_for(CONVERGE, || {
            let text = std::fs::read_to_string(&out_path).ok()?;
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.trim().strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            Some((field("Access key id:")?, field("Secret key:")?))
        })
        .unwrap_or_else(|| {
            panic!(
                "--single-node never printed a key; log:\n{}",
                self.dir.log()
            )
        });
        self.key_id = id;
        self.secret = secret;
    }

    /// Stops the daemon with SIGTERM and checks its clean exit.
    pub fn stop(&mut self) {
        let mut d = self.daemon.take().expect("running");
        signal(&d.child, libc::SIGTERM);
        let status = wait_exit(&mut d.child, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no exit after SIGTERM; log:\n{}", self.dir.log()));
        assert!(status.success(), "clean exit: {status:?}");
    }

    pub fn s3(&self) -> S3 {
        S3::new(self.s3_addr, &self.key_id, &self.secret)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        cli_ok(&self.dir, args)
    }
}

/// Three daemons (rf 3, one zone each) with an applied layout, a key with read/write/owner on
/// bucket [`BUCKET`], and an S3 endpoint on each node.
pub struct Cluster3 {
    pub nodes: Vec<Node>,
    pub s3_addrs: Vec<SocketAddr>,
    pub key_id: String,
    pub secret: String,
}

/// The bucket created by [`Cluster3::start`].
pub const BUCKET: &str = "blocks";

impl Cluster3 {
    /// Starts the cluster; `extra` are top-level configuration lines for every node.
    pub fn start(extra: &str) -> Self {
        let mut nodes: Vec<Node> = (0..3).map(|_| Node::new(3)).collect();
        let mut s3_addrs = vec![];
        for n in &nodes {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            n.dir.append_config(&format!(
                "block_size = {BLOCK_SIZE}\n{extra}\n[s3_api]\napi_bind_addr = \"{addr}\"\ns3_region = \"garage\""
            ));
            s3_addrs.push(addr);
        }
        for n in nodes.iter_mut() {
            n.start();
        }
        let first = nodes[0].addr_spec();
        for n in &nodes[1..] {
            n.ok(&["node", "connect", &first]);
        }
        let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        for n in &nodes {
            n.wait_healthy(&ids);
        }
        for (i, n) in nodes.iter().enumerate() {
            let zone = format!("dc{}", i + 1);
            nodes[0].ok(&["layout", "assign", "-z", &zone, "-c", "1G", n.prefix()]);
        }
        nodes[0].ok(&["layout", "apply", "--version", "1"]);
        for n in &nodes {
            wait_for(CONVERGE, || {
                let j = n.try_show_json()?;
                (j["current"]["version"] == 1).then_some(())
            })
            .unwrap_or_else(|| panic!("node {} never got layout 1", n.short()));
        }
        let out = nodes[0].ok(&["key", "create", "block-tests"]);
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {name:?} in:\n{out}"))
        };
        let (key_id, secret) = (field("Key ID:"), field("Secret key:"));
        nodes[0].ok(&["bucket", "create", BUCKET]);
        nodes[0].ok(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", &key_id,
        ]);
        Self {
            nodes,
            s3_addrs,
            key_id,
            secret,
        }
    }

    pub fn s3(&self, i: usize) -> S3 {
        S3::new(self.s3_addrs[i], &self.key_id, &self.secret)
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.path().join("data")
    }
}
