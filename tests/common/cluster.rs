//! Helpers for tests that run several real daemons: a node with its own directory, a
//! configuration with a chosen replication factor and `rpc_public_addr`, its server process
//! (killed when the node is dropped), and CLI calls that check their exit code and output.
//!
//! Include with `#[path = "common/cluster.rs"] mod cluster;` next to `mod common;`.
#![allow(dead_code)]

use std::process::{Child, Output};
use std::time::Duration;

use crate::common::{signal, wait_exit, wait_for, NodeDir};

/// Upper bound of every wait on the cluster (gossip runs every few seconds).
pub const CONVERGE: Duration = Duration::from_secs(90);

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// One daemon of a test cluster.
pub struct Node {
    pub dir: NodeDir,
    pub child: Option<Child>,
    /// Full hex node id (known once the server has run).
    pub id: String,
}

impl Node {
    /// A node directory whose configuration uses `replication_factor = rf` and announces
    /// `127.0.0.1:<its rpc port>` as its public address.
    pub fn new(rf: usize) -> Self {
        let dir = NodeDir::new("");
        let text = std::fs::read_to_string(&dir.config).expect("read config");
        let text = text.replace(
            "replication_factor = 1\n",
            &format!("replication_factor = {rf}\n"),
        );
        let text = format!("{text}rpc_public_addr = \"127.0.0.1:{}\"\n", dir.rpc_port);
        std::fs::write(&dir.config, text).expect("write config");
        Self {
            dir,
            child: None,
            id: String::new(),
        }
    }

    /// `<id>@127.0.0.1:<port>`, the form `node connect` and `bootstrap_peers` take.
    pub fn addr_spec(&self) -> String {
        format!("{}@127.0.0.1:{}", self.id, self.dir.rpc_port)
    }

    /// The first 8 hex characters of the id.
    pub fn prefix(&self) -> &str {
        &self.id[..8]
    }

    /// The 16-character form the CLI prints in tables.
    pub fn short(&self) -> &str {
        &self.id[..16]
    }

    /// Starts the server and waits until its admin service answers `garage status`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.child = Some(self.dir.spawn_server());
        let dir = &self.dir;
        let id = wait_for(CONVERGE, || {
            let out = dir.run(&["node", "id", "-q"]);
            out.status
                .success()
                .then(|| stdout(&out).trim().to_string())
        })
        .unwrap_or_else(|| panic!("node id never available; log:\n{}", dir.log()));
        let line = id.split('@').next().unwrap_or_default().to_string();
        assert_eq!(line.len(), 64, "hex node id: {id}");
        self.id = line;
        wait_for(CONVERGE, || {
            dir.run(&["status"]).status.success().then_some(())
        })
        .unwrap_or_else(|| panic!("admin service never answered; log:\n{}", dir.log()));
    }

    /// Stops the server with SIGTERM and checks that it exits cleanly.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        signal(&child, libc::SIGTERM);
        let status = wait_exit(&mut child, Duration::from_secs(10)).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no exit within 10 s of SIGTERM; log:\n{}", self.dir.log())
        });
        assert!(status.success(), "clean exit: {status:?}");
    }

    /// Runs `garage -c <config> args…`.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.dir.run(args)
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "garage {} failed: {}\nstdout: {}",
            args.join(" "),
            stderr(&out),
            stdout(&out)
        );
        stdout(&out)
    }

    /// Runs a command that must fail with exit code 1 and exactly one `Error:` line on stderr
    /// (and nothing on stdout); returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "garage {} should fail with exit code 1; stderr: {err}\nstdout: {}",
            args.join(" "),
            stdout(&out)
        );
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "garage {}: one line on stderr, got:\n{err}",
            args.join(" ")
        );
        assert!(lines[0].starts_with("Error: "), "{}", lines[0]);
        assert!(
            stdout(&out).trim().is_empty(),
            "garage {}: nothing on stdout, got:\n{}",
            args.join(" "),
            stdout(&out)
        );
        // Shown with `--nocapture`, to review the messages.
        eprintln!("garage {} -> {}", args.join(" "), lines[0]);
        lines[0].to_string()
    }

    /// `garage layout show --json`, parsed.
    pub fn show_json(&self) -> serde_json::Value {
        let text = self.ok(&["layout", "show", "--json"]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("layout show --json: {e}\n{text}"))
    }

    /// Like `show_json`, but `None` when the command fails (e.g. while the node is starting).
    pub fn try_show_json(&self) -> Option<serde_json::Value> {
        let out = self.cli(&["layout", "show", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until `garage status` on this node lists every node of `ids` as healthy.
    pub fn wait_healthy(&self, ids: &[&str]) {
        let ok = wait_for(CONVERGE, || {
            let out = self.cli(&["status"]);
            let text = stdout(&out);
            let healthy = text.split("==== FAILED NODES ====").next().unwrap_or("");
            ids.iter()
                .all(|id| healthy.contains(&id[..16]))
                .then_some(())
        });
        assert!(
            ok.is_some(),
            "node {} never saw {:?} healthy; status:\n{}\nlog:\n{}",
            self.short(),
            ids,
            stdout(&self.cli(&["status"])),
            self.dir.log()
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
