//! Every RPC endpoint name, in one place. Names are part of the wire protocol: never reuse one
//! for a different message type; add a new name for an incompatible change.
//! (The ping endpoint of the peering layer, `garage/net/ping`, is defined in `net/peering.rs`,
//! below this layer.)

/// Node status and cluster membership (`SystemRpc`).
pub const SYSTEM: &str = "garage/system";
/// Administration commands from the CLI (`AdminRpc`).
pub const ADMIN: &str = "garage/admin";
/// Data blocks (`BlockRpc`).
pub const BLOCK: &str = "garage/block";
/// Cluster layout gossip (`LayoutRpc`).
pub const LAYOUT: &str = "garage/layout";
