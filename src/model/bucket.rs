//! The `bucket` table (full copy): a bucket's id, creation date, which keys may use it and how,
//! its global and local aliases, and its configuration (website, CORS, lifecycle, quotas).
//! Deleting a bucket turns its parameters into a tombstone for good.

use serde::{Deserialize, Serialize};

use crate::table::schema::{EmptyKey, Entry, TableSchema};
use crate::util::crdt::{Crdt, Deletable, Lww, LwwMap};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::Uuid;

/// Permissions of one key on one bucket (last writer wins as a whole).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BucketKeyPerm {
    pub allow_read: bool,
    pub allow_write: bool,
    pub allow_owner: bool,
}

impl BucketKeyPerm {
    pub const NONE: Self = Self {
        allow_read: false,
        allow_write: false,
        allow_owner: false,
    };
    pub const ALL: Self = Self {
        allow_read: true,
        allow_write: true,
        allow_owner: true,
    };
    pub fn is_any(&self) -> bool {
        self.allow_read || self.allow_write || self.allow_owner
    }
}

/// Static website configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebsiteConfig {
    pub index_document: String,
    pub error_document: Option<String>,
}

/// Quotas of a bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketQuotas {
    pub max_size: Option<u64>,
    pub max_objects: Option<u64>,
}

/// The parameters of a live bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketParams {
    pub creation_date: u64,
    /// Key id → permissions.
    pub authorized_keys: LwwMap<String, BucketKeyPerm>,
    /// Global aliases of this bucket (name → active).
    pub aliases: LwwMap<String, bool>,
    /// Local aliases: (key id, name) → active.
    pub local_aliases: LwwMap<(String, String), bool>,
    pub website_config: Lww<Option<WebsiteConfig>>,
    pub quotas: Lww<BucketQuotas>,
}

impl BucketParams {
    pub fn new(creation_date: u64) -> Self {
        Self {
            creation_date,
            authorized_keys: LwwMap::new(),
            aliases: LwwMap::new(),
            local_aliases: LwwMap::new(),
            website_config: Lww::raw(0, None),
            quotas: Lww::raw(0, BucketQuotas::default()),
        }
    }
}

impl Crdt for BucketParams {
    fn merge(&mut self, o: &Self) {
        self.creation_date = self.creation_date.min(o.creation_date);
        self.authorized_keys.merge(&o.authorized_keys);
        self.aliases.merge(&o.aliases);
        self.local_aliases.merge(&o.local_aliases);
        self.website_config.merge(&o.website_config);
        self.quotas.merge(&o.quotas);
    }
}

/// A bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub id: Uuid,
    pub state: Deletable<BucketParams>,
}

impl Bucket {
    pub fn new(id: Uuid, creation_date: u64) -> Self {
        Self {
            id,
            state: Deletable::Present(BucketParams::new(creation_date)),
        }
    }
    pub fn params(&self) -> Option<&BucketParams> {
        self.state.as_option()
    }
    pub fn params_mut(&mut self) -> Option<&mut BucketParams> {
        match &mut self.state {
            Deletable::Present(p) => Some(p),
            Deletable::Deleted => None,
        }
    }
    pub fn is_deleted(&self) -> bool {
        self.state.is_deleted()
    }
}

impl Crdt for Bucket {
    fn merge(&mut self, o: &Self) {
        self.state.merge(&o.state);
    }
}

impl Migrate for Bucket {
    const VERSION_MARKER: &'static [u8] = b"Gbucket1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<EmptyKey, Uuid> for Bucket {
    fn partition_key(&self) -> &EmptyKey {
        &EmptyKey
    }
    fn sort_key(&self) -> &Uuid {
        &self.id
    }
    fn is_tombstone(&self) -> bool {
        // Buckets are kept as tombstones (their id must never be reused).
        false
    }
}

/// Filter of bucket listings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum BucketFilter {
    Live,
}

pub struct BucketTable;

impl TableSchema for BucketTable {
    const NAME: &'static str = "bucket_v1";
    type P = EmptyKey;
    type S = Uuid;
    type E = Bucket;
    type Filter = BucketFilter;

    fn matches_filter(e: &Bucket, f: &BucketFilter) -> bool {
        match f {
            BucketFilter::Live => !e.is_deleted(),
        }
    }
}
