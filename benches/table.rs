//! Throughput of the replicated table engine on in-process clusters of real nodes (loopback TCP,
//! sled): inserts and gets per second, sequential and with 16 concurrent tasks, on one node
//! (rf 1: every operation is a local call) and on three nodes (rf 3: every operation waits for a
//! quorum of 2, i.e. at least one network round trip). Uses the `test_kv_copy` table of the test
//! harness (no cascade hook), driven from the first node.
//!
//! Run: `cargo bench --bench table` (set `TABLE_BENCH_OPS` to change the number of operations).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::inproc::*;
use garage::table::typed::Table;

const CONCURRENCY: usize = 16;

struct Row {
    cluster: &'static str,
    op: &'static str,
    mode: String,
    ops: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Row {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

fn entry(i: usize) -> KvEntry2 {
    KvEntry2(KvEntry::new(
        &format!("bench-{}", i % 500),
        &format!("k{i:08}"),
        Some("a short value of about forty bytes......"),
    ))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Runs `ops` operations `op(i)` with `conc` tasks; returns the elapsed time and latencies.
async fn run<F, Fut>(ops: usize, conc: usize, op: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = (0..conc)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = vec![];
                for i in (t..ops).step_by(conc) {
                    let s = Instant::now();
                    op(i).await;
                    lat.push(s.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.expect("bench task"));
    }
    let elapsed = start.elapsed();
    all.sort();
    (elapsed, all)
}

async fn bench_cluster(name: &'static str, n: usize, rf: usize, ops: usize) -> Vec<Row> {
    let nodes = start_cluster(n, rf, "").await;
    let table: Arc<Table<KvSchema2>> = nodes[0].kv2.clone();
    let mut rows = vec![];
    let mut offset = 0;
    for (mode, conc) in [("sequential", 1), ("16 tasks", CONCURRENCY)] {
        let base = offset;
        let t = table.clone();
        let (elapsed, lat) = run(ops, conc, move |i| {
            let t = t.clone();
            async move {
                t.insert(&entry(base + i)).await.expect("insert");
            }
        })
        .await;
        rows.push(Row {
            cluster: name,
            op: "insert",
            mode: mode.into(),
            ops,
            elapsed,
            p50: percentile(&lat, 0.5),
            p99: percentile(&lat, 0.99),
        });
        let t = table.clone();
        let (elapsed, lat) = run(ops, conc, move |i| {
            let t = t.clone();
            async move {
                let e = entry(base + i);
                let got = t.get(&e.0.pk, &e.0.sk).await.expect("get");
                assert!(got.is_some(), "entry {} was written", base + i);
            }
        })
        .await;
        rows.push(Row {
            cluster: name,
            op: "get",
            mode: mode.into(),
            ops,
            elapsed,
            p50: percentile(&lat, 0.5),
            p99: percentile(&lat, 0.99),
        });
        offset += ops;
    }
    shutdown_all(&nodes).await;
    rows
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let ops: usize = std::env::var("TABLE_BENCH_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rows = rt.block_on(async {
        let mut rows = bench_cluster("1 node, rf 1", 1, 1, ops).await;
        rows.extend(bench_cluster("3 nodes, rf 3", 3, 3, ops).await);
        rows
    });

    println!();
    println!(
        "{:<14} {:<7} {:<11} {:>6} {:>10} {:>10} {:>10}",
        "cluster", "op", "mode", "ops", "ops/s", "p50 (µs)", "p99 (µs)"
    );
    for r in &rows {
        println!(
            "{:<14} {:<7} {:<11} {:>6} {:>10.0} {:>10} {:>10}",
            r.cluster,
            r.op,
            r.mode,
            r.ops,
            r.rate(),
            r.p50.as_micros(),
            r.p99.as_micros()
        );
    }
    println!();
    println!("3-node (rf 3) vs 1-node (rf 1): throughput ratio and p50 latency ratio");
    for r3 in rows.iter().filter(|r| r.cluster.starts_with('3')) {
        if let Some(r1) = rows
            .iter()
            .find(|r| r.cluster.starts_with('1') && r.op == r3.op && r.mode == r3.mode)
        {
            println!(
                "  {:<7} {:<11} throughput x{:.2}   p50 latency x{:.2}",
                r3.op,
                r3.mode,
                r3.rate() / r1.rate(),
                r3.p50.as_secs_f64() / r1.p50.as_secs_f64().max(1e-9)
            );
        }
    }
}
