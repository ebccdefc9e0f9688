//! The resync worker: a persistent queue (`block_resync_queue`: time ‖ hash) of blocks to check.
//! For each due block: fetch it if this node should store it and it is referenced but missing;
//! delete it if unreferenced past its delay; offload it to its holders if this node no longer
//! stores its partition. Failures are recorded in `block_resync_errors` (hash → errors ‖
//! last try ‖ next try) and retried with exponential backoff; `garage block list-errors` shows
//! them. Also here: `repair blocks` (requeue everything) and the scrub worker.

use std::ops::Bound;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use super::error::BlockError;
use super::manager::{BlockManager, BlockResponse, BlockRpc};
use super::rc::resync_key;
use crate::net::frame::Priority;
use crate::util::background::{WorkerHandle, WorkerState};
use crate::util::ids::Hash;
use crate::util::time::now_msec;

/// A recorded resync failure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResyncError {
    pub hash: Hash,
    pub errors: u64,
    pub last_try: u64,
    pub next_try: u64,
}

impl ResyncError {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.errors.to_be_bytes().to_vec();
        v.extend_from_slice(&self.last_try.to_be_bytes());
        v.extend_from_slice(&self.next_try.to_be_bytes());
        v
    }
    fn decode(hash: Hash, v: &[u8]) -> Option<Self> {
        if v.len() != 24 {
            return None;
        }
        let n = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().unwrap_or([0; 8]));
        Some(Self {
            hash,
            errors: n(0),
            last_try: n(8),
            next_try: n(16),
        })
    }
}

/// What a resync check did.
#[derive(Debug, PartialEq, Eq)]
pub enum ResyncAction {
    Nothing,
    Fetched,
    Deleted,
    Offloaded,
    Postponed(u64),
}

fn db_err(e: crate::db::Error) -> BlockError {
    BlockError::Db {
        message: e.to_string(),
    }
}

impl BlockManager {
    /// Checks one block and does what it needs.
    pub async fn resync_block(&self, hash: &Hash) -> Result<ResyncAction, BlockError> {
        let now = now_msec();
        let rc = self.rc_entry(hash)?;
        let has = self.local.has_block(hash).await?.is_some();
        let me = self.system.id();
        let holders = self.holders(hash);
        let i_store = holders.contains(&me);
        if rc.count > 0 && i_store && !has {
            self.fetch_and_store(hash).await?;
            info!("resync: fetched missing block {:?}", hash);
            return Ok(ResyncAction::Fetched);
        }
        if has && !i_store && !holders.is_empty() {
            // Offload: make sure every holder has it, then delete here.
            for node in &holders {
                let need = self
                    .endpoint
                    .call(
                        *node,
                        &BlockRpc::NeedBlock { hash: *hash },
                        crate::rpc::endpoint::CallOpts::new(
                            Priority::Background,
                            self.config.rpc_timeout,
                        ),
                    )
                    .await
                    .map_err(|e| BlockError::Rpc {
                        message: e.to_string(),
                    })?;
                if matches!(need, BlockResponse::Need(true)) {
                    let block = self.local.read_block(hash).await?;
                    self.send_block(*node, hash, &block, Priority::Background)
                        .await?;
                }
            }
            if rc.count == 0 {
                self.local.delete_block(hash).await?;
                return Ok(ResyncAction::Offloaded);
            }
        }
        if rc.count == 0 && has {
            if rc.deletable_after == 0 {
                // Stored but never dated (no reference yet, or a file older than its entry):
                // deletable only after the full delay from now.
                let when = self.touch_rc(hash)?;
                return Ok(ResyncAction::Postponed(when + 1));
            }
            if !rc.is_deletable(now) {
                return Ok(ResyncAction::Postponed(rc.deletable_after + 1));
            }
            // Re-check under the lock that a Put of the same block (which postpones deletion)
            // takes, and remove the entry in the same transaction as the check: a reference
            // added meanwhile is never lost.
            let _lock = self.lock(hash).await;
            if self.remove_rc_if_deletable(hash)? {
                self.local.delete_block(hash).await?;
                info!("resync: deleted unreferenced block {:?}", hash);
                return Ok(ResyncAction::Deleted);
            }
            return Ok(ResyncAction::Nothing);
        }
        if rc.count == 0 && !has && rc.is_deletable(now) {
            self.remove_rc_if_deletable(hash)?;
        }
        Ok(ResyncAction::Nothing)
    }

    /// Removes the reference count entry of a block if it is still deletable (one transaction).
    fn remove_rc_if_deletable(&self, hash: &Hash) -> Result<bool, BlockError> {
        self.rc
            .db()
            .transaction(|tx| {
                Ok::<_, crate::db::TxError<()>>(super::rc::remove_if_deletable(
                    tx,
                    &self.rc,
                    hash,
                    now_msec(),
                )?)
            })
            .map_err(super::manager::tx_err)
    }

    /// The first due entry of the queue, removed from it.
    fn pop_due(&self) -> Result<Option<Hash>, BlockError> {
        let Some((k, _)) = self.resync_queue.first().map_err(db_err)? else {
            return Ok(None);
        };
        if k.len() != 40 {
            let _ = self.resync_queue.remove(&k);
            return Ok(None);
        }
        let when = u64::from_be_bytes(k[..8].try_into().unwrap_or([0; 8]));
        if when > now_msec() {
            return Ok(None);
        }
        self.resync_queue.remove(&k).map_err(db_err)?;
        Ok(Hash::try_from_slice(&k[8..]))
    }

    /// Time until the next queue entry is due.
    fn next_due_in(&self) -> Option<Duration> {
        let (k, _) = self.resync_queue.first().ok()??;
        let when = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
        Some(Duration::from_millis(when.saturating_sub(now_msec())))
    }

    fn record_error(&self, hash: &Hash, e: &BlockError) {
        let now = now_msec();
        let prev = self
            .resync_errors
            .get(&hash.0)
            .ok()
            .flatten()
            .and_then(|v| ResyncError::decode(*hash, &v));
        let errors = prev.map(|p| p.errors).unwrap_or(0) + 1;
        let backoff = retry_backoff_ms(errors);
        let entry = ResyncError {
            hash: *hash,
            errors,
            last_try: now,
            next_try: now + backoff,
        };
        let _ = self.resync_errors.insert(&hash.0, &entry.encode());
        let _ = self
            .resync_queue
            .insert(&resync_key(entry.next_try, hash), &[]);
        warn!(
            "resync of block {:?} failed ({} times): {}; retrying later",
            hash, errors, e
        );
    }

    /// Blocks whose resync failed.
    pub fn list_errors(&self) -> Result<Vec<ResyncError>, BlockError> {
        let mut out = vec![];
        for item in self.resync_errors.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            if let Some(h) = Hash::try_from_slice(&k) {
                if let Some(e) = ResyncError::decode(h, &v) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Retries failed blocks now (all of them, or the given ones).
    pub fn retry_now(&self, hashes: Option<&[Hash]>) -> Result<usize, BlockError> {
        let list: Vec<Hash> = match hashes {
            Some(h) => h.to_vec(),
            None => self.list_errors()?.into_iter().map(|e| e.hash).collect(),
        };
        for h in &list {
            let _ = self.resync_errors.remove(&h.0);
            self.queue_resync_now(h);
        }
        Ok(list.len())
    }

    /// Requeues every referenced block and every block on disk (`garage repair blocks`).
    pub async fn repair_all(&self) -> Result<usize, BlockError> {
        let mut n = 0;
        let now = now_msec();
        for item in self.rc.iter().map_err(db_err)? {
            let (k, _) = item.map_err(db_err)?;
            if let Some(h) = Hash::try_from_slice(&k) {
                self.resync_queue
                    .insert(&resync_key(now, &h), &[])
                    .map_err(db_err)?;
                n += 1;
            }
        }
        let mut lister = self.local.list_blocks(None);
        while let Some(f) = lister.next().await {
            let f = f?;
            self.resync_queue
                .insert(&resync_key(now, &f.hash), &[])
                .map_err(db_err)?;
            n += 1;
        }
        self.resync_notify.notify_one();
        Ok(n)
    }

    /// Queue length (for stats).
    pub fn resync_queue_len(&self) -> usize {
        self.resync_queue.len().unwrap_or(0)
    }

    /// Blocks counted in the reference table: (blocks with rc > 0, all rc entries).
    pub fn rc_counts(&self) -> (u64, u64) {
        let mut live = 0;
        let mut all = 0;
        if let Ok(iter) = self.rc.range(Bound::Unbounded, Bound::Unbounded) {
            for (_, v) in iter.flatten() {
                all += 1;
                if super::rc::RcEntry::decode(&v).count > 0 {
                    live += 1;
                }
            }
        }
        (live, all)
    }
}

/// The resync worker, until shutdown.
pub async fn run_resync(
    mgr: Arc<BlockManager>,
    worker: WorkerHandle,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let next = {
            let m = mgr.clone();
            tokio::task::spawn_blocking(move || m.pop_due()).await
        };
        match next {
            Ok(Ok(Some(hash))) => {
                worker.set_state(WorkerState::Busy);
                match mgr.resync_block(&hash).await {
                    Ok(ResyncAction::Postponed(when)) => {
                        let _ = mgr.resync_queue.insert(&resync_key(when, &hash), &[]);
                    }
                    Ok(_) => {
                        let _ = mgr.resync_errors.remove(&hash.0);
                        worker.ok();
                    }
                    Err(e) => {
                        worker.error(e.to_string());
                        mgr.record_error(&hash, &e);
                    }
                }
                worker.set_queue_length(Some(mgr.resync_queue_len() as u64));
                if *stop.borrow() {
                    return;
                }
                continue;
            }
            Ok(Err(e)) => worker.error(e.to_string()),
            _ => (),
        }
        worker.set_state(WorkerState::Idle);
        worker.set_queue_length(Some(mgr.resync_queue_len() as u64));
        let wait = mgr
            .next_due_in()
            .unwrap_or(Duration::from_secs(10))
            .min(Duration::from_secs(10));
        tokio::select! {
            _ = tokio::time::sleep(wait) => (),
            _ = mgr.resync_notify.notified() => (),
            _ = stop.changed() => return,
        }
    }
}

/// Commands of the scrub worker.
pub const SCRUB_RUN: u8 = 0;
pub const SCRUB_PAUSED: u8 = 1;
pub const SCRUB_CANCELLED: u8 = 2;

/// Scrub state shared with the admin commands.
pub struct ScrubControl {
    pub state: AtomicU8,
    pub wake: tokio::sync::Notify,
    /// Pause between two blocks (rate limit).
    pub pause: Duration,
}

impl ScrubControl {
    pub fn new(pause: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU8::new(SCRUB_CANCELLED),
            wake: tokio::sync::Notify::new(),
            pause,
        })
    }
    pub fn set(&self, s: u8) {
        self.state.store(s, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// The scrub worker: when started, re-reads every block slowly and verifies it; a corrupt
/// block is moved aside and re-fetched from another replica.
pub async fn run_scrub(
    mgr: Arc<BlockManager>,
    control: Arc<ScrubControl>,
    worker: WorkerHandle,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        worker.set_state(WorkerState::Idle);
        worker.set_progress(None);
        while control.state.load(Ordering::SeqCst) != SCRUB_RUN {
            tokio::select! {
                _ = control.wake.notified() => (),
                _ = stop.changed() => return,
            }
        }
        let mut lister = mgr.local.list_blocks(None);
        let (mut checked, mut corrupted) = (0u64, 0u64);
        worker.set_state(WorkerState::Busy);
        loop {
            match control.state.load(Ordering::SeqCst) {
                SCRUB_CANCELLED => break,
                SCRUB_PAUSED => {
                    worker.set_state(WorkerState::Paused);
                    tokio::select! {
                        _ = control.wake.notified() => continue,
                        _ = stop.changed() => return,
                    }
                }
                _ => worker.set_state(WorkerState::Busy),
            }
            let Some(item) = lister.next().await else {
                info!(
                    "scrub finished: {} blocks checked, {} corrupted",
                    checked, corrupted
                );
                control.set(SCRUB_CANCELLED);
                break;
            };
            match item {
                Ok(f) => {
                    if let Err(e) = mgr.local.verify_file(&f).await {
                        if matches!(e, BlockError::Corrupted { .. }) {
                            corrupted += 1;
                            warn!(
                                "scrub: block {:?} is corrupted; moved aside, fetching it again",
                                f.hash
                            );
                            let _ = mgr.local.move_aside(&f).await;
                            mgr.queue_resync_now(&f.hash);
                        } else {
                            worker.error(e.to_string());
                        }
                    }
                    checked += 1;
                    worker.set_progress(Some(format!(
                        "{checked} blocks checked, {corrupted} corrupted"
                    )));
                }
                Err(e) => worker.error(e.to_string()),
            }
            tokio::select! {
                _ = tokio::time::sleep(control.pause) => (),
                _ = stop.changed() => return,
            }
        }
    }
}

/// Delay before the next try of a block whose resync failed `errors` times: 2 min after the
/// first failure, doubling each time, at most a day.
fn retry_backoff_ms(errors: u64) -> u64 {
    (60_000u64 << errors.min(11)).min(24 * 3600 * 1000)
}

#[cfg(test)]
mod backoff_tests {
    use super::retry_backoff_ms;

    #[test]
    fn backoff_doubles_up_to_a_day() {
        assert_eq!(retry_backoff_ms(1), 120_000);
        for n in 1..10 {
            assert_eq!(
                retry_backoff_ms(n + 1),
                2 * retry_backoff_ms(n),
                "after {n} errors"
            );
        }
        assert_eq!(retry_backoff_ms(11), 24 * 3600 * 1000);
        assert_eq!(retry_backoff_ms(u64::MAX), 24 * 3600 * 1000);
    }
}
