//! The tables of a node, seen without their types: for `garage stats` and `garage repair tables`.

use std::sync::{Arc, Mutex};

use super::data::TableStats;
use super::schema::TableSchema;
use super::typed::Table;
use super::TableError;

/// What the node can do with any table.
pub trait AnyTable: Send + Sync {
    fn name(&self) -> &'static str;
    fn stats(&self) -> Result<TableStats, TableError>;
    /// Starts an anti-entropy round now.
    fn trigger_sync(&self);
}

impl<S: TableSchema> AnyTable for Table<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }
    fn stats(&self) -> Result<TableStats, TableError> {
        self.core.data.stats()
    }
    fn trigger_sync(&self) {
        self.sync_trigger.now.notify_one();
    }
}

/// The registry of a node's tables.
#[derive(Default)]
pub struct TableRegistry {
    tables: Mutex<Vec<Arc<dyn AnyTable>>>,
}

impl TableRegistry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn add(&self, t: Arc<dyn AnyTable>) {
        if let Ok(mut v) = self.tables.lock() {
            v.push(t);
        }
    }
    pub fn all(&self) -> Vec<Arc<dyn AnyTable>> {
        self.tables.lock().map(|v| v.clone()).unwrap_or_default()
    }
}
