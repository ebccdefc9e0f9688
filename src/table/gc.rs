//! Tombstone GC (DESIGN.md §7). A tombstone may be dropped only once every replica of its
//! partition has it. After `gc_delay`, the worker (1) sends the tombstones to every holder and
//! waits for all of them to acknowledge, then (2) asks every holder to delete each entry if it
//! still equals that tombstone. Any failure leaves the tombstone for a later round; never fewer
//! than all holders.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_bytes::ByteBuf;
use tokio::sync::watch;
use tracing::{debug, info};

use super::core::TableCore;
use super::data::parse_gc_todo;
use super::rpc::TableRpc;
use super::TableError;
use crate::net::frame::Priority;
use crate::util::background::{WorkerHandle, WorkerState};
use crate::util::ids::{blake2sum, Hash, NodeId};
use crate::util::time::now_msec;

/// A tombstone due for GC: tree key, value, value hash.
type DueTombstone = (Vec<u8>, Vec<u8>, Hash);

/// Tombstones handled per round.
const GC_BATCH: usize = 256;

impl TableCore {
    /// One GC round; returns how many tombstones were collected.
    pub async fn gc_round(&self) -> Result<usize, TableError> {
        let now = now_msec();
        let delay = self.config.gc_delay.as_millis() as u64;
        let d = self.data.clone();
        // Due tombstones still equal to what was recorded: (tree key, value, value hash).
        let due = tokio::task::spawn_blocking(move || -> Result<Vec<DueTombstone>, TableError> {
            let mut out = vec![];
            let iter = d.gc_todo.iter().map_err(|e| TableError::Db {
                table: d.name,
                message: e.to_string(),
            })?;
            for item in iter {
                let (k, v) = item.map_err(|e| TableError::Db {
                    table: d.name,
                    message: e.to_string(),
                })?;
                let Some((ts, vh)) = parse_gc_todo(&v) else {
                    let _ = d.gc_todo.remove(&k);
                    continue;
                };
                if ts + delay > now {
                    continue;
                }
                match d.read_entry(&k)? {
                    Some(cur) if blake2sum(&cur) == vh => out.push((k, cur, vh)),
                    // Changed or gone since: nothing to collect.
                    _ => {
                        let _ = d.gc_todo.remove(&k);
                    }
                }
                if out.len() >= GC_BATCH {
                    break;
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| TableError::Db {
            table: self.name(),
            message: e.to_string(),
        })??;
        if due.is_empty() {
            return Ok(0);
        }
        // Group by the set of holders.
        let mut groups: BTreeMap<Vec<NodeId>, Vec<DueTombstone>> = BTreeMap::new();
        for item in due {
            let p = item.0.first().copied().unwrap_or(0);
            let mut holders = self.replication.holders(p);
            holders.sort();
            groups.entry(holders).or_default().push(item);
        }
        let mut collected = 0;
        for (holders, items) in groups {
            if holders.is_empty() {
                continue;
            }
            match self.gc_group(&holders, &items).await {
                Ok(()) => {
                    for (k, _, vh) in &items {
                        // Forget the todo entry only if it was not re-armed by a newer tombstone.
                        if let Ok(Some(v)) = self.data.gc_todo.get(k) {
                            if parse_gc_todo(&v).map(|(_, h)| h) == Some(*vh) {
                                let _ = self.data.gc_todo.remove(k);
                            }
                        }
                    }
                    collected += items.len();
                }
                Err(e) => debug!("{}: GC postponed: {}", self.name(), e),
            }
        }
        Ok(collected)
    }

    async fn gc_group(&self, holders: &[NodeId], items: &[DueTombstone]) -> Result<(), TableError> {
        let opts = self.opts(Priority::Background);
        // (1) Every holder must have the tombstone.
        let update = TableRpc::Update(
            items
                .iter()
                .map(|(_, v, _)| ByteBuf::from(v.clone()))
                .collect(),
        );
        let calls = holders
            .iter()
            .map(|n| self.endpoint.call(*n, &update, opts));
        for r in futures::future::join_all(calls).await {
            r?;
        }
        // (2) Every holder deletes it if unchanged.
        let delete = TableRpc::DeleteIfEqualHash(
            items
                .iter()
                .map(|(k, _, vh)| (ByteBuf::from(k.clone()), *vh))
                .collect(),
        );
        let calls = holders
            .iter()
            .map(|n| self.endpoint.call(*n, &delete, opts));
        for r in futures::future::join_all(calls).await {
            r?;
        }
        Ok(())
    }
}

/// The GC worker of one table, until shutdown.
pub async fn run_gc(core: Arc<TableCore>, worker: WorkerHandle, mut stop: watch::Receiver<bool>) {
    // Check often enough for short test delays, at most every minute.
    let period =
        (core.config.gc_delay / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
    loop {
        worker.set_state(WorkerState::Busy);
        match core.gc_round().await {
            Ok(n) => {
                worker.ok();
                if n > 0 {
                    info!("{}: collected {} tombstones", core.name(), n);
                }
            }
            Err(e) => worker.error(e.to_string()),
        }
        worker.set_queue_length(core.data.gc_todo.len().ok().map(|n| n as u64));
        worker.set_state(WorkerState::Idle);
        tokio::select! {
            _ = tokio::time::sleep(period) => (),
            _ = stop.changed() => return,
        }
    }
}
