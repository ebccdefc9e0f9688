//! The node's network endpoint: its identity and network key, the registry of request handlers
//! by path, the listener, and the client connections to peers. Requests to this node itself are
//! dispatched locally without touching the network.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use super::box_stream::split;
use super::conn::{serve, ClientConn};
use super::frame::Priority;
use super::handshake::{client_handshake, server_handshake};
use super::node_key::NodeKey;
use super::{ByteStream, Dispatcher, HandlerResult, NetError, RawHandler, RequestContext};
use crate::util::ids::NodeId;

/// Time allowed for the secret handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Changes in the set of client connections.
#[derive(Clone, Debug)]
pub enum ConnEvent {
    Connected { peer: NodeId, addr: SocketAddr },
    Disconnected { peer: NodeId },
}

/// A node's network endpoint.
pub struct NetApp {
    pub id: NodeId,
    key: NodeKey,
    network_key: [u8; 32],
    bind_outgoing: Option<IpAddr>,
    handlers: RwLock<HashMap<String, Arc<dyn RawHandler>>>,
    conns: RwLock<HashMap<NodeId, Arc<ClientConn>>>,
    events: broadcast::Sender<ConnEvent>,
    /// Tasks serving incoming connections (aborted on shutdown).
    server_tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// Set by `shutdown`: no new connection in or out.
    closed: AtomicBool,
    /// Test hook: while set, the node neither sends nor answers requests (a network partition).
    isolated: AtomicBool,
}

impl NetApp {
    pub fn new(key: NodeKey, network_key: [u8; 32], bind_outgoing: Option<IpAddr>) -> Arc<Self> {
        let (events, _) = broadcast::channel(256);
        Arc::new(Self {
            id: key.id(),
            key,
            network_key,
            bind_outgoing,
            handlers: RwLock::new(HashMap::new()),
            conns: RwLock::new(HashMap::new()),
            events,
            server_tasks: std::sync::Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            isolated: AtomicBool::new(false),
        })
    }

    /// Registers the handler of `path` (replacing any previous one).
    pub fn add_handler(&self, path: &str, handler: Arc<dyn RawHandler>) {
        if let Ok(mut h) = self.handlers.write() {
            h.insert(path.to_string(), handler);
        }
    }

    /// Connection events (connected / disconnected peers).
    pub fn subscribe(&self) -> broadcast::Receiver<ConnEvent> {
        self.events.subscribe()
    }

    /// Accepts connections until `shutdown` turns true.
    pub async fn listen(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => break,
            };
            match accepted {
                Ok((sock, addr)) => {
                    if self.closed.load(Ordering::SeqCst) {
                        break;
                    }
                    let this = self.clone();
                    let task = tokio::spawn(async move { this.handle_incoming(sock, addr).await });
                    if let Ok(mut t) = self.server_tasks.lock() {
                        t.retain(|h| !h.is_finished());
                        t.push(task.abort_handle());
                    }
                }
                Err(e) => {
                    warn!("accept failed: {}", e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn handle_incoming(self: Arc<Self>, mut sock: TcpStream, addr: SocketAddr) {
        let _ = sock.set_nodelay(true);
        let hs = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            server_handshake(&mut sock, &self.network_key, &self.key.secret),
        )
        .await;
        let (keys, peer) = match hs {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                warn!(
                    "refused connection from {}: secret handshake failed ({}); is its rpc_secret the same as ours?",
                    addr, e
                );
                return;
            }
            Err(_) => {
                warn!("refused connection from {}: handshake timed out", addr);
                return;
            }
        };
        debug!("accepted connection from {:?} at {}", peer, addr);
        let (reader, writer) = split(sock, &keys);
        let dispatcher: Arc<dyn Dispatcher> = self.clone();
        serve(peer, addr, reader, writer, dispatcher).await;
    }

    /// Closes every connection and refuses new ones (the listener stops with its own signal).
    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let conns: Vec<_> = match self.conns.write() {
            Ok(mut c) => c.drain().map(|(_, c)| c).collect(),
            Err(_) => vec![],
        };
        for c in conns {
            c.close();
        }
        if let Ok(mut t) = self.server_tasks.lock() {
            for h in t.drain(..) {
                h.abort();
            }
        }
    }

    /// Test hook: simulates a network partition of this node (requests in and out fail).
    pub fn set_isolated(&self, isolated: bool) {
        self.isolated.store(isolated, Ordering::SeqCst);
    }

    /// Opens a client connection to `peer` at `addr` unless one is already open.
    pub async fn connect(self: &Arc<Self>, addr: SocketAddr, peer: NodeId) -> Result<(), NetError> {
        if peer == self.id || self.is_connected(&peer) {
            return Ok(());
        }
        if self.closed.load(Ordering::SeqCst) || self.isolated.load(Ordering::SeqCst) {
            return Err(NetError::NotConnected { peer });
        }
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|source| NetError::Connect { addr, source })?;
        if let Some(ip) = self.bind_outgoing {
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|source| NetError::Connect { addr, source })?;
        }
        let mut sock = tokio::time::timeout(HANDSHAKE_TIMEOUT, socket.connect(addr))
            .await
            .map_err(|_| NetError::HandshakeTimeout { addr })?
            .map_err(|source| NetError::Connect { addr, source })?;
        let _ = sock.set_nodelay(true);
        let keys = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            client_handshake(&mut sock, &self.network_key, &self.key.secret, peer),
        )
        .await
        .map_err(|_| NetError::HandshakeTimeout { addr })?
        .map_err(|source| NetError::Handshake { addr, source })?
        .0;
        let (reader, writer) = split(sock, &keys);
        let weak = Arc::downgrade(self);
        let conn = ClientConn::start(peer, addr, reader, writer, move || {
            if let Some(this) = weak.upgrade() {
                this.forget_conn(peer);
            }
        });
        let previous = match self.conns.write() {
            Ok(mut c) => c.insert(peer, conn),
            Err(_) => None,
        };
        if let Some(old) = previous {
            old.close();
        }
        info!("connected to {:?} at {}", peer, addr);
        let _ = self.events.send(ConnEvent::Connected { peer, addr });
        Ok(())
    }

    fn forget_conn(&self, peer: NodeId) {
        let removed = match self.conns.write() {
            Ok(mut c) => match c.get(&peer) {
                Some(conn) if conn.is_closed() => c.remove(&peer).is_some(),
                _ => false,
            },
            Err(_) => false,
        };
        if removed {
            info!("connection to {:?} lost", peer);
            let _ = self.events.send(ConnEvent::Disconnected { peer });
        }
    }

    /// Closes the client connection to `peer`, if any.
    pub fn disconnect(&self, peer: &NodeId) {
        let conn = self.conns.write().ok().and_then(|mut c| c.remove(peer));
        if let Some(c) = conn {
            c.close();
            let _ = self.events.send(ConnEvent::Disconnected { peer: *peer });
        }
    }

    pub fn is_connected(&self, peer: &NodeId) -> bool {
        self.conns
            .read()
            .map(|c| c.get(peer).is_some_and(|c| !c.is_closed()))
            .unwrap_or(false)
    }

    /// Peers with an open client connection, and their addresses.
    pub fn connected_peers(&self) -> Vec<(NodeId, SocketAddr)> {
        self.conns
            .read()
            .map(|c| c.values().map(|c| (c.peer, c.remote_addr)).collect())
            .unwrap_or_default()
    }

    /// Sends a request to `to` (this node included) and waits for its response.
    pub async fn request(
        &self,
        to: NodeId,
        path: &str,
        prio: Priority,
        payload: Bytes,
        body: Option<ByteStream>,
        timeout: Duration,
    ) -> Result<(Bytes, Option<ByteStream>), NetError> {
        if to == self.id {
            let ctx = RequestContext {
                from: self.id,
                remote_addr: None,
            };
            let fut = self.dispatch(ctx, path.to_string(), payload, body);
            return match tokio::time::timeout(timeout, fut).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(message)) => Err(NetError::Remote { peer: to, message }),
                Err(_) => Err(NetError::Timeout {
                    peer: to,
                    path: path.to_string(),
                    after_ms: timeout.as_millis() as u64,
                }),
            };
        }
        if self.isolated.load(Ordering::SeqCst) {
            return Err(NetError::NotConnected { peer: to });
        }
        let conn = self
            .conns
            .read()
            .ok()
            .and_then(|c| c.get(&to).cloned())
            .ok_or(NetError::NotConnected { peer: to })?;
        conn.call(path, prio, &payload, body, timeout).await
    }
}

impl Dispatcher for NetApp {
    fn dispatch(
        &self,
        ctx: RequestContext,
        path: String,
        payload: Bytes,
        body: Option<ByteStream>,
    ) -> BoxFuture<'static, HandlerResult> {
        if ctx.remote_addr.is_some() && self.isolated.load(Ordering::SeqCst) {
            return async { Err("node is isolated (test partition)".to_string()) }.boxed();
        }
        let handler = self
            .handlers
            .read()
            .ok()
            .and_then(|h| h.get(&path).cloned());
        match handler {
            Some(h) => h.handle(ctx, payload, body),
            None => async move { Err(format!("unknown endpoint {:?}", path)) }.boxed(),
        }
    }
}
