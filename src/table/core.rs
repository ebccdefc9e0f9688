//! The byte-oriented table engine seen from the cluster: quorum writes to the write sets, quorum
//! reads from the read set merged with read repair, range reads, batched inserts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_bytes::ByteBuf;
use tracing::debug;

use super::data::TableData;
use super::replication::Replication;
use super::rpc::{TableResponse, TableRpc};
use super::TableError;
use crate::net::frame::Priority;
use crate::rpc::endpoint::{CallOpts, Endpoint};
use crate::rpc::quorum::{call_quorum, call_write_sets, QuorumStrategy};
use crate::rpc::system::System;
use crate::util::ids::{Hash, NodeId};

/// The node sets a write goes to.
type WriteSets = Vec<Vec<NodeId>>;
/// Entries by tree key, as one replica returned them.
type ReplicaEntries = BTreeMap<Vec<u8>, Vec<u8>>;

/// Timing parameters of tables.
#[derive(Clone, Copy, Debug)]
pub struct TableConfig {
    /// Timeout of table RPCs.
    pub rpc_timeout: Duration,
    /// Interval between two full anti-entropy rounds.
    pub sync_interval: Duration,
    /// Age a tombstone must reach before GC may remove it.
    pub gc_delay: Duration,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            rpc_timeout: Duration::from_secs(30),
            sync_interval: Duration::from_secs(600),
            gc_delay: Duration::from_secs(24 * 3600),
        }
    }
}

/// The cluster side of a table.
pub struct TableCore {
    pub data: Arc<TableData>,
    pub replication: Arc<dyn Replication>,
    pub endpoint: Endpoint<TableRpc>,
    pub system: Arc<System>,
    pub config: TableConfig,
}

impl TableCore {
    pub fn name(&self) -> &'static str {
        self.data.name
    }

    pub(crate) fn opts(&self, prio: Priority) -> CallOpts {
        CallOpts::new(prio, self.config.rpc_timeout)
    }

    /// Writes encoded entries (all of the same partition key hash) to their write sets.
    pub async fn insert_raw(&self, hash: &Hash, entries: Vec<Vec<u8>>) -> Result<(), TableError> {
        let sets = self.replication.write_sets(hash);
        if sets.is_empty() || sets.iter().all(|s| s.is_empty()) {
            return Err(TableError::NoLayout { table: self.name() });
        }
        let msg = TableRpc::Update(entries.into_iter().map(ByteBuf::from).collect());
        let repl = self.replication.clone();
        call_write_sets(
            &self.endpoint,
            &sets,
            move |n| repl.write_quorum(n),
            &msg,
            self.replication.write_linger(),
            self.opts(Priority::Normal),
        )
        .await?;
        Ok(())
    }

    /// Writes many encoded entries, batched per destination.
    pub async fn insert_many_raw(&self, entries: Vec<(Hash, Vec<u8>)>) -> Result<(), TableError> {
        let mut groups: HashMap<WriteSets, (Hash, Vec<Vec<u8>>)> = HashMap::new();
        for (hash, e) in entries {
            let sets = self.replication.write_sets(&hash);
            groups
                .entry(sets)
                .or_insert_with(|| (hash, vec![]))
                .1
                .push(e);
        }
        let futs = groups
            .into_values()
            .map(|(hash, entries)| async move { self.insert_raw(&hash, entries).await });
        for r in futures::future::join_all(futs).await {
            r?;
        }
        Ok(())
    }

    fn read_nodes(&self, hash: &Hash) -> Result<Vec<NodeId>, TableError> {
        let mut nodes = self.replication.read_nodes(hash);
        if nodes.is_empty() {
            return Err(TableError::NoLayout { table: self.name() });
        }
        self.system.order.sort(&mut nodes);
        Ok(nodes)
    }

    fn read_strategy(&self) -> QuorumStrategy {
        QuorumStrategy {
            quorum: self.replication.read_quorum(),
            opts: self.opts(Priority::Normal),
            send_all_at_once: false,
            finish_in_background: false,
        }
    }

    /// Merges `b` into `a`.
    fn merge_into(&self, a: &mut Option<Vec<u8>>, b: &[u8]) -> Result<(), TableError> {
        if let Some(m) = self.data.schema.merge(a.as_deref(), b)? {
            *a = Some(m);
        }
        Ok(())
    }

    /// Sends `value` to nodes that answered something else (read repair), in the background.
    fn repair(&self, stale: Vec<NodeId>, value: Vec<u8>) {
        for node in stale {
            self.repair_entries(node, vec![value.clone()]);
        }
    }

    /// Sends `values` to `node`, which returned older copies of them or none (read repair of a
    /// range), in one message, in the background.
    fn repair_entries(&self, node: NodeId, values: Vec<Vec<u8>>) {
        if values.is_empty() {
            return;
        }
        let ep = self.endpoint.clone();
        let opts = self.opts(Priority::Background);
        let name = self.name();
        tokio::spawn(async move {
            let msg = TableRpc::Update(values.into_iter().map(ByteBuf::from).collect());
            if let Err(e) = ep.call(node, &msg, opts).await {
                debug!("{}: read repair of {:?} failed: {}", name, node, e);
            }
        });
    }

    /// Reads one entry with the read quorum, merging the answers and repairing stale replicas.
    pub async fn get_raw(&self, hash: &Hash, key: &[u8]) -> Result<Option<Vec<u8>>, TableError> {
        let nodes = self.read_nodes(hash)?;
        let msg = TableRpc::ReadEntry { key: key.to_vec() };
        let answers = call_quorum(&self.endpoint, &nodes, &msg, self.read_strategy()).await?;
        let mut values = vec![];
        for (node, resp) in answers {
            match resp {
                TableResponse::Entry(v) => values.push((node, v.map(|b| b.into_vec()))),
                other => return Err(TableError::unexpected(self.name(), node, &other)),
            }
        }
        let mut merged: Option<Vec<u8>> = None;
        for (_, v) in &values {
            if let Some(v) = v {
                self.merge_into(&mut merged, v)?;
            }
        }
        if let Some(m) = &merged {
            let stale = values
                .iter()
                .filter(|(_, v)| v.as_ref() != Some(m))
                .map(|(n, _)| *n)
                .collect();
            self.repair(stale, m.clone());
        }
        Ok(merged)
    }

    /// Reads entries of one partition key with the read quorum, merged in key order.
    pub async fn get_range_raw(
        &self,
        pkh: &Hash,
        start: Option<Vec<u8>>,
        filter: Option<Vec<u8>>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Vec<u8>>, TableError> {
        let nodes = self.read_nodes(pkh)?;
        let msg = TableRpc::ReadRange {
            pkh: *pkh,
            start,
            filter: filter.clone(),
            limit,
            reverse,
        };
        let answers = call_quorum(&self.endpoint, &nodes, &msg, self.read_strategy()).await?;
        let mut per_node: Vec<(NodeId, ReplicaEntries)> = vec![];
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for (node, resp) in answers {
            let TableResponse::Entries(list) = resp else {
                return Err(TableError::unexpected(self.name(), node, &resp));
            };
            let mut mine = BTreeMap::new();
            for e in list {
                let e = e.into_vec();
                let k = self.data.schema.tree_key(&e)?;
                self.merge_into(merged.entry(k.clone()).or_default(), &e)?;
                mine.insert(k, e);
            }
            per_node.push((node, mine));
        }
        // Repair, on each replica, the entries it returned with another value, and (without a
        // filter, which may hide an entry a replica has) those it lacks within the part of the
        // range its answer covers: all of it when it returned fewer than `limit` entries, else
        // up to its last entry.
        for (node, mine) in &per_node {
            let covers = |k: &Vec<u8>| {
                mine.len() < limit
                    || if reverse {
                        mine.keys().next().is_some_and(|first| k >= first)
                    } else {
                        mine.keys().next_back().is_some_and(|last| k <= last)
                    }
            };
            let fixes: Vec<Vec<u8>> = merged
                .iter()
                .filter_map(|(k, m)| {
                    let m = m.as_ref()?;
                    match mine.get(k) {
                        Some(v) => (v != m).then(|| m.clone()),
                        None => (filter.is_none() && covers(k)).then(|| m.clone()),
                    }
                })
                .collect();
            self.repair_entries(*node, fixes);
        }
        // A replica may have filtered out an entry whose newer state no longer matches, while
        // another returned an older matching copy: filter the merged values again.
        let schema = &self.data.schema;
        let values = merged
            .into_values()
            .flatten()
            .filter(|v| schema.matches_filter(v, filter.as_deref()));
        Ok(if reverse {
            values.rev().take(limit).collect()
        } else {
            values.take(limit).collect()
        })
    }
}
