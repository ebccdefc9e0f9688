//! Peering: keeps a connection open to every known peer (full mesh). Peers come from
//! `bootstrap_peers`, `garage node connect`, the persisted peer list and gossip (each ping answer
//! carries the responder's peer list). Each connected peer is pinged every [`PING_INTERVAL`];
//! a peer that has not answered for [`DOWN_AFTER`] is down: its connection is dropped and retried
//! with exponential backoff. Pings also carry an opaque "node info" blob set by upper layers
//! (hostname, disk space, layout version), so status exchange needs no extra round trips.
//!
//! Persisted format: `metadata_dir/peer_list`, a versioned [`PeerListFile`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::frame::Priority;
use super::netapp::NetApp;
use super::{ByteStream, HandlerResult, NetError, RawHandler, RequestContext};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::NodeId;
use crate::util::time::now_msec;

/// Interval between pings of a connected peer.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
/// A peer silent for this long is down.
pub const DOWN_AFTER: Duration = Duration::from_secs(30);
/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Endpoint path of pings.
pub const PING_PATH: &str = "garage/net/ping";
/// RTT samples kept per peer.
const RTT_SAMPLES: usize = 10;

/// The persisted peer list.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq)]
pub struct PeerListFile {
    pub peers: Vec<(NodeId, SocketAddr)>,
}

impl Migrate for PeerListFile {
    const VERSION_MARKER: &'static [u8] = b"GpeerL1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

#[derive(Serialize, Deserialize)]
struct PingRequest {
    /// The address the caller announces (its `rpc_public_addr`), if configured.
    addr: Option<SocketAddr>,
    /// The caller's RPC port, to build its address from the connection's IP otherwise.
    port: u16,
    #[serde(with = "serde_bytes")]
    info: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct PingResponse {
    peers: Vec<(NodeId, SocketAddr)>,
    #[serde(with = "serde_bytes")]
    info: Vec<u8>,
}

/// Connection state of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    Connected,
    Connecting,
    Waiting { attempts: u32, next_try: Instant },
}

struct Peer {
    addr: SocketAddr,
    state: ConnState,
    last_seen_ms: Option<u64>,
    last_ok: Option<Instant>,
    last_ping_sent: Option<Instant>,
    ping_in_flight: bool,
    rtt: VecDeque<Duration>,
    info: Option<Bytes>,
}

impl Peer {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            state: ConnState::Waiting {
                attempts: 0,
                next_try: Instant::now(),
            },
            last_seen_ms: None,
            last_ok: None,
            last_ping_sent: None,
            ping_in_flight: false,
            rtt: VecDeque::new(),
            info: None,
        }
    }
}

/// What is known of a peer, for status displays.
#[derive(Clone, Debug)]
pub struct PeerStatus {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub is_up: bool,
    /// Milliseconds since the epoch of the last successful exchange.
    pub last_seen_ms: Option<u64>,
    pub avg_rtt: Option<Duration>,
    pub info: Option<Bytes>,
}

/// The peering manager of a node.
pub struct Peering {
    netapp: Arc<NetApp>,
    public_addr: Option<SocketAddr>,
    port: u16,
    peer_list_path: Option<PathBuf>,
    peers: Mutex<HashMap<NodeId, Peer>>,
    local_info: Mutex<Bytes>,
    ping_timeout: Duration,
}

fn backoff(attempts: u32) -> Duration {
    let secs = 1u64 << attempts.min(6);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

impl Peering {
    /// Creates the manager and registers the ping endpoint. Known peers are loaded from
    /// `peer_list_path` if it exists.
    pub fn new(
        netapp: Arc<NetApp>,
        public_addr: Option<SocketAddr>,
        port: u16,
        peer_list_path: Option<PathBuf>,
        ping_timeout: Duration,
    ) -> Arc<Self> {
        let mut peers = HashMap::new();
        if let Some(path) = &peer_list_path {
            match std::fs::read(path) {
                Ok(bytes) => match PeerListFile::decode(&bytes) {
                    Ok(list) => {
                        for (id, addr) in list.peers {
                            if id != netapp.id {
                                peers.insert(id, Peer::new(addr));
                            }
                        }
                    }
                    Err(e) => warn!("ignoring unreadable peer list {}: {}", path.display(), e),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (),
                Err(e) => warn!("cannot read peer list {}: {}", path.display(), e),
            }
        }
        let this = Arc::new(Self {
            netapp: netapp.clone(),
            public_addr,
            port,
            peer_list_path,
            peers: Mutex::new(peers),
            local_info: Mutex::new(Bytes::new()),
            ping_timeout,
        });
        netapp.add_handler(PING_PATH, Arc::new(PingHandler(Arc::downgrade(&this))));
        this
    }

    /// Sets the info blob sent with every ping and ping answer.
    pub fn set_local_info(&self, info: Bytes) {
        if let Ok(mut i) = self.local_info.lock() {
            *i = info;
        }
    }

    fn local_info(&self) -> Bytes {
        self.local_info
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default()
    }

    /// Adds a peer to keep connected to (no effect for ourselves or a known peer at the same
    /// address). Returns true if something changed.
    pub fn add_peer(&self, id: NodeId, addr: SocketAddr) -> bool {
        if id == self.netapp.id {
            return false;
        }
        let Ok(mut peers) = self.peers.lock() else {
            return false;
        };
        match peers.get_mut(&id) {
            Some(p) if p.addr == addr => false,
            Some(p) => {
                // Keep a working connection; otherwise try the new address next.
                if p.state != ConnState::Connected {
                    p.addr = addr;
                    p.state = ConnState::Waiting {
                        attempts: 0,
                        next_try: Instant::now(),
                    };
                    true
                } else {
                    false
                }
            }
            None => {
                debug!("new peer {:?} at {}", id, addr);
                peers.insert(id, Peer::new(addr));
                true
            }
        }
    }

    /// Connects to a peer now (for `garage node connect`) and keeps it connected afterwards.
    pub async fn connect_now(
        self: &Arc<Self>,
        id: NodeId,
        addr: SocketAddr,
    ) -> Result<(), NetError> {
        self.netapp.connect(addr, id).await?;
        self.add_peer(id, addr);
        if let Ok(mut peers) = self.peers.lock() {
            if let Some(p) = peers.get_mut(&id) {
                p.addr = addr;
                p.state = ConnState::Connected;
                p.last_ok = Some(Instant::now());
                p.last_seen_ms = Some(now_msec());
            }
        }
        self.persist();
        let this = self.clone();
        tokio::spawn(async move { this.ping(id).await });
        Ok(())
    }

    /// Status of every known peer.
    pub fn peer_status(&self) -> Vec<PeerStatus> {
        let Ok(peers) = self.peers.lock() else {
            return vec![];
        };
        peers
            .iter()
            .map(|(id, p)| PeerStatus {
                id: *id,
                addr: p.addr,
                is_up: p.state == ConnState::Connected
                    && p.last_ok.is_some_and(|t| t.elapsed() < DOWN_AFTER),
                last_seen_ms: p.last_seen_ms,
                avg_rtt: (!p.rtt.is_empty())
                    .then(|| p.rtt.iter().sum::<Duration>() / p.rtt.len() as u32),
                info: p.info.clone(),
            })
            .collect()
    }

    /// Runs the peering loop until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut persisted: Vec<(NodeId, SocketAddr)> = vec![];
        loop {
            tokio::select! {
                _ = tick.tick() => (),
                _ = shutdown.changed() => break,
            }
            self.step();
            let now_list = self.peer_list();
            if now_list != persisted {
                self.persist();
                persisted = now_list;
            }
        }
    }

    fn peer_list(&self) -> Vec<(NodeId, SocketAddr)> {
        let mut v: Vec<_> = self
            .peers
            .lock()
            .map(|p| p.iter().map(|(id, p)| (*id, p.addr)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    fn persist(&self) {
        let Some(path) = &self.peer_list_path else {
            return;
        };
        let file = PeerListFile {
            peers: self.peer_list(),
        };
        let res = file.encode().map_err(|e| e.to_string()).and_then(|b| {
            crate::util::file::write_atomic(path, &b, None).map_err(|e| e.to_string())
        });
        if let Err(e) = res {
            warn!("cannot save peer list to {}: {}", path.display(), e);
        }
    }

    /// One round: reconnect, ping, detect failures.
    fn step(self: &Arc<Self>) {
        let now = Instant::now();
        let mut to_connect = vec![];
        let mut to_ping = vec![];
        let mut to_drop = vec![];
        {
            let Ok(mut peers) = self.peers.lock() else {
                return;
            };
            for (id, p) in peers.iter_mut() {
                let connected = self.netapp.is_connected(id);
                match p.state {
                    ConnState::Connected if !connected => {
                        info!("peer {:?} disconnected; will reconnect", id);
                        p.state = ConnState::Waiting {
                            attempts: 0,
                            next_try: now + Duration::from_secs(1),
                        };
                    }
                    ConnState::Connected => {
                        let silent = p.last_ok.map(|t| now - t).unwrap_or(DOWN_AFTER);
                        if silent >= DOWN_AFTER && p.last_ok.is_some() {
                            warn!("peer {:?} silent for {:?}: considered down", id, silent);
                            to_drop.push(*id);
                            p.state = ConnState::Waiting {
                                attempts: 0,
                                next_try: now,
                            };
                        } else if !p.ping_in_flight
                            && p.last_ping_sent.is_none_or(|t| now - t >= PING_INTERVAL)
                        {
                            p.ping_in_flight = true;
                            p.last_ping_sent = Some(now);
                            to_ping.push(*id);
                        }
                    }
                    ConnState::Waiting { attempts, next_try } if now >= next_try => {
                        if connected {
                            p.state = ConnState::Connected;
                            p.last_ok = Some(now);
                            p.ping_in_flight = true;
                            p.last_ping_sent = Some(now);
                            to_ping.push(*id);
                        } else {
                            p.state = ConnState::Connecting;
                            to_connect.push((*id, p.addr, attempts));
                        }
                    }
                    _ => (),
                }
            }
        }
        for id in to_drop {
            self.netapp.disconnect(&id);
        }
        for (id, addr, attempts) in to_connect {
            let this = self.clone();
            tokio::spawn(async move { this.try_connect(id, addr, attempts).await });
        }
        for id in to_ping {
            let this = self.clone();
            tokio::spawn(async move { this.ping(id).await });
        }
    }

    async fn try_connect(self: Arc<Self>, id: NodeId, addr: SocketAddr, attempts: u32) {
        let res = self.netapp.connect(addr, id).await;
        let ok = res.is_ok();
        if let Ok(mut peers) = self.peers.lock() {
            if let Some(p) = peers.get_mut(&id) {
                match &res {
                    Ok(()) => {
                        p.state = ConnState::Connected;
                        p.last_ok = Some(Instant::now());
                        p.last_seen_ms = Some(now_msec());
                        p.ping_in_flight = true;
                        p.last_ping_sent = Some(Instant::now());
                    }
                    Err(e) => {
                        let wait = backoff(attempts);
                        if attempts < 3 {
                            debug!(
                                "cannot connect to {:?} at {}: {}; retrying in {:?}",
                                id, addr, e, wait
                            );
                        } else {
                            warn!(
                                "cannot connect to {:?} at {}: {}; retrying in {:?}",
                                id, addr, e, wait
                            );
                        }
                        p.state = ConnState::Waiting {
                            attempts: attempts + 1,
                            next_try: Instant::now() + wait,
                        };
                    }
                }
            }
        }
        if ok {
            self.ping(id).await;
        }
    }

    async fn ping(self: Arc<Self>, id: NodeId) {
        let req = PingRequest {
            addr: self.public_addr,
            port: self.port,
            info: self.local_info().to_vec(),
        };
        let start = Instant::now();
        let res = match rmp_serde::to_vec_named(&req) {
            Ok(payload) => self
                .netapp
                .request(
                    id,
                    PING_PATH,
                    Priority::High,
                    Bytes::from(payload),
                    None,
                    self.ping_timeout,
                )
                .await
                .map_err(|e| e.to_string())
                .and_then(|(resp, _)| {
                    rmp_serde::from_slice::<PingResponse>(&resp).map_err(|e| e.to_string())
                }),
            Err(e) => Err(e.to_string()),
        };
        let rtt = start.elapsed();
        let mut new_peers = vec![];
        if let Ok(mut peers) = self.peers.lock() {
            if let Some(p) = peers.get_mut(&id) {
                p.ping_in_flight = false;
                match &res {
                    Ok(resp) => {
                        p.last_ok = Some(Instant::now());
                        p.last_seen_ms = Some(now_msec());
                        p.rtt.push_back(rtt);
                        if p.rtt.len() > RTT_SAMPLES {
                            p.rtt.pop_front();
                        }
                        p.info = Some(Bytes::from(resp.info.clone()));
                        new_peers = resp.peers.clone();
                    }
                    Err(e) => debug!("ping to {:?} failed: {}", id, e),
                }
            }
        }
        for (pid, addr) in new_peers {
            if !self.is_known(&pid) {
                self.add_peer(pid, addr);
            }
        }
    }

    fn is_known(&self, id: &NodeId) -> bool {
        *id == self.netapp.id
            || self
                .peers
                .lock()
                .map(|p| p.contains_key(id))
                .unwrap_or(true)
    }

    /// Answers a ping: learns the caller (and how to reach it), returns our peer list.
    fn on_ping(self: &Arc<Self>, ctx: &RequestContext, req: PingRequest) -> PingResponse {
        let addr = req
            .addr
            .or_else(|| ctx.remote_addr.map(|a| SocketAddr::new(a.ip(), req.port)));
        if let Some(addr) = addr {
            if !self.is_known(&ctx.from) {
                info!("peer {:?} introduced itself from {}", ctx.from, addr);
                self.add_peer(ctx.from, addr);
            }
        }
        if let Ok(mut peers) = self.peers.lock() {
            if let Some(p) = peers.get_mut(&ctx.from) {
                p.info = Some(Bytes::from(req.info));
                p.last_seen_ms = Some(now_msec());
            }
        }
        let mut peers = self.peer_list();
        if let Some(a) = self.public_addr {
            peers.push((self.netapp.id, a));
        }
        PingResponse {
            peers,
            info: self.local_info().to_vec(),
        }
    }
}

struct PingHandler(std::sync::Weak<Peering>);

impl RawHandler for PingHandler {
    fn handle(
        &self,
        ctx: RequestContext,
        payload: Bytes,
        _body: Option<ByteStream>,
    ) -> BoxFuture<'static, HandlerResult> {
        let peering = self.0.upgrade();
        async move {
            let peering = peering.ok_or("node is shutting down")?;
            let req: PingRequest =
                rmp_serde::from_slice(&payload).map_err(|e| format!("bad ping: {e}"))?;
            let resp = peering.on_ping(&ctx, req);
            let bytes = rmp_serde::to_vec_named(&resp).map_err(|e| e.to_string())?;
            Ok((Bytes::from(bytes), None))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    #[test]
    fn peer_list_golden_bytes() {
        let f = PeerListFile {
            peers: vec![(NodeId([1; 32]), "127.0.0.1:3901".parse().expect("addr"))],
        };
        let enc = f.encode().expect("encode");
        assert!(enc.starts_with(b"GpeerL1"));
        assert_eq!(PeerListFile::decode(&enc).expect("decode"), f);
    }
}
