//! The S3 API of a real `garage server --single-node` daemon, driven with `aws-sdk-s3` over plain
//! HTTP: every implemented endpoint, and every error with its S3 code and HTTP status.
//!
//! Each test starts its own daemon (private directory, ephemeral ports) and reads the access key
//! printed on its stdout. One test binary, one module per group of operations. The same modules
//! run against a 3-node cluster in `tests/s3_three_nodes`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/lifecycle_rules.rs"]
mod lifecycle_rules;
#[path = "../common/raw_s3.rs"]
mod s3;
#[path = "../common/s3.rs"]
mod s3util;

mod auth;
mod buckets;
mod checksums;
mod copy;
mod cors;
mod lifecycle;
mod listing;
mod multipart;
mod objects;
mod post_object;
mod ssec;
mod web;

mod helpers;
pub use helpers::*;
