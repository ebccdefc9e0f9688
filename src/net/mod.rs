//! Node-to-node transport. `net/` owns everything between a TCP socket and typed RPC messages:
//! node keys, the Secure Scuttlebutt secret handshake (mutual authentication under the cluster's
//! network key, `rpc_secret`), the box-stream encryption that follows it, framing and
//! multiplexing, and peering.
//!
//! - [`node_key`]: the node's long-term Ed25519 key pair on disk.
//! - [`handshake`]: SHS1, as pure step functions plus async client/server drivers; yields
//!   [`handshake::HandshakeKeys`] and the authenticated peer [`NodeId`](crate::util::ids::NodeId).
//! - [`box_stream`]: the encrypted, authenticated stream of boxes (≤ 4096-byte bodies) keyed by
//!   the handshake.
//! - `crypto` (private): the libsodium-compatible primitives both are built from.
//!
//! Dependencies: only `util/` from this crate.

mod crypto;

pub mod box_stream;
pub mod handshake;
pub mod node_key;
