//! Helpers shared by the test modules (also compiled into `tests/s3_three_nodes`).

pub use aws_sdk_s3::Client;
pub use base64::Engine;
use md5::{Digest, Md5};

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The bucket `--single-node` creates.
pub const BUCKET: &str = "default";
pub const MIB: usize = 1 << 20;

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
