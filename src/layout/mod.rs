//! Cluster layout: which node stores which data.
//!
//! `layout/` owns the cluster layout (roles, parameters, and later its CRDT, staging and versions),
//! the partition assignment computed from it, and replica lookup. Data is cut into
//! [`NUM_PARTITIONS`] partitions by the first byte of its hash ([`partition_of`]); the
//! [`Assignment`] gives each partition an ordered list of `replication_factor` distinct storage
//! nodes spread over distinct zones (first = primary).
//!
//! The assignment is pure and deterministic: [`compute_assignment`] depends only on its inputs,
//! solves a min-cost max-flow (see `problem.rs` for the formulation) and yields the best-balanced
//! assignment that moves the fewest replicas from the previous one. [`assignment_stats`] gives
//! what `garage layout show` prints.
//!
//! `history.rs` holds the layout CRDT (versions, staging, sync trackers) and `manager.rs` its
//! persistence and gossip between nodes.
//!
//! Files: `params.rs` (inputs), `problem.rs` (validation and flow network), `flow.rs` (generic
//! solver), `assignment.rs` (result and lookup), `stats.rs` (statistics), `error.rs`.

pub mod history;
pub mod manager;

mod assignment;
mod error;
mod flow;
mod params;
mod problem;
mod stats;

#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_study;

pub use assignment::{compute_assignment, partition_of, Assignment};
pub use error::LayoutError;
pub use params::{LayoutParams, NodeRole, ZoneRedundancy};
pub use stats::{assignment_stats, AssignmentStats, ChangeStats, NodeUsage};

/// Number of partitions: data is partitioned by the first byte of its hash.
pub const NUM_PARTITIONS: usize = 256;
