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

/// One CORS rule of a bucket (as in S3 PutBucketCors). Matching lives in `api::s3::cors`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    /// Origins, each with at most one `*` wildcard.
    pub allowed_origins: Vec<String>,
    /// Methods among GET, PUT, HEAD, POST, DELETE.
    pub allowed_methods: Vec<String>,
    /// Request headers (case-insensitive), each with at most one `*` wildcard.
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u64>,
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
    /// CORS rules (`None`: no CORS configuration). Absent in entries written before it existed.
    #[serde(default = "no_cors")]
    pub cors_config: Lww<Option<Vec<CorsRule>>>,
}

fn no_cors() -> Lww<Option<Vec<CorsRule>>> {
    Lww::raw(0, None)
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
            cors_config: no_cors(),
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
        self.cors_config.merge(&o.cors_config);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameters as they were before `cors_config` existed.
    #[derive(Serialize)]
    struct OldParams {
        creation_date: u64,
        authorized_keys: LwwMap<String, BucketKeyPerm>,
        aliases: LwwMap<String, bool>,
        local_aliases: LwwMap<(String, String), bool>,
        website_config: Lww<Option<WebsiteConfig>>,
        quotas: Lww<BucketQuotas>,
    }

    #[derive(Serialize)]
    struct OldBucket {
        id: Uuid,
        state: Deletable<OldParams>,
    }

    #[test]
    fn entries_without_cors_still_decode() {
        let mut aliases = LwwMap::new();
        aliases.update_in_place("b".to_string(), true);
        let old = OldBucket {
            id: Uuid::random(),
            state: Deletable::Present(OldParams {
                creation_date: 42,
                authorized_keys: LwwMap::new(),
                aliases,
                local_aliases: LwwMap::new(),
                website_config: Lww::raw(0, None),
                quotas: Lww::raw(0, BucketQuotas::default()),
            }),
        };
        let mut bytes = Bucket::VERSION_MARKER.to_vec();
        bytes.extend(rmp_serde::to_vec_named(&old).expect("encode"));
        let b = Bucket::decode(&bytes).expect("decode an entry without cors_config");
        assert_eq!(b.id, old.id);
        let p = b.params().expect("live bucket");
        assert_eq!(p.creation_date, 42);
        assert_eq!(p.aliases.get(&"b".to_string()), Some(&true));
        assert_eq!(p.cors_config.get(), &None);

        // And the new field round-trips.
        let mut b2 = b.clone();
        if let Some(p) = b2.params_mut() {
            p.cors_config.update(Some(vec![CorsRule {
                allowed_origins: vec!["*".into()],
                allowed_methods: vec!["GET".into()],
                ..Default::default()
            }]));
        }
        let back = Bucket::decode(&b2.encode().expect("encode")).expect("decode");
        assert_eq!(back, b2);
    }
}
