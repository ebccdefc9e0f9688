//! The admin RPC service: what the CLI asks the daemon to do. The daemon does the work and
//! returns structured results; the CLI formats them. Every CLI command that needs the cluster
//! is one [`AdminRpc`] variant.

pub mod layout;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::layout::manager::LayoutManager;
use crate::layout::{NodeRole, ZoneRedundancy};
use crate::rpc::endpoint::{Handler, Rpc};
use crate::rpc::system::{KnownNode, System};
use crate::util::ids::NodeId;

/// Requests from the CLI.
#[derive(Debug, Serialize, Deserialize)]
pub enum AdminRpc {
    /// The cluster as this node sees it.
    Status,
    /// Connect to `<node id>@<host>:<port>` and keep it in the mesh.
    Connect {
        peer: String,
    },
    LayoutShow,
    LayoutAssign(layout::AssignRequest),
    LayoutRemove {
        node: String,
    },
    LayoutConfig {
        zone_redundancy: ZoneRedundancy,
    },
    LayoutApply {
        version: Option<u64>,
    },
    LayoutRevert {
        version: u64,
    },
    LayoutHistory,
    LayoutSkipDeadNodes {
        version: u64,
    },
    /// Background workers of this node.
    WorkerList,
    /// Table and node statistics.
    Stats,
    /// Start an anti-entropy round of every table now.
    RepairTables,
}

/// What `garage stats` shows for one node.
#[derive(Debug, Serialize, Deserialize)]
pub struct NodeStats {
    pub node: NodeId,
    pub hostname: String,
    pub tables: Vec<crate::table::data::TableStats>,
    pub layout_version: u64,
}

/// What `garage status` shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub local: NodeId,
    pub nodes: Vec<KnownNode>,
    pub layout_version: u64,
    pub roles: BTreeMap<NodeId, NodeRole>,
    /// Staged (not yet applied) changes exist.
    pub staged_changes: bool,
}

/// Answers to the CLI.
#[derive(Debug, Serialize, Deserialize)]
pub enum AdminResponse {
    Status(ClusterStatus),
    LayoutShow(Box<layout::LayoutShow>),
    LayoutHistory(layout::HistoryView),
    Workers(Vec<crate::util::background::WorkerStatus>),
    Stats(NodeStats),
    /// The command succeeded; the text says what was done.
    Done(String),
    /// The command failed; the text says what is wrong and what to do.
    Error(String),
}

impl Rpc for AdminRpc {
    type Response = AdminResponse;
}

/// The daemon side of the admin RPC.
pub struct AdminService {
    pub system: Arc<System>,
    pub layout: Arc<LayoutManager>,
    pub workers: Arc<crate::util::background::WorkerRegistry>,
    pub tables: Arc<crate::table::registry::TableRegistry>,
}

fn done(r: Result<String, String>) -> AdminResponse {
    match r {
        Ok(t) => AdminResponse::Done(t),
        Err(e) => AdminResponse::Error(e),
    }
}

impl Handler<AdminRpc> for AdminService {
    async fn handle(
        self: Arc<Self>,
        msg: AdminRpc,
        _from: NodeId,
    ) -> Result<AdminResponse, String> {
        let m = &self.layout;
        Ok(match msg {
            AdminRpc::Status => {
                let (layout_version, roles, staged_changes) = m.read(|h| {
                    (
                        h.current().version,
                        h.current().roles.clone(),
                        !h.staging.is_empty(),
                    )
                });
                AdminResponse::Status(ClusterStatus {
                    local: self.system.id(),
                    nodes: self.system.known_nodes(),
                    layout_version,
                    roles,
                    staged_changes,
                })
            }
            AdminRpc::LayoutShow => AdminResponse::LayoutShow(Box::new(m.read(layout::show))),
            AdminRpc::LayoutAssign(req) => done(layout::assign(m, req)),
            AdminRpc::LayoutRemove { node } => done(layout::remove(m, &node)),
            AdminRpc::LayoutConfig { zone_redundancy } => done(layout::config(m, zone_redundancy)),
            AdminRpc::LayoutApply { version } => done(layout::apply(m, version)),
            AdminRpc::LayoutRevert { version } => done(layout::revert(m, version)),
            AdminRpc::LayoutHistory => AdminResponse::LayoutHistory(m.read(layout::history)),
            AdminRpc::LayoutSkipDeadNodes { version } => done(layout::skip_dead_nodes(m, version)),
            AdminRpc::WorkerList => AdminResponse::Workers(self.workers.list()),
            AdminRpc::Stats => {
                let mut tables = vec![];
                for t in self.tables.all() {
                    match t.stats() {
                        Ok(s) => tables.push(s),
                        Err(e) => return Ok(AdminResponse::Error(e.to_string())),
                    }
                }
                AdminResponse::Stats(NodeStats {
                    node: self.system.id(),
                    hostname: self.system.local_status().hostname,
                    tables,
                    layout_version: m.read(|h| h.current().version),
                })
            }
            AdminRpc::RepairTables => {
                let all = self.tables.all();
                for t in &all {
                    t.trigger_sync();
                }
                AdminResponse::Done(format!(
                    "Anti-entropy started for {} table(s); follow it with `garage worker list`.",
                    all.len()
                ))
            }
            AdminRpc::Connect { peer } => match System::resolve_peer(&peer).await {
                Err(e) => AdminResponse::Error(e),
                Ok((id, addr)) => match self.system.peering.connect_now(id, addr).await {
                    Ok(()) => AdminResponse::Done(format!("Success: connected to {}@{}", id, addr)),
                    Err(e) => {
                        AdminResponse::Error(format!("Cannot connect to {}@{}: {}", id, addr, e))
                    }
                },
            },
        })
    }
}
