//! Three real daemons (replication factor 3, one zone each) build a layout together through the
//! CLI: role changes staged on one node reach the others, a version applied on another node is
//! adopted by all with the same partition assignment, and a node that was stopped while a new
//! version was applied catches up when it restarts. `garage status` and `garage layout history`
//! show the roles and the versions in use; the old version is dropped once every node has synced,
//! or at once with `garage layout skip-dead-nodes` for a node that is down.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use cluster::{Node, CONVERGE};
use common::wait_for;
use serde_json::Value;

/// Waits until `node`'s current layout is `version` with nothing staged; returns its `current`.
fn wait_version(node: &Node, version: u64) -> Value {
    let mut last = Value::Null;
    let found = wait_for(CONVERGE, || {
        let j = node.try_show_json()?;
        let done = j["current"]["version"] == version
            && j["staged_roles"].as_object().is_some_and(|m| m.is_empty());
        last = j.clone();
        done.then(|| j["current"].clone())
    });
    found.unwrap_or_else(|| {
        panic!(
            "node {} never reached layout version {version}; last show:\n{last:#}\nlog:\n{}",
            node.short(),
            node.dir.log()
        )
    })
}

/// Waits until `node` shows exactly the staged role changes of `ids` (full hex ids).
fn wait_staged(node: &Node, ids: &[&str]) -> Value {
    let mut last = Value::Null;
    let found = wait_for(CONVERGE, || {
        let j = node.try_show_json()?;
        let staged = j["staged_roles"].as_object()?;
        let done = staged.len() == ids.len() && ids.iter().all(|id| staged.contains_key(*id));
        last = j.clone();
        done.then(|| j["staged_roles"].clone())
    });
    found.unwrap_or_else(|| {
        panic!(
            "node {} never showed the staged changes of {ids:?}; last show:\n{last:#}",
            node.short()
        )
    })
}

/// Checks the shape of an assignment with 3 nodes and rf 3: 256 partitions, each on the three
/// nodes exactly once.
fn check_full_assignment(current: &Value, ids: &[&str]) {
    let parts = current["partitions"].as_array().expect("partitions array");
    assert_eq!(parts.len(), 256, "256 partitions");
    for (i, p) in parts.iter().enumerate() {
        let mut nodes: Vec<&str> = p
            .as_array()
            .expect("replica list")
            .iter()
            .map(|n| n.as_str().expect("hex id"))
            .collect();
        nodes.sort_unstable();
        let mut want = ids.to_vec();
        want.sort_unstable();
        assert_eq!(nodes, want, "partition {i} must be on all three nodes");
    }
}

/// The healthy rows of `garage status`, as lists of cells split on runs of 2+ spaces.
fn status_rows(text: &str) -> Vec<Vec<String>> {
    let healthy = text
        .split("==== FAILED NODES ====")
        .next()
        .unwrap_or_default();
    healthy
        .lines()
        .skip_while(|l| !l.starts_with("==== HEALTHY NODES"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[test]
fn three_nodes_build_and_update_a_layout() {
    let mut nodes: Vec<Node> = (0..3).map(|_| Node::new(3)).collect();
    for n in nodes.iter_mut() {
        n.start();
    }
    // Nodes 2 and 3 join node 1; peer gossip then connects 2 and 3 to each other.
    let first = nodes[0].addr_spec();
    for n in &nodes[1..] {
        let out = n.ok(&["node", "connect", &first]);
        assert!(out.contains("Success"), "{out}");
    }
    let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for n in &nodes {
        n.wait_healthy(&ids);
    }
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);

    // Before any layout: no roles.
    let status = n1.ok(&["status"]);
    assert!(status.contains("NO ROLE ASSIGNED"), "{status}");
    assert!(
        status.contains("No cluster layout has been applied yet"),
        "{status}"
    );

    // Stage one role per zone, all from node 1, with 8-character prefixes.
    for (i, n) in nodes.iter().enumerate() {
        let zone = format!("dc{}", i + 1);
        let tag = format!("node{}", i + 1);
        let out = n1.ok(&[
            "layout",
            "assign",
            "-z",
            &zone,
            "-c",
            "1T",
            "-t",
            &tag,
            n.prefix(),
        ]);
        assert!(out.contains("staged"), "{out}");
    }
    // Staging is gossiped: node 3 (and node 2, which will apply) see all three changes.
    let staged = wait_staged(n3, &ids);
    assert_eq!(staged[ids[1]]["zone"], "dc2", "{staged:#}");
    assert_eq!(staged[ids[2]]["capacity"], 1_000_000_000_000u64);
    wait_staged(n2, &ids);
    let text = n3.ok(&["layout", "show"]);
    assert!(text.contains("==== STAGED ROLE CHANGES ===="), "{text}");
    for n in &nodes {
        assert!(text.contains(n.short()), "{} in:\n{text}", n.short());
    }
    assert!(
        text.contains("garage layout apply --version 1"),
        "show tells the next version:\n{text}"
    );
    let status = n3.ok(&["status"]);
    assert!(status.contains("There are staged role changes"), "{status}");

    // Apply from node 2; every node converges on version 1 and the same assignment.
    let out = n2.ok(&["layout", "apply", "--version", "1"]);
    assert!(out.contains("version 1"), "{out}");
    let v1: Vec<Value> = nodes.iter().map(|n| wait_version(n, 1)).collect();
    check_full_assignment(&v1[0], &ids);
    for (i, cur) in v1.iter().enumerate().skip(1) {
        assert_eq!(
            cur["partitions"],
            v1[0]["partitions"],
            "node {} has another assignment than node 1",
            i + 1
        );
        assert_eq!(cur, &v1[0], "node {} has another layout than node 1", i + 1);
    }
    assert_eq!(v1[0]["roles"][ids[0]]["zone"], "dc1");
    assert_eq!(v1[0]["roles"][ids[2]]["tags"][0], "node3");
    // Applying version 1 again is refused (the next one is 2).
    let err = n1.fails(&["layout", "apply", "--version", "1"]);
    assert!(err.contains("must be 2"), "{err}");

    // `garage status` shows each node's zone and capacity.
    let text = n1.ok(&["status"]);
    let rows = status_rows(&text);
    assert_eq!(rows.len(), 4, "header and 3 nodes:\n{text}");
    let header = &rows[0];
    let zone_col = header
        .iter()
        .position(|c| c == "Zone")
        .expect("Zone column");
    let cap_col = header
        .iter()
        .position(|c| c == "Capacity")
        .expect("Capacity column");
    for (i, n) in nodes.iter().enumerate() {
        let row = rows
            .iter()
            .find(|r| r[0] == n.short())
            .unwrap_or_else(|| panic!("row of {} in:\n{text}", n.short()));
        assert_eq!(row.len(), header.len(), "every cell filled: {row:?}");
        assert_eq!(row[zone_col], format!("dc{}", i + 1), "{text}");
        assert_eq!(row[cap_col], "1.0 TB", "{text}");
    }
    assert!(text.contains("Cluster layout version: 1"), "{text}");

    // Stop node 3, then change node 1's capacity and apply version 2 from node 1.
    nodes[2].stop();
    let (n1, n2) = (&nodes[0], &nodes[1]);
    n1.ok(&["layout", "assign", "-c", "2T", n1.prefix()]);
    wait_staged(n2, &ids[..1]);
    let out = n1.ok(&["layout", "apply", "--version", "2"]);
    assert!(out.contains("version 2"), "{out}");
    let v2 = wait_version(n2, 2);
    assert_eq!(wait_version(n1, 2), v2);
    assert_eq!(v2["roles"][ids[0]]["capacity"], 2_000_000_000_000u64);
    assert_eq!(v2["roles"][ids[0]]["zone"], "dc1", "the zone is kept");
    check_full_assignment(&v2, &ids);
    // Node 3 has not synced version 2: version 1 stays in use for reads.
    let hist = n1.ok(&["layout", "history"]);
    assert!(hist.contains("draining"), "{hist}");
    assert!(
        hist.contains("Reads are served from layout version 1."),
        "{hist}"
    );
    wait_failed(n1, ids[2]);

    // Node 3 restarts and catches up with version 2 and the same assignment.
    nodes[2].start();
    let (n1, n3) = (&nodes[0], &nodes[2]);
    let v2_on_3 = wait_version(n3, 2);
    assert_eq!(v2_on_3, v2, "node 3 caught up with another layout");
    // Once node 3 has synced, version 1 is no longer needed anywhere.
    wait_history_settled(n1, 2);
    wait_history_settled(n3, 2);
    let hist = n3.ok(&["layout", "history"]);
    assert!(hist.contains("==== LAYOUT HISTORY ===="), "{hist}");
    assert!(hist.contains("==== SYNC PROGRESS ===="), "{hist}");
    for n in &nodes {
        assert!(hist.contains(n.short()), "{} in:\n{hist}", n.short());
    }

    // A node gone for good: stop node 3 again, apply version 3, and tell the cluster not to
    // wait for it with `skip-dead-nodes`.
    nodes[2].stop();
    let n1 = &nodes[0];
    wait_failed(n1, ids[2]);
    n1.ok(&["layout", "assign", "-t", "big", n1.prefix()]);
    n1.ok(&["layout", "apply", "--version", "3"]);
    let v3 = wait_version(n1, 3);
    assert_eq!(v3["roles"][ids[0]]["tags"][0], "big");
    assert!(n1.ok(&["layout", "history"]).contains("draining"));
    let e = n1.fails(&["layout", "skip-dead-nodes", "--version", "2"]);
    assert!(e.contains("current layout version (3)"), "{e}");
    let out = n1.ok(&["layout", "skip-dead-nodes", "--version", "3"]);
    assert!(
        out.contains("1 node(s) marked as synced at version 3"),
        "{out}"
    );
    wait_history_settled(n1, 3);
    wait_history_settled(&nodes[1], 3);
    // Node 3 comes back anyway and adopts version 3.
    nodes[2].start();
    assert_eq!(wait_version(&nodes[2], 3), v3);
    wait_history_settled(&nodes[2], 3);
}

/// Waits until `garage status` on `node` lists `id` among the failed nodes.
fn wait_failed(node: &Node, id: &str) {
    let found = wait_for(CONVERGE, || {
        let s = stdout_of(node, &["status"])?;
        let failed = s.split("==== FAILED NODES ====").nth(1)?;
        failed.contains(&id[..16]).then_some(())
    });
    assert!(
        found.is_some(),
        "{} never listed as failed:\n{}",
        &id[..16],
        node.ok(&["status"])
    );
}

/// Waits until `garage layout history` on `node` lists only `version`, which serves reads.
fn wait_history_settled(node: &Node, version: u64) {
    let want = format!("Reads are served from layout version {version}.");
    let done = wait_for(CONVERGE, || {
        let h = stdout_of(node, &["layout", "history"])?;
        (h.contains(&want) && !h.contains("draining")).then_some(())
    });
    assert!(
        done.is_some(),
        "older versions never dropped on {}:\n{}",
        node.short(),
        node.ok(&["layout", "history"])
    );
}

/// Stdout of a command, `None` if it failed.
fn stdout_of(n: &Node, args: &[&str]) -> Option<String> {
    let out = n.cli(args);
    out.status.success().then(|| cluster::stdout(&out))
}
