//! Layout commands with bad input, on two running daemons configured with replication factor 3
//! (so no layout can be applied): each is refused with exit code 1 and one `Error:` line that
//! names the problem, and nothing is changed. Also: the replication factor of the configuration
//! wins over the one saved with the empty layout, until a first layout is applied.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use cluster::Node;
use garage::net::node_key::NodeKey;

/// Creates node keys for `a` and `b` whose ids start with the same hex character, so that this
/// character is an ambiguous prefix. Returns it.
fn keys_with_common_first_char(a: &Node, b: &Node) -> char {
    let meta_a = a.dir.path().join("meta");
    std::fs::create_dir_all(&meta_a).expect("mkdir");
    let first = NodeKey::load_or_create(&meta_a)
        .expect("key a")
        .id()
        .to_hex()
        .chars()
        .next()
        .expect("hex");
    let meta_b = b.dir.path().join("meta");
    // Each try matches with probability 1/16: 400 tries fail with probability < 1e-11.
    for _ in 0..400 {
        let _ = std::fs::remove_dir_all(&meta_b);
        std::fs::create_dir_all(&meta_b).expect("mkdir");
        let id = NodeKey::load_or_create(&meta_b)
            .expect("key b")
            .id()
            .to_hex();
        if id.starts_with(first) {
            return first;
        }
    }
    panic!("no key starting with {first} in 400 tries");
}

#[test]
fn bad_layout_input_is_refused_with_one_clear_line() {
    let mut a = Node::new(3);
    let mut b = Node::new(3);
    let common_char = keys_with_common_first_char(&a, &b);
    a.start();
    b.start();
    b.ok(&["node", "connect", &a.addr_spec()]);
    a.wait_healthy(&[&a.id, &b.id]);
    let (a, b) = (&a, &b);

    // Removing a node that has no role.
    let e = a.fails(&["layout", "remove", a.prefix()]);
    assert!(
        e.contains("has no role to remove") && e.contains(a.short()),
        "{e}"
    );

    // A prefix no known node has: the error lists the known ids.
    let other = "0123456789abcdef"
        .chars()
        .find(|c| *c != common_char)
        .expect("another hex digit");
    let unknown: String = std::iter::repeat_n(other, 8).collect();
    let e = a.fails(&["layout", "assign", "-z", "dc1", "-c", "1T", &unknown]);
    assert!(e.contains("no known node id starts with"), "{e}");
    assert!(
        e.contains(a.short()) && e.contains(b.short()),
        "lists known ids: {e}"
    );
    let e = a.fails(&["layout", "remove", &unknown]);
    assert!(e.contains("no known node id starts with"), "{e}");
    // Not hex at all.
    let e = a.fails(&["layout", "assign", "-z", "dc1", "-c", "1T", "xyz"]);
    assert!(e.contains("not a node id or a hex prefix"), "{e}");
    // A prefix both ids share.
    let prefix = common_char.to_string();
    let e = a.fails(&["layout", "assign", "-z", "dc1", "-c", "1T", &prefix]);
    assert!(e.contains("ambiguous"), "{e}");
    assert!(
        e.contains(a.short()) && e.contains(b.short()),
        "lists matches: {e}"
    );

    // Capacities: zero, unparsable, both gateway and capacity, or missing.
    let e = a.fails(&["layout", "assign", "-z", "dc1", "-c", "0", a.prefix()]);
    assert!(e.contains("capacity") && e.contains("positive"), "{e}");
    let e = a.fails(&["layout", "assign", "-z", "dc1", "-c", "abc", a.prefix()]);
    assert!(e.contains("-c/--capacity") && e.contains("\"abc\""), "{e}");
    let e = a.fails(&[
        "layout",
        "assign",
        "-z",
        "dc1",
        "-g",
        "-c",
        "1T",
        a.prefix(),
    ]);
    assert!(e.contains("gateway"), "{e}");
    let e = a.fails(&["layout", "assign", "-z", "dc1", a.prefix()]);
    assert!(e.contains("give a capacity"), "{e}");
    let e = a.fails(&["layout", "assign", "-c", "1T", a.prefix()]);
    assert!(e.contains("give its zone with -z"), "{e}");
    // Replacing a node that has no role.
    let e = a.fails(&[
        "layout",
        "assign",
        "-z",
        "dc1",
        "-c",
        "1T",
        "--replace",
        b.prefix(),
        a.prefix(),
    ]);
    assert!(e.contains("--replace") && e.contains("no role"), "{e}");

    // Zone redundancy: above the replication factor, zero, or not a number.
    let e = a.fails(&["layout", "config", "-r", "4"]);
    assert!(
        e.contains("zone redundancy") && e.contains("replication factor (3)"),
        "{e}"
    );
    let e = a.fails(&["layout", "config", "-r", "0"]);
    assert!(e.contains("-r/--redundancy"), "{e}");
    let e = a.fails(&["layout", "config", "-r", "lots"]);
    assert!(e.contains("-r/--redundancy") && e.contains("lots"), "{e}");

    // Nothing staged yet.
    let e = a.fails(&["layout", "apply", "--version", "1"]);
    assert!(e.contains("no staged changes"), "{e}");
    let e = a.fails(&["layout", "skip-dead-nodes", "--version", "3"]);
    assert!(e.contains("current layout version (0)"), "{e}");
    let e = a.fails(&["node", "connect", "not-a-node"]);
    assert!(e.contains("<node id>@<host>:<port>"), "{e}");

    // Every refusal above left the staging empty.
    let j = a.show_json();
    assert_eq!(j["staged_roles"], serde_json::json!({}), "{j:#}");
    assert_eq!(j["current"]["version"], 0);

    // Two storage nodes cannot hold 3 replicas: show explains, apply refuses.
    a.ok(&["layout", "assign", "-z", "dc1", "-c", "1T", a.prefix()]);
    a.ok(&["layout", "assign", "-z", "dc2", "-c", "1T", b.prefix()]);
    let text = a.ok(&["layout", "show"]);
    assert!(
        text.contains("The staged changes cannot be applied: not enough storage nodes"),
        "{text}"
    );
    assert!(text.contains("replication factor 3"), "{text}");
    assert!(!text.contains("garage layout apply --version"), "{text}");
    let j = a.show_json();
    let preview_err = j["preview"]["error"].as_str().unwrap_or_default();
    assert!(preview_err.contains("not enough storage nodes"), "{j:#}");

    let e = a.fails(&["layout", "apply", "--version", "2"]);
    assert!(
        e.contains("wrong version 2") && e.contains("must be 1") && e.contains("current is 0"),
        "{e}"
    );
    let e = a.fails(&["layout", "apply", "--version", "1"]);
    assert!(e.contains("not enough storage nodes"), "{e}");
    assert!(e.contains("needs at least 3"), "{e}");
    let e = a.fails(&["layout", "apply"]);
    assert!(e.contains("not enough storage nodes"), "{e}");
    let e = a.fails(&["layout", "revert", "--version", "5"]);
    assert!(
        e.contains("wrong version 5") && e.contains("must be 1"),
        "{e}"
    );
    let j = a.show_json();
    assert_eq!(j["current"]["version"], 0, "nothing applied: {j:#}");
    assert_eq!(j["staged_roles"].as_object().map(|m| m.len()), Some(2));

    // Reverting drops the staged changes as version 1; the same version cannot be used twice.
    let out = a.ok(&["layout", "revert", "--version", "1"]);
    assert!(out.contains("canceled"), "{out}");
    let j = a.show_json();
    assert_eq!(j["current"]["version"], 1, "{j:#}");
    assert_eq!(j["staged_roles"], serde_json::json!({}), "{j:#}");
    assert!(a.ok(&["layout", "show"]).contains("No staged role changes"));
    let e = a.fails(&["layout", "revert", "--version", "1"]);
    assert!(
        e.contains("wrong version 1") && e.contains("must be 2"),
        "{e}"
    );
    let e = a.fails(&["layout", "remove", b.prefix()]);
    assert!(e.contains("has no role to remove"), "{e}");

    // The accepted forms of -g and --replace (staged only: two nodes cannot hold rf 3).
    a.ok(&[
        "layout",
        "assign",
        "-z",
        "dc1",
        "-g",
        "-t",
        "gw",
        a.prefix(),
    ]);
    let j = a.show_json();
    let staged = &j["staged_roles"][&a.id];
    assert_eq!(staged["zone"], "dc1", "{j:#}");
    assert!(
        staged["capacity"].is_null(),
        "a gateway has no capacity: {j:#}"
    );
    let text = a.ok(&["layout", "show"]);
    let row = text
        .lines()
        .find(|l| l.starts_with(a.short()))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("gateway") && row.contains("gw"), "{row}");
    // A capacity turns it into a storage node, keeping its zone.
    a.ok(&["layout", "assign", "-c", "1T", a.prefix()]);
    assert_eq!(
        a.show_json()["staged_roles"][&a.id]["capacity"],
        1_000_000_000_000u64
    );
    // --replace: the old node's removal and the new node's role are staged together.
    a.ok(&[
        "layout",
        "assign",
        "-z",
        "dc2",
        "-c",
        "2T",
        "--replace",
        a.prefix(),
        b.prefix(),
    ]);
    let j = a.show_json();
    let staged = j["staged_roles"].as_object().expect("staged roles");
    assert!(
        staged.get(&a.id).is_some_and(|r| r.is_null()),
        "removal of the replaced node: {j:#}"
    );
    assert_eq!(staged[&b.id]["zone"], "dc2", "{j:#}");
    assert_eq!(staged[&b.id]["capacity"], 2_000_000_000_000u64, "{j:#}");
    // Zone redundancy, accepted values.
    for (arg, shown) in [("2", "2"), ("max", "maximum")] {
        let out = a.ok(&["layout", "config", "-r", arg]);
        assert!(out.contains("staged"), "{out}");
        assert_eq!(a.show_json()["staged_zone_redundancy"], shown);
    }
}

/// Rewrites the `replication_factor` line of a node's configuration.
fn set_replication_factor(node: &Node, rf: usize) {
    let text = std::fs::read_to_string(&node.dir.config).expect("read config");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("replication_factor") {
                format!("replication_factor = {rf}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&node.dir.config, text).expect("write config");
}

#[test]
fn replication_factor_can_change_until_a_layout_is_applied() {
    // Started once with rf 3: the daemon saves an empty layout (version 0).
    let mut n = Node::new(3);
    n.start();
    n.stop();
    assert!(n.dir.path().join("meta/cluster_layout").exists());
    // No layout was applied, so the configuration's new factor is the one that counts.
    set_replication_factor(&n, 1);
    n.start();
    n.ok(&["layout", "assign", "-z", "dc1", "-c", "1T", n.prefix()]);
    let j = n.show_json();
    assert_eq!(j["preview"]["replication_factor"], 1, "{j:#}");
    n.ok(&["layout", "apply", "--version", "1"]);
    n.stop();
    // Once a layout exists, changing the factor is refused at start with one clear line.
    set_replication_factor(&n, 2);
    let out = n.cli(&["server"]);
    assert_eq!(out.status.code(), Some(1));
    let err = cluster::stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: ")
            && last.contains("replication factor 1")
            && last.contains("says 2"),
        "{err}"
    );
}
