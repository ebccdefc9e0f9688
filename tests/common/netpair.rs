//! Network pairs: two `NetApp`s talking over loopback TCP, and small typed endpoints.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use garage::net::netapp::NetApp;
use garage::net::node_key::NodeKey;
use garage::rpc::endpoint::{Handler, Rpc};
use garage::util::ids::NodeId;

/// The network key of the in-process tests.
pub const NETWORK_KEY: [u8; 32] = [7u8; 32];

/// A server `NetApp` listening on an ephemeral loopback port and a client connected to it.
pub struct Pair {
    pub server: Arc<NetApp>,
    pub client: Arc<NetApp>,
    pub addr: std::net::SocketAddr,
    /// Stops the server's listener when dropped.
    _stop: watch::Sender<bool>,
}

impl Pair {
    pub async fn new() -> Self {
        let server = NetApp::new(NodeKey::generate(), NETWORK_KEY, None);
        let client = NetApp::new(NodeKey::generate(), NETWORK_KEY, None);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(server.clone().listen(listener, stop_rx));
        client.connect(addr, server.id).await.expect("connect");
        Self {
            server,
            client,
            addr,
            _stop: stop,
        }
    }

    pub fn server_id(&self) -> NodeId {
        self.server.id
    }
}

/// A small typed request: answered with its value plus one.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub struct Ping(pub u64);

impl Rpc for Ping {
    type Response = u64;
}

pub struct PingHandler;

impl Handler<Ping> for PingHandler {
    async fn handle(self: Arc<Self>, msg: Ping, _from: NodeId) -> Result<u64, String> {
        Ok(msg.0 + 1)
    }
}

/// Polls `cond` every 10 ms for at most `timeout` (async version of `wait_for`).
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A deterministic pseudo-random byte generator (xorshift64*), to build large bodies lazily.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}
