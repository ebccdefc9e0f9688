//! Applies buckets' lifecycle rules: expires complete objects (a delete marker, so the cascade
//! frees their blocks) and aborts old multipart uploads; also the abort of incomplete uploads
//! asked by `garage bucket cleanup-incomplete-uploads`.
//!
//! Schedule: the `lifecycle` worker runs one pass per UTC day. Each node handles the buckets
//! whose object partition lists it first (so every bucket is handled by one node while that node
//! is up). The day of the last completed pass is kept in `metadata_dir/lifecycle_last_pass` (text:
//! `YYYY-MM-DD`), so a restart neither repeats nor skips a day. `garage repair --yes lifecycle`
//! runs a pass at once over every bucket, optionally as if the clock were later (to try rules).
//!
//! Objects are read through the cluster (read quorum), not from the local copy, so a stale
//! local replica never causes a wrong expiration. A delete marker is written one millisecond
//! after the version it expires: an object overwritten meanwhile is not deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::lifecycle::{LifecycleRule, DAY_MS};
use super::object::{Object, ObjectData, ObjectVersion, VersionState};
use super::Model;
use crate::layout::manager::LayoutManager;
use crate::table::schema::{EmptyKey, PartitionKey};
use crate::table::TableError;
use crate::util::background::{WorkerHandle, WorkerState};
use crate::util::ids::{NodeId, Uuid};
use crate::util::time::{msec_to_rfc3339, now_msec};

/// Name of the file holding the day of the last completed daily pass.
pub const LAST_PASS_FILE: &str = "lifecycle_last_pass";
/// Objects read per page while walking a bucket.
const PAGE: usize = 1000;
/// Wait after start-up before the first daily pass (the layout and peers settle).
const STARTUP_DELAY: Duration = Duration::from_secs(10);
/// Wait before retrying a failed daily pass.
const RETRY_DELAY: Duration = Duration::from_secs(600);

/// Errors of a lifecycle pass.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("cannot record the last lifecycle pass in {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which buckets a pass handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassScope {
    /// Buckets whose object partition lists this node first (the daily pass).
    FirstReplica(NodeId),
    /// Every bucket (a pass asked by the operator).
    AllBuckets,
}

/// What a pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Buckets with enabled rules that this pass handled.
    pub buckets: u64,
    pub objects_expired: u64,
    pub uploads_aborted: u64,
}

impl std::fmt::Display for PassStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bucket(s) with rules, {} object(s) expired, {} upload(s) aborted",
            self.buckets, self.objects_expired, self.uploads_aborted
        )
    }
}

/// Reads the objects of a bucket page by page (read quorum) and writes, for each object, the
/// versions `decide` returns (delete markers, aborted uploads), one batched write per page.
/// Returns how many versions of each kind were written: (delete markers, aborts).
async fn walk_bucket(
    model: &Model,
    bucket: Uuid,
    mut decide: impl FnMut(&Object) -> Vec<ObjectVersion>,
) -> Result<(u64, u64), TableError> {
    let (mut expired, mut aborted) = (0, 0);
    let mut start: Option<String> = None;
    loop {
        let page = model
            .objects
            .get_range(&bucket, start.as_ref(), None, PAGE, false)
            .await?;
        let mut updates = vec![];
        for obj in &page {
            let changes = decide(obj);
            if changes.is_empty() {
                continue;
            }
            for v in &changes {
                match v.state {
                    VersionState::Aborted => aborted += 1,
                    _ => expired += 1,
                }
            }
            updates.push(Object::new(bucket, obj.key.clone(), changes));
        }
        if !updates.is_empty() {
            model.objects.insert_many(&updates).await?;
        }
        if page.len() < PAGE {
            return Ok((expired, aborted));
        }
        start = page.last().map(|o| format!("{}\0", o.key));
    }
}

/// The versions a set of rules changes in one object at `now`.
pub fn apply_rules(rules: &[LifecycleRule], obj: &Object, now: u64) -> Vec<ObjectVersion> {
    let mut out = vec![];
    if let Some(v) = obj.last_data() {
        let size = v.meta().map(|m| m.size).unwrap_or(0);
        if rules
            .iter()
            .any(|r| r.expires_object(&obj.key, size, v.timestamp, now))
        {
            out.push(ObjectVersion {
                uuid: Uuid::random(),
                // Just after the expired version: a newer write made meanwhile stays visible.
                timestamp: v.timestamp + 1,
                state: VersionState::Complete(ObjectData::DeleteMarker),
            });
        }
    }
    for v in obj.versions() {
        if let VersionState::Uploading {
            multipart: true, ..
        } = v.state
        {
            if rules
                .iter()
                .any(|r| r.aborts_upload(&obj.key, v.timestamp, now))
            {
                out.push(aborted(v));
            }
        }
    }
    out
}

fn aborted(v: &ObjectVersion) -> ObjectVersion {
    ObjectVersion {
        uuid: v.uuid,
        timestamp: v.timestamp,
        state: VersionState::Aborted,
    }
}

/// Runs one lifecycle pass as if the time were `now` (ms).
pub async fn run_pass(
    model: &Model,
    layout: &LayoutManager,
    scope: PassScope,
    now: u64,
    worker: Option<&WorkerHandle>,
) -> Result<PassStats, LifecycleError> {
    let buckets = model
        .buckets
        .get_range(
            &EmptyKey,
            None,
            Some(&super::bucket::BucketFilter::Live),
            usize::MAX,
            false,
        )
        .await?;
    let mut stats = PassStats::default();
    for b in buckets {
        let Some(rules) = b.params().and_then(|p| p.lifecycle_config.get().clone()) else {
            continue;
        };
        if !rules.iter().any(|r| r.enabled) {
            continue;
        }
        if let PassScope::FirstReplica(me) = scope {
            let first = layout.read(|h| h.read_nodes(&b.id.hash()).first().copied());
            if first != Some(me) {
                continue;
            }
        }
        if let Some(w) = worker {
            w.set_progress(Some(format!("bucket {}", b.id.short())));
        }
        let (e, a) = walk_bucket(model, b.id, |o| apply_rules(&rules, o, now)).await?;
        stats.buckets += 1;
        stats.objects_expired += e;
        stats.uploads_aborted += a;
    }
    Ok(stats)
}

/// Aborts every multipart upload of a bucket started before `cutoff` (ms). Returns how many
/// were aborted.
///
/// Single-request uploads in progress are left alone: their PutObject marks them complete
/// without checking, and a complete state wins over an aborted one in the object CRDT, so
/// aborting one that is still streaming would make visible an object whose blocks were freed.
/// A multipart upload aborted meanwhile only makes its next UploadPart or Complete fail with
/// NoSuchUpload.
pub async fn abort_incomplete_uploads(
    model: &Model,
    bucket: Uuid,
    cutoff: u64,
) -> Result<u64, TableError> {
    let (_, aborts) = walk_bucket(model, bucket, |o| {
        o.versions()
            .iter()
            .filter(|v| {
                matches!(
                    v.state,
                    VersionState::Uploading {
                        multipart: true,
                        ..
                    }
                ) && v.timestamp < cutoff
            })
            .map(aborted)
            .collect()
    })
    .await?;
    Ok(aborts)
}

/// The UTC day (days since the epoch) of a time in ms.
fn day_of(ms: u64) -> u64 {
    ms / DAY_MS
}

/// Formats a day number as `YYYY-MM-DD`.
fn day_text(day: u64) -> String {
    msec_to_rfc3339(day * DAY_MS)[..10].to_string()
}

/// Reads the day of the last completed pass (`None`: never, or unreadable).
pub fn read_last_pass(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    let ms = crate::util::time::parse_iso8601(text)?;
    Some(day_of(ms))
}

fn write_last_pass(path: &Path, day: u64) -> Result<(), LifecycleError> {
    crate::util::file::write_atomic(path, format!("{}\n", day_text(day)).as_bytes(), None).map_err(
        |source| LifecycleError::State {
            path: path.to_path_buf(),
            source,
        },
    )
}

/// Whether the daily pass is due at `now_ms`, the last completed one being of day `last_day`:
/// once per UTC day, and only once after days without any pass.
fn pass_due(last_day: Option<u64>, now_ms: u64) -> bool {
    last_day.is_none_or(|d| d < day_of(now_ms))
}

/// Waits `d`, or until the stop signal; returns false when stopping.
async fn wait(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    !stopped && !*stop.borrow()
}

/// The daily lifecycle worker of a node. Its progress text says when the last pass ran and,
/// once it has decided after start-up, when it checks again.
pub async fn run_lifecycle(
    model: Arc<Model>,
    layout: Arc<LayoutManager>,
    me: NodeId,
    state_file: PathBuf,
    worker: WorkerHandle,
    mut stop: watch::Receiver<bool>,
) {
    worker.set_state(WorkerState::Idle);
    let mut summary = match read_last_pass(&state_file) {
        Some(d) => format!("last pass {}", day_text(d)),
        None => "no pass yet".to_string(),
    };
    worker.set_progress(Some(summary.clone()));
    if !wait(STARTUP_DELAY, &mut stop).await {
        return;
    }
    loop {
        let now = now_msec();
        let today = day_of(now);
        let has_layout = layout.read(|h| h.current().version) > 0;
        let due = pass_due(read_last_pass(&state_file), now);
        let mut next = Duration::from_millis((today + 1) * DAY_MS - now) + Duration::from_secs(1);
        if has_layout && due {
            worker.set_state(WorkerState::Busy);
            let result = match run_pass(
                &model,
                &layout,
                PassScope::FirstReplica(me),
                now,
                Some(&worker),
            )
            .await
            {
                Ok(stats) => write_last_pass(&state_file, today).map(|()| stats),
                Err(e) => Err(e),
            };
            match result {
                Ok(stats) => {
                    info!("lifecycle pass of {}: {}", day_text(today), stats);
                    worker.ok();
                    summary = format!("last pass {}: {}", day_text(today), stats);
                }
                Err(e) => {
                    warn!("lifecycle pass failed (retrying in {:?}): {e}", RETRY_DELAY);
                    worker.error(e.to_string());
                    next = next.min(RETRY_DELAY);
                }
            }
            worker.set_state(WorkerState::Idle);
        } else if !has_layout {
            next = next.min(RETRY_DELAY);
        }
        let next_ms = now.saturating_add(u64::try_from(next.as_millis()).unwrap_or(u64::MAX));
        worker.set_progress(Some(format!(
            "{summary}; next check {}",
            msec_to_rfc3339(next_ms)
        )));
        if !wait(next, &mut stop).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lifecycle::{LifecycleExpiration, LifecycleFilter};
    use crate::model::object::{ObjectHeaders, ObjectMeta};

    fn complete(ts: u64, size: u64) -> ObjectVersion {
        ObjectVersion {
            uuid: Uuid::random(),
            timestamp: ts,
            state: VersionState::Complete(ObjectData::Inline(
                ObjectMeta {
                    headers: ObjectHeaders::default(),
                    size,
                    etag: "e".into(),
                    checksum: None,
                    encryption: None,
                },
                vec![0; size as usize],
            )),
        }
    }

    fn uploading(ts: u64) -> ObjectVersion {
        ObjectVersion {
            uuid: Uuid::random(),
            timestamp: ts,
            state: VersionState::Uploading {
                multipart: true,
                headers: ObjectHeaders::default(),
                encryption: None,
            },
        }
    }

    #[test]
    fn rules_expire_and_abort() {
        let rules = vec![LifecycleRule {
            id: None,
            enabled: true,
            filter: LifecycleFilter {
                prefix: Some("a/".into()),
                ..Default::default()
            },
            expiration: Some(LifecycleExpiration::AfterDays(1)),
            abort_incomplete_mpu_days: Some(1),
        }];
        let b = Uuid::random();
        let obj = Object::new(
            b,
            "a/x".into(),
            vec![complete(DAY_MS - 100, 3), uploading(DAY_MS - 10)],
        );
        assert!(apply_rules(&rules, &obj, 2 * DAY_MS - 1).is_empty());
        let changes = apply_rules(&rules, &obj, 2 * DAY_MS);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].timestamp, DAY_MS - 99);
        assert!(matches!(
            changes[0].state,
            VersionState::Complete(ObjectData::DeleteMarker)
        ));
        assert_eq!(changes[1].uuid, obj.versions()[1].uuid);
        assert_eq!(changes[1].state, VersionState::Aborted);
        // Applying the changes leaves no data and no upload.
        let mut merged = obj.clone();
        crate::util::crdt::Crdt::merge(&mut merged, &Object::new(b, "a/x".into(), changes));
        assert!(merged.last_data().is_none());
        assert!(!merged.has_uploading());
        let other = Object::new(b, "b/x".into(), vec![complete(0, 3)]);
        assert!(apply_rules(&rules, &other, 100 * DAY_MS).is_empty());
    }

    #[test]
    fn one_pass_per_day() {
        let now = 19_000 * DAY_MS + 3_600_000;
        assert!(pass_due(None, now));
        assert!(!pass_due(Some(19_000), now));
        assert!(pass_due(Some(18_999), now));
        // After a week down: one pass (then the day is recorded).
        assert!(pass_due(Some(18_990), now));
        assert!(!pass_due(Some(19_000), 19_001 * DAY_MS - 1));
        assert!(pass_due(Some(19_000), 19_001 * DAY_MS));
    }

    #[test]
    fn last_pass_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(LAST_PASS_FILE);
        assert_eq!(read_last_pass(&p), None);
        write_last_pass(&p, 19_000).expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "2022-01-08\n");
        assert_eq!(read_last_pass(&p), Some(19_000));
    }
}
