//! Several real daemons with S3 endpoints: a node of `cluster.rs` plus an `[s3_api]` section
//! on a free port, and a cluster of them with one zone per node and layout version 1 applied.
//!
//! Include with `#[path = "common/s3_nodes.rs"] mod s3_nodes;` next to `mod common;`,
//! `#[path = "common/cluster.rs"] mod cluster;` and `#[path = "common/s3.rs"] mod s3util;`.
#![allow(dead_code)]

use std::io::Write;

use aws_sdk_s3::Client;

use crate::cluster::{Node, CONVERGE};
use crate::common::{free_port, wait_for};
use crate::s3util::{client, s3_config};

/// A daemon of a test cluster with its S3 endpoint.
pub struct S3Node {
    pub node: Node,
    pub port: u16,
}

impl S3Node {
    pub fn new(rf: usize) -> Self {
        Self::with_config(rf, "")
    }

    /// As [`Self::new`], with `extra` configuration after the `[s3_api]` section.
    pub fn with_config(rf: usize, extra: &str) -> Self {
        let node = Node::new(rf);
        let port = free_port();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&node.dir.config)
            .expect("open config");
        f.write_all(format!("{}{extra}", s3_config(port)).as_bytes())
            .expect("append [s3_api]");
        Self { node, port }
    }

    pub fn client(&self, key: &(String, String)) -> Client {
        client(self.port, &key.0, &key.1, "garage")
    }

    /// Items of a table in this node's local store, from `garage stats`.
    pub fn table_items(&self, table: &str) -> Option<u64> {
        let out = self.node.cli(&["stats"]);
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let mut cells = l.split_whitespace();
            (cells.next() == Some(table))
                .then(|| cells.next()?.parse().ok())
                .flatten()
        })
    }

    /// Whether `garage block info` on this node says the block is stored here.
    pub fn stores_block(&self, hash: &str) -> bool {
        let out = self.node.cli(&["block", "info", hash]);
        let text = String::from_utf8_lossy(&out.stdout);
        out.status.success()
            && text
                .lines()
                .any(|l| l.starts_with("Stored here:") && !l.contains("Stored here: no"))
    }
}

/// Starts `n` connected daemons with replication factor `rf`, each in its own zone `dcN`, and
/// applies layout version 1.
pub fn start_nodes(n: usize, rf: usize) -> Vec<S3Node> {
    start_nodes_with(n, rf, "")
}

/// As [`start_nodes`], with `first_extra` configuration on the first node (e.g. `[s3_web]`).
pub fn start_nodes_with(n: usize, rf: usize, first_extra: &str) -> Vec<S3Node> {
    let mut nodes: Vec<S3Node> = (0..n)
        .map(|i| S3Node::with_config(rf, if i == 0 { first_extra } else { "" }))
        .collect();
    for n in nodes.iter_mut() {
        n.node.start();
    }
    let first = nodes[0].node.addr_spec();
    for n in &nodes[1..] {
        n.node.ok(&["node", "connect", &first]);
    }
    let ids: Vec<String> = nodes.iter().map(|n| n.node.id.clone()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for n in &nodes {
        n.node.wait_healthy(&ids);
    }
    for (i, n) in nodes.iter().enumerate() {
        let zone = format!("dc{}", i + 1);
        nodes[0]
            .node
            .ok(&["layout", "assign", "-z", &zone, "-c", "1G", n.node.prefix()]);
    }
    nodes[0].node.ok(&["layout", "apply", "--version", "1"]);
    for n in &nodes {
        wait_layout(&n.node, 1);
    }
    nodes
}

/// Waits until `node` shows layout `version` as current.
pub fn wait_layout(node: &Node, version: u64) {
    wait_for(CONVERGE, || {
        let j = node.try_show_json()?;
        (j["current"]["version"] == version).then_some(())
    })
    .unwrap_or_else(|| panic!("node {} never reached layout {version}", node.short()));
}
