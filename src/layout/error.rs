//! Errors of the layout layer: every message says what is wrong and what to do about it.

use crate::util::ids::NodeId;

/// Why a layout (or its partition assignment) cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The replication factor is 0.
    #[error(
        "invalid replication factor {replication_factor}: every partition needs at least one \
         copy; set `replication_factor` to 1, 2 or 3 in the configuration file"
    )]
    InvalidReplicationFactor { replication_factor: usize },

    /// Fewer storage nodes (nodes with a capacity) than copies of each partition.
    #[error(
        "not enough storage nodes: replication factor {needed} needs at least {needed} nodes with \
         a capacity, but the layout has {available}; give more nodes a capacity with \
         `garage layout assign -z ZONE -c CAPACITY NODE_ID`, or use a lower replication factor"
    )]
    NotEnoughStorageNodes { needed: usize, available: usize },

    /// The requested zone redundancy is 0 or larger than the replication factor.
    #[error(
        "invalid zone redundancy {requested}: with replication factor {replication_factor} it must \
         be between 1 and {replication_factor}, since a partition's {replication_factor} copies \
         cannot span more zones than that; change it with `garage layout config -r N` or \
         `garage layout config -r max`"
    )]
    InvalidZoneRedundancy {
        requested: usize,
        replication_factor: usize,
    },

    /// Fewer zones with storage nodes than the zone redundancy requires.
    #[error(
        "not enough zones: zone redundancy {needed} requires storage nodes in at least {needed} \
         distinct zones, but only {available} zone(s) have storage nodes ({zones}); put storage \
         nodes in more zones with `garage layout assign -z ZONE ...`, or lower the zone \
         redundancy with `garage layout config -r N`"
    )]
    NotEnoughZones {
        needed: usize,
        available: usize,
        /// The zones that do have storage nodes, comma-separated.
        zones: String,
    },

    /// A node was given capacity 0 instead of being declared a gateway.
    #[error(
        "node {} has capacity 0: a node that stores nothing must be a gateway; use \
         `garage layout assign -g {}` or give it a positive capacity with `-c`",
        .node.short(),
        .node.short()
    )]
    ZeroCapacity { node: NodeId },

    /// An assignment read from disk or the network does not have 256 partitions.
    #[error(
        "malformed partition assignment: it has {found} partitions instead of 256; it was not \
         produced by a compatible version of Garage, compute a new layout with \
         `garage layout apply`"
    )]
    WrongPartitionCount { found: usize },

    /// A partition of an assignment read from disk or the network has the wrong replicas.
    #[error(
        "malformed partition assignment: partition {partition} has {found} replicas \
         ({distinct} distinct) instead of {expected} distinct nodes; it was not produced by a \
         compatible version of Garage, compute a new layout with `garage layout apply`"
    )]
    MalformedPartition {
        partition: usize,
        found: usize,
        distinct: usize,
        expected: usize,
    },

    /// The solver could not place every replica although the checks above passed. This is a bug.
    #[error(
        "internal error: could place only {placed} of {needed} partition replicas although the \
         layout passed every check; please report this bug with the output of \
         `garage layout show`"
    )]
    Unsatisfiable { placed: usize, needed: usize },
}
