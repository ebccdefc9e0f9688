//! `garage worker …`, `garage stats` and `garage repair …`: background work and maintenance.

use clap::Subcommand;

use crate::admin::{AdminResponse, AdminRpc, NodeStats};
use crate::util::background::WorkerStatus;
use crate::util::time::msec_to_rfc3339;

use super::table::format_table;

/// `garage worker …`
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// List the background workers of the node and their state
    List,
}

/// `garage repair …` operations.
#[derive(Debug, Subcommand)]
pub enum RepairWhat {
    /// Run a full anti-entropy round of every metadata table now
    Tables,
    /// Check every referenced block and every block on disk: fetch missing ones, delete
    /// unreferenced ones past their delay
    Blocks,
    /// Recompute this node's bucket counters (objects, bytes, unfinished uploads) from its
    /// local object table
    Counters,
    /// Re-read and verify every stored block, slowly (start, pause, resume, cancel)
    Scrub {
        /// start, pause, resume or cancel
        command: String,
    },
    /// Apply the buckets' lifecycle rules now, to every bucket (expire objects, abort uploads)
    Lifecycle {
        /// Evaluate the rules as if the clock were this much later (e.g. 30d), to try rules
        #[arg(long, default_value = "0s", value_parser = super::bucket::duration_arg)]
        time_offset: std::time::Duration,
    },
}

/// Prints the answer of a worker, stats or repair command.
pub fn print(resp: AdminResponse) -> anyhow::Result<()> {
    match resp {
        AdminResponse::Workers(w) => print!("{}", format_workers(&w)),
        AdminResponse::Stats(s) => print!("{}", format_stats(&s)),
        AdminResponse::Done(t) => println!("{}", t),
        other => anyhow::bail!("unexpected answer: {:?}", other),
    }
    Ok(())
}

/// The request of a repair operation.
pub fn repair_request(what: &RepairWhat) -> AdminRpc {
    match what {
        RepairWhat::Tables => AdminRpc::RepairTables,
        RepairWhat::Blocks => AdminRpc::RepairBlocks,
        RepairWhat::Counters => AdminRpc::RepairCounters,
        RepairWhat::Scrub { command } => AdminRpc::Scrub {
            command: command.clone(),
        },
        RepairWhat::Lifecycle { time_offset } => AdminRpc::RepairLifecycle {
            time_offset_secs: time_offset.as_secs(),
        },
    }
}

fn format_workers(workers: &[WorkerStatus]) -> String {
    let mut rows = vec![vec![
        "Name".to_string(),
        "State".into(),
        "Queue".into(),
        "Errors".into(),
        "Progress / last error".into(),
    ]];
    for w in workers {
        let detail = match (&w.progress, &w.last_error) {
            (Some(p), _) => p.clone(),
            (None, Some((t, e))) if w.consecutive_errors > 0 => {
                format!("{} ({})", e, msec_to_rfc3339(*t))
            }
            _ => String::new(),
        };
        rows.push(vec![
            w.name.clone(),
            w.state.to_string(),
            w.queue_length.map(|q| q.to_string()).unwrap_or_default(),
            if w.errors > 0 {
                format!("{} ({} consecutive)", w.errors, w.consecutive_errors)
            } else {
                String::new()
            },
            detail,
        ]);
    }
    format_table(&rows)
}

fn format_stats(s: &NodeStats) -> String {
    let mut out = format!(
        "Node {} ({}), cluster layout version {}\n\n",
        s.node.short(),
        s.hostname,
        s.layout_version
    );
    if s.tables.is_empty() {
        out.push_str("No metadata tables on this node yet.\n");
    } else {
        out.push_str(&format_tables(s));
    }
    let b = &s.blocks;
    out.push_str(&format!(
        "\nBlocks:\n  Referenced blocks: {}\n  Reference count entries: {}\n  Resync queue length: {}\n  Blocks with resync errors: {}\n",
        b.referenced, b.rc_entries, b.resync_queue, b.resync_errors
    ));
    out
}

fn format_tables(s: &NodeStats) -> String {
    let mut rows = vec![vec![
        "Table".to_string(),
        "Items".into(),
        "Merkle todo".into(),
        "GC todo".into(),
        "Insert queue".into(),
    ]];
    for t in &s.tables {
        rows.push(vec![
            t.table.clone(),
            t.items.to_string(),
            t.merkle_todo.to_string(),
            t.gc_todo.to_string(),
            t.insert_queue.to_string(),
        ]);
    }
    format_table(&rows)
}
