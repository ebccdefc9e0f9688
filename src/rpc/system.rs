//! The system service: this node's status (hostname, free space of the data and metadata disks,
//! layout version) refreshed every [`STATUS_INTERVAL`] and carried by peering pings, the view of
//! every known node that `garage status` prints, bootstrap peer resolution, and the node order
//! (closest first) used by quorum calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use super::quorum::NodeOrder;
use crate::net::netapp::NetApp;
use crate::net::peering::Peering;
use crate::util::ids::NodeId;
use crate::util::time::now_msec;

/// Interval of status refreshes.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(10);
/// Interval between attempts to resolve bootstrap peers that did not resolve.
const BOOTSTRAP_RETRY: Duration = Duration::from_secs(60);

/// Free and total bytes of a filesystem.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskSpace {
    pub avail: u64,
    pub total: u64,
}

/// What a node tells the others about itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    pub hostname: String,
    pub data_disk: Option<DiskSpace>,
    pub meta_disk: Option<DiskSpace>,
    pub layout_version: u64,
    /// Digest of the node's whole layout history: nodes that differ exchange histories.
    #[serde(default)]
    pub layout_digest: Option<crate::util::ids::Hash>,
}

/// A node as seen from here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KnownNode {
    pub id: NodeId,
    pub addr: Option<SocketAddr>,
    pub is_up: bool,
    pub is_local: bool,
    pub last_seen_ms: Option<u64>,
    pub status: Option<NodeStatus>,
}

/// Free space of the filesystem holding `path`.
pub fn disk_space(path: &std::path::Path) -> Option<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if r != 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    Some(DiskSpace {
        avail: s.f_bavail as u64 * frsize,
        total: s.f_blocks as u64 * frsize,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The system service of a node.
pub struct System {
    pub netapp: Arc<NetApp>,
    pub peering: Arc<Peering>,
    pub order: Arc<NodeOrder>,
    pub public_addr: Option<SocketAddr>,
    metadata_dir: PathBuf,
    data_dir: Option<PathBuf>,
    status: Mutex<NodeStatus>,
    bootstrap: Vec<String>,
}

impl System {
    pub fn new(
        netapp: Arc<NetApp>,
        peering: Arc<Peering>,
        public_addr: Option<SocketAddr>,
        metadata_dir: PathBuf,
        data_dir: Option<PathBuf>,
        bootstrap: Vec<String>,
    ) -> Arc<Self> {
        let order = Arc::new(NodeOrder::new(netapp.id));
        let this = Arc::new(Self {
            netapp,
            peering,
            order,
            public_addr,
            metadata_dir,
            data_dir,
            status: Mutex::new(NodeStatus::default()),
            bootstrap,
        });
        this.refresh_status();
        this
    }

    pub fn id(&self) -> NodeId {
        self.netapp.id
    }

    /// This node's current status.
    pub fn local_status(&self) -> NodeStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Changes part of the local status (e.g. the layout version) and announces it.
    pub fn update_status(&self, f: impl FnOnce(&mut NodeStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
        self.publish_status();
    }

    fn refresh_status(&self) {
        let data = self.data_dir.as_deref().and_then(disk_space);
        let meta = disk_space(&self.metadata_dir);
        self.update_status(|s| {
            s.hostname = hostname();
            s.data_disk = data;
            s.meta_disk = meta;
        });
    }

    fn publish_status(&self) {
        let status = self.local_status();
        match rmp_serde::to_vec_named(&status) {
            Ok(b) => self.peering.set_local_info(Bytes::from(b)),
            Err(e) => warn!("cannot encode node status: {}", e),
        }
    }

    /// Every known node, this one included.
    pub fn known_nodes(&self) -> Vec<KnownNode> {
        let mut nodes = vec![KnownNode {
            id: self.id(),
            addr: self.public_addr,
            is_up: true,
            is_local: true,
            last_seen_ms: Some(now_msec()),
            status: Some(self.local_status()),
        }];
        for p in self.peering.peer_status() {
            nodes.push(KnownNode {
                id: p.id,
                addr: Some(p.addr),
                is_up: p.is_up,
                is_local: false,
                last_seen_ms: p.last_seen_ms,
                status: p
                    .info
                    .as_ref()
                    .and_then(|i| rmp_serde::from_slice::<NodeStatus>(i).ok()),
            });
        }
        nodes
    }

    /// Resolves `<id>@<host>:<port>`.
    pub async fn resolve_peer(spec: &str) -> Result<(NodeId, SocketAddr), String> {
        let (id, addr) = spec
            .split_once('@')
            .ok_or_else(|| format!("{spec:?} is not of the form <node id>@<host>:<port>"))?;
        let id = NodeId::from_hex(id)
            .map_err(|_| format!("{id:?} is not a node id (64 hex characters)"))?;
        let addr = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("cannot resolve {addr:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr:?} resolves to no address"))?;
        Ok((id, addr))
    }

    /// Refreshes the status and RTTs periodically and retries bootstrap peers, until shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut pending: Vec<String> = self.bootstrap.clone();
        let mut last_bootstrap: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(STATUS_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => (),
                _ = shutdown.changed() => break,
            }
            if !pending.is_empty() && last_bootstrap.is_none_or(|t| t.elapsed() >= BOOTSTRAP_RETRY)
            {
                last_bootstrap = Some(tokio::time::Instant::now());
                let mut still = vec![];
                for spec in pending {
                    match Self::resolve_peer(&spec).await {
                        Ok((id, addr)) => {
                            info!("bootstrap peer {:?} at {}", id, addr);
                            self.peering.add_peer(id, addr);
                        }
                        Err(e) => {
                            warn!("bootstrap peer {}: {} (will retry)", spec, e);
                            still.push(spec);
                        }
                    }
                }
                pending = still;
            }
            self.refresh_status();
            let rtts = self
                .peering
                .peer_status()
                .into_iter()
                .filter_map(|p| p.avg_rtt.map(|r| (p.id, r)))
                .collect();
            self.order.set_rtts(rtts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bootstrap_peers` and `garage node connect` take host names, resolved here; malformed
    /// specifications say what form is expected.
    #[tokio::test]
    async fn peers_are_resolved_from_host_names() {
        let id = "ab".repeat(32);
        let (got, addr) = System::resolve_peer(&format!("{id}@localhost:3901"))
            .await
            .expect("localhost resolves");
        assert_eq!(got.to_hex(), id);
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 3901);
        let (_, addr) = System::resolve_peer(&format!("{id}@127.0.0.1:3902"))
            .await
            .expect("an IP address");
        assert_eq!(addr, "127.0.0.1:3902".parse().expect("addr"));

        let e = System::resolve_peer("localhost:3901")
            .await
            .expect_err("no id");
        assert!(e.contains("<node id>@<host>:<port>"), "{e}");
        let e = System::resolve_peer("abcd@localhost:3901")
            .await
            .expect_err("short id");
        assert!(e.contains("64 hex"), "{e}");
        let e = System::resolve_peer(&format!("{id}@localhost"))
            .await
            .expect_err("no port");
        assert!(e.contains("cannot resolve"), "{e}");
    }
}
