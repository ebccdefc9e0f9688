//! Networking between nodes: node key pairs, the secret handshake, box-stream, framing and
//! multiplexing, and peering.

pub mod node_key;
