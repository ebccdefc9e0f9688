//! In-process clusters: several real nodes (real TCP on loopback, real sled databases in private
//! temporary directories) in one test process, with a simple replicated table to exercise the
//! table engine. A node can be partitioned away with `NetApp::set_isolated`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use garage::config::{parse_config, SecretOverrides};
use garage::db::{Transaction, TxOpResult};
use garage::layout::NodeRole;
use garage::server::Node;
use garage::table::replication::{Replication, Sharded};
use garage::table::schema::{Entry, TableSchema};
use garage::table::typed::Table;
use garage::table::TableError;
use garage::util::background::WorkerRegistry;
use garage::util::crdt::{Crdt, Lww};
use garage::util::encode::{Migrate, NoPrevious};
use garage::util::ids::NodeId;
use serde::{Deserialize, Serialize};

use super::{free_port, RPC_SECRET};

/// A test entry: (pk, sk) → last-writer-wins optional value; `None` is a tombstone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub pk: String,
    pub sk: String,
    pub value: Lww<Option<String>>,
}

impl KvEntry {
    pub fn new(pk: &str, sk: &str, value: Option<&str>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
            value: Lww::new(value.map(String::from)),
        }
    }
}

impl Crdt for KvEntry {
    fn merge(&mut self, other: &Self) {
        self.value.merge(&other.value);
    }
}

impl Migrate for KvEntry {
    const VERSION_MARKER: &'static [u8] = b"Gtestkv1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<String, String> for KvEntry {
    fn partition_key(&self) -> &String {
        &self.pk
    }
    fn sort_key(&self) -> &String {
        &self.sk
    }
    fn is_tombstone(&self) -> bool {
        self.value.get().is_none()
    }
}

/// The test table. Its hook can cascade into another table's insert queue.
pub struct KvSchema {
    pub cascade_to: Option<Arc<Table<KvSchema2>>>,
}

impl TableSchema for KvSchema {
    const NAME: &'static str = "test_kv";
    type P = String;
    type S = String;
    type E = KvEntry;
    type Filter = ();

    fn updated(
        &self,
        tx: &mut Transaction<'_>,
        _old: Option<&KvEntry>,
        new: Option<&KvEntry>,
    ) -> TxOpResult<()> {
        if let (Some(target), Some(new)) = (&self.cascade_to, new) {
            let mut copy = KvEntry::new(&format!("copy-{}", new.pk), &new.sk, None);
            copy.value = new.value.clone();
            target.queue_insert(tx, &KvEntry2(copy))?;
        }
        Ok(())
    }
}

/// A second table, target of cascades.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry2(pub KvEntry);

impl Crdt for KvEntry2 {
    fn merge(&mut self, other: &Self) {
        self.0.merge(&other.0);
    }
}

impl Migrate for KvEntry2 {
    const VERSION_MARKER: &'static [u8] = b"Gtestkv2";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<String, String> for KvEntry2 {
    fn partition_key(&self) -> &String {
        &self.0.pk
    }
    fn sort_key(&self) -> &String {
        &self.0.sk
    }
    fn is_tombstone(&self) -> bool {
        self.0.is_tombstone()
    }
}

pub struct KvSchema2;

impl TableSchema for KvSchema2 {
    const NAME: &'static str = "test_kv_copy";
    type P = String;
    type S = String;
    type E = KvEntry2;
    type Filter = ();
}

/// One in-process node with its test tables.
pub struct TestNode {
    /// The node's private directory, when the harness created it.
    pub dir: Option<tempfile::TempDir>,
    pub node: Arc<Node>,
    pub kv: Arc<Table<KvSchema>>,
    pub kv2: Arc<Table<KvSchema2>>,
}

impl TestNode {
    pub fn id(&self) -> NodeId {
        self.node.system.id()
    }

    /// Starts the background workers of both test tables.
    pub fn spawn_workers(&self) {
        let ctx = self.node.table_context();
        self.kv.spawn_workers(&ctx);
        self.kv2.spawn_workers(&ctx);
    }

    /// One complete anti-entropy round of both tables, run here and now.
    pub async fn sync_round(&self) -> Result<(), TableError> {
        let w = WorkerRegistry::new().register("test sync");
        self.kv.core.sync_round(&w).await?;
        self.kv2.core.sync_round(&w).await?;
        Ok(())
    }

    /// Wakes the background anti-entropy workers of both tables.
    pub fn trigger_sync(&self) {
        self.kv.sync_trigger.now.notify_one();
        self.kv2.sync_trigger.now.notify_one();
    }
}

/// The configuration text of a test node rooted at `root`, listening on `port`.
pub fn node_config(root: &Path, port: u16, rf: usize, extra: &str) -> String {
    format!(
        "metadata_dir = \"{m}\"\ndata_dir = \"{d}\"\nreplication_factor = {rf}\nrpc_bind_addr = \"127.0.0.1:{port}\"\nrpc_public_addr = \"127.0.0.1:{port}\"\nrpc_secret = \"{RPC_SECRET}\"\nrpc_timeout_msec = 5000\n{extra}\n",
        m = root.join("meta").display(),
        d = root.join("data").display(),
    )
}

/// Starts a node with the given replication factor and extra config lines.
pub async fn start_node(rf: usize, extra: &str) -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = start_node_in(dir.path(), free_port(), rf, extra, true).await;
    t.dir = Some(dir);
    t
}

/// Starts a node on an existing directory (its key and data are kept there) and port, with or
/// without the tables' background workers.
pub async fn start_node_in(
    root: &Path,
    port: u16,
    rf: usize,
    extra: &str,
    workers: bool,
) -> TestNode {
    let text = node_config(root, port, rf, extra);
    let config = parse_config(&text, "test", &SecretOverrides::default()).expect("config");
    let node = Node::start(config).await.expect("node start");
    let ctx = node.table_context();
    let sharded = |node: &Arc<Node>| -> Arc<dyn Replication> {
        Arc::new(Sharded {
            layout: node.layout.clone(),
            replication_factor: rf,
            consistency: node.config.consistency_mode,
        })
    };
    let kv2 = Table::new(KvSchema2, sharded(&node), &ctx).expect("table 2");
    let kv = Table::new(
        KvSchema {
            cascade_to: Some(kv2.clone()),
        },
        sharded(&node),
        &ctx,
    )
    .expect("table");
    let t = TestNode {
        dir: None,
        node,
        kv,
        kv2,
    };
    if workers {
        t.spawn_workers();
    }
    t
}

/// Polls `cond` every 50 ms until true or `timeout`; returns whether it became true.
pub async fn until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// Starts `n` nodes, connects them all, assigns each its own zone and applies the layout.
pub async fn start_cluster(n: usize, rf: usize, extra: &str) -> Vec<TestNode> {
    let mut nodes = vec![];
    for _ in 0..n {
        nodes.push(start_node(rf, extra).await);
    }
    connect_all(&nodes).await;
    let roles: BTreeMap<_, _> = nodes
        .iter()
        .enumerate()
        .map(|(i, t)| (t.node.system.id(), NodeRole::storage(format!("z{i}"), 100)))
        .collect();
    assign_and_apply(&nodes[0], roles).await;
    wait_layout(&nodes, 1).await;
    nodes
}

/// Connects every node to the first one (peering does the rest) and waits for a full mesh.
pub async fn connect_all(nodes: &[TestNode]) {
    let first = &nodes[0].node;
    let addr = first
        .config
        .rpc_public_addr
        .clone()
        .expect("addr")
        .parse()
        .expect("addr");
    for t in &nodes[1..] {
        t.node
            .system
            .peering
            .connect_now(first.system.id(), addr)
            .await
            .expect("connect");
    }
    let ok = until(Duration::from_secs(30), || {
        nodes.iter().all(|t| {
            t.node
                .system
                .known_nodes()
                .iter()
                .filter(|k| k.is_up)
                .count()
                == nodes.len()
        })
    })
    .await;
    assert!(ok, "full mesh not reached");
}

/// Stages role changes (`None` removes a node's role) on `node` and applies the next version;
/// returns the new version.
pub async fn stage_and_apply(node: &TestNode, changes: Vec<(NodeId, Option<NodeRole>)>) -> u64 {
    node.node
        .layout
        .update(|h| -> Result<u64, String> {
            for (id, r) in changes {
                h.staging.roles.update_in_place(id, r);
            }
            h.apply(None).map(|v| v.version).map_err(|e| e.to_string())
        })
        .expect("apply layout")
}

/// Stages `roles` on `node` and applies the next version.
pub async fn assign_and_apply(node: &TestNode, roles: BTreeMap<NodeId, NodeRole>) {
    node.node
        .layout
        .update(|h| -> Result<(), String> {
            for (id, r) in roles {
                h.staging.roles.update_in_place(id, Some(r));
            }
            h.apply(None).map(|_| ()).map_err(|e| e.to_string())
        })
        .expect("apply layout");
}

/// Waits until every node knows layout version `v`.
pub async fn wait_layout(nodes: &[TestNode], v: u64) {
    let ok = until(Duration::from_secs(30), || {
        nodes
            .iter()
            .all(|t| t.node.layout.read(|h| h.current().version) >= v)
    })
    .await;
    assert!(ok, "layout version {v} did not reach every node");
}

/// Like [`until`], with an asynchronous condition (e.g. a cluster read).
pub async fn until_async<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond().await
}

/// Every (tree key, encoded entry) of a table's local store, in key order.
pub fn local_store<S: TableSchema>(t: &Table<S>) -> Vec<(Vec<u8>, Vec<u8>)> {
    t.core
        .data
        .store
        .iter()
        .expect("iter")
        .map(|r| r.expect("item"))
        .collect()
}

/// The local value of a test entry: `None` if absent, `Some(None)` for a tombstone.
pub fn local_value(t: &Table<KvSchema>, pk: &str, sk: &str) -> Option<Option<String>> {
    t.get_local(&pk.to_string(), &sk.to_string())
        .expect("local read")
        .map(|e| e.value.get().clone())
}

/// Shuts every node down (databases flushed).
pub async fn shutdown_all(nodes: &[TestNode]) {
    for t in nodes {
        t.node.shutdown().await.expect("shutdown");
    }
}
