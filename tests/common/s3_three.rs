//! A 3-node cluster (rf 3, one zone per node) with the interface of `s3util::SingleNode`, so
//! that the tests of `tests/s3_single` run unchanged against it (`tests/s3_three_nodes`).
//!
//! Requests are spread over the nodes: the SDK client sends each request to the next node in
//! turn (an interceptor rewrites the endpoint before the request is signed), raw requests go to
//! node 3 (`s3_port`), CLI commands to node 1. A test that writes and reads back thus writes
//! through one node and reads through another.
//!
//! Include with `#[path = "common/s3_three.rs"] mod s3_three;` next to `mod common;`,
//! `mod cluster;`, `mod s3_nodes;` and an `s3util` module that re-exports `common/s3.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::Client;

use crate::s3_nodes::{start_nodes_with, S3Node};
use crate::s3util::{client, created_key};

/// The directory of node 1 (metadata and data: every node holds every replica with rf 3).
pub struct FirstDir(PathBuf);

impl FirstDir {
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Node 1's daemon log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.0.join("server.log")).unwrap_or_default()
    }
}

/// Three daemons with S3 endpoints, a key with every permission on bucket `default` and the
/// right to create buckets (what `garage server --single-node` prepares).
pub struct ThreeNodes {
    pub nodes: Vec<S3Node>,
    /// Node 1's directory.
    pub dir: FirstDir,
    /// The endpoint raw requests go to (node 3).
    pub s3_port: u16,
    pub key_id: String,
    pub secret: String,
}

impl ThreeNodes {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// As [`Self::start`], with `extra` configuration after node 1's `[s3_api]` section (further
    /// sections, such as `[s3_web]`).
    pub async fn start_with(extra: &str) -> Self {
        let extra = extra.to_string();
        let nodes = tokio::task::spawn_blocking(move || {
            let nodes = start_nodes_with(3, 3, &extra);
            let first = &nodes[0].node;
            let (id, secret) = created_key(&first.ok(&["key", "create", "matrix-key"]));
            first.ok(&["key", "allow", "--create-bucket", &id]);
            first.ok(&["bucket", "create", "default"]);
            first.ok(&[
                "bucket", "allow", "--read", "--write", "--owner", "default", "--key", &id,
            ]);
            (nodes, id, secret)
        })
        .await
        .expect("cluster start");
        let (nodes, key_id, secret) = nodes;
        let s3_port = nodes[2].port;
        Self {
            dir: FirstDir(nodes[0].node.dir.path().to_path_buf()),
            nodes,
            s3_port,
            key_id,
            secret,
        }
    }

    /// A client with the cluster's key whose requests go to node 1, 2, 3, 1, … in turn.
    pub fn client(&self) -> Client {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        let base = client(ports[0], &self.key_id, &self.secret, "garage");
        let conf = base
            .config()
            .to_builder()
            .interceptor(RoundRobin {
                ports,
                next: Arc::new(AtomicUsize::new(0)),
            })
            .build();
        Client::from_conf(conf)
    }

    /// Runs a CLI command against node 1; it must succeed; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        self.nodes[0].node.ok(args)
    }

    /// Creates a key through the CLI; returns (key id, secret).
    pub fn create_key(&self, name: &str) -> (String, String) {
        created_key(&self.cli(&["key", "create", name]))
    }
}

/// Sends each request to the next port of `ports`, before the request is signed (the signed
/// `Host` names the node that gets it).
#[derive(Debug)]
struct RoundRobin {
    ports: Vec<u16>,
    next: Arc<AtomicUsize>,
}

impl Intercept for RoundRobin {
    fn name(&self) -> &'static str {
        "RoundRobin"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let port = self.ports[self.next.fetch_add(1, Ordering::Relaxed) % self.ports.len()];
        let req = context.request_mut();
        let uri = req.uri().to_string();
        let rest = uri
            .strip_prefix("http://127.0.0.1:")
            .ok_or_else(|| format!("unexpected endpoint in {uri}"))?;
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        req.set_uri(format!("http://127.0.0.1:{port}{path}"))?;
        Ok(())
    }
}
