//! Cluster membership with real daemons (the `garage` binary) on loopback:
//!
//! - three nodes, two of which only know the first through `bootstrap_peers`, form a full mesh
//!   (every node lists all three as healthy in `garage status`);
//! - a node killed with SIGKILL is listed under FAILED by the others within 35 s (the time taken
//!   is printed);
//! - restarted with the same directories and without `bootstrap_peers`, it keeps its id,
//!   reconnects from its persisted `peer_list`, and all three are healthy again without operator
//!   action;
//! - a node frozen with SIGSTOP (its connections stay open, it just stops answering) is listed
//!   under FAILED once silent for 30 s (ping timeouts, not a closed socket; time printed), and
//!   is healthy again after SIGCONT;
//! - `garage node connect <id>@<addr>` joins two daemons that did not know each other, and
//!   `garage status -h <id>@<addr> -s <secret>` works without any configuration file.
//!
//! Waits are bounded polls (`wait_for`), never bare sleeps.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

use garage::net::peering::PeerListFile;
use garage::util::encode::Migrate;

/// Failure detection takes up to 30 s of silence plus a ping interval; leave some slack.
const MESH_WAIT: Duration = Duration::from_secs(60);

/// A node with `rpc_public_addr` set to its loopback RPC address and optional extra lines.
fn public_node(extra: &str) -> NodeDir {
    let node = NodeDir::new(extra);
    node.append_config(&format!(
        "rpc_public_addr = \"127.0.0.1:{}\"",
        node.rpc_port
    ));
    node
}

/// `garage node id -q`: `<64 hex>@127.0.0.1:<port>` since `rpc_public_addr` is set.
fn node_id(node: &NodeDir) -> String {
    let line = wait_for(Duration::from_secs(30), || {
        let out = node.run(&["node", "id", "-q"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    })
    .unwrap_or_else(|| panic!("node id never became available; log:\n{}", node.log()));
    let (id, addr) = line.split_once('@').expect("<id>@<addr>");
    assert_eq!(id.len(), 64, "hex node id in {line:?}");
    assert_eq!(addr, format!("127.0.0.1:{}", node.rpc_port));
    line
}

fn hex_id(spec: &str) -> &str {
    spec.split_once('@').map(|(id, _)| id).unwrap_or(spec)
}

/// Waits until `node` lists every id in `ids` as healthy and none as failed.
fn wait_all_healthy(node: &NodeDir, ids: &[&str], what: &str) -> Duration {
    let start = Instant::now();
    let mut last = None;
    let ok = wait_for(MESH_WAIT, || {
        let s = node.status()?;
        let done = ids.iter().all(|id| s.is_healthy(id)) && s.failed.is_empty();
        last = Some(s);
        done.then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: not all of {ids:?} healthy within {MESH_WAIT:?}; last status {last:?}; log:\n{}",
        node.log()
    );
    start.elapsed()
}

#[test]
fn three_nodes_mesh_detect_failure_and_recover() {
    let n1 = public_node("");
    let _d1 = Daemon::start(&n1);
    let id1 = node_id(&n1);
    n1.wait_ready(Duration::from_secs(30));

    let bootstrap = format!("bootstrap_peers = [\"{id1}\"]");
    let n2 = public_node(&bootstrap);
    let n3 = public_node(&bootstrap);
    let _d2 = Daemon::start(&n2);
    let mut d3 = Daemon::start(&n3);
    let id2 = node_id(&n2);
    let id3 = node_id(&n3);
    let ids = [hex_id(&id1), hex_id(&id2), hex_id(&id3)];

    let start = Instant::now();
    for (n, name) in [(&n1, "node 1"), (&n2, "node 2"), (&n3, "node 3")] {
        wait_all_healthy(n, &ids, name);
    }
    println!("full mesh of 3 nodes formed in {:?}", start.elapsed());

    // The nodes exchange their status: node 1 shows each node's hostname and free data space.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut last = String::new();
    let exchanged = wait_for(MESH_WAIT, || {
        let out = n1.run(&["status"]);
        last = String::from_utf8_lossy(&out.stdout).to_string();
        ids.iter()
            .all(|id| {
                last.lines().any(|l| {
                    l.starts_with(&id[..16])
                        && (hostname.is_empty() || l.contains(&hostname))
                        && l.trim_end().ends_with("%)")
                })
            })
            .then_some(())
    });
    assert!(
        exchanged.is_some(),
        "hostname {hostname:?} and free space of every node in:\n{last}"
    );

    // Node 3 persisted the two others; wait until it has (the list is saved every 0.5 s).
    let peer_list = n3.meta_dir().join("peer_list");
    let persisted = wait_for(Duration::from_secs(10), || {
        let list = PeerListFile::decode(&std::fs::read(&peer_list).ok()?).ok()?;
        let hexes: Vec<String> = list.peers.iter().map(|(id, _)| id.to_hex()).collect();
        (hexes.len() == 2 && hexes.iter().all(|h| h == ids[0] || h == ids[1])).then_some(list)
    });
    assert!(
        persisted.is_some(),
        "node 3's peer_list holds nodes 1 and 2"
    );

    // SIGKILL node 3: the others must list it under FAILED.
    d3.kill();
    let killed_at = Instant::now();
    for (n, name) in [(&n1, "node 1"), (&n2, "node 2")] {
        let seen = wait_for(MESH_WAIT, || {
            let s = n.status()?;
            (s.is_failed(ids[2]) && !s.is_healthy(ids[2])).then_some(())
        });
        assert!(
            seen.is_some(),
            "{name} never listed node 3 as failed; log:\n{}",
            n.log()
        );
        let took = killed_at.elapsed();
        println!("{name} lists the killed node 3 under FAILED {took:?} after SIGKILL");
        assert!(
            took <= Duration::from_secs(35),
            "{name} took {took:?} to detect the failure"
        );
    }
    // The survivors still see each other.
    for n in [&n1, &n2] {
        let s = n.status().expect("status");
        assert!(s.is_healthy(ids[0]) && s.is_healthy(ids[1]), "{s:?}");
    }

    // Restart node 3 without bootstrap_peers: it must come back from its peer_list.
    n3.remove_config("bootstrap_peers");
    assert!(!std::fs::read_to_string(&n3.config)
        .expect("config")
        .contains("bootstrap_peers"));
    let restarted_at = Instant::now();
    let _d3 = Daemon::start(&n3);
    assert_eq!(
        node_id(&n3),
        id3,
        "node 3 keeps its identity across restarts"
    );
    for (n, name) in [(&n3, "node 3"), (&n1, "node 1"), (&n2, "node 2")] {
        wait_all_healthy(n, &ids, name);
    }
    println!(
        "all three healthy again {:?} after restarting node 3",
        restarted_at.elapsed()
    );
    // Node 3 knew both peers from its file: nobody had to introduce itself to it.
    let log3 = n3.log();
    assert!(
        !log3.contains("introduced itself"),
        "node 3 should have known its peers from peer_list; log:\n{log3}"
    );
}

#[test]
fn node_connect_and_status_without_config() {
    let a = public_node("");
    let b = public_node("");
    let _da = Daemon::start(&a);
    let _db = Daemon::start(&b);
    let id_a = node_id(&a);
    let id_b = node_id(&b);
    // Neither knows the other.
    for (n, other) in [(&a, &id_b), (&b, &id_a)] {
        let s = n.wait_ready(Duration::from_secs(30));
        assert!(!s.knows(hex_id(other)), "{s:?}");
        assert_eq!(s.healthy.len(), 1, "{s:?}");
    }

    let out = a.run(&["node", "connect", &id_b]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node connect failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("connected"), "{stdout}");
    let ids = [hex_id(&id_a), hex_id(&id_b)];
    wait_all_healthy(&a, &ids, "node A");
    wait_all_healthy(&b, &ids, "node B");

    // No configuration file: -h/--rpc-host and -s/--rpc-secret say everything.
    let scratch = tempfile::tempdir().expect("tempdir");
    for (host_flag, secret_flag) in [("-h", "-s"), ("--rpc-host", "--rpc-secret")] {
        let out = Command::new(garage_bin())
            .current_dir(scratch.path())
            .env_remove("GARAGE_RPC_SECRET")
            .env_remove("GARAGE_RPC_SECRET_FILE")
            .env_remove("GARAGE_RPC_HOST")
            .env(
                "GARAGE_CONFIG_FILE",
                scratch.path().join("no-such-garage.toml"),
            )
            .args([host_flag, &id_b, secret_flag, RPC_SECRET, "status"])
            .output()
            .expect("run garage");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{host_flag} status failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = Status::parse(&text);
        assert!(s.is_healthy(ids[0]) && s.is_healthy(ids[1]), "{text}");
    }
    // A wrong secret on the command line is refused with a helpful message.
    let wrong = "00".repeat(32);
    let out = Command::new(garage_bin())
        .current_dir(scratch.path())
        .env_remove("GARAGE_RPC_SECRET")
        .env(
            "GARAGE_CONFIG_FILE",
            scratch.path().join("no-such-garage.toml"),
        )
        .args(["-h", &id_b, "-s", &wrong, "status"])
        .output()
        .expect("run garage");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rpc_secret"), "{err}");
}

#[test]
fn frozen_node_is_detected_by_silence_and_recovers() {
    let a = public_node("");
    let _da = Daemon::start(&a);
    let id_a = node_id(&a);
    let b = public_node(&format!("bootstrap_peers = [\"{id_a}\"]"));
    let db = Daemon::start(&b);
    let id_b = node_id(&b);
    let ids = [hex_id(&id_a), hex_id(&id_b)];
    wait_all_healthy(&a, &ids, "node A");
    wait_all_healthy(&b, &ids, "node B");

    // Freeze B: the kernel keeps its sockets open, only pings go unanswered.
    signal(&db.child, libc::SIGSTOP);
    let stopped_at = Instant::now();
    let seen = wait_for(MESH_WAIT, || {
        let s = a.status()?;
        s.is_failed(ids[1]).then_some(())
    });
    let took = stopped_at.elapsed();
    signal(&db.child, libc::SIGCONT);
    assert!(
        seen.is_some(),
        "node A never listed the frozen node B as failed; log:\n{}",
        a.log()
    );
    println!("node A lists the frozen node B under FAILED {took:?} after SIGSTOP");
    assert!(
        took <= Duration::from_secs(35),
        "failure detection took {took:?}"
    );
    assert!(
        took >= Duration::from_secs(15),
        "a frozen node keeps its sockets: only silence can reveal it (took {took:?})"
    );

    let resumed_at = Instant::now();
    wait_all_healthy(&a, &ids, "node A after SIGCONT");
    wait_all_healthy(&b, &ids, "node B after SIGCONT");
    println!(
        "both healthy again {:?} after SIGCONT",
        resumed_at.elapsed()
    );
}
