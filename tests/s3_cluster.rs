//! The S3 API on three real daemons (replication factor 3, one zone each), driven with
//! `aws-sdk-s3`: objects written through one node are read through the others; with one node
//! killed (SIGKILL) every operation still works through the two others; once it restarts, the
//! objects written meanwhile reach it (metadata by anti-entropy, blocks by resync) and the
//! cluster serves them even when another node is then lost. Layout changes (a node joins, a node
//! leaves) keep every object readable through every node.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/s3_nodes.rs"]
mod s3_nodes;
#[path = "common/s3.rs"]
mod s3util;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use cluster::CONVERGE;
use common::wait_for;
use s3_nodes::{start_nodes, S3Node};
use s3util::*;

const BUCKET: &str = "shared";
const MIB: usize = 1 << 20;
/// Bound on the wait for a restarted node to receive what it missed (block resync starts
/// 10 s after a reference arrives, then backs off on failures).
const CATCH_UP: Duration = Duration::from_secs(180);

/// The hashes (hex) of the blocks of an object stored in 1 MiB blocks.
fn block_hashes(body: &[u8]) -> Vec<String> {
    body.chunks(MIB)
        .map(|c| garage::util::ids::blake2sum(c).to_hex())
        .collect()
}

async fn list_all(c: &Client, bucket: &str) -> Vec<String> {
    let mut keys = vec![];
    let mut token = None;
    loop {
        let out = c
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(4)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket}: {e:?}"));
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return keys,
        }
    }
}

/// Every object of `want` reads back with its content through `c`, and the bucket lists
/// exactly those keys.
async fn check_all(c: &Client, bucket: &str, want: &BTreeMap<String, Vec<u8>>, via: &str) {
    for (k, body) in want {
        let got = get_bytes(c, bucket, k).await;
        assert!(
            &got == body,
            "{bucket}/{k} read through {via}: wrong content"
        );
    }
    let keys = list_all(c, bucket).await;
    assert_eq!(
        keys,
        want.keys().cloned().collect::<Vec<_>>(),
        "listing of {bucket} through {via}"
    );
}

/// Three daemons (rf 3, zones dc1..dc3) with a layout applied, a key allowed to create buckets
/// and bucket [`BUCKET`] on which it has every permission.
fn start_cluster() -> (Vec<S3Node>, Vec<String>, (String, String)) {
    let nodes = start_nodes(3, 3);
    let ids: Vec<String> = nodes.iter().map(|n| n.node.id.clone()).collect();

    // A key and a bucket, through the CLI of node 1.
    let key = created_key(&nodes[0].node.ok(&["key", "create", "s3-test"]));
    nodes[0]
        .node
        .ok(&["key", "allow", "--create-bucket", &key.0]);
    nodes[0].node.ok(&["bucket", "create", BUCKET]);
    nodes[0].node.ok(&[
        "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", &key.0,
    ]);
    (nodes, ids, key)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn three_nodes_serve_s3_with_one_node_down() {
    let rt = runtime();
    let (mut nodes, ids, key) = start_cluster();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();

    rt.block_on(async {
        let clients: Vec<Client> = nodes.iter().map(|n| n.client(&key)).collect();
        // The key and bucket tables are fully replicated: every node soon knows them.
        for (i, c) in clients.iter().enumerate() {
            wait_async(CONVERGE, || async {
                c.head_bucket().bucket(BUCKET).send().await.ok().map(|_| ())
            })
            .await
            .unwrap_or_else(|| panic!("node {} never saw bucket {BUCKET}", i + 1));
        }

        // Written through node 1, read and listed through every node.
        let mut objects: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (i, len) in [0, 10, 3072, 3073, 100_000, 3 * MIB + 5]
            .into_iter()
            .enumerate()
        {
            objects.insert(format!("before/{i}"), data(len, i as u64));
        }
        for (k, body) in &objects {
            put(&clients[0], BUCKET, k, body).await;
        }
        for (i, c) in clients.iter().enumerate() {
            check_all(c, BUCKET, &objects, &format!("node {}", i + 1)).await;
        }
        // A bucket created through S3 on node 2 is usable through node 3.
        clients[1]
            .create_bucket()
            .bucket("by-s3")
            .send()
            .await
            .expect("CreateBucket through node 2");
        wait_async(CONVERGE, || async {
            clients[2]
                .head_bucket()
                .bucket("by-s3")
                .send()
                .await
                .ok()
                .map(|_| ())
        })
        .await
        .expect("node 3 sees the new bucket");
        put(&clients[2], "by-s3", "x", b"through node 3").await;
        assert_eq!(
            get_bytes(&clients[0], "by-s3", "x").await,
            b"through node 3"
        );
    });

    // Node 3 dies.
    let mut dead = nodes[2].node.child.take().expect("node 3 running");
    dead.kill().expect("SIGKILL node 3");
    dead.wait().expect("reap node 3");

    let written_meanwhile: BTreeMap<String, Vec<u8>> = rt.block_on(async {
        let clients: Vec<Client> = nodes[..2].iter().map(|n| n.client(&key)).collect();
        let mut objects: BTreeMap<String, Vec<u8>> = [0, 10, 3072, 3073, 100_000, 3 * MIB + 5]
            .into_iter()
            .enumerate()
            .map(|(i, len)| (format!("before/{i}"), data(len, i as u64)))
            .collect();
        // Puts (small and multi-block) through both nodes.
        let mut meanwhile = BTreeMap::new();
        for (i, len) in [5, 2000, 4000, 2 * MIB + 77, 5 * MIB]
            .into_iter()
            .enumerate()
        {
            meanwhile.insert(format!("during/{i}"), data(len, 100 + i as u64));
        }
        for (j, (k, body)) in meanwhile.iter().enumerate() {
            put(&clients[j % 2], BUCKET, k, body).await;
        }
        objects.extend(meanwhile.clone());
        // Overwrite and delete objects written before.
        let new0 = data(2 * MIB + 1, 200);
        put(&clients[1], BUCKET, "before/0", &new0).await;
        objects.insert("before/0".into(), new0.clone());
        meanwhile.insert("before/0".into(), new0);
        clients[0]
            .delete_object()
            .bucket(BUCKET)
            .key("before/1")
            .send()
            .await
            .expect("DeleteObject with node 3 down");
        objects.remove("before/1");
        clients[1]
            .delete_objects()
            .bucket(BUCKET)
            .delete(
                Delete::builder()
                    .objects(
                        ObjectIdentifier::builder()
                            .key("before/2")
                            .build()
                            .expect("id"),
                    )
                    .build()
                    .expect("delete"),
            )
            .send()
            .await
            .expect("DeleteObjects with node 3 down");
        objects.remove("before/2");
        // Copy of a multi-block object.
        clients[0]
            .copy_object()
            .bucket(BUCKET)
            .key("during/copy")
            .copy_source(format!("{BUCKET}/before/5"))
            .send()
            .await
            .expect("CopyObject with node 3 down");
        let copied = objects["before/5"].clone();
        objects.insert("during/copy".into(), copied.clone());
        meanwhile.insert("during/copy".into(), copied);
        // A bucket created meanwhile.
        clients[0]
            .create_bucket()
            .bucket("while-down")
            .send()
            .await
            .expect("CreateBucket with node 3 down");
        put(&clients[1], "while-down", "big", &data(MIB + 3, 300)).await;
        // Everything reads and lists through both live nodes.
        for (i, c) in clients.iter().enumerate() {
            check_all(
                c,
                BUCKET,
                &objects,
                &format!("node {} (node 3 down)", i + 1),
            )
            .await;
            assert_s3_err(
                c.get_object().bucket(BUCKET).key("before/1").send().await,
                "NoSuchKey",
                404,
            );
            assert_eq!(get_bytes(c, "while-down", "big").await, data(MIB + 3, 300));
        }
        meanwhile
    });

    // Node 3 comes back: what was written meanwhile reaches it.
    nodes[2].node.start();
    for n in &nodes {
        n.node.wait_healthy(&ids);
    }
    let mut hashes: Vec<String> = written_meanwhile
        .values()
        .filter(|b| b.len() > 3072)
        .flat_map(|b| block_hashes(b))
        .collect();
    hashes.extend(block_hashes(&data(MIB + 3, 300)));
    let (n1, n3) = (&nodes[0], &nodes[2]);
    let restarted = std::time::Instant::now();
    wait_for(CATCH_UP, || {
        hashes.iter().all(|h| n3.stores_block(h)).then_some(())
    })
    .unwrap_or_else(|| {
        let missing: Vec<&String> = hashes.iter().filter(|h| !n3.stores_block(h)).collect();
        panic!(
            "node 3 never received the blocks {missing:?}; log:\n{}",
            n3.node.dir.log()
        )
    });
    wait_for(CATCH_UP, || {
        let (a, b) = (n1.table_items("object_v1")?, n3.table_items("object_v1")?);
        (a == b).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "node 3's object table never matched node 1's: {:?} vs {:?}",
            n3.table_items("object_v1"),
            n1.table_items("object_v1")
        )
    });

    // Shown with `--nocapture`.
    eprintln!(
        "node 3 caught up {:?} after its restart ({} blocks)",
        restarted.elapsed(),
        hashes.len()
    );

    let final_objects = rt.block_on(async {
        let c3 = nodes[2].client(&key);
        wait_async(CONVERGE, || async {
            c3.head_bucket()
                .bucket("while-down")
                .send()
                .await
                .ok()
                .map(|_| ())
        })
        .await
        .expect("node 3 knows the bucket created while it was down");
        let c1 = nodes[0].client(&key);
        let mut all: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for k in list_all(&c1, BUCKET).await {
            let body = get_bytes(&c1, BUCKET, &k).await;
            all.insert(k, body);
        }
        for (k, body) in &written_meanwhile {
            assert!(all.get(k) == Some(body), "{k} as written");
        }
        check_all(&c3, BUCKET, &all, "node 3 (restarted)").await;
        assert_eq!(
            get_bytes(&c3, "while-down", "big").await,
            data(MIB + 3, 300)
        );
        all
    });

    // Now node 1 dies: nodes 2 and 3 alone still serve everything, including what node 3
    // missed while it was down.
    let mut dead = nodes[0].node.child.take().expect("node 1 running");
    dead.kill().expect("SIGKILL node 1");
    dead.wait().expect("reap node 1");
    rt.block_on(async {
        for n in &nodes[1..] {
            let c = n.client(&key);
            check_all(&c, BUCKET, &final_objects, "nodes 2 and 3 only").await;
            assert_eq!(get_bytes(&c, "while-down", "big").await, data(MIB + 3, 300));
        }
        let c3 = nodes[2].client(&key);
        put(&c3, BUCKET, "after/1", &data(MIB + 1, 400)).await;
        assert_eq!(
            get_bytes(&nodes[1].client(&key), BUCKET, "after/1").await,
            data(MIB + 1, 400)
        );
    });
}

/// MD5 (hex) of an object read through `c`, streamed.
async fn md5_of_object(c: &Client, bucket: &str, key: &str) -> (String, u64) {
    use md5::{Digest, Md5};
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {bucket}/{key}: {e:?}"));
    let mut body = out.body;
    let mut h = Md5::new();
    let mut len = 0u64;
    while let Some(chunk) = body.try_next().await.expect("body chunk") {
        h.update(&chunk);
        len += chunk.len() as u64;
    }
    (hex::encode(h.finalize()), len)
}

/// A 200 MiB multipart upload through aws-sdk-s3 during which one of the three nodes is killed:
/// the remaining parts go to the two live nodes, Complete succeeds, and the object reads back
/// intact through every node, including the killed one once it restarts.
#[test]
fn multipart_upload_survives_a_node_killed_midway() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    use md5::{Digest, Md5};

    const PARTS: i32 = 40;
    const PART: usize = 5 * MIB;
    let part_data = |n: i32| data(PART, 1000 + n as u64);
    let rt = runtime();
    let (mut nodes, ids, key) = start_cluster();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let clients: Vec<Client> = nodes.iter().map(|n| n.client(&key)).collect();
    let (whole_md5, etag) = {
        let mut whole = Md5::new();
        let mut etag = Md5::new();
        for n in 1..=PARTS {
            let d = part_data(n);
            whole.update(&d);
            etag.update(Md5::digest(&d));
        }
        (
            hex::encode(whole.finalize()),
            format!("\"{}-{PARTS}\"", hex::encode(etag.finalize())),
        )
    };

    let (upload_id, mut done) = rt.block_on(async {
        for c in &clients[..2] {
            wait_async(CONVERGE, || async {
                c.head_bucket().bucket(BUCKET).send().await.ok().map(|_| ())
            })
            .await
            .expect("the bucket is known everywhere");
        }
        let id = create_upload(&clients[0], BUCKET, "big/200MiB").await;
        (id, Vec::<CompletedPart>::new())
    });
    let upload =
        |rt: &tokio::runtime::Runtime, clients: &[Client], range: std::ops::RangeInclusive<i32>| {
            rt.block_on(async {
                let mut parts = vec![];
                for n in range {
                    let c = &clients[n as usize % clients.len()];
                    let out = c
                        .upload_part()
                        .bucket(BUCKET)
                        .key("big/200MiB")
                        .upload_id(&upload_id)
                        .part_number(n)
                        .body(part_data(n).into())
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("UploadPart {n}: {e:?}"));
                    parts.push(
                        CompletedPart::builder()
                            .part_number(n)
                            .e_tag(out.e_tag().expect("part etag"))
                            .build(),
                    );
                }
                parts
            })
        };
    done.extend(upload(&rt, &clients, 1..=12));

    // Node 3 dies mid-upload; the rest goes through nodes 1 and 2.
    let mut dead = nodes[2].node.child.take().expect("node 3 running");
    dead.kill().expect("SIGKILL node 3");
    dead.wait().expect("reap node 3");
    done.extend(upload(&rt, &clients[..2], 13..=PARTS));

    rt.block_on(async {
        let out = clients[1]
            .complete_multipart_upload()
            .bucket(BUCKET)
            .key("big/200MiB")
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done.clone()))
                    .build(),
            )
            .send()
            .await
            .expect("CompleteMultipartUpload with node 3 down");
        assert_eq!(out.e_tag(), Some(etag.as_str()));
        for (i, c) in clients[..2].iter().enumerate() {
            let (md5, len) = md5_of_object(c, BUCKET, "big/200MiB").await;
            assert_eq!(
                len,
                (PARTS as u64) * PART as u64,
                "size through node {}",
                i + 1
            );
            assert_eq!(md5, whole_md5, "content through node {}", i + 1);
        }
    });

    // Node 3 comes back and serves the object too.
    nodes[2].node.start();
    for n in &nodes {
        n.node.wait_healthy(&ids);
    }
    rt.block_on(async {
        let (md5, _) = md5_of_object(&clients[2], BUCKET, "big/200MiB").await;
        assert_eq!(md5, whole_md5, "content through the restarted node 3");
    });
}

/// Bucket configuration and the other endpoints across the nodes of a 3-node cluster: what is
/// set through one node (website, CORS, lifecycle, quotas) is seen and applied through the
/// others; SSE-C objects, UploadPartCopy and their errors behave the same through every node.
#[test]
fn configuration_and_endpoints_across_nodes() {
    use aws_sdk_s3::types::{
        CompletedMultipartUpload, CompletedPart, CorsConfiguration, CorsRule, ExpirationStatus,
        IndexDocument, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
        WebsiteConfiguration,
    };
    use base64::Engine;
    use md5::{Digest, Md5};

    let rt = runtime();
    let (nodes, _ids, key) = start_cluster();
    let c: Vec<Client> = nodes.iter().map(|n| n.client(&key)).collect();
    rt.block_on(async {
        for cl in &c {
            wait_async(CONVERGE, || async {
                cl.head_bucket()
                    .bucket(BUCKET)
                    .send()
                    .await
                    .ok()
                    .map(|_| ())
            })
            .await
            .expect("the bucket is known everywhere");
        }

        // Website through node 1, read through nodes 2 and 3.
        c[0].put_bucket_website()
            .bucket(BUCKET)
            .website_configuration(
                WebsiteConfiguration::builder()
                    .index_document(
                        IndexDocument::builder()
                            .suffix("home.html")
                            .build()
                            .expect("index"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("PutBucketWebsite");
        for cl in &c[1..] {
            let got = wait_async(CONVERGE, || async {
                cl.get_bucket_website().bucket(BUCKET).send().await.ok()
            })
            .await
            .expect("website configuration replicated");
            assert_eq!(got.index_document().map(|i| i.suffix()), Some("home.html"));
        }

        // CORS through node 2: node 3 answers preflights from it.
        c[1].put_bucket_cors()
            .bucket(BUCKET)
            .cors_configuration(
                CorsConfiguration::builder()
                    .cors_rules(
                        CorsRule::builder()
                            .allowed_origins("https://app.example")
                            .allowed_methods("PUT")
                            .build()
                            .expect("rule"),
                    )
                    .build()
                    .expect("cors"),
            )
            .send()
            .await
            .expect("PutBucketCors");
        let port3 = nodes[2].port;
        let preflight = wait_for(CONVERGE, || {
            let r = raw_request(
                port3,
                "OPTIONS",
                &format!("/{BUCKET}/x"),
                &[
                    ("Origin".to_string(), "https://app.example".to_string()),
                    (
                        "Access-Control-Request-Method".to_string(),
                        "PUT".to_string(),
                    ),
                ],
                b"",
            );
            (r.status == 200).then_some(r)
        })
        .expect("node 3 answers the preflight from rules set through node 2");
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some("https://app.example")
        );

        // Lifecycle through node 3, read through node 1; a malformed one is refused everywhere.
        c[2].put_bucket_lifecycle_configuration()
            .bucket(BUCKET)
            .lifecycle_configuration(
                aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                    .rules(
                        LifecycleRule::builder()
                            .id("tmp")
                            .status(ExpirationStatus::Enabled)
                            .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
                            .expiration(LifecycleExpiration::builder().days(1).build())
                            .build()
                            .expect("rule"),
                    )
                    .build()
                    .expect("lifecycle"),
            )
            .send()
            .await
            .expect("PutBucketLifecycleConfiguration");
        let got = wait_async(CONVERGE, || async {
            c[0].get_bucket_lifecycle_configuration()
                .bucket(BUCKET)
                .send()
                .await
                .ok()
        })
        .await
        .expect("lifecycle replicated");
        assert_eq!(got.rules().first().and_then(|r| r.id()), Some("tmp"));

        // SSE-C: written through node 1 (multi-block), read through node 2 with the key only.
        let k = [7u8; 32];
        let kb = base64::engine::general_purpose::STANDARD.encode(k);
        let km = base64::engine::general_purpose::STANDARD.encode(Md5::digest(k));
        let secret_data = data(3 * MIB + 11, 77);
        c[0].put_object()
            .bucket(BUCKET)
            .key("enc")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&kb)
            .sse_customer_key_md5(&km)
            .body(secret_data.clone().into())
            .send()
            .await
            .expect("PutObject SSE-C");
        let got = c[1]
            .get_object()
            .bucket(BUCKET)
            .key("enc")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&kb)
            .sse_customer_key_md5(&km)
            .send()
            .await
            .expect("GetObject SSE-C through node 2");
        assert!(read_body(got.body).await == secret_data, "SSE-C data");
        assert_s3_err(
            c[2].get_object().bucket(BUCKET).key("enc").send().await,
            "InvalidRequest",
            400,
        );

        // UploadPartCopy through node 3 from an object written through node 1.
        let src = data(6 * MIB, 78);
        put(&c[0], BUCKET, "src", &src).await;
        let id = c[2]
            .create_multipart_upload()
            .bucket(BUCKET)
            .key("assembled")
            .send()
            .await
            .expect("Create")
            .upload_id()
            .expect("id")
            .to_string();
        let r = c[2]
            .upload_part_copy()
            .bucket(BUCKET)
            .key("assembled")
            .upload_id(&id)
            .part_number(1)
            .copy_source(format!("{BUCKET}/src"))
            .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
            .send()
            .await
            .expect("UploadPartCopy");
        let e1 = r
            .copy_part_result()
            .and_then(|p| p.e_tag())
            .expect("etag")
            .to_string();
        assert_s3_err(
            c[1].complete_multipart_upload()
                .bucket(BUCKET)
                .key("assembled")
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .parts(
                            CompletedPart::builder()
                                .part_number(1)
                                .e_tag("\"bad\"")
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await,
            "InvalidPart",
            400,
        );
        c[1].complete_multipart_upload()
            .bucket(BUCKET)
            .key("assembled")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(&e1).build())
                    .build(),
            )
            .send()
            .await
            .expect("Complete through node 2");
        assert!(
            get_bytes(&c[0], BUCKET, "assembled").await == src[..5 * MIB],
            "copied part"
        );
    });

    // Quotas set through node 1 apply to writes through node 3.
    nodes[0]
        .node
        .ok(&["bucket", "set-quotas", BUCKET, "--max-objects", "1"]);
    rt.block_on(async {
        // A new key each try: an overwrite would not count as a new object.
        let attempt = std::sync::atomic::AtomicUsize::new(0);
        let r = wait_async(CONVERGE, || async {
            let n = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match c[2]
                .put_object()
                .bucket(BUCKET)
                .key(format!("one-too-many/{n}"))
                .body(b"x".to_vec().into())
                .send()
                .await
            {
                Ok(_) => None,
                Err(e) => Some(err_parts::<(), _>(Err(e))),
            }
        })
        .await
        .expect("the quota reaches node 3");
        assert_eq!(r, (Some("QuotaExceeded".to_string()), 403));
    });
}

/// Objects survive layout changes: a fourth node joins (partitions move onto it), then the first
/// node is removed from the layout, hands everything over and is stopped. Every object (inline,
/// multi-block, multipart) still reads back byte-identical through each remaining node, and
/// still does with one more node down, so each has its replicas on the new layout.
#[test]
fn objects_survive_layout_changes() {
    let rt = runtime();
    let (mut nodes, _, key) = start_cluster();
    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..12u64 {
        let body = match i % 3 {
            0 => data(100 + i as usize, i),
            1 => data(2 * MIB + 500, i),
            _ => data(MIB, i),
        };
        want.insert(format!("obj/{i:02}"), body);
    }
    let parts = [data(5 * MIB, 100), data(MIB + 7, 101)];
    rt.block_on(async {
        let c = nodes[0].client(&key);
        for (k, body) in &want {
            put(&c, BUCKET, k, body).await;
        }
        put_multipart(&c, BUCKET, "obj/multipart", &parts).await;
    });
    want.insert("obj/multipart".into(), parts.concat());
    let all_blocks: Vec<String> = want
        .values()
        .filter(|b| b.len() > 3072)
        .flat_map(|b| block_hashes(b))
        .chain(parts.iter().flat_map(|p| block_hashes(p)))
        .collect();

    // A fourth node joins (layout version 2).
    let mut n4 = S3Node::new(3);
    n4.node.start();
    n4.node.ok(&["node", "connect", &nodes[0].node.addr_spec()]);
    let mut ids: Vec<String> = nodes.iter().map(|n| n.node.id.clone()).collect();
    ids.push(n4.node.id.clone());
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    nodes[0].node.wait_healthy(&id_refs);
    nodes[0].node.ok(&[
        "layout",
        "assign",
        "-z",
        "dc4",
        "-c",
        "1G",
        n4.node.prefix(),
    ]);
    nodes[0].node.ok(&["layout", "apply", "--version", "2"]);
    nodes.push(n4);
    for n in &nodes {
        s3_nodes::wait_layout(&n.node, 2);
    }
    rt.block_on(check_all(
        &nodes[3].client(&key),
        BUCKET,
        &want,
        "node 4 (joined)",
    ));

    // Node 1 leaves (version 3): it hands its data over, then stops.
    let first = nodes[0].node.prefix().to_string();
    nodes[1].node.ok(&["layout", "remove", &first]);
    nodes[1].node.ok(&["layout", "apply", "--version", "3"]);
    for n in &nodes[1..] {
        s3_nodes::wait_layout(&n.node, 3);
    }
    for table in ["object_v1", "version_v1", "block_ref_v1"] {
        wait_for(CATCH_UP, || {
            (nodes[0].table_items(table)? == 0).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "node 1 never handed its {table} entries over; its stats:\n{}\nlayout history:\n{}",
                cluster::stdout(&nodes[0].node.cli(&["stats"])),
                cluster::stdout(&nodes[1].node.cli(&["layout", "history"])),
            )
        });
    }
    for (i, n) in nodes.iter().enumerate().skip(1) {
        wait_for(CATCH_UP, || {
            all_blocks.iter().all(|h| n.stores_block(h)).then_some(())
        })
        .unwrap_or_else(|| panic!("node {} never got every block", i + 1));
    }
    nodes[0].node.stop();
    rt.block_on(async {
        for (i, n) in nodes.iter().enumerate().skip(1) {
            let via = format!("node {} after node 1 left", i + 1);
            check_all(&n.client(&key), BUCKET, &want, &via).await;
        }
    });

    // One more node down: the two others still serve everything.
    nodes[1].node.stop();
    rt.block_on(async {
        for (i, n) in nodes.iter().enumerate().skip(2) {
            let via = format!("node {} with node 2 down", i + 1);
            check_all(&n.client(&key), BUCKET, &want, &via).await;
        }
    });
}
