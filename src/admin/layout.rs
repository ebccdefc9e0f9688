//! Layout administration in the daemon: staging role changes, applying and reverting versions,
//! previews with assignment statistics (computed here, not in the CLI), and history.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::layout::history::{LayoutHistory, LayoutVersion};
use crate::layout::manager::LayoutManager;
use crate::layout::{assignment_stats, AssignmentStats, NodeRole, ZoneRedundancy};
use crate::util::ids::NodeId;

/// A role change requested by `garage layout assign`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignRequest {
    pub nodes: Vec<String>,
    pub zone: Option<String>,
    pub capacity: Option<u64>,
    pub gateway: bool,
    pub tags: Option<Vec<String>>,
    pub replace: Vec<String>,
}

/// A layout version with its statistics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionView {
    pub layout: LayoutVersion,
    pub stats: Option<AssignmentStats>,
}

/// What `garage layout show` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayoutShow {
    pub current: VersionView,
    pub staged_roles: Vec<(NodeId, Option<NodeRole>)>,
    pub staged_zone_redundancy: Option<ZoneRedundancy>,
    /// What `apply` would produce, or why it would fail (only when changes are staged).
    pub preview: Option<Result<VersionView, String>>,
}

/// One line of `garage layout history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryView {
    pub versions: Vec<(u64, u64, usize, usize)>,
    pub current: u64,
    pub read_version: u64,
    pub sync: Vec<(NodeId, u64)>,
}

fn view(v: &LayoutVersion, previous: Option<&LayoutVersion>) -> VersionView {
    VersionView {
        layout: v.clone(),
        stats: v
            .assignment
            .as_ref()
            .map(|a| assignment_stats(&v.roles, a, previous.and_then(|p| p.assignment.as_ref()))),
    }
}

/// Builds the `layout show` view.
pub fn show(h: &LayoutHistory) -> LayoutShow {
    let cur = h.current();
    let staged = !h.staging.is_empty();
    LayoutShow {
        current: view(cur, None),
        staged_roles: h
            .staging
            .roles
            .iter()
            .map(|(id, r)| (*id, r.clone()))
            .collect(),
        staged_zone_redundancy: *h.staging.zone_redundancy.get(),
        preview: staged.then(|| {
            h.preview()
                .map(|p| view(&p, Some(cur)))
                .map_err(|e| e.to_string())
        }),
    }
}

/// Resolves a node id or unambiguous hex prefix among `candidates`.
pub fn resolve_node(prefix: &str, candidates: &BTreeSet<NodeId>) -> Result<NodeId, String> {
    let p = prefix.trim().to_ascii_lowercase();
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{prefix:?} is not a node id or a hex prefix of one"
        ));
    }
    let matches: Vec<&NodeId> = candidates
        .iter()
        .filter(|id| id.to_hex().starts_with(&p))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => Err(format!(
            "no known node id starts with {prefix:?} (known: {}); see `garage status`",
            candidates
                .iter()
                .map(|c| c.short())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        many => Err(format!(
            "{prefix:?} is ambiguous: it matches {}; give more characters",
            many.iter()
                .map(|c| c.short())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Node ids the layout commands accept: known nodes and nodes named in the layout.
fn candidates(m: &LayoutManager) -> BTreeSet<NodeId> {
    let mut set: BTreeSet<NodeId> = m.system.known_nodes().into_iter().map(|n| n.id).collect();
    m.read(|h| {
        set.extend(h.current().roles.keys().copied());
        set.extend(h.staging.roles.iter().map(|(id, _)| *id));
    });
    set
}

/// `garage layout assign`.
pub fn assign(m: &Arc<LayoutManager>, req: AssignRequest) -> Result<String, String> {
    let cands = candidates(m);
    let nodes = req
        .nodes
        .iter()
        .map(|n| resolve_node(n, &cands))
        .collect::<Result<Vec<_>, _>>()?;
    let replaced = req
        .replace
        .iter()
        .map(|n| resolve_node(n, &cands))
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err("give at least one node id".into());
    }
    if req.gateway && req.capacity.is_some() {
        return Err("a node is either a gateway (-g) or has a capacity (-c), not both".into());
    }
    if req.capacity == Some(0) {
        return Err(
            "capacity 0 is not allowed: use -g/--gateway for a node that stores nothing".into(),
        );
    }
    let staged = m.read(|h| h.staged_roles());
    let mut changes = BTreeMap::new();
    for id in &nodes {
        let old = staged.get(id);
        let zone = match (&req.zone, old) {
            (Some(z), _) => z.clone(),
            (None, Some(o)) => o.zone.clone(),
            (None, None) => {
                return Err(format!(
                    "node {} has no role yet: give its zone with -z ZONE",
                    id.short()
                ))
            }
        };
        if zone.is_empty() {
            return Err("the zone name cannot be empty".into());
        }
        let capacity = if req.gateway {
            None
        } else {
            match (req.capacity, old) {
                (Some(c), _) => Some(c),
                (None, Some(o)) if o.capacity.is_some() => o.capacity,
                _ => {
                    return Err(format!(
                        "node {}: give a capacity with -c CAPACITY (e.g. 1T, 500G), or make it a gateway with -g",
                        id.short()
                    ))
                }
            }
        };
        let tags = match (&req.tags, old) {
            (Some(t), _) => t.clone(),
            (None, Some(o)) => o.tags.clone(),
            (None, None) => vec![],
        };
        changes.insert(
            *id,
            NodeRole {
                zone,
                capacity,
                tags,
            },
        );
    }
    for r in &replaced {
        if !staged.contains_key(r) {
            return Err(format!("--replace {}: that node has no role", r.short()));
        }
    }
    m.update(|h| -> Result<(), String> {
        for r in &replaced {
            h.staging.roles.update_in_place(*r, None);
        }
        for (id, role) in &changes {
            h.staging.roles.update_in_place(*id, Some(role.clone()));
        }
        Ok(())
    })?;
    Ok("Role changes are staged but not yet committed.\nUse `garage layout show` to view staged role changes,\nand `garage layout apply` to enact staged changes.".to_string())
}

/// `garage layout remove`.
pub fn remove(m: &Arc<LayoutManager>, node: &str) -> Result<String, String> {
    let id = resolve_node(node, &candidates(m))?;
    if !m.read(|h| h.staged_roles().contains_key(&id)) {
        return Err(format!("node {} has no role to remove", id.short()));
    }
    m.update(|h| -> Result<(), String> {
        h.staging.roles.update_in_place(id, None);
        Ok(())
    })?;
    Ok("Role removal is staged but not yet committed.\nUse `garage layout show` to view staged role changes,\nand `garage layout apply` to enact staged changes.".into())
}

/// `garage layout config -r N|max`.
pub fn config(m: &Arc<LayoutManager>, zr: ZoneRedundancy) -> Result<String, String> {
    let rf = m.read(|h| h.current().params.replication_factor);
    if let ZoneRedundancy::AtLeast(n) = zr {
        if n == 0 || n > rf {
            return Err(format!(
                "zone redundancy must be between 1 and the replication factor ({rf}), or max"
            ));
        }
    }
    m.update(|h| -> Result<(), String> {
        h.staging.zone_redundancy.update(Some(zr));
        Ok(())
    })?;
    Ok(format!(
        "The zone redundancy {zr} is staged; apply it with `garage layout apply`."
    ))
}

/// `garage layout apply [--version N]`.
pub fn apply(m: &Arc<LayoutManager>, version: Option<u64>) -> Result<String, String> {
    let v = m.update(|h| {
        h.apply(version)
            .map(|v| v.version)
            .map_err(|e| e.to_string())
    })?;
    Ok(format!("New cluster layout with updated role assignment has been applied in cluster (version {v})."))
}

/// `garage layout revert --version N`.
pub fn revert(m: &Arc<LayoutManager>, version: u64) -> Result<String, String> {
    m.update(|h| h.revert(version).map_err(|e| e.to_string()))?;
    Ok(format!(
        "All proposed role changes in cluster layout have been canceled (version {version})."
    ))
}

/// `garage layout skip-dead-nodes --version N`: count nodes that are down as synced, so old
/// versions can be dropped.
pub fn skip_dead_nodes(m: &Arc<LayoutManager>, version: u64) -> Result<String, String> {
    let cur = m.read(|h| h.current().version);
    if version != cur {
        return Err(format!(
            "--version must be the current layout version ({cur})"
        ));
    }
    let down: Vec<NodeId> = m
        .system
        .known_nodes()
        .into_iter()
        .filter(|n| !n.is_up)
        .map(|n| n.id)
        .collect();
    m.update(|h| -> Result<(), String> {
        for n in &down {
            h.mark_synced(*n, version);
        }
        Ok(())
    })?;
    Ok(format!(
        "{} node(s) marked as synced at version {version}.",
        down.len()
    ))
}

/// `garage layout history`.
pub fn history(h: &LayoutHistory) -> HistoryView {
    HistoryView {
        versions: h
            .versions
            .iter()
            .map(|v| {
                (
                    v.version,
                    v.applied_at,
                    v.storage_nodes().len(),
                    v.roles.len() - v.storage_nodes().len(),
                )
            })
            .collect(),
        current: h.current().version,
        read_version: h.read_version().version,
        sync: h.sync.iter().map(|(n, v)| (*n, *v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_prefixes() {
        let a = NodeId([0xab; 32]);
        let b = NodeId([0xac; 32]);
        let set: BTreeSet<_> = [a, b].into_iter().collect();
        assert_eq!(resolve_node("abab", &set), Ok(a));
        let amb = resolve_node("a", &set).expect_err("ambiguous");
        assert!(amb.contains("ambiguous") && amb.contains(&a.short()) && amb.contains(&b.short()));
        assert!(resolve_node("ff", &set)
            .expect_err("unknown")
            .contains("no known node"));
        assert!(resolve_node("zz", &set).is_err());
    }
}
