//! The admin RPC service: what the CLI asks the daemon to do. The daemon does the work and
//! returns structured results; the CLI formats them. Every CLI command that needs the cluster
//! is one [`AdminRpc`] variant.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rpc::endpoint::{Handler, Rpc};
use crate::rpc::system::{KnownNode, System};

/// Requests from the CLI.
#[derive(Debug, Serialize, Deserialize)]
pub enum AdminRpc {
    /// The cluster as this node sees it.
    Status,
    /// Connect to `<node id>@<host>:<port>` and keep it in the mesh.
    Connect { peer: String },
}

/// What `garage status` shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub local: crate::util::ids::NodeId,
    pub nodes: Vec<KnownNode>,
}

/// Answers to the CLI.
#[derive(Debug, Serialize, Deserialize)]
pub enum AdminResponse {
    Status(ClusterStatus),
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
}

impl Handler<AdminRpc> for AdminService {
    async fn handle(
        self: Arc<Self>,
        msg: AdminRpc,
        _from: crate::util::ids::NodeId,
    ) -> Result<AdminResponse, String> {
        Ok(match msg {
            AdminRpc::Status => AdminResponse::Status(ClusterStatus {
                local: self.system.id(),
                nodes: self.system.known_nodes(),
            }),
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
