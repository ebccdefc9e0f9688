//! The inputs of a partition assignment: node roles and layout parameters.
//!
//! A role says where a node is (`zone`) and how much it may store (`capacity`, in bytes; `None`
//! makes the node a gateway that handles requests but stores nothing). The parameters are the
//! replication factor and the zone redundancy, i.e. over how many distinct zones each partition's
//! replicas must be spread.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The role of a node in the cluster layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeRole {
    /// Failure domain (data centre, site, rack): replicas are spread over distinct zones.
    pub zone: String,
    /// Bytes this node may store; `None` = gateway (stores nothing).
    pub capacity: Option<u64>,
    /// Free-form labels for operators; ignored by the assignment.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl NodeRole {
    /// A storage node of `capacity` bytes in `zone`.
    pub fn storage(zone: impl Into<String>, capacity: u64) -> Self {
        Self {
            zone: zone.into(),
            capacity: Some(capacity),
            tags: Vec::new(),
        }
    }

    /// A gateway node in `zone`.
    pub fn gateway(zone: impl Into<String>) -> Self {
        Self {
            zone: zone.into(),
            capacity: None,
            tags: Vec::new(),
        }
    }

    /// Whether this node stores data.
    pub fn is_storage(&self) -> bool {
        self.capacity.is_some()
    }
}

/// Minimum number of distinct zones over which each partition's replicas are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ZoneRedundancy {
    /// As many zones as possible: `min(number of zones with storage nodes, replication factor)`.
    #[default]
    Maximum,
    /// At least this many zones (between 1 and the replication factor).
    AtLeast(usize),
}

impl fmt::Display for ZoneRedundancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Maximum => f.write_str("maximum"),
            Self::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

/// Cluster-wide parameters of the assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayoutParams {
    /// Number of distinct nodes that store each partition.
    pub replication_factor: usize,
    /// Zone spreading requirement.
    pub zone_redundancy: ZoneRedundancy,
}

impl LayoutParams {
    /// Parameters with the given replication factor and maximum zone redundancy.
    pub fn new(replication_factor: usize) -> Self {
        Self {
            replication_factor,
            zone_redundancy: ZoneRedundancy::Maximum,
        }
    }
}
