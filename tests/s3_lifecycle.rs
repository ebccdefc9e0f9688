//! Bucket lifecycle on real daemons (`garage server --single-node`, and three nodes with rf 3):
//! a pass run with a shifted clock (`garage repair --yes lifecycle
//! --time-offset`) that expires exactly the matching objects and aborts old multipart uploads,
//! freeing their blocks, the daily worker (one pass per UTC day, kept across restarts; each
//! bucket handled by one node), and `garage bucket cleanup-incomplete-uploads`.

#[path = "common/blocks.rs"]
mod blocks;
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/lifecycle_rules.rs"]
mod lifecycle_rules;
#[path = "common/raw_s3.rs"]
mod s3;
#[path = "common/s3.rs"]
mod s3util;

use std::time::Duration;

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, ExpirationStatus, LifecycleRuleAndOperator, LifecycleRuleFilter,
};
use aws_sdk_s3::Client;
use common::wait_for;
use lifecycle_rules::*;
use s3util::*;

const BUCKET: &str = "default";
/// Bound of the waits on asynchronous effects (cascade of deletions, worker start-up).
const WAIT: Duration = Duration::from_secs(60);

async fn keys(c: &Client) -> Vec<String> {
    c.list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .expect("ListObjectsV2")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(String::from))
        .collect()
}

async fn upload_keys(c: &Client) -> Vec<String> {
    c.list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .expect("ListMultipartUploads")
        .uploads()
        .iter()
        .filter_map(|u| u.key().map(String::from))
        .collect()
}

/// Starts a multipart upload of `key` and uploads one part of `data`; returns the upload id.
async fn started_upload(c: &Client, key: &str, data: &[u8]) -> String {
    let id = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id()
        .expect("upload id")
        .to_string();
    c.upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(data.to_vec().into())
        .send()
        .await
        .expect("UploadPart");
    id
}

/// The number after `label` in the output of a CLI command.
fn number_after(text: &str, label: &str) -> u64 {
    line_value(text, label)
        .and_then(|v| v.split_whitespace().next().map(String::from))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} number in:\n{text}"))
}

/// The reference count `garage block info` shows for the block of `data` (one block).
fn refcount(node: &SingleNode, data: &[u8]) -> u64 {
    let hash = garage::util::ids::blake2sum(data);
    number_after(
        &node.cli(&["block", "info", &hash.to_hex()]),
        "Reference count:",
    )
}

fn lifecycle_pass(node: &SingleNode, offset: &str) -> String {
    node.cli(&["repair", "--yes", "lifecycle", "--time-offset", offset])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_with_shifted_clock_expires_matching_objects() {
    let node = SingleNode::start().await;
    let c = node.client();
    let big = data(5000, 1);
    let huge = data(300_000, 2);
    for (key, body) in [
        ("logs/a", &b"log line"[..]),
        ("logs/b", &big[..]),
        ("other/x", &b"keep me"[..]),
        ("big/small", &b"tiny"[..]),
        ("big/large", &big[..]),
        ("big/huge", &huge[..]),
    ] {
        put(&c, BUCKET, key, body).await;
    }
    let size_filter = LifecycleRuleFilter::builder()
        .and(
            LifecycleRuleAndOperator::builder()
                .prefix("big/")
                .object_size_greater_than(1000)
                .object_size_less_than(100_000)
                .build(),
        )
        .build();
    put_rules(
        &c,
        vec![
            rule("logs", prefix_filter("logs/"))
                .expiration(days(1))
                .build()
                .expect("rule"),
            rule("big", size_filter)
                .expiration(days(10))
                .build()
                .expect("rule"),
            rule("disabled", prefix_filter("other/"))
                .status(ExpirationStatus::Disabled)
                .expiration(days(1))
                .build()
                .expect("rule"),
        ],
    )
    .await
    .expect("PutBucketLifecycleConfiguration");
    let all = vec![
        "big/huge",
        "big/large",
        "big/small",
        "logs/a",
        "logs/b",
        "other/x",
    ];

    // Now: nothing is due yet.
    let out = lifecycle_pass(&node, "0s");
    assert!(out.contains("1 bucket(s) with rules"), "{out}");
    assert!(out.contains("0 object(s) expired"), "{out}");
    assert_eq!(keys(&c).await, all);

    // Two days later: the logs (1 day) are gone, everything else stays.
    let out = lifecycle_pass(&node, "2d");
    assert!(out.contains("2 object(s) expired"), "{out}");
    assert_eq!(
        keys(&c).await,
        vec!["big/huge", "big/large", "big/small", "other/x"]
    );
    assert_s3_err(
        c.get_object().bucket(BUCKET).key("logs/b").send().await,
        "NoSuchKey",
        404,
    );
    // The expired object's block is freed by the cascade.
    wait_for(WAIT, || (refcount(&node, &big) == 1).then_some(()))
        .unwrap_or_else(|| panic!("logs/b's block still referenced twice"));

    // Eleven days later: only the object matching the size window expires.
    let out = lifecycle_pass(&node, "11d");
    assert!(out.contains("1 object(s) expired"), "{out}");
    assert_eq!(keys(&c).await, vec!["big/huge", "big/small", "other/x"]);
    wait_for(WAIT, || (refcount(&node, &big) == 0).then_some(()))
        .unwrap_or_else(|| panic!("big/large's block still referenced"));
    assert_eq!(get_bytes(&c, BUCKET, "big/huge").await, huge);

    // A second pass at the same time finds nothing more to do.
    let out = lifecycle_pass(&node, "11d");
    assert!(out.contains("0 object(s) expired"), "{out}");

    // An object written after the pass is not affected by it.
    put(&c, BUCKET, "logs/new", b"fresh").await;
    assert!(keys(&c).await.contains(&"logs/new".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_aborts_old_uploads_and_frees_their_data() {
    let node = SingleNode::start().await;
    let c = node.client();
    let part_tmp = data(200_000, 3);
    let part_keep = data(200_000, 4);
    started_upload(&c, "tmp/upload", &part_tmp).await;
    started_upload(&c, "keep/upload", &part_keep).await;
    put(
        &c,
        BUCKET,
        "tmp/object",
        b"complete objects are not uploads",
    )
    .await;
    assert_eq!(upload_keys(&c).await, vec!["keep/upload", "tmp/upload"]);
    wait_unfinished_uploads(&node, 2);
    assert_eq!(refcount(&node, &part_tmp), 1);
    let referenced = |node: &SingleNode| number_after(&node.cli(&["stats"]), "Referenced blocks:");
    assert_eq!(referenced(&node), 2);

    put_rules(
        &c,
        vec![rule("tmp-uploads", prefix_filter("tmp/"))
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(1)
                    .build(),
            )
            .build()
            .expect("rule")],
    )
    .await
    .expect("PutBucketLifecycleConfiguration");

    let out = lifecycle_pass(&node, "0s");
    assert!(out.contains("0 upload(s) aborted"), "{out}");
    let out = lifecycle_pass(&node, "2d");
    assert!(out.contains("1 upload(s) aborted"), "{out}");
    assert!(out.contains("0 object(s) expired"), "{out}");
    assert_eq!(upload_keys(&c).await, vec!["keep/upload"]);
    assert_eq!(
        get_bytes(&c, BUCKET, "tmp/object").await,
        b"complete objects are not uploads"
    );
    wait_unfinished_uploads(&node, 1);
    // The aborted upload's part is unreferenced; the other upload's part is kept.
    wait_for(WAIT, || (refcount(&node, &part_tmp) == 0).then_some(()))
        .unwrap_or_else(|| panic!("the aborted part is still referenced"));
    assert_eq!(refcount(&node, &part_keep), 1);
    wait_for(WAIT, || (referenced(&node) == 1).then_some(()))
        .unwrap_or_else(|| panic!("stats still count the aborted part"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_incomplete_uploads_command() {
    let node = SingleNode::start().await;
    let c = node.client();
    c.create_bucket()
        .bucket("second")
        .send()
        .await
        .expect("CreateBucket");
    let part_a = data(150_000, 5);
    let part_b = data(150_000, 6);
    started_upload(&c, "a", &part_a).await;
    started_upload(&c, "b", &part_b).await;
    put(&c, BUCKET, "done", b"complete").await;

    // Uploads started less than an hour ago are kept.
    let out = node.cli(&[
        "bucket",
        "cleanup-incomplete-uploads",
        "--older-than",
        "1h",
        BUCKET,
        "second",
    ]);
    assert!(
        out.contains(&format!(
            "Bucket {BUCKET}: 0 incomplete multipart upload(s)"
        )),
        "{out}"
    );
    assert!(
        out.contains("Bucket second: 0 incomplete multipart upload(s)"),
        "{out}"
    );
    assert_eq!(upload_keys(&c).await, vec!["a", "b"]);

    // The default is one day.
    let out = node.cli(&["bucket", "cleanup-incomplete-uploads", BUCKET]);
    assert!(out.contains("0 incomplete multipart upload(s)"), "{out}");

    // Older than zero seconds: every upload started before now.
    let out = node.cli(&[
        "bucket",
        "cleanup-incomplete-uploads",
        "--older-than",
        "0s",
        BUCKET,
    ]);
    assert!(
        out.contains(&format!(
            "Bucket {BUCKET}: 2 incomplete multipart upload(s)"
        )),
        "{out}"
    );
    assert!(upload_keys(&c).await.is_empty());
    assert_eq!(get_bytes(&c, BUCKET, "done").await, b"complete");
    wait_unfinished_uploads(&node, 0);
    wait_for(WAIT, || {
        (refcount(&node, &part_a) == 0 && refcount(&node, &part_b) == 0).then_some(())
    })
    .unwrap_or_else(|| panic!("aborted parts still referenced"));

    // Errors: an unknown bucket aborts nothing and fails; a bad duration is a usage error.
    started_upload(&c, "c", &part_a).await;
    let out = node.dir.run(&[
        "bucket",
        "cleanup-incomplete-uploads",
        "--older-than",
        "0s",
        BUCKET,
        "no-such-bucket",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-bucket"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(upload_keys(&c).await, vec!["c"]);
    let out = node.dir.run(&[
        "bucket",
        "cleanup-incomplete-uploads",
        "--older-than",
        "1y",
        BUCKET,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration"));
    let out = node.dir.run(&["bucket", "cleanup-incomplete-uploads"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_worker_records_its_pass() {
    let node = SingleNode::start().await;
    let workers = node.cli(&["worker", "list"]);
    assert!(
        workers
            .lines()
            .any(|l| l.trim_start().starts_with("lifecycle")),
        "{workers}"
    );
    // The first pass runs shortly after start-up and records the day (UTC) it ran for.
    let file = node
        .dir
        .meta_dir()
        .join(garage::model::lifecycle_worker::LAST_PASS_FILE);
    let day = wait_for(WAIT, || std::fs::read_to_string(&file).ok())
        .unwrap_or_else(|| panic!("no daily pass recorded; log:\n{}", node.dir.log()));
    let today = &garage::util::time::msec_to_rfc3339(garage::util::time::now_msec())[..10];
    let yesterday =
        &garage::util::time::msec_to_rfc3339(garage::util::time::now_msec() - 86_400_000)[..10];
    // (The test may straddle midnight UTC.)
    assert!(
        day.trim() == today || day.trim() == yesterday,
        "recorded {day:?}, today is {today}"
    );
    let workers = wait_for(WAIT, || {
        let w = node.cli(&["worker", "list"]);
        w.contains(&format!("last pass {}", day.trim()))
            .then_some(w)
    })
    .unwrap_or_else(|| panic!("worker list never showed the pass"));
    assert!(workers.contains("0 object(s) expired"), "{workers}");
}

/// The day (UTC, `YYYY-MM-DD`) of a time in ms.
fn day(ms: u64) -> String {
    garage::util::time::msec_to_rfc3339(ms)[..10].to_string()
}

/// Waits until the node's lifecycle worker has decided what to do after start-up.
fn wait_worker_decided(node: &blocks::SingleNode) -> String {
    wait_for(WAIT, || {
        let w = node.cli(&["worker", "list"]);
        w.lines()
            .find(|l| l.trim_start().starts_with("lifecycle") && l.contains("next check"))
            .map(String::from)
    })
    .unwrap_or_else(|| {
        panic!(
            "the lifecycle worker never decided; log:\n{}",
            node.dir.log()
        )
    })
}

#[test]
fn daily_pass_runs_once_per_day_across_restarts() {
    use garage::util::time::now_msec;
    let started_day = day(now_msec());
    let mut node = blocks::SingleNode::new("");
    node.start();
    let file = node
        .dir
        .meta_dir()
        .join(garage::model::lifecycle_worker::LAST_PASS_FILE);
    wait_worker_decided(&node);
    assert!(file.exists(), "the first daily pass was not recorded");

    // A rule that expires everything under old/ (its date is past), and such an object.
    let s3 = node.s3();
    let rules = "<LifecycleConfiguration><Rule><ID>old</ID><Filter><Prefix>old/</Prefix></Filter>\
                 <Status>Enabled</Status><Expiration><Date>2020-01-01T00:00:00Z</Date></Expiration>\
                 </Rule></LifecycleConfiguration>";
    let r = s3
        .request_with_query("PUT", "/default", "lifecycle", rules.as_bytes())
        .expect("PutBucketLifecycleConfiguration");
    assert_eq!(r.status, 200, "{}", r.text());
    s3.put_ok("default", "old/x", b"expired by date", WAIT);
    s3.put_ok("default", "new/y", b"kept", WAIT);

    // Restarted the same day: today's pass is done, it is not repeated.
    node.stop();
    node.start();
    let decided = wait_worker_decided(&node);
    let s3 = node.s3();
    if day(now_msec()) == started_day {
        assert!(
            decided.contains(&format!("last pass {started_day}")),
            "{decided}"
        );
        assert_eq!(s3.get("default", "old/x").expect("GET").status, 200);
    }

    // Restarted after a day without pass (the node was down at midnight): the pass runs at once.
    node.stop();
    let yesterday = day(now_msec() - 86_400_000);
    std::fs::write(&file, format!("{yesterday}\n")).expect("write the last pass day");
    node.start();
    let s3 = node.s3();
    wait_for(WAIT, || {
        (s3.get("default", "old/x").ok()?.status == 404).then_some(())
    })
    .unwrap_or_else(|| panic!("old/x was not expired; log:\n{}", node.dir.log()));
    assert_eq!(s3.get("default", "new/y").expect("GET").status, 200);
    let decided = wait_worker_decided(&node);
    assert!(decided.contains("1 object(s) expired"), "{decided}");
    let recorded = std::fs::read_to_string(&file).expect("last pass file");
    assert_ne!(recorded.trim(), yesterday, "the pass was not recorded");
}

#[test]
fn three_nodes_one_daily_pass_per_bucket() {
    use garage::util::time::now_msec;
    let mut cluster = blocks::Cluster3::start("");
    let s3 = cluster.s3(0);
    let rules = "<LifecycleConfiguration><Rule><ID>old</ID><Filter><Prefix>old/</Prefix></Filter>\
                 <Status>Enabled</Status><Expiration><Date>2020-01-01T00:00:00Z</Date></Expiration>\
                 </Rule></LifecycleConfiguration>";
    let r = s3
        .request_with_query(
            "PUT",
            &format!("/{}", blocks::BUCKET),
            "lifecycle",
            rules.as_bytes(),
        )
        .expect("PutBucketLifecycleConfiguration");
    assert_eq!(r.status, 200, "{}", r.text());
    for key in ["old/a", "old/b", "new/c"] {
        s3.put_ok(blocks::BUCKET, key, key.as_bytes(), WAIT);
    }

    // Restart every node as if none had run today's pass: each runs one after start-up, and
    // only the first node of the bucket's partition handles the bucket.
    let yesterday = day(now_msec() - 86_400_000);
    for n in cluster.nodes.iter_mut() {
        n.stop();
    }
    for n in cluster.nodes.iter_mut() {
        let file = n
            .dir
            .meta_dir()
            .join(garage::model::lifecycle_worker::LAST_PASS_FILE);
        std::fs::write(&file, format!("{yesterday}\n")).expect("write the last pass day");
    }
    for n in cluster.nodes.iter_mut() {
        n.start();
    }
    let mut handled = 0;
    for n in &cluster.nodes {
        let line = wait_for(cluster::CONVERGE, || {
            let w = n.ok(&["worker", "list"]);
            w.lines()
                .find(|l| {
                    l.trim_start().starts_with("lifecycle")
                        && l.contains("next check")
                        && !l.contains(&format!("last pass {yesterday};"))
                })
                .map(String::from)
        })
        .unwrap_or_else(|| panic!("no daily pass on node {}; log:\n{}", n.short(), n.dir.log()));
        let buckets: u64 = line
            .split(": ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no bucket count in {line:?}"));
        handled += buckets;
    }
    assert_eq!(handled, 1, "the bucket must be handled by exactly one node");
    let s3 = cluster.s3(2);
    wait_for(WAIT, || {
        let gone = ["old/a", "old/b"]
            .iter()
            .all(|k| s3.get(blocks::BUCKET, k).is_ok_and(|r| r.status == 404));
        gone.then_some(())
    })
    .unwrap_or_else(|| panic!("old/ objects were not expired"));
    assert_eq!(s3.get(blocks::BUCKET, "new/c").expect("GET").status, 200);
}

/// Waits until `bucket info` reports `n` unfinished uploads (the counters it reads are
/// published within a second or two of a change).
#[track_caller]
fn wait_unfinished_uploads(node: &SingleNode, n: u64) {
    let mut last = String::new();
    let ok = wait_for(WAIT, || {
        last = node.cli(&["bucket", "info", BUCKET]);
        (number_after(&last, "Unfinished uploads:") == n).then_some(())
    });
    assert!(ok.is_some(), "expected {n} unfinished uploads:\n{last}");
}
