//! Shared building blocks with no dependency on the rest of the crate: identifiers, time,
//! CRDT primitives, versioned encoding, atomically written small files and background workers.
//!
//! Invariant: nothing in `util/` imports another module of this crate.

pub mod background;
pub mod crdt;
pub mod encode;
pub mod file;
pub mod ids;
pub mod serde_fields;
pub mod size;
pub mod time;
