//! Helpers shared by the integration tests: temporary node directories with a configuration,
//! running the real `garage` binary, free loopback ports, and bounded waiting on conditions.
#![allow(dead_code)]

pub mod inproc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const RPC_SECRET: &str = "1799bccfd7411eddcf9ebd316bc1f5287ad12a68094e1c6ac6abde7e6feae1ec";

/// Path of the `garage` binary built for these tests.
pub fn garage_bin() -> &'static str {
    env!("CARGO_BIN_EXE_garage")
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
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
