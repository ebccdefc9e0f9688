//! Bucket lifecycle rules as stored in the bucket table (`BucketParams::lifecycle_config`): the
//! subset of S3 PutBucketLifecycleConfiguration that Garage applies (a filter on key prefix and
//! object size; expiration after a number of days or at a date; abort of incomplete multipart
//! uploads), and the date arithmetic that decides when an object or an upload is due.
//!
//! Encoding: the rules are part of the bucket entry, encoded with named fields; fields added
//! later must be `#[serde(default)]`. Dates are milliseconds since the Unix epoch at midnight
//! UTC. As in S3, "N days after creation" means creation time + N days rounded up to the next
//! midnight UTC.

use serde::{Deserialize, Serialize};

/// One day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// Which objects a rule applies to: all conditions must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleFilter {
    /// Key prefix (`None`: every key).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Objects strictly larger than this many bytes.
    #[serde(default)]
    pub size_gt: Option<u64>,
    /// Objects strictly smaller than this many bytes.
    #[serde(default)]
    pub size_lt: Option<u64>,
}

impl LifecycleFilter {
    pub fn matches_key(&self, key: &str) -> bool {
        self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
    }

    pub fn matches_size(&self, size: u64) -> bool {
        self.size_gt.is_none_or(|n| size > n) && self.size_lt.is_none_or(|n| size < n)
    }

    /// Whether the filter has a condition on the object size.
    pub fn has_size_condition(&self) -> bool {
        self.size_gt.is_some() || self.size_lt.is_some()
    }
}

/// When matching objects expire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleExpiration {
    /// This many days (> 0) after the object was written.
    AfterDays(u64),
    /// From this date on (milliseconds since the epoch, midnight UTC).
    AtDate(u64),
}

/// A lifecycle rule of a bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// The rule's ID (as given by the client, informative).
    #[serde(default)]
    pub id: Option<String>,
    /// Disabled rules are kept but not applied.
    pub enabled: bool,
    #[serde(default)]
    pub filter: LifecycleFilter,
    #[serde(default)]
    pub expiration: Option<LifecycleExpiration>,
    /// Abort multipart uploads this many days after they were initiated.
    #[serde(default)]
    pub abort_incomplete_mpu_days: Option<u64>,
}

/// The time from which something created at `created_ms` is due, `days` days later: creation
/// time + `days` days, rounded up to the next midnight UTC.
pub fn due_after_days(created_ms: u64, days: u64) -> u64 {
    let t = created_ms.saturating_add(days.saturating_mul(DAY_MS));
    t.div_ceil(DAY_MS).saturating_mul(DAY_MS)
}

impl LifecycleRule {
    /// Whether a complete object (key, size, written at `created_ms`) has expired at `now_ms`.
    pub fn expires_object(&self, key: &str, size: u64, created_ms: u64, now_ms: u64) -> bool {
        if !self.enabled || !self.filter.matches_key(key) || !self.filter.matches_size(size) {
            return false;
        }
        match self.expiration {
            Some(LifecycleExpiration::AfterDays(d)) => now_ms >= due_after_days(created_ms, d),
            Some(LifecycleExpiration::AtDate(t)) => now_ms >= t,
            None => false,
        }
    }

    /// Whether a multipart upload of `key` initiated at `initiated_ms` is to be aborted at
    /// `now_ms` (the size of an upload in progress is unknown: rules with a size condition
    /// never abort uploads, and the API refuses them).
    pub fn aborts_upload(&self, key: &str, initiated_ms: u64, now_ms: u64) -> bool {
        if !self.enabled || !self.filter.matches_key(key) || self.filter.has_size_condition() {
            return false;
        }
        self.abort_incomplete_mpu_days
            .is_some_and(|d| now_ms >= due_after_days(initiated_ms, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(filter: LifecycleFilter, exp: Option<LifecycleExpiration>) -> LifecycleRule {
        LifecycleRule {
            id: Some("r".into()),
            enabled: true,
            filter,
            expiration: exp,
            abort_incomplete_mpu_days: Some(2),
        }
    }

    #[test]
    fn due_dates_round_up_to_midnight() {
        // 2023-11-14T22:13:20Z + 1 day → 2023-11-16T00:00:00Z.
        let created = 1_700_000_000_000;
        let due = due_after_days(created, 1);
        assert_eq!(due % DAY_MS, 0);
        assert_eq!(due, (created / DAY_MS + 2) * DAY_MS);
        // Exactly at midnight: no rounding.
        assert_eq!(due_after_days(3 * DAY_MS, 1), 4 * DAY_MS);
        // Overflow saturates: never due.
        assert_eq!(due_after_days(u64::MAX - 5, 10), u64::MAX);
    }

    #[test]
    fn filters_and_expiration() {
        let f = LifecycleFilter {
            prefix: Some("logs/".into()),
            size_gt: Some(10),
            size_lt: Some(100),
        };
        let r = rule(f, Some(LifecycleExpiration::AfterDays(3)));
        let t0 = 10 * DAY_MS + 5;
        let due = 14 * DAY_MS;
        assert!(r.expires_object("logs/a", 50, t0, due));
        assert!(!r.expires_object("logs/a", 50, t0, due - 1));
        assert!(!r.expires_object("data/a", 50, t0, due));
        assert!(!r.expires_object("logs/a", 10, t0, due));
        assert!(!r.expires_object("logs/a", 100, t0, due));
        let mut disabled = r.clone();
        disabled.enabled = false;
        assert!(!disabled.expires_object("logs/a", 50, t0, due));

        let d = rule(
            LifecycleFilter::default(),
            Some(LifecycleExpiration::AtDate(20 * DAY_MS)),
        );
        assert!(d.expires_object("x", 0, 0, 20 * DAY_MS));
        assert!(!d.expires_object("x", 0, 0, 20 * DAY_MS - 1));
    }

    #[test]
    fn uploads() {
        let r = rule(
            LifecycleFilter {
                prefix: Some("tmp/".into()),
                ..Default::default()
            },
            None,
        );
        assert!(r.aborts_upload("tmp/x", DAY_MS, 3 * DAY_MS));
        assert!(!r.aborts_upload("tmp/x", DAY_MS, 3 * DAY_MS - 1));
        assert!(!r.aborts_upload("other", DAY_MS, 30 * DAY_MS));
        assert!(!r.expires_object("tmp/x", 1, 0, 100 * DAY_MS));
        let sized = rule(
            LifecycleFilter {
                size_gt: Some(1),
                ..Default::default()
            },
            None,
        );
        assert!(!sized.aborts_upload("tmp/x", DAY_MS, 30 * DAY_MS));
    }
}
