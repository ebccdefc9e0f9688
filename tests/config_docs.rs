//! The configuration reference stays in step with the parser: every key `garage.toml` accepts
//! (as listed by `garage::config::known_keys`, which reads the parser's own field lists) is
//! documented in `doc/reference/configuration.md`, in the section of its table, and every key the
//! page's tables document is one the parser accepts.

use std::collections::{BTreeMap, BTreeSet};

use garage::config::{known_keys, parse_config, SecretOverrides};

const DOC: &str = "doc/reference/configuration.md";

fn doc_text() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The page cut at its `## ` headings: heading text → body.
fn sections(doc: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            if let Some((k, v)) = current.take() {
                out.insert(k, v);
            }
            current = Some((h.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((k, v)) = current {
        out.insert(k, v);
    }
    out
}

/// The heading that documents the keys of a prefix (`""` top level, `"s3_api."`, …).
fn heading_for(prefix: &str) -> String {
    match prefix.trim_end_matches('.') {
        // The entries of a list of data directories are described in the `data_dir` row.
        "" | "data_dir" => "Top level".to_string(),
        section => format!("`[{section}]`"),
    }
}

/// The text inside backticks in `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Identifier-like words (`[A-Za-z0-9_]+`) of some text.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

fn split_key(key: &str) -> (&str, &str) {
    match key.rsplit_once('.') {
        Some((section, name)) => (section, name),
        None => ("", key),
    }
}

#[test]
fn the_parser_lists_its_keys() {
    let keys: BTreeSet<String> = known_keys().into_iter().collect();
    for expected in [
        "metadata_dir",
        "data_dir",
        "rpc_secret",
        "replication_factor",
        "replication_mode",
        "s3_api.api_bind_addr",
        "s3_api.root_domain",
        "s3_web.bind_addr",
        "s3_web.index",
        "admin.metrics_token",
        "data_dir.capacity",
    ] {
        assert!(keys.contains(expected), "{expected} missing from {keys:?}");
    }
    assert!(!keys.contains("no_such_key"));
}

/// Each listed key passes the unknown-key check (whatever else is wrong with the probe file),
/// and a made-up key does not: the list and the check agree.
#[test]
fn every_listed_key_passes_the_unknown_key_check() {
    let parse_error = |text: &str| {
        parse_config(text, "probe.toml", &SecretOverrides::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    for key in known_keys() {
        let (section, name) = split_key(&key);
        let text = match section {
            "" => format!("{name} = 0\n"),
            // Entries of a data_dir list go through an untagged enum: no field-level message.
            "data_dir" => continue,
            s => format!("[{s}]\n{name} = 0\n"),
        };
        let err = parse_error(&text);
        assert!(
            !err.contains("unknown field"),
            "{key} is listed but refused as unknown: {err}"
        );
    }
    for text in ["made_up_key = 0\n", "[s3_api]\nmade_up_key = 0\n"] {
        let err = parse_error(text);
        assert!(err.contains("unknown field"), "{text:?} accepted: {err}");
        assert!(
            err.contains("made_up_key"),
            "error does not name the key: {err}"
        );
    }
}

#[test]
fn every_accepted_key_is_documented_in_its_section() {
    let doc = doc_text();
    let sections = sections(&doc);
    let mut missing = Vec::new();
    for key in known_keys() {
        let (section, name) = split_key(&key);
        let heading = heading_for(section);
        // A section (`s3_api`, …) is documented by a heading of its own.
        let is_section_heading = section.is_empty() && sections.contains_key(&format!("`[{key}]`"));
        let documented = is_section_heading
            || sections.get(&heading).is_some_and(|body| {
                code_spans(body)
                    .into_iter()
                    .any(|span| words(span).any(|w| w == name))
            });
        if !documented {
            missing.push(format!("{key} (under `## {heading}`)"));
        }
    }
    assert!(
        missing.is_empty(),
        "configuration keys accepted by the parser but not documented in {DOC}:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_documented_key_is_accepted() {
    let doc = doc_text();
    let known: BTreeSet<String> = known_keys().into_iter().collect();
    let mut unknown = Vec::new();
    let mut rows = 0;
    for (heading, body) in sections(&doc) {
        let prefix = match heading.as_str() {
            "Top level" => String::new(),
            h if h.starts_with("`[") && h.ends_with("]`") => {
                format!("{}.", h.trim_start_matches("`[").trim_end_matches("]`"))
            }
            _ => continue,
        };
        // Table rows: the first cell names the key(s), in backticks.
        for line in body.lines().filter(|l| l.starts_with("| `")) {
            rows += 1;
            let first = line.split('|').nth(1).unwrap_or("");
            for span in code_spans(first) {
                let key = format!("{prefix}{span}");
                if !known.contains(&key) {
                    unknown.push(key);
                }
            }
        }
    }
    assert!(
        rows > 30,
        "only {rows} key rows found in {DOC}: has its layout changed?"
    );
    assert!(
        unknown.is_empty(),
        "{DOC} documents keys the parser refuses: {unknown:?}"
    );
}
