//! The real `garage` binary: node identity created once and reused, clean stop on SIGTERM, and
//! configuration errors reported as one line with exit code 1.

mod common;

use std::time::Duration;

use common::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// Starts the server, waits until `node id` answers, stops it with SIGTERM; returns the id.
fn start_and_stop(node: &NodeDir) -> String {
    let mut child = node.spawn_server();
    let id = wait_for(Duration::from_secs(30), || {
        let out = node.run(&["node", "id", "-q"]);
        out.status.success().then(|| stdout(&out))
    })
    .unwrap_or_else(|| panic!("node id never became available; log:\n{}", node.log()));
    // The server logs its start; wait for the database before stopping.
    wait_for(Duration::from_secs(30), || {
        node.log().contains("Metadata database").then_some(())
    })
    .expect("database opened");
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(5)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!(
            "server did not stop within 5 s of SIGTERM; log:\n{}",
            node.log()
        )
    });
    assert!(
        status.success(),
        "clean exit, got {status:?}; log:\n{}",
        node.log()
    );
    id
}

#[test]
fn node_id_is_created_once_and_sigterm_stops_cleanly() {
    let node = NodeDir::new("");
    let first = start_and_stop(&node);
    assert_eq!(first.len(), 64, "hex node id: {first}");
    let second = start_and_stop(&node);
    assert_eq!(first, second, "the node id must survive a restart");
    let log = node.log();
    assert!(log.contains("Garage v"), "version logged");
    assert!(log.contains("stopped cleanly"), "clean stop logged");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(node.path().join("meta/node_key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn node_id_shows_public_address() {
    let node = NodeDir::new("rpc_public_addr = \"192.0.2.1:3901\"");
    let mut child = node.spawn_server();
    let out = wait_for(Duration::from_secs(30), || {
        let out = node.run(&["node", "id"]);
        out.status.success().then_some(out)
    })
    .expect("node id");
    signal(&child, libc::SIGINT);
    assert!(wait_exit(&mut child, Duration::from_secs(5)).is_some());
    let line = stdout(&out);
    assert!(line.ends_with("@192.0.2.1:3901"), "{line}");
}

#[test]
fn node_id_without_public_address_gives_hint() {
    let node = NodeDir::new("");
    std::fs::create_dir_all(node.path().join("meta")).expect("mkdir");
    // No key yet: the error says what to do.
    let out = node.run(&["node", "id"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("garage server"), "{}", stderr(&out));
    start_and_stop(&node);
    let out = node.run(&["node", "id"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("rpc_public_addr"),
        "hint: {}",
        stderr(&out)
    );
}

/// Runs `garage -c <file> server` on a broken configuration and returns the error line.
fn config_error(text: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garage.toml");
    std::fs::write(&path, text).expect("write");
    let out = std::process::Command::new(garage_bin())
        .arg("-c")
        .arg(&path)
        .arg("server")
        .env_remove("GARAGE_RPC_SECRET")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "exit code 1 for:\n{text}");
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("Error: "), "one error line: {err}");
    last
}

fn valid(extra: &str, dir: &std::path::Path) -> String {
    format!(
        "metadata_dir = \"{m}\"\ndata_dir = \"{d}\"\nreplication_factor = 1\nrpc_bind_addr = \"127.0.0.1:0\"\nrpc_secret = \"{RPC_SECRET}\"\n{extra}",
        m = dir.join("meta").display(),
        d = dir.join("data").display()
    )
}

#[test]
fn bad_configurations_end_with_one_clear_line() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let s = scratch.path();

    // Missing file.
    let out = std::process::Command::new(garage_bin())
        .args(["-c", "/nonexistent/garage.toml", "server"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/garage.toml"));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    // Malformed TOML.
    let e = config_error("metadata_dir = = \"x\"");
    assert!(e.contains("invalid configuration file"), "{e}");
    // Unknown key, named.
    let e = config_error(&valid("no_such_option = 1", s));
    assert!(e.contains("no_such_option"), "{e}");
    // rpc_secret not 32 bytes of hex.
    let e = config_error(&valid("", s).replace(RPC_SECRET, "deadbeef"));
    assert!(e.contains("rpc_secret"), "{e}");
    // Unparsable bind address.
    let e = config_error(&valid("", s).replace("127.0.0.1:0", "not-an-address"));
    assert!(
        e.contains("rpc_bind_addr") && e.contains("not-an-address"),
        "{e}"
    );
    // metadata_dir that cannot be created (a file is in the way).
    let blocker = s.join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let text = valid("", s).replace(
        &format!("\"{}\"", s.join("meta").display()),
        &format!("\"{}/meta\"", blocker.display()),
    );
    let e = config_error(&text);
    assert!(
        e.contains("metadata_dir") && e.contains(&blocker.display().to_string()),
        "{e}"
    );
    // metadata_dir that exists but where no file can be created, even by root.
    #[cfg(target_os = "linux")]
    {
        let text = valid("", s).replace(&format!("\"{}\"", s.join("meta").display()), "\"/proc\"");
        let e = config_error(&text);
        assert!(
            e.contains("metadata_dir") && e.contains("/proc") && e.contains("not writable"),
            "{e}"
        );
    }
}

#[test]
fn unreadable_config_file() {
    // Root can read anything, so use a directory in place of the file.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(garage_bin())
        .arg("-c")
        .arg(dir.path())
        .arg("server")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&dir.path().display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_explains_commands() {
    let out = std::process::Command::new(garage_bin())
        .arg("--help")
        .output()
        .expect("run");
    let text = stdout(&out);
    for word in ["server", "node", "--config"] {
        assert!(text.contains(word), "{word} in help:\n{text}");
    }
    let out = std::process::Command::new(garage_bin())
        .args(["node", "id", "--help"])
        .output()
        .expect("run");
    assert!(stdout(&out).contains("--quiet"));
}
