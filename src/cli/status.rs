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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::layout::NodeRole;
    use crate::rpc::system::{DiskSpace, NodeStatus};
    use crate::util::ids::NodeId;

    fn node(byte: u8, is_up: bool, last_seen_ms: Option<u64>) -> KnownNode {
        KnownNode {
            id: NodeId([byte; 32]),
            addr: Some(format!("127.0.0.{byte}:3901").parse().expect("addr")),
            is_up,
            is_local: byte == 1,
            last_seen_ms,
            status: Some(NodeStatus {
                hostname: format!("host{byte}"),
                data_disk: Some(DiskSpace {
                    avail: 500_000_000_000,
                    total: 1_000_000_000_000,
                }),
                meta_disk: None,
                layout_version: 3,
                layout_digest: None,
            }),
        }
    }

    /// The row of the node whose id starts with `prefix`, in the section starting at `title`.
    fn row<'a>(text: &'a str, title: &str, prefix: &str) -> Option<&'a str> {
        text.split(title)
            .nth(1)?
            .split("\n\n")
            .next()?
            .lines()
            .find(|l| l.starts_with(prefix))
    }

    /// Healthy nodes with their role (storage with zone, tags and capacity; gateway; no role),
    /// then failed nodes with when they were last seen, then whether a layout is published.
    #[test]
    fn status_lists_roles_failures_and_layout() {
        let mut roles = BTreeMap::new();
        let mut storage = NodeRole::storage("dc1", 1_000_000_000_000);
        storage.tags = vec!["fast".into()];
        roles.insert(NodeId([1; 32]), storage);
        roles.insert(NodeId([2; 32]), NodeRole::gateway("dc2"));
        roles.insert(NodeId([4; 32]), NodeRole::storage("dc3", 2_000_000_000_000));
        let five_minutes_ago = now_msec() - 5 * 60 * 1000;
        let mut s = ClusterStatus {
            local: NodeId([1; 32]),
            nodes: vec![
                node(4, false, Some(five_minutes_ago)),
                node(3, true, Some(now_msec())),
                node(2, true, Some(now_msec())),
                node(1, true, Some(now_msec())),
            ],
            layout_version: 3,
            roles,
            staged_changes: false,
        };
        let text = format_status(&s);
        let healthy = "==== HEALTHY NODES ====";
        let failed = "==== FAILED NODES ====";
        assert!(text.starts_with(healthy), "{text}");
        let local = row(&text, healthy, "0101").unwrap_or_else(|| panic!("{text}"));
        for cell in [
            "host1",
            "127.0.0.1:3901",
            "fast",
            "dc1",
            "1.0 TB",
            "(50.0%)",
        ] {
            assert!(local.contains(cell), "{cell} in {local:?}");
        }
        let gateway = row(&text, healthy, "0202").unwrap_or_else(|| panic!("{text}"));
        assert!(
            gateway.contains("dc2") && gateway.contains("gateway"),
            "{gateway}"
        );
        let no_role = row(&text, healthy, "0303").unwrap_or_else(|| panic!("{text}"));
        assert!(no_role.contains("NO ROLE ASSIGNED"), "{no_role}");
        assert!(row(&text, healthy, "0404").is_none(), "{text}");
        let down = row(&text, failed, "0404").unwrap_or_else(|| panic!("{text}"));
        for cell in ["host4", "dc3", "2.0 TB", "5 minutes ago"] {
            assert!(down.contains(cell), "{cell} in {down:?}");
        }
        assert!(text.contains("Cluster layout version: 3"), "{text}");
        assert!(!text.contains("staged"), "{text}");

        s.layout_version = 0;
        s.staged_changes = true;
        s.nodes.retain(|n| n.is_up);
        let text = format_status(&s);
        assert!(!text.contains(failed), "{text}");
        assert!(
            text.contains("No cluster layout has been applied yet"),
            "{text}"
        );
        assert!(text.contains("There are staged role changes"), "{text}");
    }
}
