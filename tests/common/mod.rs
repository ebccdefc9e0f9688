//! Helpers shared by the integration tests: temporary node directories with a configuration,
//! running the real `garage` binary, free loopback ports, and bounded waiting on conditions.
#![allow(dead_code)]

pub mod inproc;
pub mod netpair;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const RPC_SECRET: &str = "1799bccfd7411eddcf9ebd316bc1f5287ad12a68094e1c6ac6abde7e6feae1ec";

/// Path of the `garage` binary built for these tests.
pub fn garage_bin() -> &'static str {
    env!("CARGO_BIN_EXE_garage")
}

/// A free TCP port on 127.0.0.1 (bound then released), never one this process handed out
/// before: a port given for one endpoint but not bound yet would otherwise be free again and
/// could be given to a second endpoint of the same node (seen: RPC and S3 on one port).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A node's private directory and configuration file.
pub struct NodeDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub rpc_port: u16,
}

impl NodeDir {
    /// A fresh directory with a minimal valid configuration plus `extra` TOML lines.
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let rpc_port = free_port();
        let config = dir.path().join("garage.toml");
        let text = format!(
            "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\nreplication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc_port}\"\nrpc_secret = \"{RPC_SECRET}\"\n{extra}\n",
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
        );
        std::fs::write(&config, text).expect("write config");
        Self {
            dir,
            config,
            rpc_port,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `garage -c <config> args…` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env_remove("GARAGE_RPC_SECRET")
            .output()
            .expect("run garage")
    }

    /// Starts `garage server` in the background, logging to a fresh `server.log` in the
    /// directory (the previous run's log is kept as `server.log.old`).
    pub fn spawn_server(&self) -> Child {
        let path = self.path().join("server.log");
        let _ = std::fs::rename(&path, self.path().join("server.log.old"));
        let log = std::fs::File::create(&path).expect("log file");
        Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=debug")
            .env_remove("GARAGE_RPC_SECRET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn garage server")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("server.log")).unwrap_or_default()
    }
}

/// Polls `cond` every 50 ms until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a signal to a child process.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a pid we spawned; no memory is shared.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Waits for a child to exit for at most `timeout`; returns its status, or None if still running.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    wait_for(timeout, || child.try_wait().ok().flatten())
}

/// A running `garage server` that is killed (SIGKILL) when dropped, so that a failing test does
/// not leave daemons behind.
pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    pub fn start(node: &NodeDir) -> Self {
        Self {
            child: node.spawn_server(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

impl NodeDir {
    /// Appends a line to the configuration file (top-level keys only).
    pub fn append_config(&self, line: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .expect("open config");
        writeln!(f, "{line}").expect("append to config");
    }

    /// Removes every configuration line starting with `key`.
    pub fn remove_config(&self, key: &str) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with(key))
            .collect();
        std::fs::write(&self.config, kept.join("\n") + "\n").expect("write config");
    }

    /// The `metadata_dir` of the default configuration.
    pub fn meta_dir(&self) -> PathBuf {
        self.path().join("meta")
    }

    /// The node id from `metadata_dir/node_key.pub` (once the daemon has created it).
    pub fn node_id_bytes(&self) -> Option<[u8; 32]> {
        let b = std::fs::read(self.meta_dir().join("node_key.pub")).ok()?;
        b.try_into().ok()
    }

    /// `garage status` parsed, or None if the command failed.
    pub fn status(&self) -> Option<Status> {
        let out = self.run(&["status"]);
        out.status
            .success()
            .then(|| Status::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Waits until `garage status` answers (the daemon is up and its RPC port open).
    pub fn wait_ready(&self, timeout: Duration) -> Status {
        wait_for(timeout, || self.status())
            .unwrap_or_else(|| panic!("daemon never answered `status`; log:\n{}", self.log()))
    }
}

/// The short ids (first 16 hex characters) listed by `garage status`, by section.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Status {
    pub healthy: Vec<String>,
    pub failed: Vec<String>,
}

impl Status {
    /// Parses the text of `garage status`: a `==== HEALTHY NODES ====` table, then optionally a
    /// `==== FAILED NODES ====` table, each with an `ID …` header line.
    pub fn parse(text: &str) -> Self {
        let mut s = Status::default();
        let mut section: Option<bool> = None;
        for line in text.lines() {
            let line = line.trim();
            if line.contains("HEALTHY NODES") {
                section = Some(true);
            } else if line.contains("FAILED NODES") {
                section = Some(false);
            } else if line.is_empty() || line.starts_with("ID") {
                continue;
            } else if !line
                .split_whitespace()
                .next()
                .is_some_and(|t| t.len() == 16 && t.chars().all(|c| c.is_ascii_hexdigit()))
            {
                // Lines after the tables (layout version, hints) end the node sections.
                section = None;
            } else if let Some(healthy) = section {
                let id = line
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if healthy {
                    s.healthy.push(id);
                } else {
                    s.failed.push(id);
                }
            }
        }
        s
    }

    pub fn is_healthy(&self, id: &str) -> bool {
        self.healthy.iter().any(|h| id.starts_with(h.as_str()))
    }

    pub fn is_failed(&self, id: &str) -> bool {
        self.failed.iter().any(|h| id.starts_with(h.as_str()))
    }

    pub fn knows(&self, id: &str) -> bool {
        self.is_healthy(id) || self.is_failed(id)
    }
}

/// Resident set size of a process in KiB (VmRSS in /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
