//! The insert queue worker: entries written into `t:insert_queue` by other tables' hooks (in the
//! same local transaction as the change that caused them) are inserted into the cluster with the
//! write quorum, then removed from the queue if they did not change meanwhile. A crash between
//! the two loses nothing: the entry is inserted again (inserts are idempotent merges).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::core::TableCore;
use super::TableError;
use crate::db::{TxError, TxResult};
use crate::util::background::{WorkerHandle, WorkerState};
use crate::util::ids::Hash;

/// A queued entry: tree key and encoded entry.
type Queued = (Vec<u8>, Vec<u8>);

/// Entries inserted per round.
const QUEUE_BATCH: usize = 128;

impl TableCore {
    /// Inserts up to one batch from the queue; returns how many were done.
    pub async fn queue_round(&self) -> Result<usize, TableError> {
        let d = self.data.clone();
        let batch = tokio::task::spawn_blocking(move || -> Result<Vec<Queued>, TableError> {
            let iter = d.insert_queue.iter().map_err(|e| TableError::Db {
                table: d.name,
                message: e.to_string(),
            })?;
            iter.take(QUEUE_BATCH)
                .map(|r| {
                    r.map_err(|e| TableError::Db {
                        table: d.name,
                        message: e.to_string(),
                    })
                })
                .collect()
        })
        .await
        .map_err(|e| TableError::Db {
            table: self.name(),
            message: e.to_string(),
        })??;
        if batch.is_empty() {
            return Ok(0);
        }
        let entries = batch
            .iter()
            .filter_map(|(k, v)| Some((Hash::try_from_slice(k.get(..32)?)?, v.clone())))
            .collect();
        self.insert_many_raw(entries).await?;
        let d = self.data.clone();
        let n = batch.len();
        tokio::task::spawn_blocking(move || {
            for (k, v) in batch {
                let r: TxResult<(), ()> = d.db.transaction(|tx| {
                    if tx.get(&d.insert_queue, &k)?.as_deref() == Some(v.as_slice()) {
                        tx.remove(&d.insert_queue, &k)?;
                    }
                    Ok(())
                });
                if let Err(TxError::Db(e)) = r {
                    return Err(TableError::Db {
                        table: d.name,
                        message: e.to_string(),
                    });
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| TableError::Db {
            table: self.name(),
            message: e.to_string(),
        })??;
        Ok(n)
    }
}

/// The insert queue worker of one table, until shutdown.
pub async fn run_queue(
    core: Arc<TableCore>,
    worker: WorkerHandle,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match core.queue_round().await {
            Ok(n) if n > 0 => {
                worker.set_state(WorkerState::Busy);
                worker.ok();
                backoff = Duration::from_millis(500);
                if *stop.borrow() {
                    return;
                }
                continue;
            }
            Ok(_) => {
                worker.set_state(WorkerState::Idle);
                tokio::select! {
                    _ = core.data.queue_notify.notified() => (),
                    _ = tokio::time::sleep(Duration::from_secs(10)) => (),
                    _ = stop.changed() => return,
                }
            }
            Err(e) => {
                worker.error(e.to_string());
                worker.set_state(WorkerState::Throttled);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => (),
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
        worker.set_queue_length(core.data.insert_queue.len().ok().map(|n| n as u64));
    }
}
