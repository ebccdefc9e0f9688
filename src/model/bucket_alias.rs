//! The `bucket_alias` table (full copy): global bucket names → bucket id (last writer wins), so a
//! name can move to another bucket and a deleted bucket frees its name.

use serde::{Deserialize, Serialize};

use crate::table::schema::{EmptyKey, Entry, TableSchema};
use crate::util::crdt::{Crdt, Lww};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketAlias {
    pub name: String,
    pub state: Lww<Option<Uuid>>,
}

impl BucketAlias {
    pub fn new(name: &str, bucket: Option<Uuid>) -> Self {
        Self {
            name: name.to_string(),
            state: Lww::new(bucket),
        }
    }
    pub fn target(&self) -> Option<Uuid> {
        *self.state.get()
    }
}

impl Crdt for BucketAlias {
    fn merge(&mut self, o: &Self) {
        self.state.merge(&o.state);
    }
}

impl Migrate for BucketAlias {
    const VERSION_MARKER: &'static [u8] = b"Gbalias1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<EmptyKey, String> for BucketAlias {
    fn partition_key(&self) -> &EmptyKey {
        &EmptyKey
    }
    fn sort_key(&self) -> &String {
        &self.name
    }
}

pub struct BucketAliasTable;

impl TableSchema for BucketAliasTable {
    const NAME: &'static str = "bucket_alias_v1";
    type P = EmptyKey;
    type S = String;
    type E = BucketAlias;
    type Filter = ();
}
