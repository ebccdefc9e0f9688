//! The `version` table (sharded by version id): the ordered block list of a version whose data
//! is in blocks, with part ETags for multipart uploads. Marking a version deleted marks its
//! block references deleted, which decrements the blocks' reference counts.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::block_ref::{BlockRef, BlockRefTable};
use crate::db::{Transaction, TxOpResult};
use crate::table::schema::{EmptyKey, Entry, TableSchema};
use crate::table::typed::Table;
use crate::util::crdt::{Bool, Crdt, CrdtMap};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::{Hash, Uuid};

/// Position of a block in a version: (part number, offset in the part).
pub type BlockPos = (u64, u64);

/// A block of a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionBlock {
    pub hash: Hash,
    pub size: u64,
}

impl Crdt for VersionBlock {
    fn merge(&mut self, o: &Self) {
        // Same position always means same block; keep one deterministically otherwise.
        if (o.hash, o.size) > (self.hash, self.size) {
            *self = *o;
        }
    }
}

/// ETag of an uploaded part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEtag(pub String);

impl PartEtag {
    /// The upload time recorded in `"etag ts size"` (0 if unreadable).
    fn upload_time(&self) -> u64 {
        self.0
            .split(' ')
            .nth(1)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    }
}

impl Crdt for PartEtag {
    /// The latest upload of a part wins (ties, which unique timestamps make unlikely, are broken
    /// by the text so that every replica keeps the same one).
    fn merge(&mut self, o: &Self) {
        if (o.upload_time(), &o.0) > (self.upload_time(), &self.0) {
            self.0 = o.0.clone();
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub uuid: Uuid,
    pub deleted: Bool,
    pub blocks: CrdtMap<BlockPos, VersionBlock>,
    pub part_etags: CrdtMap<u64, PartEtag>,
    pub bucket_id: Uuid,
    pub key: String,
    /// For a multipart upload: the checksum algorithm and type chosen at its creation
    /// (`"CRC32 COMPOSITE"`; see `api::s3::mpu_checksum`). Set once; absent in older entries.
    #[serde(default)]
    pub checksum_spec: Option<String>,
}

impl Version {
    pub fn new(uuid: Uuid, bucket_id: Uuid, key: String) -> Self {
        Self {
            uuid,
            deleted: Bool::new(false),
            blocks: CrdtMap::new(),
            part_etags: CrdtMap::new(),
            bucket_id,
            key,
            checksum_spec: None,
        }
    }
    /// A deletion marker for a version.
    pub fn deleted(uuid: Uuid, bucket_id: Uuid, key: String) -> Self {
        let mut v = Self::new(uuid, bucket_id, key);
        v.deleted.set();
        v
    }
}

impl Crdt for Version {
    fn merge(&mut self, o: &Self) {
        self.deleted.merge(&o.deleted);
        // Set once at creation: any replica that has it has the same value (max: deterministic).
        if o.checksum_spec > self.checksum_spec {
            self.checksum_spec = o.checksum_spec.clone();
        }
        if self.deleted.get() {
            // A deleted version keeps no block list.
            self.blocks = CrdtMap::new();
            self.part_etags = CrdtMap::new();
        } else {
            self.blocks.merge(&o.blocks);
            self.part_etags.merge(&o.part_etags);
        }
    }
}

impl Migrate for Version {
    const VERSION_MARKER: &'static [u8] = b"Gversion1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<Uuid, EmptyKey> for Version {
    fn partition_key(&self) -> &Uuid {
        &self.uuid
    }
    fn sort_key(&self) -> &EmptyKey {
        &EmptyKey
    }
    fn is_tombstone(&self) -> bool {
        self.deleted.get()
    }
}

/// The version table, cascading into block references.
pub struct VersionTable {
    pub block_refs: Arc<Table<BlockRefTable>>,
}

impl TableSchema for VersionTable {
    const NAME: &'static str = "version_v1";
    type P = Uuid;
    type S = EmptyKey;
    type E = Version;
    type Filter = ();

    fn updated(
        &self,
        tx: &mut Transaction<'_>,
        old: Option<&Version>,
        new: Option<&Version>,
    ) -> TxOpResult<()> {
        let (Some(old), Some(new)) = (old, new) else {
            return Ok(());
        };
        if new.deleted.get() && !old.deleted.get() {
            for (_, b) in old.blocks.iter() {
                self.block_refs
                    .queue_insert(tx, &BlockRef::deleted(b.hash, old.uuid))?;
            }
        }
        Ok(())
    }
}
