//! Crash durability of the metadata engine: a child process commits a stream of transactions
//! (each writing a pair of keys in two trees), reporting on stdout which ones are durable
//! (flushed, or committed with fsync). The parent kills it with SIGKILL mid-stream, reopens the
//! database, and checks that every durable transaction is present and whole, and that no
//! transaction is partially applied.
//!
//! The child is this same test binary, re-run with `GARAGE_CRASH_CHILD` set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use garage::db::{self, OpenOptions, TxResult};

const CHILD_ENV: &str = "GARAGE_CRASH_CHILD";
const MODE_ENV: &str = "GARAGE_CRASH_FSYNC";

fn options(fsync: bool) -> OpenOptions {
    OpenOptions {
        engine: "sled".into(),
        fsync,
        sled_cache_capacity: 8 << 20,
        // No background flush: only explicit flushes (or fsync commits) make writes durable.
        sled_flush_every_ms: 0,
    }
}

/// Child mode: commit transactions forever, printing `DURABLE n` once transaction n is durable.
fn child(dir: &str, fsync: bool) -> ! {
    let db = db::open(std::path::Path::new(dir), &options(fsync)).expect("open");
    let a = db.open_tree("a").expect("tree a");
    let b = db.open_tree("b").expect("tree b");
    let value = vec![0x5au8; 200];
    for n in 0u64.. {
        let key = n.to_be_bytes();
        let r: TxResult<(), ()> = db.transaction(|tx| {
            tx.insert(&a, &key, &value)?;
            tx.insert(&b, &key, &value)?;
            Ok(())
        });
        r.expect("commit");
        if fsync {
            println!("DURABLE {n}");
        } else if n % 7 == 0 {
            db.flush().expect("flush");
            println!("DURABLE {n}");
        }
    }
    unreachable!()
}

fn run_crash(fsync: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let test_name = if fsync {
        "crash_with_fsync_commits"
    } else {
        "crash_with_explicit_flushes"
    };
    let mut child = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .env(MODE_ENV, if fsync { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut last_durable: Option<u64> = None;
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read line");
        if let Some(n) = line.strip_prefix("DURABLE ") {
            last_durable = Some(n.trim().parse().expect("number"));
            seen += 1;
            if seen == 300 {
                break;
            }
        }
    }
    // Kill in the middle of the stream (the child keeps committing until the signal lands).
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    let last_durable = last_durable.expect("child reported durable transactions");

    let db = db::open(dir.path(), &options(false)).expect("reopen after crash");
    let a = db.open_tree("a").expect("tree a");
    let b = db.open_tree("b").expect("tree b");
    for n in 0..=last_durable {
        let key = n.to_be_bytes();
        assert!(
            a.get(&key).expect("get").is_some(),
            "durable tx {n} lost from tree a"
        );
        assert!(
            b.get(&key).expect("get").is_some(),
            "durable tx {n} lost from tree b"
        );
    }
    // Atomicity: both trees hold exactly the same set of transactions.
    let keys = |t: &db::Tree| {
        t.iter()
            .expect("iter")
            .map(|r| r.expect("item").0)
            .collect::<Vec<_>>()
    };
    let (ka, kb) = (keys(&a), keys(&b));
    assert_eq!(ka, kb, "a transaction was partially applied");
    // Committed transactions form a prefix: no gaps.
    for (i, k) in ka.iter().enumerate() {
        assert_eq!(
            k.as_slice(),
            (i as u64).to_be_bytes(),
            "gap in committed transactions"
        );
    }
    println!(
        "fsync={fsync}: last durable tx {last_durable}, {} present after SIGKILL",
        ka.len()
    );
}

#[test]
fn crash_with_explicit_flushes() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir, std::env::var(MODE_ENV).as_deref() == Ok("1"));
    }
    run_crash(false);
}

#[test]
fn crash_with_fsync_commits() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir, std::env::var(MODE_ENV).as_deref() == Ok("1"));
    }
    run_crash(true);
}
