//! The block store on one real daemon (`garage server --single-node`, rf 1), driven through S3
//! and the CLI, looking at the block files on disk:
//! - compressible blocks are stored as `<hash>.zst`, smaller than the data; random ones raw;
//!   `compression_level = "none"` stores everything raw and still reads the old `.zst` blocks;
//! - a block whose reference count drops to 0 is deleted only after `block_gc_delay_secs`, and a
//!   block referenced again within the delay is kept;
//! - the block CLI: `block info`, `block list-errors`, `block retry-now`, `block purge`,
//!   `repair blocks`, `repair scrub start|pause|resume|cancel`, `stats`, `worker list`.

#[path = "common/blocks.rs"]
mod blocks;
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/raw_s3.rs"]
mod s3;

use std::time::{Duration, Instant};

use blocks::*;
use common::wait_for;
use garage::util::ids::Hash;

const T: Duration = Duration::from_secs(60);
const BUCKET: &str = "default";

/// Puts `line` first in the node's configuration file (before the `[s3_api]` table).
fn prepend_config(n: &SingleNode, line: &str) {
    let text = std::fs::read_to_string(&n.dir.config).expect("read config");
    std::fs::write(&n.dir.config, format!("{line}\n{text}")).expect("write config");
}

#[test]
fn compressible_blocks_are_stored_compressed_and_random_blocks_raw() {
    let mut n = SingleNode::new("");
    n.start();
    let s3 = n.s3();
    let text = text_data(3 * BLOCK_SIZE + 1000, 1);
    let random = random_data(2 * BLOCK_SIZE + 500);
    s3.put_ok(BUCKET, "text", &text, T);
    s3.put_ok(BUCKET, "random", &random, T);
    let data = n.data_dir();

    for chunk in text.chunks(BLOCK_SIZE) {
        let h = garage::util::ids::blake2sum(chunk);
        let (path, compressed) = block_file(&data, &h).expect("text block stored");
        assert!(compressed, "text block stored raw: {}", path.display());
        assert!(path.to_string_lossy().ends_with(".zst"));
        let stored = std::fs::metadata(&path).expect("stat").len() as usize;
        assert!(
            stored < chunk.len() / 2,
            "compressed block not smaller: {stored} for {} bytes",
            chunk.len()
        );
        assert!(file_is_valid(&path, true, &h));
    }
    for chunk in random.chunks(BLOCK_SIZE) {
        let h = garage::util::ids::blake2sum(chunk);
        let (path, compressed) = block_file(&data, &h).expect("random block stored");
        assert!(!compressed, "random block compressed: {}", path.display());
        let stored = std::fs::metadata(&path).expect("stat").len() as usize;
        assert_eq!(stored, chunk.len(), "raw block is the data itself");
        assert_eq!(std::fs::read(&path).expect("read"), chunk);
    }
    assert_eq!(s3.get_ok(BUCKET, "text", T), text);
    assert_eq!(s3.get_ok(BUCKET, "random", T), random);

    // Without compression, new text blocks are raw; the old `.zst` blocks are still read.
    n.stop();
    prepend_config(&n, "compression_level = \"none\"");
    n.start();
    let s3 = n.s3();
    let text2 = text_data(2 * BLOCK_SIZE, 2);
    s3.put_ok(BUCKET, "text2", &text2, T);
    for chunk in text2.chunks(BLOCK_SIZE) {
        let h = garage::util::ids::blake2sum(chunk);
        let (path, compressed) = block_file(&data, &h).expect("text2 block stored");
        assert!(!compressed, "compression_level = none: {}", path.display());
        assert_eq!(std::fs::read(&path).expect("read"), chunk);
    }
    assert_eq!(s3.get_ok(BUCKET, "text", T), text);
    assert_eq!(s3.get_ok(BUCKET, "text2", T), text2);
}

/// Waits until every block of `hashes` has reference count `rc` on the node.
fn wait_refcount(n: &SingleNode, hashes: &[Hash], rc: u64) {
    for h in hashes {
        wait_for(T, || (refcount(&n.dir, h) == Some(rc)).then_some(()))
            .unwrap_or_else(|| panic!("block {h:?} never at refcount {rc}"));
    }
}

#[test]
fn unreferenced_blocks_are_deleted_only_after_the_delay() {
    const DELAY: Duration = Duration::from_secs(6);
    let mut n = SingleNode::new(&format!("block_gc_delay_secs = {}", DELAY.as_secs()));
    n.start();
    let s3 = n.s3();
    let data = n.data_dir();

    // An object deleted: its blocks stay for the delay, then go.
    let a = random_data(BLOCK_SIZE + 100);
    let ha = block_hashes(&a);
    assert_eq!(ha.len(), 2);
    s3.put_ok(BUCKET, "a", &a, T);
    wait_refcount(&n, &ha, 1);
    assert!(ha.iter().all(|h| has_valid_block(&data, h)));
    let deleted_at = Instant::now();
    let r = s3.delete(BUCKET, "a").expect("delete");
    assert_eq!(r.status, 204, "{}", r.text());
    wait_refcount(&n, &ha, 0);
    let info = n.cli(&["block", "info", &ha[0].to_hex()]);
    assert!(info.contains("Deletable after: "), "{info}");
    // Still there well inside the delay.
    std::thread::sleep(DELAY / 2);
    for h in &ha {
        assert!(
            has_valid_block(&data, h),
            "block {h:?} deleted {:?} after its last reference went, before the {DELAY:?} delay",
            deleted_at.elapsed()
        );
    }
    wait_for(DELAY + T, || {
        ha.iter()
            .all(|h| block_file(&data, h).is_none())
            .then_some(())
    })
    .unwrap_or_else(|| panic!("unreferenced blocks never deleted; log:\n{}", n.dir.log()));
    assert!(
        deleted_at.elapsed() >= DELAY,
        "deleted after {:?}, before the delay",
        deleted_at.elapsed()
    );
    let info = n.cli(&["block", "info", &ha[0].to_hex()]);
    assert!(info.contains("Stored here: no"), "{info}");

    // An object deleted then uploaded again inside the delay: its block is kept.
    let b = text_data(BLOCK_SIZE / 2, 7);
    let hb = block_hashes(&b);
    assert_eq!(hb.len(), 1);
    s3.put_ok(BUCKET, "b", &b, T);
    wait_refcount(&n, &hb, 1);
    let deleted_at = Instant::now();
    assert_eq!(s3.delete(BUCKET, "b").expect("delete").status, 204);
    wait_refcount(&n, &hb, 0);
    s3.put_ok(BUCKET, "b-again", &b, T);
    wait_refcount(&n, &hb, 1);
    assert!(
        deleted_at.elapsed() < DELAY,
        "re-reference came too late to test anything"
    );
    // Past the delay and the deletion check that was scheduled for it.
    std::thread::sleep((DELAY + Duration::from_secs(8)).saturating_sub(deleted_at.elapsed()));
    assert!(
        has_valid_block(&data, &hb[0]),
        "a block referenced again within the delay was deleted; log:\n{}",
        n.dir.log()
    );
    assert_eq!(refcount(&n.dir, &hb[0]), Some(1));
    assert_eq!(s3.get_ok(BUCKET, "b-again", T), b);
    let r = s3.get(BUCKET, "b").expect("get");
    assert_eq!(r.status, 404, "deleted object");
}

/// The row of a worker in `garage worker list`.
fn worker_row(n: &SingleNode, name: &str) -> String {
    let out = n.cli(&["worker", "list"]);
    out.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no worker {name:?} in:\n{out}"))
        .to_string()
}

fn wait_worker(n: &SingleNode, name: &str, want: &str) {
    wait_for(T, || worker_row(n, name).contains(want).then_some(()))
        .unwrap_or_else(|| panic!("worker {name} never {want:?}: {}", worker_row(n, name)));
}

#[test]
fn block_cli_commands_against_a_daemon() {
    let mut n = SingleNode::new("block_gc_delay_secs = 2\nscrub_pause_msec = 1500");
    n.start();
    let s3 = n.s3();
    let data = n.data_dir();
    let lost = random_data(3 * BLOCK_SIZE);
    let keep = text_data(6 * BLOCK_SIZE, 3);
    let hl = block_hashes(&lost);
    s3.put_ok(BUCKET, "lost", &lost, T);
    s3.put_ok(BUCKET, "keep", &keep, T);
    wait_refcount(&n, &hl, 1);

    // block info: count, file, replicas, the version with its object key.
    let info = n.cli(&["block", "info", &hl[0].to_hex()]);
    assert!(
        info.contains(&format!("Block hash: {}", hl[0].to_hex())),
        "{info}"
    );
    assert!(info.contains("Reference count: 1"), "{info}");
    let (path, _) = block_file(&data, &hl[0]).expect("stored");
    assert!(
        info.contains(&format!("Stored here: {} (plain,", path.display())),
        "{info}"
    );
    let id = n.cli(&["node", "id", "-q"]);
    assert!(
        info.contains(&format!("Replicas: {}", &id.trim()[..16])),
        "{info}"
    );
    let version_row = info
        .lines()
        .find(|l| l.trim_end().ends_with("lost"))
        .unwrap_or_else(|| panic!("no version of `lost` in:\n{info}"));
    assert!(version_row.contains("false"), "not deleted: {version_row}");

    let out = n.cli(&["worker", "list"]);
    assert!(out.contains("block resync"), "{out}");
    assert!(out.contains("block scrub"), "{out}");
    let stats = n.cli(&["stats"]);
    assert!(stats.contains("block_ref"), "{stats}");
    assert!(stats.contains("Referenced blocks: 9"), "{stats}");
    assert!(stats.contains("Resync queue length: "), "{stats}");
    assert!(stats.contains("Blocks with resync errors: 0"), "{stats}");
    // The tables: their workers, their queues in `stats`, and `repair tables`.
    for worker in ["Merkle", "sync", "GC", "queue"] {
        let name = format!("object_v1 {worker}");
        assert!(out.contains(&name), "{name} in:\n{out}");
    }
    let header = stats
        .lines()
        .find(|l| l.starts_with("Table"))
        .unwrap_or_else(|| panic!("no table header in:\n{stats}"));
    for column in ["Items", "Merkle todo", "GC todo", "Insert queue"] {
        assert!(header.contains(column), "{column} in {header:?}");
    }
    let out = n.cli(&["repair", "--yes", "tables"]);
    assert!(out.contains("Anti-entropy started for"), "{out}");
    let e = cli_fails(&n.dir, &["repair", "tables"]);
    assert!(e.contains("--yes"), "{e}");
    let errors = n.cli(&["block", "list-errors"]);
    assert!(!errors.contains(&hl[1].to_hex()), "{errors}");

    // Bad input is refused with one error line.
    let e = cli_fails(&n.dir, &["block", "info", "nothex"]);
    assert!(e.contains("nothex"), "{e}");
    let e = cli_fails(&n.dir, &["block", "retry-now"]);
    assert!(e.contains("--all"), "{e}");
    let e = cli_fails(&n.dir, &["block", "purge", &hl[1].to_hex()]);
    assert!(e.contains("--yes"), "{e}");
    let e = cli_fails(&n.dir, &["repair", "--yes", "scrub", "sideways"]);
    assert!(e.contains("sideways"), "{e}");

    // A block lost on the only node: `repair blocks` finds it missing and cannot fetch it.
    let (lost_path, _) = block_file(&data, &hl[1]).expect("stored");
    std::fs::remove_file(&lost_path).expect("remove block file");
    let out = n.cli(&["repair", "--yes", "blocks"]);
    assert!(out.contains("queued for a resync check"), "{out}");
    let hex = hl[1].to_hex();
    wait_for(T, || {
        n.cli(&["block", "list-errors"])
            .contains(&hex)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("lost block never listed; log:\n{}", n.dir.log()));
    let errors = n.cli(&["block", "list-errors"]);
    let row = errors.lines().find(|l| l.contains(&hex)).expect("row");
    // Hash, failure count, last try, next try (the check queued when the block was first
    // referenced may have failed too, hence at least one failure).
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.len(), 4, "{row}");
    let failures: u64 = cells[1].parse().expect("failure count");
    assert!(failures >= 1, "{row}");
    assert!(cells[3] > cells[2], "next try after last try: {row}");
    assert_eq!(errors.lines().count(), 2, "only the lost block:\n{errors}");
    let stats = n.cli(&["stats"]);
    assert!(stats.contains("Blocks with resync errors: 1"), "{stats}");

    let out = n.cli(&["block", "retry-now", &hex]);
    assert!(out.contains("1 block(s) queued"), "{out}");
    wait_for(T, || {
        n.cli(&["block", "list-errors"])
            .contains(&hex)
            .then_some(())
    })
    .expect("retried block fails again");
    let out = n.cli(&["block", "retry-now", "--all"]);
    assert!(out.contains("block(s) queued"), "{out}");

    // Purge: the object using the block is deleted, its blocks become unreferenced, and once
    // their delay is past they are deleted and the error entry goes.
    let out = n.cli(&["block", "purge", "--yes", &hex]);
    assert!(
        out.contains("Purged 1 block(s): 1 object version(s)"),
        "{out}"
    );
    assert_eq!(s3.get(BUCKET, "lost").expect("get").status, 404);
    wait_refcount(&n, &hl, 0);
    wait_for(T, || {
        hl.iter()
            .all(|h| block_file(&data, h).is_none())
            .then_some(())
    })
    .expect("purged object's blocks deleted after the delay");
    wait_for(T, || {
        (!n.cli(&["block", "list-errors"]).contains(&hex)).then_some(())
    })
    .unwrap_or_else(|| panic!("purged block still listed as an error"));
    assert_eq!(s3.get_ok(BUCKET, "keep", T), keep);

    // Scrub control: 6 blocks at 1.5 s each leave time to pause, resume and cancel.
    let out = n.cli(&["repair", "--yes", "scrub", "start"]);
    assert!(out.contains("Scrub: start."), "{out}");
    wait_worker(&n, "block scrub", "busy");
    wait_worker(&n, "block scrub", "blocks checked");
    n.cli(&["repair", "--yes", "scrub", "pause"]);
    wait_worker(&n, "block scrub", "paused");
    n.cli(&["repair", "--yes", "scrub", "resume"]);
    wait_worker(&n, "block scrub", "busy");
    n.cli(&["repair", "--yes", "scrub", "cancel"]);
    wait_worker(&n, "block scrub", "idle");
    // A complete scrub of healthy blocks changes nothing.
    n.cli(&["repair", "--yes", "scrub", "start"]);
    wait_for(T, || {
        n.dir
            .log()
            .contains("scrub finished: 6 blocks checked, 0 corrupted")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("scrub never finished; log:\n{}", n.dir.log()));
    assert_eq!(s3.get_ok(BUCKET, "keep", T), keep);
}
