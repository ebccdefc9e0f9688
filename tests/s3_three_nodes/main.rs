//! Every test of `tests/s3_single` (each endpoint and each error, with `aws-sdk-s3` and raw
//! requests) against a 3-node cluster of real daemons, rf 3, one zone per node, instead of a
//! single node. The SDK client sends each request to the next node in turn, raw requests go to
//! node 3 and CLI commands to node 1 (see `common/s3_three.rs`): what one request writes
//! through a node, the next reads through another.

#[path = "../common/cluster.rs"]
mod cluster;
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/lifecycle_rules.rs"]
mod lifecycle_rules;
#[path = "../common/raw_s3.rs"]
mod s3;
#[path = "../common/s3_nodes.rs"]
mod s3_nodes;
#[path = "../common/s3_three.rs"]
mod s3_three;
#[path = "../common/s3.rs"]
mod s3base;

/// The helpers of `common/s3.rs`, with the cluster in place of the single node.
mod s3util {
    pub use crate::s3_three::ThreeNodes as SingleNode;
    pub use crate::s3base::*;
}

#[path = "../s3_single/helpers.rs"]
mod helpers;
pub use helpers::*;

#[path = "../s3_single/auth.rs"]
mod auth;
#[path = "../s3_single/buckets.rs"]
mod buckets;
#[path = "../s3_single/checksums.rs"]
mod checksums;
#[path = "../s3_single/copy.rs"]
mod copy;
#[path = "../s3_single/cors.rs"]
mod cors;
#[path = "../s3_single/lifecycle.rs"]
mod lifecycle;
#[path = "../s3_single/listing.rs"]
mod listing;
#[path = "../s3_single/multipart.rs"]
mod multipart;
#[path = "../s3_single/objects.rs"]
mod objects;
#[path = "../s3_single/post_object.rs"]
mod post_object;
#[path = "../s3_single/ssec.rs"]
mod ssec;
#[path = "../s3_single/web.rs"]
mod web;
