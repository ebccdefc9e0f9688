//! The `object` table (sharded by bucket id, sorted by object key): for each key, its versions
//! in timestamp order. A version is `Uploading` while its data is being written, then
//! `Complete` (a delete marker, inline data for small objects, or the hash of its first block),
//! or `Aborted`. Merging keeps the union of versions and drops every version older than the
//! newest complete one; the `updated` hook marks dropped or aborted versions as deleted in the
//! `version` table, which frees their blocks (DESIGN.md §9 cascade), and updates the node's
//! local bucket totals (`counters.rs`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::counters::LocalCounters;
use super::version::{Version, VersionTable};
use crate::db::{Transaction, TxOpResult};
use crate::table::schema::{Entry, TableSchema};
use crate::table::typed::Table;
use crate::util::crdt::Crdt;
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::{Hash, Uuid};

/// Largest object stored inline in the object entry (DESIGN.md §8).
pub const INLINE_THRESHOLD: usize = 3072;

/// HTTP headers stored with an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    /// Other stored headers (content-encoding, cache-control, x-amz-meta-*, …), lowercase names.
    pub other: Vec<(String, String)>,
}

/// Metadata of a complete version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub headers: ObjectHeaders,
    pub size: u64,
    pub etag: String,
    /// Checksum given or computed at upload: (algorithm name, base64 value).
    pub checksum: Option<(String, String)>,
    /// How the data is encrypted at rest (absent in entries written before SSE-C existed).
    #[serde(default)]
    pub encryption: Option<ObjectEncryption>,
}

/// Server-side encryption of an object's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectEncryption {
    /// SSE-C: AES-256-GCM with a key the client gives on every request; only the base64 MD5 of
    /// the key is stored, to recognise it.
    SseC { key_md5: String },
}

/// The data of a complete version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectData {
    DeleteMarker,
    Inline(ObjectMeta, #[serde(with = "serde_bytes")] Vec<u8>),
    FirstBlock(ObjectMeta, Hash),
}

/// State of a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionState {
    Uploading {
        multipart: bool,
        headers: ObjectHeaders,
        /// Encryption the upload's data gets (multipart parts must present the same key).
        #[serde(default)]
        encryption: Option<ObjectEncryption>,
    },
    Complete(ObjectData),
    Aborted,
}

impl VersionState {
    fn rank(&self) -> u8 {
        match self {
            Self::Uploading { .. } => 0,
            Self::Aborted => 1,
            Self::Complete(_) => 2,
        }
    }
}

impl Crdt for VersionState {
    fn merge(&mut self, o: &Self) {
        // Uploading → Aborted → Complete: a complete version stays complete, which keeps pruning
        // monotone (a CRDT). Equal ranks are normally equal values; otherwise keep one
        // deterministically.
        if o.rank() > self.rank() {
            *self = o.clone();
        } else if o.rank() == self.rank() && o != self {
            let a = rmp_serde::to_vec(&*self).unwrap_or_default();
            let b = rmp_serde::to_vec(o).unwrap_or_default();
            if b > a {
                *self = o.clone();
            }
        }
    }
}

/// One version of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    pub uuid: Uuid,
    pub timestamp: u64,
    pub state: VersionState,
}

impl ObjectVersion {
    pub fn is_complete(&self) -> bool {
        matches!(self.state, VersionState::Complete(_))
    }
    /// The data of a complete version that is not a delete marker.
    pub fn data(&self) -> Option<&ObjectData> {
        match &self.state {
            VersionState::Complete(d) if !matches!(d, ObjectData::DeleteMarker) => Some(d),
            _ => None,
        }
    }
    pub fn meta(&self) -> Option<&ObjectMeta> {
        match self.data()? {
            ObjectData::Inline(m, _) | ObjectData::FirstBlock(m, _) => Some(m),
            ObjectData::DeleteMarker => None,
        }
    }
}

/// An object: its key and versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    pub bucket_id: Uuid,
    pub key: String,
    versions: Vec<ObjectVersion>,
}

impl Object {
    pub fn new(bucket_id: Uuid, key: String, versions: Vec<ObjectVersion>) -> Self {
        let mut o = Self {
            bucket_id,
            key,
            versions: vec![],
        };
        for v in versions {
            o.add_version(v);
        }
        o
    }

    pub fn versions(&self) -> &[ObjectVersion] {
        &self.versions
    }

    fn add_version(&mut self, v: ObjectVersion) {
        match self
            .versions
            .binary_search_by_key(&(v.timestamp, v.uuid), |x| (x.timestamp, x.uuid))
        {
            Ok(i) => self.versions[i].state.merge(&v.state),
            Err(i) => self.versions.insert(i, v),
        }
    }

    /// Drops every version older than the newest complete one.
    fn prune(&mut self) {
        if let Some(last_complete) = self.versions.iter().rposition(|v| v.is_complete()) {
            self.versions.drain(..last_complete);
        }
    }

    /// The current visible version (newest complete), if it holds data.
    pub fn last_data(&self) -> Option<&ObjectVersion> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.is_complete())
            .filter(|v| v.data().is_some())
    }

    /// Whether any version is still being uploaded.
    pub fn has_uploading(&self) -> bool {
        self.versions
            .iter()
            .any(|v| matches!(v.state, VersionState::Uploading { .. }))
    }
}

impl Crdt for Object {
    fn merge(&mut self, o: &Self) {
        for v in &o.versions {
            self.add_version(v.clone());
        }
        self.prune();
    }
}

impl Migrate for Object {
    const VERSION_MARKER: &'static [u8] = b"Gobject1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<Uuid, String> for Object {
    fn partition_key(&self) -> &Uuid {
        &self.bucket_id
    }
    fn sort_key(&self) -> &String {
        &self.key
    }
    fn is_tombstone(&self) -> bool {
        self.versions.len() == 1
            && matches!(
                self.versions[0].state,
                VersionState::Complete(ObjectData::DeleteMarker)
            )
    }
}

/// Filters of object listings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum ObjectFilter {
    /// Objects with visible data.
    HasData,
    /// Objects with an upload in progress.
    IsUploading,
}

/// The object table, cascading into the version table and keeping the local bucket totals.
pub struct ObjectTable {
    pub versions: Arc<Table<VersionTable>>,
    pub counters: Arc<LocalCounters>,
}

impl TableSchema for ObjectTable {
    const NAME: &'static str = "object_v1";
    type P = Uuid;
    type S = String;
    type E = Object;
    type Filter = ObjectFilter;

    fn updated(
        &self,
        tx: &mut Transaction<'_>,
        old: Option<&Object>,
        new: Option<&Object>,
    ) -> TxOpResult<()> {
        self.counters.record(tx, old, new)?;
        // Only a merge kills versions. An entry removed from this node (`new` is `None`) was
        // handed over to the partition's new holders (offload) or was a tombstone collected by
        // the GC: its versions live on elsewhere or are already dead, and must not be deleted
        // cluster-wide from here.
        let (Some(old), Some(new)) = (old, new) else {
            return Ok(());
        };
        for v in &old.versions {
            let still = new.versions.iter().find(|x| x.uuid == v.uuid);
            let newly_dead = match still {
                None => true,
                Some(x) => {
                    matches!(x.state, VersionState::Aborted)
                        && !matches!(v.state, VersionState::Aborted)
                }
            };
            // Inline data and delete markers have no version entry or blocks.
            let has_blocks = !matches!(
                v.state,
                VersionState::Complete(ObjectData::Inline(..))
                    | VersionState::Complete(ObjectData::DeleteMarker)
            );
            if newly_dead && has_blocks {
                let deleted = Version::deleted(v.uuid, old.bucket_id, old.key.clone());
                self.versions.queue_insert(tx, &deleted)?;
            }
        }
        Ok(())
    }

    fn matches_filter(e: &Object, f: &ObjectFilter) -> bool {
        match f {
            ObjectFilter::HasData => e.last_data().is_some(),
            ObjectFilter::IsUploading => e.has_uploading(),
        }
    }
}

#[cfg(test)]
#[path = "object_tests.rs"]
mod tests;
