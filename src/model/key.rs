//! The `key` table (full copy): S3 access keys: id (`GK` + 24 hex), secret (64 hex), name, the
//! permission to create buckets, the buckets it may use, and its local bucket aliases.

use serde::{Deserialize, Serialize};

use super::bucket::BucketKeyPerm;
use crate::table::schema::{EmptyKey, Entry, TableSchema};
use crate::util::crdt::{Crdt, Deletable, Lww, LwwMap};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::Uuid;

/// Parameters of a live key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParams {
    pub secret_key: String,
    pub name: Lww<String>,
    pub allow_create_bucket: Lww<bool>,
    pub authorized_buckets: LwwMap<Uuid, BucketKeyPerm>,
    /// Local aliases: name → bucket (None once removed).
    pub local_aliases: LwwMap<String, Option<Uuid>>,
}

impl Crdt for KeyParams {
    fn merge(&mut self, o: &Self) {
        self.name.merge(&o.name);
        self.allow_create_bucket.merge(&o.allow_create_bucket);
        self.authorized_buckets.merge(&o.authorized_buckets);
        self.local_aliases.merge(&o.local_aliases);
        if o.secret_key > self.secret_key {
            self.secret_key = o.secret_key.clone();
        }
    }
}

/// An access key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub key_id: String,
    pub state: Deletable<KeyParams>,
}

/// Generates a new key id (`GK` + 24 hex characters).
pub fn new_key_id() -> String {
    let r: [u8; 12] = rand::random();
    format!("GK{}", hex::encode(r))
}

/// Generates a new secret (64 hex characters).
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Key {
    pub fn new(key_id: String, secret_key: String, name: &str) -> Self {
        Self {
            key_id,
            state: Deletable::Present(KeyParams {
                secret_key,
                name: Lww::new(name.to_string()),
                allow_create_bucket: Lww::new(false),
                authorized_buckets: LwwMap::new(),
                local_aliases: LwwMap::new(),
            }),
        }
    }
    pub fn params(&self) -> Option<&KeyParams> {
        self.state.as_option()
    }
    pub fn params_mut(&mut self) -> Option<&mut KeyParams> {
        match &mut self.state {
            Deletable::Present(p) => Some(p),
            Deletable::Deleted => None,
        }
    }
    pub fn is_deleted(&self) -> bool {
        self.state.is_deleted()
    }
    pub fn name(&self) -> String {
        self.params()
            .map(|p| p.name.get().clone())
            .unwrap_or_default()
    }
    /// Permissions on a bucket.
    pub fn bucket_perm(&self, bucket: &Uuid) -> BucketKeyPerm {
        self.params()
            .and_then(|p| p.authorized_buckets.get(bucket).copied())
            .unwrap_or(BucketKeyPerm::NONE)
    }
}

impl Crdt for Key {
    fn merge(&mut self, o: &Self) {
        self.state.merge(&o.state);
    }
}

impl Migrate for Key {
    const VERSION_MARKER: &'static [u8] = b"Gkey1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<EmptyKey, String> for Key {
    fn partition_key(&self) -> &EmptyKey {
        &EmptyKey
    }
    fn sort_key(&self) -> &String {
        &self.key_id
    }
}

/// Filter of key listings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum KeyFilter {
    Live,
}

pub struct KeyTable;

impl TableSchema for KeyTable {
    const NAME: &'static str = "key_v1";
    type P = EmptyKey;
    type S = String;
    type E = Key;
    type Filter = KeyFilter;

    fn matches_filter(e: &Key, f: &KeyFilter) -> bool {
        match f {
            KeyFilter::Live => !e.is_deleted(),
        }
    }
}
