//! Crash durability of cascades through the insert queue. Every write to `test_kv` queues a copy
//! into `test_kv_copy` in the same local transaction (`KvSchema::updated`). A child process (this
//! test binary, re-run with `GARAGE_TABLE_CRASH_DIR` set) runs a one-node cluster with
//! `metadata_fsync = true` and writes entries in a loop, printing `DONE n q` once insert `n` is
//! acknowledged (`q`: copies still queued). The parent kills it with SIGKILL mid-stream (while
//! copies are still queued), restarts a node on the same directory and port (same key, same
//! layout), and checks that every acknowledged entry is there and that its copy eventually is too:
//! the queue worker drains what the crash left behind.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::inproc::*;
use garage::layout::NodeRole;

const DIR_ENV: &str = "GARAGE_TABLE_CRASH_DIR";
const PORT_ENV: &str = "GARAGE_TABLE_CRASH_PORT";
const CONFIG: &str = "metadata_fsync = true";
const TEST_NAME: &str = "sigkill_during_cascades_loses_no_queued_insert";

fn entry(n: u64) -> KvEntry {
    KvEntry::new(
        &format!("pk{}", n % 37),
        &format!("k{n:07}"),
        Some(&format!("v{n}")),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Child mode: one node, writes until killed.
fn child(dir: &str, port: u16) -> ! {
    runtime().block_on(async {
        let t = start_node_in(Path::new(dir), port, 1, CONFIG, true).await;
        stage_and_apply(&t, vec![(t.id(), Some(NodeRole::storage("z", 100)))]).await;
        for n in 0u64.. {
            t.kv.insert(&entry(n)).await.expect("insert");
            let queued = t.kv2.core.data.insert_queue.len().unwrap_or(0);
            println!("DONE {n} {queued}");
        }
    });
    unreachable!()
}

#[test]
fn sigkill_during_cascades_loses_no_queued_insert() {
    if let (Ok(dir), Ok(port)) = (std::env::var(DIR_ENV), std::env::var(PORT_ENV)) {
        child(&dir, port.parse().expect("port"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let mut proc = Command::new(std::env::current_exe().expect("test binary"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir.path())
        .env(PORT_ENV, port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = proc.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Kill once enough inserts were acknowledged while copies are still queued (or, failing
    // that, after many inserts).
    let mut last_done: Option<u64> = None;
    let mut queued_at_kill = 0;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let Some(rest) = line.strip_prefix("DONE ") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let n: u64 = it.next().and_then(|s| s.parse().ok()).expect("n");
        let q: usize = it.next().and_then(|s| s.parse().ok()).expect("q");
        last_done = Some(n);
        queued_at_kill = q;
        if (n >= 300 && q > 0) || n >= 3000 {
            break;
        }
    }
    common::signal(&proc, libc::SIGKILL);
    let _ = proc.wait();
    let last_done = last_done.expect("the child acknowledged inserts");

    runtime().block_on(async {
        // Same directory (node key, layout, database) and same port.
        let t = start_node_in(dir.path(), port, 1, CONFIG, false).await;
        let pending = t.kv2.core.data.insert_queue.len().expect("queue length");
        for n in 0..=last_done {
            let e = entry(n);
            assert_eq!(
                local_value(&t.kv, &e.pk, &e.sk),
                Some(e.value.get().clone()),
                "acknowledged insert {n} survived the crash"
            );
        }
        t.spawn_workers();
        let copy_of = |n: u64| {
            let e = entry(n);
            t.kv2
                .get_local(&format!("copy-{}", e.pk), &e.sk)
                .expect("local read")
                .is_some_and(|c| c.0.value.get() == e.value.get())
        };
        let mut missing = vec![];
        let ok = until(Duration::from_secs(60), || {
            missing = (0..=last_done).filter(|n| !copy_of(*n)).collect();
            missing.is_empty() && t.kv2.core.data.insert_queue.is_empty().unwrap_or(false)
        })
        .await;
        assert!(
            ok,
            "copies of {} acknowledged inserts never arrived, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        println!(
            "killed after insert {last_done} ({queued_at_kill} copies queued at the last report, \
             {pending} found in the queue at restart); every copy arrived"
        );
        t.node.shutdown().await.expect("shutdown");
    });
}
