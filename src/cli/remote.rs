//! Reaching the daemon from the CLI: a throw-away key pair, the cluster's `rpc_secret`, and the
//! local daemon's address and node id (from the configuration and `metadata_dir/node_key.pub`),
//! or `--rpc-host <id>@<addr>` for another node.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::admin::{AdminResponse, AdminRpc};
use crate::config::{decode_rpc_secret, Config};
use crate::net::frame::Priority;
use crate::net::netapp::NetApp;
use crate::net::node_key::NodeKey;
use crate::rpc::endpoint::{CallOpts, Endpoint};
use crate::rpc::paths;
use crate::rpc::system::System;
use crate::util::ids::NodeId;

/// Timeout of admin calls (layout computations can take a while on big clusters).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Where and how to reach the daemon.
pub struct RemoteOpts {
    pub rpc_host: Option<String>,
    pub rpc_secret: Option<String>,
}

/// A connection to a daemon's admin service.
pub struct AdminClient {
    endpoint: Endpoint<AdminRpc>,
    target: NodeId,
}

fn local_addr(config: &Config) -> SocketAddr {
    if let Some(a) = config.rpc_public_addr.as_ref().and_then(|a| a.parse().ok()) {
        return a;
    }
    let bind = config.rpc_bind_addr;
    let ip = match bind.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bind.port())
}

impl AdminClient {
    /// Connects to the daemon named by `opts`, or to the local one described by `config`.
    pub async fn connect(opts: &RemoteOpts, config: Option<&Config>) -> anyhow::Result<Self> {
        let secret = match (&opts.rpc_secret, config) {
            (Some(s), _) => decode_rpc_secret(s)?,
            (None, Some(c)) => c.rpc_secret,
            (None, None) => bail!(
                "no rpc_secret: give a configuration file (-c), --rpc-secret or GARAGE_RPC_SECRET"
            ),
        };
        let (target, addr) = match (&opts.rpc_host, config) {
            (Some(spec), _) => System::resolve_peer(spec)
                .await
                .map_err(|e| anyhow!("--rpc-host: {e}"))?,
            (None, Some(c)) => {
                let id = NodeKey::read_public(&c.metadata_dir)
                    .context("cannot find the local node's id (use -h/--rpc-host <id>@<addr> to reach another node)")?;
                (id, local_addr(c))
            }
            (None, None) => bail!(
                "no node to talk to: give a configuration file (-c) or -h/--rpc-host <id>@<addr>"
            ),
        };
        let netapp: Arc<NetApp> = NetApp::new(NodeKey::generate(), secret, None);
        netapp.connect(addr, target).await.with_context(|| {
            format!("cannot reach the Garage daemon at {addr}: is `garage server` running, and is rpc_secret the same?")
        })?;
        Ok(Self {
            endpoint: Endpoint::new(netapp, paths::ADMIN),
            target,
        })
    }

    /// Sends a command; an error answer becomes an error.
    pub async fn call(&self, msg: AdminRpc) -> anyhow::Result<AdminResponse> {
        let resp = self
            .endpoint
            .call(
                self.target,
                &msg,
                CallOpts::new(Priority::High, ADMIN_TIMEOUT),
            )
            .await?;
        match resp {
            AdminResponse::Error(e) => Err(anyhow!(e)),
            r => Ok(r),
        }
    }
}
