//! Formatting of `garage status`: healthy nodes, then failed nodes with when they were last seen.

use crate::admin::ClusterStatus;
use crate::rpc::system::KnownNode;
use crate::util::size::format_size;
use crate::util::time::now_msec;

use super::table::format_table;

fn disk(n: &KnownNode) -> String {
    match n.status.as_ref().and_then(|s| s.data_disk) {
        Some(d) if d.total > 0 => format!(
            "{} ({:.1}%)",
            format_size(d.avail),
            d.avail as f64 * 100.0 / d.total as f64
        ),
        _ => "?".into(),
    }
}

fn hostname(n: &KnownNode) -> String {
    n.status
        .as_ref()
        .map(|s| s.hostname.clone())
        .unwrap_or_else(|| "?".into())
}

fn addr(n: &KnownNode) -> String {
    n.addr.map(|a| a.to_string()).unwrap_or_else(|| "?".into())
}

/// "3 minutes ago" style durations.
pub fn ago(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "never seen".into();
    };
    let secs = now_msec().saturating_sub(ms) / 1000;
    match secs {
        0..=119 => format!("{} seconds ago", secs),
        120..=7199 => format!("{} minutes ago", secs / 60),
        7200..=172_799 => format!("{} hours ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

/// The text of `garage status`.
pub fn format_status(s: &ClusterStatus) -> String {
    let mut nodes = s.nodes.clone();
    nodes.sort_by_key(|n| (!n.is_local, n.id));
    let mut out = String::from("==== HEALTHY NODES ====\n");
    let mut rows = vec![[
        "ID",
        "Hostname",
        "Address",
        "Tags",
        "Zone",
        "Capacity",
        "DataAvail",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for n in nodes.iter().filter(|n| n.is_up) {
        let mut row = vec![n.id.short(), hostname(n), addr(n)];
        row.extend(role_cells(s, &n.id));
        row.push(disk(n));
        rows.push(row);
    }
    out.push_str(&format_table(&rows));
    // Down nodes are failures when they have a role; others are only listed if they were seen.
    let failed: Vec<_> = nodes.iter().filter(|n| !n.is_up).collect();
    if !failed.is_empty() {
        out.push_str("\n==== FAILED NODES ====\n");
        let mut rows = vec![[
            "ID",
            "Hostname",
            "Address",
            "Tags",
            "Zone",
            "Capacity",
            "Last seen",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for n in failed {
            let mut row = vec![n.id.short(), hostname(n), addr(n)];
            row.extend(role_cells(s, &n.id));
            row.push(ago(n.last_seen_ms));
            rows.push(row);
        }
        out.push_str(&format_table(&rows));
    }
    out.push('\n');
    if s.layout_version == 0 {
        out.push_str("No cluster layout has been applied yet: assign roles with `garage layout assign` and apply them with `garage layout apply`.\n");
    } else {
        out.push_str(&format!("Cluster layout version: {}\n", s.layout_version));
    }
    if s.staged_changes {
        out.push_str("There are staged role changes: see `garage layout show`.\n");
    }
    out
}

/// Tags, zone and capacity of a node (or NO ROLE ASSIGNED).
fn role_cells(s: &ClusterStatus, id: &crate::util::ids::NodeId) -> Vec<String> {
    match s.roles.get(id) {
        Some(r) => vec![
            r.tags.join(","),
            r.zone.clone(),
            r.capacity
                .map(format_size)
                .unwrap_or_else(|| "gateway".into()),
        ],
        None => vec![String::new(), String::new(), "NO ROLE ASSIGNED".into()],
    }
}
