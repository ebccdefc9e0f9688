//! Node-to-node transport. `net/` owns everything between a TCP socket and RPC messages:
//! node keys, the Secure Scuttlebutt secret handshake (mutual authentication under the cluster's
//! network key, `rpc_secret`), the box-stream encryption that follows it, framing and
//! multiplexing with priorities and streamed bodies, and peering (the full mesh).
//!
//! - [`node_key`]: the node's long-term Ed25519 key pair on disk.
//! - [`handshake`]: SHS1, as pure step functions plus async client/server drivers; yields
//!   [`handshake::HandshakeKeys`] and the authenticated peer [`NodeId`].
//! - [`box_stream`]: the encrypted, authenticated stream of boxes (≤ 4096-byte bodies).
//! - [`frame`]: chunks, priorities and message heads inside box-stream.
//! - `send` / `conn`: per-connection writer scheduling and request/response multiplexing.
//! - [`netapp`]: the node's endpoint registry, connections, and local/remote request routing.
//! - [`peering`]: keeping every known peer connected, pings, failure detection, peer gossip.
//! - `crypto` (private): the libsodium-compatible primitives.
//!
//! Dependencies: only `util/` from this crate.

mod conn;
mod crypto;
mod send;

pub mod box_stream;
pub mod frame;
pub mod handshake;
pub mod netapp;
pub mod node_key;
pub mod peering;

use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::Stream;

use crate::util::ids::NodeId;

/// A streamed message body: byte pieces in order, or an error that ends it.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// Who sent a request.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub from: NodeId,
    /// The TCP address of the caller (`None` for a call from this node to itself).
    pub remote_addr: Option<SocketAddr>,
}

/// A handler's answer: a payload and an optional streamed body, or an error text.
pub type HandlerResult = Result<(Bytes, Option<ByteStream>), String>;

/// A handler of raw requests for one endpoint path.
pub trait RawHandler: Send + Sync {
    fn handle(
        &self,
        ctx: RequestContext,
        payload: Bytes,
        body: Option<ByteStream>,
    ) -> BoxFuture<'static, HandlerResult>;
}

/// Routes an incoming request to the handler of its path.
pub trait Dispatcher: Send + Sync {
    fn dispatch(
        &self,
        ctx: RequestContext,
        path: String,
        payload: Bytes,
        body: Option<ByteStream>,
    ) -> BoxFuture<'static, HandlerResult>;
}

/// Errors of the transport.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("secret handshake with {addr} failed: {source}")]
    Handshake {
        addr: SocketAddr,
        source: handshake::HandshakeError,
    },
    #[error("handshake with {addr} timed out")]
    HandshakeTimeout { addr: SocketAddr },
    #[error("not connected to node {peer:?}")]
    NotConnected { peer: NodeId },
    #[error("connection to node {peer:?} closed")]
    ConnectionClosed { peer: NodeId },
    #[error("request {path} to node {peer:?} timed out after {after_ms} ms")]
    Timeout {
        peer: NodeId,
        path: String,
        after_ms: u64,
    },
    #[error("node {peer:?} answered with an error: {message}")]
    Remote { peer: NodeId, message: String },
    #[error("protocol error from node {peer:?}: {source}")]
    Protocol {
        peer: NodeId,
        source: frame::FrameError,
    },
}
