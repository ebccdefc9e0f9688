//! Background workers: long-running loops (Merkle updater, sync, GC, resync, scrub…) registered
//! under a name with a state and counters that `garage worker list` shows.
//!
//! A worker is a task that reports through a [`WorkerHandle`]: its state (busy, idle, error),
//! a free-form progress text, and counters of errors. The registry only observes; each worker
//! owns its loop and stops when the shutdown signal fires.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::time::now_msec;

/// What a worker is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerState {
    Busy,
    Idle,
    Throttled,
    Paused,
    Done,
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Busy => "busy",
            Self::Idle => "idle",
            Self::Throttled => "throttled",
            Self::Paused => "paused",
            Self::Done => "done",
        })
    }
}

/// A worker's reported status.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub name: String,
    pub state: WorkerState,
    pub progress: Option<String>,
    pub queue_length: Option<u64>,
    pub errors: u64,
    pub consecutive_errors: u64,
    pub last_error: Option<(u64, String)>,
}

/// The registry of a node's workers.
#[derive(Default)]
pub struct WorkerRegistry {
    workers: Mutex<BTreeMap<String, Arc<Mutex<WorkerStatus>>>>,
}

/// What a worker uses to report.
#[derive(Clone)]
pub struct WorkerHandle {
    status: Arc<Mutex<WorkerStatus>>,
}

impl WorkerRegistry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a worker and returns its reporting handle.
    pub fn register(&self, name: &str) -> WorkerHandle {
        let status = Arc::new(Mutex::new(WorkerStatus {
            name: name.to_string(),
            state: WorkerState::Idle,
            progress: None,
            queue_length: None,
            errors: 0,
            consecutive_errors: 0,
            last_error: None,
        }));
        if let Ok(mut w) = self.workers.lock() {
            w.insert(name.to_string(), status.clone());
        }
        WorkerHandle { status }
    }

    /// Every worker's status, by name.
    pub fn list(&self) -> Vec<WorkerStatus> {
        self.workers
            .lock()
            .map(|w| {
                w.values()
                    .filter_map(|s| s.lock().ok().map(|s| s.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl WorkerHandle {
    fn with(&self, f: impl FnOnce(&mut WorkerStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
    pub fn set_state(&self, state: WorkerState) {
        self.with(|s| s.state = state);
    }
    pub fn set_progress(&self, progress: Option<String>) {
        self.with(|s| s.progress = progress);
    }
    pub fn set_queue_length(&self, len: Option<u64>) {
        self.with(|s| s.queue_length = len);
    }
    /// Records a failed iteration.
    pub fn error(&self, message: impl Into<String>) {
        let message = message.into();
        self.with(|s| {
            s.errors += 1;
            s.consecutive_errors += 1;
            s.last_error = Some((now_msec(), message));
        });
    }
    /// Records a successful iteration (resets the consecutive error count).
    pub fn ok(&self) {
        self.with(|s| s.consecutive_errors = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_state_and_errors() {
        let reg = WorkerRegistry::new();
        let h = reg.register("merkle:object");
        h.set_state(WorkerState::Busy);
        h.error("boom");
        h.error("boom again");
        h.ok();
        let list = reg.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, WorkerState::Busy);
        assert_eq!(list[0].errors, 2);
        assert_eq!(list[0].consecutive_errors, 0);
        assert_eq!(
            list[0].last_error.as_ref().map(|e| e.1.as_str()),
            Some("boom again")
        );
    }
}
