//! The S3 API of a real `garage server --single-node` daemon, driven with `aws-sdk-s3` over plain
//! HTTP: every implemented endpoint, and every error with its S3 code and HTTP status.
//!
//! Each test starts its own daemon (private directory, ephemeral ports) and reads the access key
//! printed on its stdout. One test binary, one module per group of operations.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/s3.rs"]
mod s3util;

mod auth;
mod buckets;
mod checksums;
mod copy;
mod cors;
mod listing;
mod multipart;
mod objects;
mod post_object;
mod ssec;

use aws_sdk_s3::Client;
use base64::Engine;
use md5::{Digest, Md5};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The bucket `--single-node` creates.
const BUCKET: &str = "default";
const MIB: usize = 1 << 20;

pub fn md5_hex(d: &[u8]) -> String {
    hex::encode(Md5::digest(d))
}

pub fn crc32_b64(d: &[u8]) -> String {
    B64.encode(crc32fast::hash(d).to_be_bytes())
}

pub fn crc32c_b64(d: &[u8]) -> String {
    B64.encode(crc32c::crc32c(d).to_be_bytes())
}

pub async fn bucket_names(c: &Client) -> Vec<String> {
    c.list_buckets()
        .send()
        .await
        .expect("ListBuckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(String::from))
        .collect()
}
