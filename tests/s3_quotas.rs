//! Bucket counters and quotas on real daemons, driven with `aws-sdk-s3` and the `garage` CLI:
//! `garage bucket info` follows puts, overwrites, deletes, copies and multipart uploads;
//! `garage bucket set-quotas` limits the number of objects and the total size (403
//! `QuotaExceeded` naming the limit), `none` removes a limit; `garage repair counters` rebuilds
//! the same totals; on three nodes, `bucket info` on every node reports the same totals (also
//! after a restart and a recount) and a quota set through one node is enforced through another;
//! when the bucket's objects move to another node (layout change), the totals move with them.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/s3_nodes.rs"]
mod s3_nodes;
#[path = "common/s3.rs"]
mod s3util;

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use cluster::{Node, CONVERGE};
use common::wait_for;
use s3_nodes::{start_nodes, wait_layout, S3Node};
use s3util::*;

/// The bucket `--single-node` creates.
const BUCKET: &str = "default";
const MIB: usize = 1 << 20;
/// Bound on the wait for counters to reflect a write (they are published about once a second).
const COUNTERS: Duration = Duration::from_secs(60);

/// Objects, bytes and unfinished uploads as `garage bucket info` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    objects: u64,
    bytes: u64,
    uploads: u64,
}

fn usage(objects: u64, bytes: u64, uploads: u64) -> Usage {
    Usage {
        objects,
        bytes,
        uploads,
    }
}

/// Parses the counters and quotas of `garage bucket info`.
fn parse_info(text: &str) -> (Usage, String, String) {
    let value = |label: &str| {
        line_value(text, label).unwrap_or_else(|| panic!("{label} in bucket info:\n{text}"))
    };
    let size = value("Size:");
    let bytes = size
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bytes in {size:?}"));
    let u = Usage {
        objects: value("Objects:").parse().expect("object count"),
        bytes,
        uploads: value("Unfinished uploads:").parse().expect("upload count"),
    };
    (u, value("Max size:"), value("Max objects:"))
}

/// Waits until `info()` (the text of `bucket info`) shows `want`.
fn wait_usage(what: &str, want: Usage, info: impl Fn() -> String) {
    let mut last = None;
    let ok = wait_for(COUNTERS, || {
        let (u, _, _) = parse_info(&info());
        last = Some(u);
        (u == want).then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: bucket info never showed {want:?}; last {last:?}"
    );
}

/// Asserts that an SDK call failed with 403 QuotaExceeded and a message containing `limit`.
#[track_caller]
fn assert_quota<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, aws_sdk_s3::error::SdkError<E>>,
    limit: &str,
) {
    let message = match &r {
        Err(e) => e.message().unwrap_or_default().to_string(),
        Ok(_) => String::new(),
    };
    assert_s3_err(r, "QuotaExceeded", 403);
    assert!(
        message.contains(limit),
        "message names {limit}: {message:?}"
    );
}

async fn multipart(c: &Client, key: &str, parts: &[Vec<u8>]) -> String {
    let id = start_upload(c, key).await;
    let mut done = vec![];
    for (i, p) in parts.iter().enumerate() {
        done.push(upload_part(c, key, &id, i as i32 + 1, p).await);
    }
    complete(c, key, &id, done)
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload {key}: {e:?}"));
    id
}

async fn start_upload(c: &Client, key: &str) -> String {
    c.create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id()
        .expect("upload id")
        .to_string()
}

async fn upload_part(c: &Client, key: &str, id: &str, n: i32, body: &[u8]) -> CompletedPart {
    let out = c
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart {n}: {e:?}"));
    CompletedPart::builder()
        .part_number(n)
        .e_tag(out.e_tag().expect("part etag"))
        .build()
}

async fn complete(
    c: &Client,
    key: &str,
    id: &str,
    parts: Vec<CompletedPart>,
) -> Result<
    aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
    >,
> {
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
}

async fn delete(c: &Client, key: &str) {
    c.delete_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObject {key}: {e:?}"));
}

async fn copy(c: &Client, from: &str, to: &str) -> Result<(), String> {
    c.copy_object()
        .bucket(BUCKET)
        .key(to)
        .copy_source(format!("{BUCKET}/{from}"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?} {:?}", e.code(), e.message()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_writes() {
    let node = SingleNode::start().await;
    let c = node.client();
    let info = || node.cli(&["bucket", "info", BUCKET]);
    let (empty, max_size, max_objects) = parse_info(&info());
    assert_eq!(empty, usage(0, 0, 0));
    assert_eq!((max_size.as_str(), max_objects.as_str()), ("none", "none"));

    // Inline and block objects, an overwrite, a delete.
    put(&c, BUCKET, "a", &data(100, 1)).await;
    put(&c, BUCKET, "b", &data(5000, 2)).await;
    wait_usage("two puts", usage(2, 5100, 0), info);
    put(&c, BUCKET, "a", &data(50, 3)).await;
    wait_usage("overwrite", usage(2, 5050, 0), info);
    delete(&c, "b").await;
    delete(&c, "never-existed").await;
    wait_usage("delete", usage(1, 50, 0), info);

    // Multipart: in progress, completed, aborted.
    let id = start_upload(&c, "m").await;
    wait_usage("upload started", usage(1, 50, 1), info);
    let p1 = upload_part(&c, "m", &id, 1, &data(5 * MIB, 4)).await;
    let p2 = upload_part(&c, "m", &id, 2, &data(1000, 5)).await;
    wait_usage("parts do not count", usage(1, 50, 1), info);
    complete(&c, "m", &id, vec![p1, p2])
        .await
        .expect("CompleteMultipartUpload");
    let m_size = 5 * MIB as u64 + 1000;
    wait_usage("upload completed", usage(2, 50 + m_size, 0), info);
    let id = start_upload(&c, "n").await;
    wait_usage("second upload", usage(2, 50 + m_size, 1), info);
    c.abort_multipart_upload()
        .bucket(BUCKET)
        .key("n")
        .upload_id(&id)
        .send()
        .await
        .expect("AbortMultipartUpload");
    wait_usage("upload aborted", usage(2, 50 + m_size, 0), info);

    // Copies count as objects of their own.
    copy(&c, "m", "m2").await.expect("CopyObject");
    copy(&c, "a", "a2").await.expect("CopyObject");
    let total = usage(4, 100 + 2 * m_size, 0);
    wait_usage("copies", total, info);

    // Rebuilding the totals from the object table gives the same numbers.
    let out = node.cli(&["repair", "--yes", "counters"]);
    assert!(out.contains("recomputed from"), "{out}");
    wait_usage("after recount", total, info);
    assert!(
        node.dir.log().contains("bucket counters computed"),
        "the first start of a node computes its counters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_enforced() {
    let node = SingleNode::start().await;
    let c = node.client();
    let info = || node.cli(&["bucket", "info", BUCKET]);
    let set = |args: &[&str]| {
        let mut a = vec!["bucket", "set-quotas", BUCKET];
        a.extend_from_slice(args);
        node.cli(&a)
    };

    // Sizes take units; `none` removes a quota.
    let out = set(&["--max-size", "10G"]);
    assert!(out.contains("max size"), "{out}");
    let (_, max_size, max_objects) = parse_info(&info());
    assert!(max_size.contains("(10000000000 bytes)"), "{max_size}");
    assert_eq!(max_objects, "none");
    set(&["--max-size", "1TiB", "--max-objects", "1000"]);
    let (_, max_size, max_objects) = parse_info(&info());
    assert!(max_size.contains("(1099511627776 bytes)"), "{max_size}");
    assert_eq!(max_objects, "1000");
    set(&["--max-size", "none", "--max-objects", "none"]);
    let (_, max_size, max_objects) = parse_info(&info());
    assert_eq!((max_size.as_str(), max_objects.as_str()), ("none", "none"));
    for bad in [
        vec!["--max-size", "lots"],
        vec!["--max-objects", "1.5"],
        vec![],
    ] {
        let mut a = vec!["bucket", "set-quotas", BUCKET];
        a.extend_from_slice(&bad);
        let out = node.dir.run(&a);
        assert_eq!(out.status.code(), Some(1), "set-quotas {bad:?} refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("Error: "), "{err}");
    }

    // Number of objects.
    put(&c, BUCKET, "a", &data(10, 1)).await;
    put(&c, BUCKET, "b", &data(10, 2)).await;
    set(&["--max-objects", "2"]);
    wait_usage("two objects", usage(2, 20, 0), info);
    let r = c
        .put_object()
        .bucket(BUCKET)
        .key("c")
        .body(data(10, 3).into())
        .send()
        .await;
    assert_quota(r, "max-objects quota is 2");
    assert_quota(
        c.copy_object()
            .bucket(BUCKET)
            .key("c")
            .copy_source(format!("{BUCKET}/a"))
            .send()
            .await,
        "max-objects",
    );
    // Overwriting is not a new object; a refused write left nothing behind.
    put(&c, BUCKET, "a", &data(20, 4)).await;
    assert!(c
        .head_object()
        .bucket(BUCKET)
        .key("c")
        .send()
        .await
        .is_err());
    delete(&c, "b").await;
    wait_usage("after delete", usage(1, 20, 0), info);
    put(&c, BUCKET, "c", &data(10, 5)).await;
    set(&["--max-objects", "none"]);
    put(&c, BUCKET, "d", &data(10, 6)).await;
    wait_usage("objects quota removed", usage(3, 40, 0), info);

    // Total size: 40 bytes used, 5000 allowed.
    set(&["--max-size", "5000"]);
    assert_quota(
        c.put_object()
            .bucket(BUCKET)
            .key("big")
            .body(data(4961, 7).into())
            .send()
            .await,
        "max-size quota of 5000 bytes",
    );
    put(&c, BUCKET, "fits", &data(4000, 8)).await;
    wait_usage("size", usage(4, 4040, 0), info);
    // Overwriting replaces the old size: "fits" may grow by what is left.
    put(&c, BUCKET, "fits", &data(4960, 9)).await;
    wait_usage("grown", usage(4, 5000, 0), info);
    assert_quota(
        c.put_object()
            .bucket(BUCKET)
            .key("one-more")
            .body(data(1, 10).into())
            .send()
            .await,
        "max-size",
    );
    assert_quota(
        c.copy_object()
            .bucket(BUCKET)
            .key("copy")
            .copy_source(format!("{BUCKET}/a"))
            .send()
            .await,
        "max-size",
    );
    // Shrinking is always allowed.
    put(&c, BUCKET, "fits", &data(960, 11)).await;
    wait_usage("shrunk", usage(4, 1000, 0), info);

    // Multipart: each part, and the completed object, are checked.
    let id = start_upload(&c, "mpu").await;
    let r = c
        .upload_part()
        .bucket(BUCKET)
        .key("mpu")
        .upload_id(&id)
        .part_number(1)
        .body(data(4001, 12).into())
        .send()
        .await;
    assert_quota(r, "max-size");
    let p1 = upload_part(&c, "mpu", &id, 1, &data(3000, 12)).await;
    put(&c, BUCKET, "filler", &data(1001, 13)).await;
    wait_usage("filler", usage(5, 2001, 1), info);
    assert_quota(complete(&c, "mpu", &id, vec![p1.clone()]).await, "max-size");
    set(&["--max-size", "none"]);
    complete(&c, "mpu", &id, vec![p1])
        .await
        .expect("complete without quota");
    wait_usage("completed", usage(6, 5001, 0), info);
    assert_eq!(get_bytes(&c, BUCKET, "mpu").await, data(3000, 12));
    // A multipart upload of several parts under a quota that allows it.
    set(&["--max-size", "20M"]);
    multipart(&c, "big-mpu", &[data(5 * MIB, 14), data(10, 15)]).await;
    wait_usage("big upload", usage(7, 5001 + 5 * MIB as u64 + 10, 0), info);
}

/// Creates a key allowed on a new bucket [`BUCKET`], through the CLI of `node`, and waits until
/// every node's S3 endpoint knows the bucket.
fn key_and_bucket(rt: &tokio::runtime::Runtime, nodes: &[S3Node]) -> (String, String) {
    let key = created_key(&nodes[0].node.ok(&["key", "create", "quota-test"]));
    nodes[0].node.ok(&["bucket", "create", BUCKET]);
    nodes[0].node.ok(&[
        "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", &key.0,
    ]);
    rt.block_on(async {
        for (i, n) in nodes.iter().enumerate() {
            let c = n.client(&key);
            wait_async(CONVERGE, || async {
                c.head_bucket().bucket(BUCKET).send().await.ok().map(|_| ())
            })
            .await
            .unwrap_or_else(|| panic!("node {} never saw bucket {BUCKET}", i + 1));
        }
    });
    key
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Items of the object table in a node's local store, from `garage stats`.
fn object_items(node: &Node) -> Option<u64> {
    let out = node.cli(&["stats"]);
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut cells = l.split_whitespace();
        (cells.next() == Some("object_v1"))
            .then(|| cells.next()?.parse().ok())
            .flatten()
    })
}

#[test]
fn totals_follow_the_objects_to_their_new_node() {
    let rt = runtime();
    let nodes = start_nodes(2, 1);
    let key = key_and_bucket(&rt, &nodes);
    rt.block_on(async {
        let c = nodes[0].client(&key);
        for i in 0..5 {
            put(
                &c,
                BUCKET,
                &format!("k{i}"),
                &data(1000 * (i + 1), i as u64),
            )
            .await;
        }
    });
    let want = usage(5, 15_000, 0);
    for n in &nodes {
        wait_usage("before the move", want, || {
            n.node.ok(&["bucket", "info", BUCKET])
        });
    }
    // With one replica, exactly one node stores the bucket's objects: take it out of the layout.
    let holder = (0..2)
        .find(|&i| object_items(&nodes[i].node).unwrap_or(0) > 0)
        .expect("one node stores the objects");
    let other = 1 - holder;
    nodes[0]
        .node
        .ok(&["layout", "remove", nodes[holder].node.prefix()]);
    nodes[0].node.ok(&["layout", "apply", "--version", "2"]);
    wait_layout(&nodes[other].node, 2);
    wait_for(CONVERGE, || {
        (object_items(&nodes[other].node)? >= 5 && object_items(&nodes[holder].node)? == 0)
            .then_some(())
    })
    .expect("the objects moved to the other node");
    // The new holder counted what it received; the former holder's totals no longer count.
    // (The node that left the layout no longer serves the cluster's metadata: ask the other.)
    let remaining = &nodes[other].node;
    wait_usage("after the move", want, || {
        remaining.ok(&["bucket", "info", BUCKET])
    });
    rt.block_on(async {
        let c = nodes[other].client(&key);
        put(&c, BUCKET, "after", &data(10, 9)).await;
        delete(&c, "k0").await;
    });
    wait_usage("writes after the move", usage(5, 14_010, 0), || {
        remaining.ok(&["bucket", "info", BUCKET])
    });
}

#[test]
fn three_nodes_report_the_same_totals() {
    let rt = runtime();
    let mut nodes = start_nodes(3, 3);
    let key = key_and_bucket(&rt, &nodes);
    rt.block_on(async {
        let clients: Vec<Client> = nodes.iter().map(|n| n.client(&key)).collect();
        // Writes through different nodes.
        put(&clients[0], BUCKET, "x", &data(1000, 1)).await;
        put(&clients[1], BUCKET, "y", &data(2 * MIB + 3, 2)).await;
        put(&clients[2], BUCKET, "z", &data(10, 3)).await;
        put(&clients[1], BUCKET, "x", &data(500, 4)).await;
        delete(&clients[2], "z").await;
        start_upload(&clients[0], "pending").await;
    });
    let want = usage(2, 500 + 2 * MIB as u64 + 3, 1);
    for (i, n) in nodes.iter().enumerate() {
        wait_usage(&format!("node {}", i + 1), want, || {
            n.node.ok(&["bucket", "info", BUCKET])
        });
    }
    // A quota set through node 1 is enforced through node 3.
    nodes[0]
        .node
        .ok(&["bucket", "set-quotas", BUCKET, "--max-objects", "2"]);
    rt.block_on(async {
        let c = nodes[2].client(&key);
        let refused = wait_async(CONVERGE, || async {
            let r = c
                .put_object()
                .bucket(BUCKET)
                .key("third")
                .body(data(1, 5).into())
                .send()
                .await;
            match r {
                Err(e) if e.code() == Some("QuotaExceeded") => Some(()),
                Err(e) => panic!("unexpected error {e:?}"),
                // The quota had not reached node 3 yet: undo and try again.
                Ok(_) => {
                    delete(&c, "third").await;
                    None
                }
            }
        })
        .await;
        assert!(refused.is_some(), "node 3 never enforced the quota");
    });
    // The totals survive a restart, and a recount on one node agrees with them.
    nodes[1].node.stop();
    nodes[1].node.start();
    nodes[1].node.ok(&["repair", "--yes", "counters"]);
    for (i, n) in nodes.iter().enumerate() {
        wait_usage(&format!("node {} after restart", i + 1), want, || {
            n.node.ok(&["bucket", "info", BUCKET])
        });
    }
}
