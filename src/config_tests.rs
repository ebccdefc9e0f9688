//! Tests of configuration parsing: old and new spellings, defaults, secrets, and errors that
//! name the key at fault.

use super::*;

const SECRET: &str = "1799bccfd7411eddcf9ebd316bc1f5287ad12a68094e1c6ac6abde7e6feae1ec";

fn base(extra: &str) -> String {
    format!(
        "metadata_dir = \"/tmp/meta\"\ndata_dir = \"/tmp/data\"\nrpc_bind_addr = \"[::]:3901\"\n{extra}\n"
    )
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_config(text, "test.toml", &SecretOverrides::default())
}

fn err_text(text: &str) -> String {
    parse(text).expect_err("must fail").to_string()
}

#[test]
fn original_quick_start_config() {
    let text = format!(
        r#"
metadata_dir = "/tmp/meta"
data_dir = "/tmp/data"
replication_mode = "none"
rpc_bind_addr = "[::]:3901"
rpc_public_addr = ""
rpc_secret = "{SECRET}"
bootstrap_peers = []

[s3_api]
s3_region = "garage"
api_bind_addr = "[::]:3900"
root_domain = ".s3.garage"

[s3_web]
bind_addr = "[::]:3902"
root_domain = ".web.garage"
index = "index.html"
"#
    );
    let c = parse(&text).expect("valid");
    assert_eq!(c.replication_factor, 1);
    assert_eq!(c.consistency_mode, ConsistencyMode::Consistent);
    assert_eq!(c.rpc_public_addr, None, "empty public address means none");
    assert_eq!(c.s3_api.s3_region, "garage");
    assert_eq!(c.s3_api_bind_addr, Some("[::]:3900".parse().expect("addr")));
    assert_eq!(
        c.s3_web.as_ref().map(|w| w.index.as_str()),
        Some("index.html")
    );
    assert_eq!(c.block_size, 1 << 20);
    assert_eq!(c.compression_level, CompressionLevel::Level(1));
    assert_eq!(c.sled_cache_capacity, 128 << 20);
    assert_eq!(c.sled_flush_every_ms, 2000);
    assert_eq!(c.db_engine, "sled");
    assert_eq!(c.rpc_secret[0], 0x17);
}

#[test]
fn new_spellings_and_sizes() {
    let c = parse(&base(&format!(
        r#"replication_factor = 3
consistency_mode = "degraded"
rpc_secret = "{SECRET}"
block_size = "4M"
sled_cache_capacity = "64MiB"
compression_level = "none"
metadata_fsync = true
data_fsync = true
[admin]
api_bind_addr = "127.0.0.1:3903"
admin_token = "tok"
"#
    )))
    .expect("valid");
    assert_eq!(c.replication_factor, 3);
    assert_eq!(c.consistency_mode, ConsistencyMode::Degraded);
    assert_eq!(c.block_size, 4_000_000);
    assert_eq!(c.sled_cache_capacity, 64 << 20);
    assert_eq!(c.compression_level, CompressionLevel::None);
    assert!(c.metadata_fsync && c.data_fsync);
    assert_eq!(c.admin_token.as_deref(), Some("tok"));
}

#[test]
fn old_replication_modes() {
    for (mode, rf, cm) in [
        ("1", 1, ConsistencyMode::Consistent),
        ("2", 2, ConsistencyMode::Consistent),
        ("3", 3, ConsistencyMode::Consistent),
        ("3-degraded", 3, ConsistencyMode::Degraded),
        ("2-dangerous", 2, ConsistencyMode::Dangerous),
    ] {
        let c = parse(&base(&format!(
            "replication_mode = \"{mode}\"\nrpc_secret = \"{SECRET}\""
        )))
        .expect("valid");
        assert_eq!(
            (c.replication_factor, c.consistency_mode),
            (rf, cm),
            "{mode}"
        );
    }
}

#[test]
fn several_data_dirs() {
    let c = parse(
        &base(&format!(
            r#"replication_factor = 1
rpc_secret = "{SECRET}"
data_dir = [ {{ path = "/a", capacity = "2T" }}, {{ path = "/b", read_only = true }} ]"#
        ))
        .replace("data_dir = \"/tmp/data\"\n", ""),
    )
    .expect("valid");
    assert_eq!(c.data_dirs.len(), 2);
    assert_eq!(c.data_dirs[0].capacity, Some(2_000_000_000_000));
    assert!(c.data_dirs[1].read_only);
}

#[test]
fn errors_name_the_key() {
    let s = format!("rpc_secret = \"{SECRET}\"\n");
    let e = err_text(&base(&format!(
        "{s}replication_factor = 1\nbogus_option = 3"
    )));
    // The line and the key, not the dozens of keys of the top level.
    assert!(e.contains("line 6: unknown field `bogus_option`"), "{e}");
    assert!(!e.contains("metadata_fsync"), "{e}");
    let e = err_text(&base(&format!(
        "{s}replication_factor = 1\n[s3_api]\napi_bind_adr = \"x\""
    )));
    // A section's few keys are listed, to spot the typo.
    assert!(
        e.contains("line 7: unknown field `api_bind_adr`") && e.contains("`api_bind_addr`"),
        "{e}"
    );
    let e = err_text(&base("replication_factor = 1\nrpc_secret = \"abcd\""));
    assert!(e.contains("rpc_secret") && e.contains("32 bytes"), "{e}");
    let e = err_text(&base("replication_factor = 1\nrpc_secret = \"zz\""));
    assert!(e.contains("rpc_secret"), "{e}");
    let e = err_text(&base("replication_factor = 1"));
    assert!(e.contains("rpc_secret") && e.contains("missing"), "{e}");
    let e = err_text(&base(&s));
    assert!(e.contains("replication_factor"), "{e}");
    let e = err_text(&base(&format!("{s}replication_mode = \"5\"")));
    assert!(e.contains("replication_mode"), "{e}");
    let e = err_text(&base(&format!(
        "{s}replication_factor = 1\nblock_size = \"lots\""
    )));
    assert!(e.contains("block_size"), "{e}");
    let e = err_text(&base(&format!(
        "{s}replication_factor = 1\ncompression_level = 99"
    )));
    assert!(e.contains("compression_level"), "{e}");
    let e = err_text(&base(&format!(
        "{s}replication_factor = 1\ndb_engine = \"rocks\""
    )));
    assert!(e.contains("db_engine"), "{e}");
    let e = err_text(&base(&format!(
        "{s}replication_factor = 1\nbootstrap_peers = [\"nope\"]"
    )));
    assert!(e.contains("bootstrap_peers[0]"), "{e}");
    let e = err_text(
        &base(&format!("{s}replication_factor = 1")).replace("[::]:3901", "localhost-3901"),
    );
    assert!(
        e.contains("rpc_bind_addr") && e.contains("localhost-3901"),
        "{e}"
    );
    let e = err_text(&format!(
        "{s}replication_factor = 1\nrpc_bind_addr = \"[::]:1\"\ndata_dir = \"/d\""
    ));
    assert!(e.contains("metadata_dir"), "{e}");
    let e = err_text("this is = = not toml");
    assert!(e.contains("test.toml"), "{e}");
}

#[test]
fn secrets_from_file_and_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    crate::util::file::write_atomic(&path, format!("{SECRET}\n").as_bytes(), Some(0o600))
        .expect("write");
    let text = base(&format!(
        "replication_factor = 1\nrpc_secret_file = \"{}\"",
        path.display()
    ));
    let c = parse(&text).expect("valid");
    assert_eq!(hex::encode(c.rpc_secret), SECRET);

    // A secret file readable by others is refused unless explicitly allowed.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = err_text(&text);
        assert!(e.contains("readable by other users"), "{e}");
        let ok = parse(&format!("{text}\nallow_world_readable_secrets = true"));
        assert!(ok.is_ok());
    }

    // Both forms in the file: refused.
    let e = err_text(&format!("{text}\nrpc_secret = \"{SECRET}\""));
    assert!(e.contains("only one"), "{e}");

    // The environment (override) wins over the file.
    let other = "00".repeat(32);
    let over = SecretOverrides {
        rpc_secret: Some(other.clone()),
        admin_token: Some("from-env".into()),
        ..Default::default()
    };
    let c = parse_config(
        &base(&format!(
            "replication_factor = 1\nrpc_secret = \"{SECRET}\""
        )),
        "t",
        &over,
    )
    .expect("valid");
    assert_eq!(hex::encode(c.rpc_secret), other);
    assert_eq!(c.admin_token.as_deref(), Some("from-env"));

    // Missing secret file: named.
    let e = err_text(&base(
        "replication_factor = 1\nrpc_secret_file = \"/nonexistent/secret\"",
    ));
    assert!(e.contains("/nonexistent/secret"), "{e}");
}

#[test]
fn unreadable_config_file_is_named() {
    let e = read_config(
        Path::new("/nonexistent/garage.toml"),
        &SecretOverrides::default(),
    )
    .expect_err("must fail")
    .to_string();
    assert!(e.contains("/nonexistent/garage.toml"), "{e}");
}
