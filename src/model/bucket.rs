//! The `bucket` table (full copy): a bucket's id, creation date, which keys may use it and how,
//! its global and local aliases, and its configuration (website, CORS, lifecycle, quotas).
//! Deleting a bucket turns its parameters into a tombstone for good.

use serde::{Deserialize, Serialize};

use super::lifecycle::LifecycleRule;
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
    /// Lifecycle rules (`None`: no lifecycle configuration). Absent from entries written before
    /// lifecycle support: decodes as `None`.
    #[serde(default = "no_lifecycle")]
    pub lifecycle_config: Lww<Option<Vec<LifecycleRule>>>,
}

fn no_lifecycle() -> Lww<Option<Vec<LifecycleRule>>> {
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
            lifecycle_config: no_lifecycle(),
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
        self.lifecycle_config.merge(&o.lifecycle_config);
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
mod lifecycle_field_tests {
    use super::*;
    use crate::model::lifecycle::{LifecycleExpiration, LifecycleFilter};

    /// The bucket entry as encoded before the lifecycle field existed.
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
    enum OldState {
        Present(OldParams),
        #[allow(dead_code)]
        Deleted,
    }

    #[derive(Serialize)]
    struct OldBucket {
        id: Uuid,
        state: OldState,
    }

    #[test]
    fn entries_without_lifecycle_still_decode() {
        let id = Uuid::random();
        let mut aliases = LwwMap::new();
        aliases.update_in_place("b".to_string(), true);
        let old = OldBucket {
            id,
            state: OldState::Present(OldParams {
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
        let b = Bucket::decode(&bytes).expect("old entry decodes");
        let p = b.params().expect("present");
        assert_eq!(p.creation_date, 42);
        assert_eq!(p.aliases.get(&"b".to_string()), Some(&true));
        assert_eq!(p.lifecycle_config.get(), &None);
    }

    #[test]
    fn lifecycle_round_trip_and_merge() {
        let mut b = Bucket::new(Uuid::random(), 1);
        let rules = vec![LifecycleRule {
            id: Some("expire-logs".into()),
            enabled: true,
            filter: LifecycleFilter {
                prefix: Some("logs/".into()),
                size_gt: None,
                size_lt: Some(10),
            },
            expiration: Some(LifecycleExpiration::AfterDays(3)),
            abort_incomplete_mpu_days: None,
        }];
        let mut other = b.clone();
        if let Some(p) = other.params_mut() {
            p.lifecycle_config.update(Some(rules.clone()));
        }
        let decoded = Bucket::decode(&other.encode().expect("encode")).expect("decode");
        assert_eq!(decoded, other);
        b.merge(&other);
        assert_eq!(
            b.params().map(|p| p.lifecycle_config.get().clone()),
            Some(Some(rules))
        );
    }
}
