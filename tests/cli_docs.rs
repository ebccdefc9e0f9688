//! The CLI reference stays in step with the binary: every command path and every long option that
//! `garage … --help` lists appears in `doc/reference/cli.md`, and every `garage …` command the page
//! names in backticks or code blocks exists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::garage_bin;

/// `garage <path…> --help`.
fn help(path: &[String]) -> String {
    let out = Command::new(garage_bin())
        .args(path)
        .arg("--help")
        .env_remove("GARAGE_RPC_HOST")
        .output()
        .expect("run garage");
    assert!(
        out.status.success(),
        "garage {} --help failed: {}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The lines of a help section (`Commands:`, `Options:`), up to the next blank line.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| l.trim_end() != title)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

/// Entries of a section start at a small indent; wrapped descriptions are indented further.
fn is_entry(line: &str) -> bool {
    let indent = line.len() - line.trim_start().len();
    (2..=6).contains(&indent)
}

/// Subcommand names listed in a help text (without clap's `help`).
fn subcommands(text: &str) -> Vec<String> {
    section(text, "Commands:")
        .into_iter()
        .filter(|l| is_entry(l))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// Long options (`--name`) listed in a help text.
fn long_options(text: &str) -> Vec<String> {
    section(text, "Options:")
        .into_iter()
        .filter(|l| is_entry(l) && l.trim_start().starts_with('-'))
        .filter_map(|l| l.trim_start().split("  ").next())
        .flat_map(|flags| {
            flags
                .split([',', ' '])
                .filter(|t| t.starts_with("--"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every command path (`[]` is `garage` itself) with the long options of its help.
fn command_tree() -> BTreeMap<Vec<String>, Vec<String>> {
    let mut tree = BTreeMap::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let text = help(&path);
        for sub in subcommands(&text) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        tree.insert(path, long_options(&text));
    }
    tree
}

fn cli_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/doc/reference/cli.md");
    std::fs::read_to_string(path).expect("read doc/reference/cli.md")
}

/// Every `garage …` command line in the page: inline code spans and code-block lines.
fn documented_commands(doc: &str) -> Vec<String> {
    let mut found = vec![];
    let mut in_block = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let l = line.trim_start().trim_start_matches("$ ");
            if l.starts_with("garage ") || l == "garage" {
                found.push(l.to_string());
            }
            continue;
        }
        // Odd-numbered pieces between backticks are code spans.
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 1 && (span.starts_with("garage ") || span == "garage") {
                found.push(span.to_string());
            }
        }
    }
    found
}

/// Global options that take a value (skipped with their value when reading a command line).
const GLOBAL_WITH_VALUE: [&str; 7] = [
    "-c",
    "--config",
    "-h",
    "--rpc-host",
    "-s",
    "--rpc-secret",
    "--rpc-secret-file",
];

/// The command path of a documented command line, checked against the tree: words are read as
/// subcommands while the current command has subcommands. Errors name what does not exist.
fn resolve(line: &str, tree: &BTreeMap<Vec<String>, Vec<String>>) -> Result<Vec<String>, String> {
    let mut words = line.split_whitespace().skip(1).peekable();
    let mut path: Vec<String> = vec![];
    while let Some(w) = words.next() {
        let has_children = tree
            .keys()
            .any(|k| k.len() == path.len() + 1 && k.starts_with(&path));
        if !has_children {
            break;
        }
        if w.starts_with('-') {
            if path.is_empty() && GLOBAL_WITH_VALUE.contains(&w) {
                words.next();
            }
            continue;
        }
        if !w.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            break; // a placeholder or value, e.g. <node_id>, N, 563e
        }
        if w == "help" {
            break;
        }
        let mut p = path.clone();
        p.push(w.to_string());
        if !tree.contains_key(&p) {
            return Err(format!("`{line}`: `garage {}` does not exist", p.join(" ")));
        }
        path = p;
    }
    Ok(path)
}

#[test]
fn every_command_and_option_is_documented() {
    let tree = command_tree();
    let doc = cli_doc();
    // Sanity: the parser found the commands we know exist.
    for p in [
        "server",
        "status",
        "node id",
        "layout assign",
        "layout skip-dead-nodes",
    ] {
        let p: Vec<String> = p.split(' ').map(String::from).collect();
        assert!(tree.contains_key(&p), "{p:?} in {:?}", tree.keys());
    }
    assert!(tree[&vec!["layout".to_string(), "assign".to_string()]].contains(&"--zone".to_string()));
    let mut missing = BTreeSet::new();
    for (path, opts) in &tree {
        if !path.is_empty() {
            let cmd = format!("garage {}", path.join(" "));
            if !doc.contains(&cmd) {
                missing.insert(format!("command `{cmd}`"));
            }
        }
        for o in opts {
            // The option as a word: `--version` must not be satisfied by `--versions`.
            let present = doc.match_indices(o.as_str()).any(|(i, _)| {
                !doc[i + o.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            if !present {
                missing.insert(format!("option {o} (of `garage {}`)", path.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "doc/reference/cli.md does not mention:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_documented_command_exists() {
    let tree = command_tree();
    let lines = documented_commands(&cli_doc());
    assert!(lines.len() > 10, "the page names commands: {lines:?}");
    let errors: Vec<String> = lines
        .iter()
        .filter_map(|l| resolve(l, &tree).err())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // Every top-level command is named on the page.
    for (path, _) in tree.iter().filter(|(p, _)| p.len() == 1) {
        let covered = lines
            .iter()
            .any(|l| resolve(l, &tree).is_ok_and(|p| p.first() == path.first()));
        assert!(covered, "`garage {}` never shown", path.join(" "));
    }
}
