//! Typed RPC on top of `net/`: endpoints registered by name with a request type and its response
//! type (msgpack via rmp-serde), a quorum helper that calls a set of nodes and returns once a
//! quorum answered, and the system service (node status exchange).

pub mod endpoint;
pub mod paths;
pub mod quorum;
pub mod system;

use crate::net::NetError;
use crate::util::ids::NodeId;

/// Errors of RPC calls.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot encode {path} request: {message}")]
    Encode { path: &'static str, message: String },
    #[error("cannot decode {path} answer from {peer:?}: {message}")]
    Decode {
        path: &'static str,
        peer: NodeId,
        message: String,
    },
    #[error("quorum not reached: {got} of {needed} needed nodes answered ({})", format_errors(.errors))]
    Quorum {
        needed: usize,
        got: usize,
        errors: Vec<(NodeId, String)>,
    },
}

fn format_errors(errors: &[(NodeId, String)]) -> String {
    if errors.is_empty() {
        return "no error reported".into();
    }
    errors
        .iter()
        .map(|(n, e)| format!("{}: {}", n.short(), e))
        .collect::<Vec<_>>()
        .join("; ")
}
