//! `garage layout …`: commands and their output (tables, or JSON with `--json`).

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::admin::layout::{AssignRequest, HistoryView, LayoutShow, VersionView};
use crate::admin::{AdminResponse, AdminRpc};
use crate::layout::{ChangeStats, NodeRole, ZoneRedundancy};
use crate::util::ids::NodeId;
use crate::util::size::{format_size, parse_size};
use crate::util::time::msec_to_rfc3339;

use super::table::format_table;

/// `garage layout …`
#[derive(Debug, Subcommand)]
pub enum LayoutCommand {
    /// Stage a role for one or more nodes: zone and capacity (storage node) or gateway
    Assign(AssignOpt),
    /// Stage the removal of a node's role
    Remove {
        /// Node id (or unambiguous prefix)
        node_id: String,
    },
    /// Show the current layout, the staged changes and the layout they would produce
    Show {
        /// Print as JSON (with the full partition assignment), for scripts
        #[arg(long)]
        json: bool,
    },
    /// Apply the staged changes as a new layout version
    Apply {
        /// The new version number: must be the current version + 1
        #[arg(long)]
        version: Option<u64>,
    },
    /// Drop the staged changes (creates version current + 1 equal to the current layout)
    Revert {
        /// The new version number: must be the current version + 1
        #[arg(long)]
        version: u64,
    },
    /// Stage layout parameters
    Config {
        /// Zone redundancy: over how many zones each partition must be spread (N or "max")
        #[arg(short = 'r', long = "redundancy")]
        redundancy: String,
    },
    /// Show the layout versions still in use and each node's sync progress
    History,
    /// Count nodes that are down as synced at the current version, so that older layout
    /// versions can be dropped (use when a node is gone for good)
    SkipDeadNodes {
        /// The current layout version
        #[arg(long)]
        version: u64,
    },
}

/// Options of `garage layout assign`.
#[derive(Debug, Args)]
pub struct AssignOpt {
    /// Node ids (or unambiguous prefixes) to assign
    #[arg(required = true)]
    pub node_ids: Vec<String>,
    /// Zone (failure domain: site, datacenter) of the nodes
    #[arg(short = 'z', long = "zone")]
    pub zone: Option<String>,
    /// Storage capacity, with a unit (500G, 2T, 1.5T) or in bytes; only ratios between nodes matter
    #[arg(short = 'c', long = "capacity")]
    pub capacity: Option<String>,
    /// Make the nodes gateways: they handle requests but store no data
    #[arg(short = 'g', long = "gateway")]
    pub gateway: bool,
    /// Tags (free-form labels); repeat or separate with commas
    #[arg(short = 't', long = "tag", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Node(s) whose role the new nodes take over (they lose their role)
    #[arg(long = "replace")]
    pub replace: Vec<String>,
}

/// Turns a command into an admin request.
pub fn request(cmd: &LayoutCommand) -> anyhow::Result<AdminRpc> {
    Ok(match cmd {
        LayoutCommand::Assign(o) => {
            let capacity = match &o.capacity {
                Some(c) => {
                    let bytes = parse_size(c).map_err(|e| anyhow::anyhow!("-c/--capacity: {e}"))?;
                    if bytes == 0 {
                        anyhow::bail!(
                            "-c/--capacity: capacity must be positive (use -g for a gateway)"
                        );
                    }
                    Some(bytes)
                }
                None => None,
            };
            AdminRpc::LayoutAssign(AssignRequest {
                nodes: o.node_ids.clone(),
                zone: o.zone.clone(),
                capacity,
                gateway: o.gateway,
                tags: (!o.tags.is_empty()).then(|| o.tags.clone()),
                replace: o.replace.clone(),
            })
        }
        LayoutCommand::Remove { node_id } => AdminRpc::LayoutRemove {
            node: node_id.clone(),
        },
        LayoutCommand::Show { .. } => AdminRpc::LayoutShow,
        LayoutCommand::Apply { version } => AdminRpc::LayoutApply { version: *version },
        LayoutCommand::Revert { version } => AdminRpc::LayoutRevert { version: *version },
        LayoutCommand::Config { redundancy } => AdminRpc::LayoutConfig {
            zone_redundancy: parse_redundancy(redundancy)?,
        },
        LayoutCommand::History => AdminRpc::LayoutHistory,
        LayoutCommand::SkipDeadNodes { version } => {
            AdminRpc::LayoutSkipDeadNodes { version: *version }
        }
    })
}

fn parse_redundancy(s: &str) -> anyhow::Result<ZoneRedundancy> {
    if s.eq_ignore_ascii_case("max") || s.eq_ignore_ascii_case("maximum") {
        return Ok(ZoneRedundancy::Maximum);
    }
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(ZoneRedundancy::AtLeast(n)),
        _ => anyhow::bail!("-r/--redundancy: expected a positive number or \"max\", got {s:?}"),
    }
}

/// Prints an answer.
pub fn print(cmd: &LayoutCommand, resp: AdminResponse) -> anyhow::Result<()> {
    match (cmd, resp) {
        (LayoutCommand::Show { json: true }, AdminResponse::LayoutShow(s)) => {
            println!("{}", serde_json::to_string_pretty(&show_json(&s))?)
        }
        (_, AdminResponse::LayoutShow(s)) => print!("{}", format_show(&s)),
        (_, AdminResponse::LayoutHistory(h)) => print!("{}", format_history(&h)),
        (_, AdminResponse::Done(t)) => println!("{}", t),
        (_, other) => anyhow::bail!("unexpected answer: {:?}", other),
    }
    Ok(())
}

fn capacity(r: &NodeRole) -> String {
    r.capacity
        .map(format_size)
        .unwrap_or_else(|| "gateway".into())
}

fn roles_table(v: &VersionView) -> String {
    let mut rows = vec![vec![
        "ID".to_string(),
        "Tags".into(),
        "Zone".into(),
        "Capacity".into(),
        "Partitions".into(),
        "Usable capacity".into(),
    ]];
    for (id, role) in &v.layout.roles {
        let usage = v.stats.as_ref().and_then(|s| s.nodes.get(id));
        let parts = usage.map(|u| u.partitions).unwrap_or(0);
        let usable = match (usage, role.capacity) {
            (Some(u), Some(c)) if c > 0 => format!(
                "{} ({:.1}%)",
                format_size(u.used_bytes),
                u.used_bytes as f64 * 100.0 / c as f64
            ),
            _ => String::new(),
        };
        rows.push(vec![
            id.short(),
            role.tags.join(","),
            role.zone.clone(),
            capacity(role),
            if role.is_storage() {
                parts.to_string()
            } else {
                String::new()
            },
            usable,
        ]);
    }
    format_table(&rows)
}

fn version_summary(v: &VersionView) -> String {
    let mut out = format!("Zone redundancy: {}\n", v.layout.params.zone_redundancy);
    if let Some(s) = &v.stats {
        out.push_str(&format!(
            "Usable capacity: {} (efficiency {:.1}%)\n",
            format_size(s.usable_capacity),
            s.efficiency(v.layout.params.replication_factor) * 100.0
        ));
        if let Some(c) = &s.changes {
            out.push_str(&format!(
                "Partitions that would move: {} of 256 ({:.1}%), {} replica copies to transfer\n",
                c.moved_partitions,
                c.moved_share() * 100.0,
                c.moved_replicas
            ));
            out.push_str(&format!(
                "Partitions by number of new replicas: {}\n",
                changed_replicas_shares(c)
            ));
        }
    }
    out
}

/// `0: 62.5%, 1: 37.5%, …`: share of the 256 partitions that get 0, 1, 2… new replicas (the
/// quality measure of DESIGN.md §5: the higher the share of 0 and the lower the others, the
/// less data moves).
fn changed_replicas_shares(c: &ChangeStats) -> String {
    c.by_changed_replicas
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{k}: {:.1}%", *n as f64 * 100.0 / 256.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text of `garage layout show`.
pub fn format_show(s: &LayoutShow) -> String {
    let mut out = String::from("==== CURRENT CLUSTER LAYOUT ====\n");
    if s.current.layout.roles.is_empty() {
        out.push_str("No nodes currently have a role in the cluster.\nSee `garage status` to view available nodes.\n");
    } else {
        out.push_str(&roles_table(&s.current));
        out.push('\n');
        out.push_str(&version_summary(&s.current));
    }
    out.push_str(&format!(
        "Current cluster layout version: {}\n",
        s.current.layout.version
    ));
    if s.staged_roles.is_empty() && s.staged_zone_redundancy.is_none() {
        out.push_str("\nNo staged role changes.\n");
        return out;
    }
    out.push_str("\n==== STAGED ROLE CHANGES ====\n");
    let mut rows = vec![vec![
        "ID".to_string(),
        "Tags".into(),
        "Zone".into(),
        "Capacity".into(),
    ]];
    for (id, r) in &s.staged_roles {
        rows.push(match r {
            Some(r) => vec![id.short(), r.tags.join(","), r.zone.clone(), capacity(r)],
            None => vec![id.short(), "REMOVED".into(), String::new(), String::new()],
        });
    }
    out.push_str(&format_table(&rows));
    if let Some(zr) = &s.staged_zone_redundancy {
        out.push_str(&format!("Zone redundancy: {}\n", zr));
    }
    match &s.preview {
        Some(Ok(p)) => {
            out.push_str("\n==== NEW CLUSTER LAYOUT AFTER APPLYING CHANGES ====\n");
            out.push_str(&roles_table(p));
            out.push('\n');
            out.push_str(&version_summary(p));
            out.push_str(&format!(
                "\nTo enact the staged role changes, type:\n\n    garage layout apply --version {}\n\nYou can also revert all proposed changes with: garage layout revert --version {}\n",
                p.layout.version, p.layout.version
            ));
        }
        Some(Err(e)) => out.push_str(&format!("\nThe staged changes cannot be applied: {}\n", e)),
        None => (),
    }
    out
}

fn assignment_json(v: &VersionView) -> serde_json::Value {
    let roles: BTreeMap<String, serde_json::Value> = v
        .layout
        .roles
        .iter()
        .map(|(id, r)| {
            (
                id.to_hex(),
                json!({"zone": r.zone, "capacity": r.capacity, "tags": r.tags,
                       "partitions": v.stats.as_ref().and_then(|s| s.nodes.get(id)).map(|u| u.partitions).unwrap_or(0)}),
            )
        })
        .collect();
    let partitions: Vec<Vec<String>> = v
        .layout
        .assignment
        .as_ref()
        .map(|a| {
            a.partitions()
                .iter()
                .map(|p| p.iter().map(NodeId::to_hex).collect())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "version": v.layout.version,
        "replication_factor": v.layout.params.replication_factor,
        "zone_redundancy": v.layout.params.zone_redundancy.to_string(),
        "roles": roles,
        "usable_capacity": v.stats.as_ref().map(|s| s.usable_capacity),
        "moved_partitions": v.stats.as_ref().and_then(|s| s.changes.as_ref()).map(|c| c.moved_partitions),
        "moved_replicas": v.stats.as_ref().and_then(|s| s.changes.as_ref()).map(|c| c.moved_replicas),
        "by_changed_replicas": v.stats.as_ref().and_then(|s| s.changes.as_ref()).map(|c| c.by_changed_replicas.clone()),
        "partitions": partitions,
    })
}

fn show_json(s: &LayoutShow) -> serde_json::Value {
    let staged: BTreeMap<String, serde_json::Value> = s
        .staged_roles
        .iter()
        .map(|(id, r)| {
            (
                id.to_hex(),
                match r {
                    Some(r) => json!({"zone": r.zone, "capacity": r.capacity, "tags": r.tags}),
                    None => json!(null),
                },
            )
        })
        .collect();
    json!({
        "current": assignment_json(&s.current),
        "staged_roles": staged,
        "staged_zone_redundancy": s.staged_zone_redundancy.map(|z| z.to_string()),
        "preview": match &s.preview {
            Some(Ok(p)) => assignment_json(p),
            Some(Err(e)) => json!({"error": e}),
            None => json!(null),
        },
    })
}

fn format_history(h: &HistoryView) -> String {
    let mut out = String::from("==== LAYOUT HISTORY ====\n");
    let mut rows = vec![vec![
        "Version".to_string(),
        "Status".into(),
        "Storage nodes".into(),
        "Gateway nodes".into(),
        "Applied".into(),
    ]];
    for (v, at, storage, gw) in &h.versions {
        let status = if *v == h.current {
            "current"
        } else {
            "draining (data still being moved)"
        };
        rows.push(vec![
            v.to_string(),
            status.into(),
            storage.to_string(),
            gw.to_string(),
            if *at == 0 {
                "-".into()
            } else {
                msec_to_rfc3339(*at)
            },
        ]);
    }
    out.push_str(&format_table(&rows));
    out.push_str(&format!(
        "\nReads are served from layout version {}.\n\n==== SYNC PROGRESS ====\n",
        h.read_version
    ));
    let mut rows = vec![vec!["Node".to_string(), "Synced up to version".into()]];
    for (n, v) in &h.sync {
        rows.push(vec![n.short(), v.to_string()]);
    }
    out.push_str(&format_table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::layout::history::LayoutVersion;
    use crate::layout::{assignment_stats, compute_assignment, LayoutParams};

    fn roles(n: u8) -> BTreeMap<NodeId, NodeRole> {
        (1..=n)
            .map(|i| {
                (
                    NodeId([i; 32]),
                    NodeRole::storage(format!("dc{i}"), 1 << 40),
                )
            })
            .collect()
    }

    /// The preview of adding a fourth node to three (rf 3) says how many partitions move, and
    /// the share of partitions getting 0, 1, 2 or 3 new replicas, in text and in JSON.
    #[test]
    fn preview_shows_the_share_of_partitions_by_new_replicas() {
        let params = LayoutParams::new(3);
        let before = compute_assignment(&params, &roles(3), None).expect("3 nodes");
        let after = compute_assignment(&params, &roles(4), Some(&before)).expect("4 nodes");
        let stats = assignment_stats(&roles(4), &after, Some(&before));
        let changes = stats
            .changes
            .clone()
            .expect("compared with the previous one");
        // A fourth node of equal capacity takes 3/4 of 256 partitions, one new replica each.
        assert_eq!(changes.by_changed_replicas, vec![64, 192, 0, 0]);
        let view = VersionView {
            layout: LayoutVersion {
                version: 2,
                params,
                roles: roles(4),
                assignment: Some(after),
                applied_at: 0,
            },
            stats: Some(stats),
        };
        let text = version_summary(&view);
        assert!(
            text.contains("Partitions that would move: 192 of 256 (75.0%), 192 replica copies"),
            "{text}"
        );
        assert!(
            text.contains(
                "Partitions by number of new replicas: 0: 25.0%, 1: 75.0%, 2: 0.0%, 3: 0.0%\n"
            ),
            "{text}"
        );
        let json = assignment_json(&view);
        assert_eq!(
            json["by_changed_replicas"],
            json!([64, 192, 0, 0]),
            "{json:#}"
        );
        assert_eq!(json["moved_partitions"], 192, "{json:#}");
    }
}
