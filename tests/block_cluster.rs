//! The block store on three real daemons (rf 3, one zone each), driven through S3 and the CLI,
//! looking at the block files on disk:
//! - blocks written while a node is down reach it after it restarts, with no operator action
//!   (anti-entropy brings the block references, the resync worker fetches the blocks);
//! - recovery scenario 1 of the docs: a node's whole `data_dir` is deleted, the node restarts on
//!   an empty directory and `garage repair --yes blocks` brings every block back; a data
//!   directory that exists without its marker is refused at start;
//! - bit flips: a read through the damaged node returns correct data (from another replica) and
//!   the damaged copy is moved aside and fetched again; `garage repair --yes scrub start` finds
//!   and repairs damage that no read has touched;
//! - a layout change (a fourth node joins): each block ends up on exactly the nodes of its
//!   partition's new replica set, fetched by the new node and offloaded then deleted by the
//!   former holders.

#[path = "common/blocks.rs"]
mod blocks;
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/raw_s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::time::Duration;

use blocks::*;
use common::{wait_exit, wait_for};
use garage::util::ids::Hash;

/// Bound on every wait for replication between nodes (anti-entropy, a 10 s check delay,
/// exponential backoff of a first failure).
const REPLICATE: Duration = Duration::from_secs(150);
const T: Duration = Duration::from_secs(60);

/// Test objects: a random one (raw blocks) and a text one (compressed blocks).
fn objects() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("random", random_data(3 * BLOCK_SIZE + 777)),
        ("text", text_data(2 * BLOCK_SIZE + 99, 11)),
    ]
}

fn all_hashes(objs: &[(&str, Vec<u8>)]) -> Vec<Hash> {
    objs.iter().flat_map(|(_, d)| block_hashes(d)).collect()
}

/// Waits until `data_dir` holds a valid copy of every block.
fn wait_all_blocks(data_dir: &Path, hashes: &[Hash], what: &str, log: impl Fn() -> String) {
    let ok = wait_for(REPLICATE, || {
        hashes
            .iter()
            .all(|h| has_valid_block(data_dir, h))
            .then_some(())
    });
    if ok.is_none() {
        let missing: Vec<_> = hashes
            .iter()
            .filter(|h| !has_valid_block(data_dir, h))
            .map(|h| h.to_hex())
            .collect();
        panic!(
            "{what}: {} of {} blocks never arrived: {missing:?}\nlog:\n{}",
            missing.len(),
            hashes.len(),
            log()
        );
    }
}

#[test]
fn blocks_written_while_a_node_is_down_reach_it_when_it_returns() {
    let mut c = Cluster3::start("");
    c.nodes[2].stop();
    let s3 = c.s3(0);
    let objs = objects();
    for (k, d) in &objs {
        s3.put_ok(BUCKET, k, d, T);
    }
    let hashes = all_hashes(&objs);
    // With one node down, the write quorum (2 of 3) is exactly the two live nodes.
    for i in 0..2 {
        for h in &hashes {
            assert!(has_valid_block(&c.data_dir(i), h), "node {i} lacks {h:?}");
        }
    }
    for h in &hashes {
        assert!(block_file(&c.data_dir(2), h).is_none(), "node 3 was down");
    }

    c.nodes[2].start();
    let n3 = &c.nodes[2];
    wait_all_blocks(&c.data_dir(2), &hashes, "node 3 after restart", || {
        n3.dir.log()
    });
    for h in &hashes {
        assert_eq!(refcount(&n3.dir, h), Some(1), "refcount of {h:?} on node 3");
    }
    let errors = n3.ok(&["block", "list-errors"]);
    assert_eq!(
        errors.lines().count(),
        1,
        "no resync errors left:\n{errors}"
    );
    let s3 = c.s3(2);
    for (k, d) in &objs {
        assert_eq!(&s3.get_ok(BUCKET, k, T), d, "GET {k} through node 3");
    }
}

#[test]
fn lost_data_dir_is_refilled_by_repair_blocks() {
    let mut c = Cluster3::start("");
    let s3 = c.s3(0);
    let objs = objects();
    for (k, d) in &objs {
        s3.put_ok(BUCKET, k, d, T);
    }
    let hashes = all_hashes(&objs);
    for i in 0..3 {
        let n = &c.nodes[i];
        wait_all_blocks(&c.data_dir(i), &hashes, "initial replication", || {
            n.dir.log()
        });
    }

    // The disk of node 2 is lost: its whole data directory goes.
    c.nodes[1].stop();
    let data = c.data_dir(1);
    std::fs::remove_dir_all(&data).expect("remove data_dir");
    c.nodes[1].start();
    let n2 = &c.nodes[1];
    assert!(
        n2.dir.log().contains("data directory is missing"),
        "start on a missing data_dir is logged; log:\n{}",
        n2.dir.log()
    );
    assert!(data.join("garage-marker").is_file(), "new marker written");
    assert_eq!(count_block_files(&data), 0, "nothing fetched yet");
    let out = n2.ok(&["repair", "--yes", "blocks"]);
    assert!(out.contains("queued for a resync check"), "{out}");
    wait_all_blocks(&data, &hashes, "node 2 after repair blocks", || {
        n2.dir.log()
    });
    assert_eq!(count_block_files(&data), hashes.len());
    let s3 = c.s3(1);
    for (k, d) in &objs {
        assert_eq!(&s3.get_ok(BUCKET, k, T), d, "GET {k} through node 2");
    }

    // A data directory that exists but lost its marker (e.g. an unmounted disk) is refused.
    c.nodes[1].stop();
    let marker = data.join("garage-marker");
    let saved = std::fs::read(&marker).expect("read marker");
    std::fs::remove_file(&marker).expect("remove marker");
    let mut child = c.nodes[1].dir.spawn_server();
    let status = wait_exit(&mut child, T).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("server started without its marker")
    });
    assert_eq!(status.code(), Some(1), "refused with exit code 1");
    let log = c.nodes[1].dir.log();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: ") && last.contains("garage-marker"),
        "error names the marker: {last}"
    );
    assert!(
        block_file(&data, &hashes[0]).is_some(),
        "nothing deleted by the refused start"
    );
    // With the marker back, the node starts again with its blocks.
    std::fs::write(&marker, saved).expect("restore marker");
    c.nodes[1].start();
    let s3 = c.s3(1);
    for (k, d) in &objs {
        assert_eq!(&s3.get_ok(BUCKET, k, T), d, "GET {k} after marker restored");
    }
}

/// Waits until a damaged block of `data_dir` is valid again with its damaged copy moved aside.
fn wait_repaired(data_dir: &Path, h: &Hash, what: &str, log: impl Fn() -> String) {
    wait_for(REPLICATE, || {
        (has_valid_block(data_dir, h) && !corrupted_files(data_dir, h).is_empty()).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{what}: block {h:?} not repaired (valid: {}, moved aside: {:?})\nlog:\n{}",
            has_valid_block(data_dir, h),
            corrupted_files(data_dir, h),
            log()
        )
    });
}

#[test]
fn bit_flips_are_detected_served_around_and_repaired() {
    let c = Cluster3::start("scrub_pause_msec = 20");
    let s3 = c.s3(0);
    let objs = objects();
    for (k, d) in &objs {
        s3.put_ok(BUCKET, k, d, T);
    }
    let (random, text) = (&objs[0].1, &objs[1].1);
    let (hr, ht) = (block_hashes(random), block_hashes(text));
    let hashes = all_hashes(&objs);
    for i in 0..3 {
        let n = &c.nodes[i];
        wait_all_blocks(&c.data_dir(i), &hashes, "initial replication", || {
            n.dir.log()
        });
    }

    // Node 1: damage a raw block and a compressed block, then read through node 1.
    let d1 = c.data_dir(0);
    let damaged = [hr[1], ht[0]];
    for h in &damaged {
        let (path, _) = block_file(&d1, h).expect("stored");
        flip_bit(&path);
        assert!(!has_valid_block(&d1, h));
    }
    assert_eq!(block_file(&d1, &ht[0]).map(|f| f.1), Some(true), "a .zst");
    assert_eq!(
        block_file(&d1, &hr[1]).map(|f| f.1),
        Some(false),
        "a raw one"
    );
    for (k, d) in &objs {
        let r = s3.get(BUCKET, k).expect("get");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.body == *d,
            "GET {k} through the damaged node returned wrong data"
        );
    }
    let n1 = &c.nodes[0];
    for h in &damaged {
        wait_repaired(&d1, h, "after a read on node 1", || n1.dir.log());
    }

    // Node 2: damage blocks that nobody reads; the scrub finds and repairs them.
    let d2 = c.data_dir(1);
    let damaged = [hr[2], ht[1]];
    for h in &damaged {
        let (path, _) = block_file(&d2, h).expect("stored");
        flip_bit(&path);
    }
    let n2 = &c.nodes[1];
    let out = n2.ok(&["repair", "--yes", "scrub", "start"]);
    assert!(out.contains("Scrub: start."), "{out}");
    for h in &damaged {
        wait_repaired(&d2, h, "after a scrub on node 2", || n2.dir.log());
    }
    wait_for(T, || {
        n2.dir
            .log()
            .contains(&format!(
                "scrub finished: {} blocks checked, 2 corrupted",
                hashes.len()
            ))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("scrub never reported; log:\n{}", n2.dir.log()));
    for n in &c.nodes {
        let errors = n.ok(&["block", "list-errors"]);
        assert_eq!(errors.lines().count(), 1, "no resync errors:\n{errors}");
    }
    // Every copy everywhere is valid.
    for i in 0..3 {
        for h in &hashes {
            assert!(has_valid_block(&c.data_dir(i), h), "node {i}, {h:?}");
        }
    }
}

/// Ignored until the object table's `updated` hook stops treating a local removal as a deletion:
/// when a node offloads an object entry (its partition moved), the hook sees `new = None` and
/// queues `Version::deleted` for every version with blocks, so the versions are deleted on every
/// replica and their blocks freed cluster-wide (found by this test; see notes/audit-2-6.md).
#[test]
#[ignore = "data loss on offload: src/model/object.rs updated() cascades a local removal"]
fn blocks_follow_their_partitions_after_a_layout_change() {
    // A short deletion delay: a former holder deletes a block soon after it has handed it over.
    const EXTRA: &str = "block_gc_delay_secs = 2";
    let c = Cluster3::start(EXTRA);
    let s3 = c.s3(0);
    let objs = vec![("many-blocks", random_data(24 * BLOCK_SIZE + 5))];
    for (k, d) in &objs {
        s3.put_ok(BUCKET, k, d, T);
    }
    let hashes = all_hashes(&objs);
    for (i, n) in c.nodes.iter().enumerate() {
        wait_all_blocks(&c.data_dir(i), &hashes, "initial replication", || {
            n.dir.log()
        });
        for h in &hashes {
            wait_for(T, || (refcount(&n.dir, h) == Some(1)).then_some(()))
                .unwrap_or_else(|| panic!("{h:?} never referenced on node {}", i + 1));
        }
    }

    // A fourth node in its own zone: with rf 3, every node now holds 3/4 of the partitions.
    let mut n4 = cluster::Node::new(3);
    n4.dir
        .append_config(&format!("block_size = {BLOCK_SIZE}\n{EXTRA}"));
    n4.start();
    let n1 = &c.nodes[0];
    n4.ok(&["node", "connect", &n1.addr_spec()]);
    let mut ids: Vec<&str> = c.nodes.iter().map(|n| n.id.as_str()).collect();
    ids.push(&n4.id);
    n1.wait_healthy(&ids);
    n1.ok(&["layout", "assign", "-z", "dc4", "-c", "1G", n4.prefix()]);
    n1.ok(&["layout", "apply", "--version", "2"]);
    let layout = wait_for(cluster::CONVERGE, || {
        let j = n1.try_show_json()?;
        (j["current"]["version"] == 2).then_some(j)
    })
    .expect("layout version 2");
    let partitions = layout["current"]["partitions"]
        .as_array()
        .expect("partitions")
        .clone();
    let holds = |h: &Hash, id: &str| {
        partitions[h.0[0] as usize]
            .as_array()
            .is_some_and(|p| p.iter().any(|n| n == id))
    };
    let dirs: Vec<(String, PathBuf)> = c
        .nodes
        .iter()
        .chain(std::iter::once(&n4))
        .map(|n| (n.id.clone(), n.dir.path().join("data")))
        .collect();
    // The test means something: node 4 gains blocks and the former holders lose some.
    let moves = |(id, dir): &(String, PathBuf)| {
        hashes
            .iter()
            .filter(|h| holds(h, id) != has_valid_block(dir, h))
            .count()
    };
    assert!(moves(&dirs[3]) > 0, "node 4 gets no block");
    assert!(
        dirs[..3].iter().map(moves).sum::<usize>() > 0,
        "no former holder loses a block"
    );
    let misplaced = || -> Vec<String> {
        let mut bad = vec![];
        for h in &hashes {
            for (id, dir) in &dirs {
                let (should, has) = (holds(h, id), block_file(dir, h).is_some());
                if should != has || (has && !has_valid_block(dir, h)) {
                    bad.push(format!(
                        "{}: on {} = {has}, should be {should}",
                        h.to_hex(),
                        &id[..16]
                    ));
                }
            }
        }
        bad
    };
    let mut last = vec![];
    let placed = wait_for(REPLICATE, || {
        last = misplaced();
        last.is_empty().then_some(())
    });
    if placed.is_none() {
        let h = hashes[0].to_hex();
        for n in c.nodes.iter().chain(std::iter::once(&n4)) {
            eprintln!(
                "node {}: {} block files; garage block info {h}:\n{}",
                n.short(),
                count_block_files(&n.dir.path().join("data")),
                cluster::stdout(&n.cli(&["block", "info", &h])),
            );
        }
    }
    assert!(
        placed.is_some(),
        "{} misplaced blocks, e.g. {:?}",
        last.len(),
        &last[..last.len().min(5)],
    );
    for i in 0..3 {
        for (k, d) in &objs {
            assert_eq!(
                &c.s3(i).get_ok(BUCKET, k, T),
                d,
                "GET {k} through node {}",
                i + 1
            );
        }
    }
}
