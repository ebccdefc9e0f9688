//! Timestamps of new object versions. A new version must sort after every version the key
//! already has, whatever the clock of the node handling the request: a PUT through a node whose
//! clock is behind (or within the same millisecond as a PUT through another node) would
//! otherwise lose against the older write it replaces.

use super::error::S3Error;
use super::request::ReqCtx;
use crate::model::object::Object;
use crate::util::ids::Uuid;
use crate::util::time::unique_msec;

/// A timestamp newer than every version of `existing` (and than this node's previous ones).
pub fn next_timestamp(existing: Option<&Object>) -> u64 {
    let last = existing
        .and_then(|o| o.versions().iter().map(|v| v.timestamp).max())
        .unwrap_or(0);
    unique_msec().max(last + 1)
}

/// The timestamp for a new version of `key`: reads the key's versions (a quorum read) first.
pub async fn new_version_timestamp(ctx: &ReqCtx, bucket: &Uuid, key: &str) -> Result<u64, S3Error> {
    let existing = ctx.api.model.objects.get(bucket, &key.to_string()).await?;
    Ok(next_timestamp(existing.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::object::{ObjectVersion, VersionState};

    #[test]
    fn a_new_version_sorts_after_versions_from_the_future() {
        let ahead = unique_msec() + 3_600_000;
        let obj = Object::new(
            Uuid::random(),
            "k".into(),
            vec![ObjectVersion {
                uuid: Uuid::random(),
                timestamp: ahead,
                state: VersionState::Aborted,
            }],
        );
        assert_eq!(next_timestamp(Some(&obj)), ahead + 1);
        let now = next_timestamp(None);
        assert!(now < ahead && next_timestamp(None) > now);
    }
}
