//! Admin commands about object lifecycles: `garage bucket cleanup-incomplete-uploads` and
//! `garage repair lifecycle` (the work itself is in `model::lifecycle_worker`).

use crate::layout::manager::LayoutManager;
use crate::model::helper::{ModelError, ModelHelper};
use crate::model::lifecycle_worker::{abort_incomplete_uploads, run_pass, PassScope};
use crate::model::Model;
use crate::util::time::{msec_to_rfc3339, now_msec};

/// Aborts the multipart uploads of each bucket started more than `older_than_secs` ago; one
/// line per bucket. Every bucket name is resolved before anything is aborted.
pub async fn cleanup_incomplete_uploads(
    h: &ModelHelper,
    buckets: &[String],
    older_than_secs: u64,
) -> Result<String, ModelError> {
    if buckets.is_empty() {
        return Err(ModelError::Invalid("give at least one bucket".into()));
    }
    let mut found = vec![];
    for name in buckets {
        found.push((name, h.find_bucket(name).await?));
    }
    let cutoff = now_msec().saturating_sub(older_than_secs.saturating_mul(1000));
    let mut lines = vec![];
    for (name, b) in found {
        let n = abort_incomplete_uploads(&h.model, b.id, cutoff).await?;
        lines.push(format!(
            "Bucket {name}: {n} incomplete multipart upload(s) started before {} aborted.",
            msec_to_rfc3339(cutoff)
        ));
    }
    Ok(lines.join("\n"))
}

/// Runs a lifecycle pass over every bucket now, as if the clock were `time_offset_secs` later.
pub async fn repair_lifecycle(
    model: &Model,
    layout: &LayoutManager,
    time_offset_secs: u64,
) -> Result<String, String> {
    let now = now_msec().saturating_add(time_offset_secs.saturating_mul(1000));
    let stats = run_pass(model, layout, PassScope::AllBuckets, now, None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "Lifecycle pass done (rules evaluated at {}): {}.",
        msec_to_rfc3339(now),
        stats
    ))
}
