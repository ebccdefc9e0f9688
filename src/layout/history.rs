//! The cluster layout as a CRDT: the applied versions still in use, the staged changes for the
//! next version, and per-node sync trackers. Every node holds one and merges what it hears, so
//! all nodes converge on the same history whatever the order of messages.
//!
//! - `versions`: ascending. The last one is current: writes go to the nodes of every version
//!   still listed (the *write sets*), reads go to the nodes of the oldest listed version, which
//!   every storage node of the newer versions has finished syncing (the *read set*). A version
//!   is dropped once every storage node of every listed version (those leaving the layout
//!   included) has synced past it.
//! - `staging`: role changes and parameter changes for the next version, as last-writer-wins
//!   maps tied to the version they were staged on (applying a version starts a new, empty
//!   staging; staging tied to an older version loses against it).
//! - `sync`: for each node, the highest version whose data it holds in full (max-merge).
//!
//! Persisted format: `metadata_dir/cluster_layout`, a versioned [`LayoutHistory`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{compute_assignment, Assignment, LayoutError, LayoutParams, NodeRole, ZoneRedundancy};
use crate::util::crdt::{Crdt, CrdtMap, Lww, LwwMap};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::{blake2sum, Hash, NodeId};
use crate::util::time::now_msec;

/// One applied version of the layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutVersion {
    pub version: u64,
    pub params: LayoutParams,
    pub roles: BTreeMap<NodeId, NodeRole>,
    /// `None` only for version 0 (no layout yet).
    pub assignment: Option<Assignment>,
    /// When it was applied (ms since the epoch).
    pub applied_at: u64,
}

impl LayoutVersion {
    fn empty(replication_factor: usize) -> Self {
        Self {
            version: 0,
            params: LayoutParams::new(replication_factor),
            roles: BTreeMap::new(),
            assignment: None,
            applied_at: 0,
        }
    }

    /// Nodes that store data in this version.
    pub fn storage_nodes(&self) -> BTreeSet<NodeId> {
        self.roles
            .iter()
            .filter(|(_, r)| r.is_storage())
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Changes proposed for the next version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staging {
    /// The version these changes were staged on.
    pub base_version: u64,
    /// Role changes: `Some(role)` assigns, `None` removes.
    pub roles: LwwMap<NodeId, Option<NodeRole>>,
    /// A new zone redundancy, if one was staged.
    pub zone_redundancy: Lww<Option<ZoneRedundancy>>,
}

impl Staging {
    fn new(base_version: u64) -> Self {
        Self {
            base_version,
            roles: LwwMap::new(),
            zone_redundancy: Lww::raw(0, None),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.zone_redundancy.get().is_none()
    }
}

impl Crdt for Staging {
    fn merge(&mut self, other: &Self) {
        if other.base_version > self.base_version {
            *self = other.clone();
        } else if other.base_version == self.base_version {
            self.roles.merge(&other.roles);
            self.zone_redundancy.merge(&other.zone_redundancy);
        }
    }
}

/// The whole layout state of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutHistory {
    pub versions: Vec<LayoutVersion>,
    pub staging: Staging,
    pub sync: CrdtMap<NodeId, u64>,
}

impl Migrate for LayoutHistory {
    const VERSION_MARKER: &'static [u8] = b"GlayoutH1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

/// Why a layout operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum LayoutOpError {
    #[error("wrong version {given}: the next layout version must be {expected} (current is {current}); check `garage layout show`")]
    WrongVersion {
        given: u64,
        expected: u64,
        current: u64,
    },
    #[error("there are no staged changes to apply; stage some with `garage layout assign` or `garage layout remove`")]
    NothingStaged,
    #[error(transparent)]
    Assignment(#[from] LayoutError),
}

impl LayoutHistory {
    /// An empty history (version 0, no roles).
    pub fn new(replication_factor: usize) -> Self {
        Self {
            versions: vec![LayoutVersion::empty(replication_factor)],
            staging: Staging::new(0),
            sync: CrdtMap::new(),
        }
    }

    /// The current (newest) version.
    pub fn current(&self) -> &LayoutVersion {
        // The list is never empty: constructors and merges keep at least one version.
        &self.versions[self.versions.len() - 1]
    }

    /// A digest of the whole state, to tell quickly whether two nodes agree.
    pub fn digest(&self) -> Hash {
        blake2sum(&rmp_serde::to_vec(self).unwrap_or_default())
    }

    /// Roles after the staged changes.
    pub fn staged_roles(&self) -> BTreeMap<NodeId, NodeRole> {
        let mut roles = self.current().roles.clone();
        for (id, change) in self.staging.roles.iter() {
            match change {
                Some(r) => {
                    roles.insert(*id, r.clone());
                }
                None => {
                    roles.remove(id);
                }
            }
        }
        roles
    }

    /// Parameters after the staged changes.
    pub fn staged_params(&self) -> LayoutParams {
        let mut p = self.current().params;
        if let Some(zr) = self.staging.zone_redundancy.get() {
            p.zone_redundancy = *zr;
        }
        p
    }

    /// Computes what `apply` would produce, without changing anything.
    pub fn preview(&self) -> Result<LayoutVersion, LayoutError> {
        let cur = self.current();
        let roles = self.staged_roles();
        let params = self.staged_params();
        let assignment = compute_assignment(&params, &roles, cur.assignment.as_ref())?;
        Ok(LayoutVersion {
            version: cur.version + 1,
            params,
            roles,
            assignment: Some(assignment),
            applied_at: now_msec(),
        })
    }

    fn check_version(&self, given: Option<u64>) -> Result<u64, LayoutOpError> {
        let current = self.current().version;
        let expected = current + 1;
        match given {
            Some(g) if g != expected => Err(LayoutOpError::WrongVersion {
                given: g,
                expected,
                current,
            }),
            _ => Ok(expected),
        }
    }

    /// Applies the staged changes as version `current + 1`.
    pub fn apply(&mut self, version: Option<u64>) -> Result<&LayoutVersion, LayoutOpError> {
        self.check_version(version)?;
        if self.staging.is_empty() {
            return Err(LayoutOpError::NothingStaged);
        }
        let new = self.preview()?;
        self.push_version(new);
        Ok(self.current())
    }

    /// Drops the staged changes, creating version `current + 1` equal to the current one.
    pub fn revert(&mut self, version: u64) -> Result<(), LayoutOpError> {
        let next = self.check_version(Some(version))?;
        let mut same = self.current().clone();
        same.version = next;
        same.applied_at = now_msec();
        self.push_version(same);
        Ok(())
    }

    fn push_version(&mut self, v: LayoutVersion) {
        let next = v.version;
        self.versions.push(v);
        self.staging = Staging::new(next);
        self.prune();
    }

    /// Records that `node` holds all data of versions up to `version`.
    pub fn mark_synced(&mut self, node: NodeId, version: u64) {
        self.sync.put(node, version);
        self.prune();
    }

    /// The lowest sync version over the storage nodes of every listed version: a node that
    /// leaves the layout may hold the only copies of some data until it has pushed them to the
    /// new holders, so the versions it belongs to stay until it has synced too.
    pub fn min_synced(&self) -> u64 {
        let nodes: BTreeSet<NodeId> = self
            .versions
            .iter()
            .flat_map(|v| v.storage_nodes())
            .collect();
        nodes
            .iter()
            .map(|n| self.sync.get(n).copied().unwrap_or(0))
            .min()
            .unwrap_or(self.current().version)
    }

    /// Drops versions that no reader or writer needs any more, and version 0 once a real
    /// layout exists.
    fn prune(&mut self) {
        let min = self.min_synced();
        // Keep the newest version <= min and everything after it.
        let keep_from = self
            .versions
            .iter()
            .rposition(|v| v.version <= min)
            .unwrap_or(0);
        self.versions.drain(..keep_from);
        while self.versions.len() > 1 && self.versions[0].assignment.is_none() {
            self.versions.remove(0);
        }
    }

    /// The versions whose nodes must receive writes.
    pub fn write_versions(&self) -> impl Iterator<Item = &LayoutVersion> {
        self.versions.iter().filter(|v| v.assignment.is_some())
    }

    /// The version reads are served from.
    pub fn read_version(&self) -> &LayoutVersion {
        self.write_versions().next().unwrap_or(self.current())
    }

    /// Nodes to read the data of `hash` from (primary first).
    pub fn read_nodes(&self, hash: &Hash) -> Vec<NodeId> {
        self.read_version()
            .assignment
            .as_ref()
            .map(|a| a.nodes_of(&hash.0).to_vec())
            .unwrap_or_default()
    }

    /// Node sets that must each acknowledge a write of `hash`.
    pub fn write_sets(&self, hash: &Hash) -> Vec<Vec<NodeId>> {
        self.write_versions()
            .filter_map(|v| v.assignment.as_ref())
            .map(|a| a.nodes_of(&hash.0).to_vec())
            .collect()
    }

    /// Every node that stores partition `partition` in some listed version.
    pub fn partition_nodes_all_versions(&self, partition: u8) -> BTreeSet<NodeId> {
        self.write_versions()
            .filter_map(|v| v.assignment.as_ref())
            .flat_map(|a| a.partition_nodes(partition).iter().copied())
            .collect()
    }
}

impl Crdt for LayoutHistory {
    fn merge(&mut self, other: &Self) {
        let mut by_version: BTreeMap<u64, LayoutVersion> = BTreeMap::new();
        for v in self.versions.iter().chain(other.versions.iter()) {
            match by_version.get(&v.version) {
                // Two different layouts applied with the same number: keep one deterministically
                // so that every node converges on the same one.
                Some(existing) if existing != v => {
                    let a = rmp_serde::to_vec(existing).unwrap_or_default();
                    let b = rmp_serde::to_vec(v).unwrap_or_default();
                    if b > a {
                        by_version.insert(v.version, v.clone());
                    }
                }
                Some(_) => (),
                None => {
                    by_version.insert(v.version, v.clone());
                }
            }
        }
        self.versions = by_version.into_values().collect();
        self.staging.merge(&other.staging);
        if self.staging.base_version < self.current().version {
            self.staging = Staging::new(self.current().version);
        }
        self.sync.merge(&other.sync);
        self.prune();
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
