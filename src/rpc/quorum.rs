//! Calling several nodes at once: send a request to a set of nodes, return as soon as a quorum
//! of them answered successfully (or fail with every node's error), optionally letting the other
//! requests finish in the background. Nodes are tried closest first: this node, then nodes of
//! its zone, then by measured round-trip time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

use super::endpoint::{CallOpts, Endpoint, Rpc};
use super::RpcError;
use crate::net::ByteStream;
use crate::util::ids::NodeId;

/// How a multi-node call proceeds.
#[derive(Clone, Copy, Debug)]
pub struct QuorumStrategy {
    /// Successful answers needed.
    pub quorum: usize,
    pub opts: CallOpts,
    /// Send to every node at once (writes) rather than to `quorum` nodes first and more only on
    /// failure (reads).
    pub send_all_at_once: bool,
    /// After the quorum, let the remaining requests finish in the background.
    pub finish_in_background: bool,
}

/// Orders nodes by closeness. The zone map is set by the layout layer; RTTs by peering.
#[derive(Default)]
pub struct NodeOrder {
    local: Option<NodeId>,
    zones: RwLock<HashMap<NodeId, String>>,
    rtts: RwLock<HashMap<NodeId, Duration>>,
}

impl NodeOrder {
    pub fn new(local: NodeId) -> Self {
        Self {
            local: Some(local),
            ..Default::default()
        }
    }
    pub fn set_zones(&self, zones: HashMap<NodeId, String>) {
        if let Ok(mut z) = self.zones.write() {
            *z = zones;
        }
    }
    pub fn set_rtts(&self, rtts: HashMap<NodeId, Duration>) {
        if let Ok(mut r) = self.rtts.write() {
            *r = rtts;
        }
    }
    /// Sorts `nodes` closest first (stable and deterministic for equal keys).
    pub fn sort(&self, nodes: &mut [NodeId]) {
        let zones = self.zones.read().map(|z| z.clone()).unwrap_or_default();
        let rtts = self.rtts.read().map(|r| r.clone()).unwrap_or_default();
        let local_zone = self.local.and_then(|l| zones.get(&l).cloned());
        nodes.sort_by_key(|n| {
            let is_local = Some(*n) == self.local;
            let same_zone = local_zone.is_some() && zones.get(n) == local_zone.as_ref();
            let rtt = rtts.get(n).copied().unwrap_or(Duration::from_secs(3600));
            (!is_local, !same_zone, rtt, *n)
        });
    }
}

/// Calls `nodes` (already in preference order) and returns the first `quorum` successes.
pub async fn call_quorum<M: Rpc>(
    endpoint: &Endpoint<M>,
    nodes: &[NodeId],
    msg: &M,
    strategy: QuorumStrategy,
) -> Result<Vec<(NodeId, M::Response)>, RpcError> {
    let payload = endpoint.encode(msg)?;
    let needed = strategy.quorum;
    if nodes.len() < needed {
        return Err(RpcError::Quorum {
            needed,
            got: 0,
            errors: vec![],
        });
    }
    let call = |node: NodeId| {
        let ep = endpoint.clone();
        let payload = payload.clone();
        async move {
            let r = ep
                .call_encoded(node, payload, None, strategy.opts)
                .await
                .map(|(resp, _)| resp);
            (node, r)
        }
    };
    let mut remaining = nodes.iter().copied();
    let mut in_flight = FuturesUnordered::new();
    let initial = if strategy.send_all_at_once {
        nodes.len()
    } else {
        needed
    };
    for node in remaining.by_ref().take(initial) {
        in_flight.push(call(node));
    }
    let mut successes = Vec::with_capacity(needed);
    let mut errors = vec![];
    while let Some((node, res)) = in_flight.next().await {
        match res {
            Ok(resp) => {
                successes.push((node, resp));
                if successes.len() >= needed {
                    if strategy.finish_in_background && !in_flight.is_empty() {
                        tokio::spawn(async move { while in_flight.next().await.is_some() {} });
                    }
                    return Ok(successes);
                }
            }
            Err(e) => {
                errors.push((node, e.to_string()));
                if let Some(next) = remaining.next() {
                    in_flight.push(call(next));
                }
            }
        }
    }
    Err(RpcError::Quorum {
        needed,
        got: successes.len(),
        errors,
    })
}

/// Sends `msg` to every node of every set and returns once each set has reached its quorum
/// (`quorum_of(set size)` successes). With `linger`, it then keeps waiting for the other nodes'
/// answers, for at most that long, so that when every node is up the write is on all of them
/// when the call returns (a node that fails or stays silent only costs the linger). The requests
/// still running then finish in the background, so every reachable replica gets the write.
/// Fails as soon as some set can no longer reach its quorum, with every node's error.
pub async fn call_write_sets<M: Rpc>(
    endpoint: &Endpoint<M>,
    sets: &[Vec<NodeId>],
    quorum_of: impl Fn(usize) -> usize,
    msg: &M,
    linger: Option<Duration>,
    opts: CallOpts,
) -> Result<Vec<(NodeId, M::Response)>, RpcError> {
    call_write_sets_with_body(endpoint, sets, quorum_of, msg, None, (), linger, opts).await
}

/// [`call_write_sets`] with a body sent to every node as a stream (shared, not copied), and a
/// `guard` (e.g. a memory reservation for the body) held until the last request has finished,
/// including those that go on in the background after the quorum was reached.
#[allow(clippy::too_many_arguments)]
pub async fn call_write_sets_with_body<M: Rpc, G: Send + 'static>(
    endpoint: &Endpoint<M>,
    sets: &[Vec<NodeId>],
    quorum_of: impl Fn(usize) -> usize,
    msg: &M,
    body: Option<Bytes>,
    guard: G,
    linger: Option<Duration>,
    opts: CallOpts,
) -> Result<Vec<(NodeId, M::Response)>, RpcError> {
    let payload = endpoint.encode(msg)?;
    let mut nodes: Vec<NodeId> = sets.iter().flatten().copied().collect();
    nodes.sort();
    nodes.dedup();
    let needed: Vec<usize> = sets.iter().map(|s| quorum_of(s.len())).collect();
    if sets.is_empty()
        || sets
            .iter()
            .zip(&needed)
            .any(|(s, q)| s.len() < *q || s.is_empty())
    {
        return Err(RpcError::Quorum {
            needed: needed.iter().sum(),
            got: 0,
            errors: vec![],
        });
    }
    let mut in_flight: FuturesUnordered<_> = nodes
        .iter()
        .map(|&node| {
            let ep = endpoint.clone();
            let payload = payload.clone();
            let body = body.clone().map(single_chunk_stream);
            async move {
                let r = ep
                    .call_encoded(node, payload, body, opts)
                    .await
                    .map(|(resp, _)| resp);
                (node, r)
            }
        })
        .collect();
    let mut ok: Vec<(NodeId, M::Response)> = vec![];
    let mut errors: Vec<(NodeId, String)> = vec![];
    while let Some((node, res)) = in_flight.next().await {
        match res {
            Ok(r) => ok.push((node, r)),
            Err(e) => errors.push((node, e.to_string())),
        }
        let count =
            |set: &Vec<NodeId>, list: &[NodeId]| set.iter().filter(|n| list.contains(n)).count();
        let ok_nodes: Vec<NodeId> = ok.iter().map(|(n, _)| *n).collect();
        let err_nodes: Vec<NodeId> = errors.iter().map(|(n, _)| *n).collect();
        let all_reached = sets
            .iter()
            .zip(&needed)
            .all(|(s, q)| count(s, &ok_nodes) >= *q);
        if all_reached {
            if let Some(linger) = linger {
                let deadline = tokio::time::Instant::now() + linger;
                while let Ok(Some((node, res))) =
                    tokio::time::timeout_at(deadline, in_flight.next()).await
                {
                    if let Ok(r) = res {
                        ok.push((node, r));
                    }
                }
            }
            if !in_flight.is_empty() {
                tokio::spawn(async move {
                    while in_flight.next().await.is_some() {}
                    drop(guard);
                });
            }
            return Ok(ok);
        }
        let impossible = sets
            .iter()
            .zip(&needed)
            .any(|(s, q)| s.len() - count(s, &err_nodes) < *q);
        if impossible {
            if !in_flight.is_empty() {
                tokio::spawn(async move {
                    while in_flight.next().await.is_some() {}
                    drop(guard);
                });
            }
            break;
        }
    }
    Err(RpcError::Quorum {
        needed: needed.iter().sum(),
        got: ok.len(),
        errors,
    })
}

/// A body made of one buffer (cloning `Bytes` shares it).
pub fn single_chunk_stream(b: Bytes) -> ByteStream {
    Box::pin(futures::stream::once(async move { Ok(b) }))
}

/// Shared by layers that call nodes in preference order.
pub type SharedNodeOrder = Arc<NodeOrder>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_local_then_zone_then_rtt() {
        let (a, b, c, d) = (
            NodeId([1; 32]),
            NodeId([2; 32]),
            NodeId([3; 32]),
            NodeId([4; 32]),
        );
        let order = NodeOrder::new(c);
        order.set_zones(
            [(a, "z1"), (b, "z2"), (c, "z2"), (d, "z1")]
                .into_iter()
                .map(|(n, z)| (n, z.to_string()))
                .collect(),
        );
        order.set_rtts(
            [(a, 30), (b, 50), (d, 10)]
                .into_iter()
                .map(|(n, ms)| (n, Duration::from_millis(ms)))
                .collect(),
        );
        let mut nodes = vec![a, b, c, d];
        order.sort(&mut nodes);
        assert_eq!(nodes, vec![c, b, d, a]);
    }
}
