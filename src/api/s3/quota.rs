//! Bucket quotas (`garage bucket set-quotas`): PutObject, CopyObject, UploadPart and
//! CompleteMultipartUpload check, before their write becomes visible, that it keeps the bucket
//! within its maximum size and number of objects; otherwise they fail with 403 `QuotaExceeded`,
//! whose message names the limit.
//!
//! Usage comes from the `counters` table (`model::counters`), which lags writes by a second or
//! two: writes racing each other, or following each other closely, can overshoot a quota by what
//! they add in that time. Overwriting a key replaces its size and does not add an object; a
//! write that does not increase usage (an overwrite by something smaller, a deletion) is always
//! allowed, even over quota. Parts of a multipart upload count against the size quota only
//! (their bytes are not in the bucket's size until the upload completes, when the whole object
//! is checked again). A bucket without quotas costs no check at all.

use super::error::S3Error;
use super::S3Api;
use crate::model::bucket::{Bucket, BucketQuotas};
use crate::model::counters::{bucket_usage, BucketUsage};
use crate::util::ids::Uuid;

/// The quotas of a bucket.
pub fn limits(bucket: &Bucket) -> BucketQuotas {
    bucket.params().map(|p| *p.quotas.get()).unwrap_or_default()
}

fn unlimited(q: &BucketQuotas) -> bool {
    q.max_size.is_none() && q.max_objects.is_none()
}

/// Whether a write is allowed: `usage` of the bucket now, `replaced` the size of the object the
/// write overwrites (if any), `size` what it stores, `new_object` whether it creates an object
/// (false for a part of a multipart upload).
pub fn decide(
    q: &BucketQuotas,
    usage: BucketUsage,
    replaced: Option<u64>,
    size: u64,
    new_object: bool,
) -> Result<(), S3Error> {
    if let Some(max) = q.max_objects {
        if new_object && replaced.is_none() && usage.objects.saturating_add(1) > max {
            return Err(S3Error::QuotaExceeded(format!(
                "Bucket quota exceeded: the bucket holds {} object(s) and its max-objects quota is {max}",
                usage.objects
            )));
        }
    }
    if let Some(max) = q.max_size {
        let old = replaced.unwrap_or(0);
        let after = usage.bytes.saturating_sub(old).saturating_add(size);
        if size > old && after > max {
            return Err(S3Error::QuotaExceeded(format!(
                "Bucket quota exceeded: this write would bring the bucket to {after} bytes, above its max-size quota of {max} bytes"
            )));
        }
    }
    Ok(())
}

/// Checks a write of an object of `size` bytes at `key` against `q`.
pub async fn check_object(
    api: &S3Api,
    bucket: &Uuid,
    key: &str,
    q: &BucketQuotas,
    size: u64,
) -> Result<(), S3Error> {
    if unlimited(q) {
        return Ok(());
    }
    let key = key.to_string();
    let (usage, existing) = tokio::join!(
        bucket_usage(&api.model.counters, bucket),
        api.model.objects.get(bucket, &key)
    );
    let (usage, existing) = (usage?, existing?);
    let replaced = existing
        .as_ref()
        .and_then(|o| o.last_data())
        .and_then(|v| v.meta())
        .map(|m| m.size);
    decide(q, usage, replaced, size, true)
}

/// Checks a part of `size` bytes of a multipart upload against `q` (size quota only).
pub async fn check_part(
    api: &S3Api,
    bucket: &Uuid,
    q: &BucketQuotas,
    size: u64,
) -> Result<(), S3Error> {
    if q.max_size.is_none() {
        return Ok(());
    }
    let usage = bucket_usage(&api.model.counters, bucket).await?;
    decide(q, usage, None, size, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(objects: u64, bytes: u64) -> BucketUsage {
        BucketUsage {
            objects,
            bytes,
            unfinished_uploads: 0,
        }
    }

    fn q(max_size: Option<u64>, max_objects: Option<u64>) -> BucketQuotas {
        BucketQuotas {
            max_size,
            max_objects,
        }
    }

    fn code(r: Result<(), S3Error>) -> Option<&'static str> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn object_count_quota() {
        let l = q(None, Some(2));
        assert_eq!(code(decide(&l, usage(1, 0), None, 5, true)), None);
        assert_eq!(
            code(decide(&l, usage(2, 0), None, 5, true)),
            Some("QuotaExceeded")
        );
        // Overwrites and parts do not add objects.
        assert_eq!(code(decide(&l, usage(2, 0), Some(1), 5, true)), None);
        assert_eq!(code(decide(&l, usage(2, 0), None, 5, false)), None);
    }

    #[test]
    fn size_quota() {
        let l = q(Some(100), None);
        assert_eq!(code(decide(&l, usage(1, 60), None, 40, true)), None);
        let e = decide(&l, usage(1, 60), None, 41, true).expect_err("over");
        assert_eq!(e.code(), "QuotaExceeded");
        assert_eq!(e.status().as_u16(), 403);
        assert!(e.to_string().contains("max-size quota of 100 bytes"), "{e}");
        // Overwriting replaces the old size.
        assert_eq!(code(decide(&l, usage(1, 60), Some(50), 90, true)), None);
        // Shrinking is allowed even over quota.
        assert_eq!(code(decide(&l, usage(1, 500), Some(300), 10, true)), None);
        assert_eq!(
            code(decide(&l, usage(1, 90), None, 11, false)),
            Some("QuotaExceeded")
        );
        assert_eq!(
            code(decide(&q(None, None), usage(9, 9), None, 9, true)),
            None
        );
    }
}
