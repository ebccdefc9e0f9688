//! `garage.toml`: every option, its default, the older spellings still accepted, secrets read
//! from the file, from `*_file` keys or from the environment, and validation with errors that
//! name the offending key or path.
//!
//! Unknown keys are refused (naming the key), so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::util::size::parse_size;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/garage.toml";

/// Why a configuration could not be loaded. Each message names the file, key or path at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration: `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot read secret file {path} (for `{key}`): {source}")]
    SecretFile {
        key: String,
        path: String,
        source: std::io::Error,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Consistency level of table reads and writes (DESIGN.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsistencyMode {
    Consistent,
    Degraded,
    Dangerous,
}

/// zstd level for stored blocks, or no compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionLevel {
    None,
    Level(i32),
}

/// One data directory with its share of the load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    pub path: PathBuf,
    /// Capacity in bytes (`None` for a single unnamed directory or a read-only one).
    pub capacity: Option<u64>,
    pub read_only: bool,
}

/// The `[s3_api]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3ApiConfig {
    pub api_bind_addr: Option<String>,
    #[serde(default = "default_region")]
    pub s3_region: String,
    pub root_domain: Option<String>,
}

/// The `[s3_web]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub bind_addr: String,
    pub root_domain: Option<String>,
    #[serde(default = "default_index")]
    pub index: String,
    #[serde(default)]
    pub add_host_to_metrics: bool,
}

/// The `[admin]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub api_bind_addr: Option<String>,
    pub admin_token: Option<String>,
    pub admin_token_file: Option<PathBuf>,
    pub metrics_token: Option<String>,
    pub metrics_token_file: Option<PathBuf>,
    #[serde(default)]
    pub metrics_require_token: bool,
    pub trace_sink: Option<String>,
}

/// The file as written, before defaults are resolved and values validated.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    metadata_dir: Option<PathBuf>,
    data_dir: Option<RawDataDir>,
    #[serde(default = "default_db_engine")]
    db_engine: String,
    #[serde(default)]
    metadata_fsync: bool,
    #[serde(default)]
    data_fsync: bool,
    #[serde(default)]
    disable_scrub: bool,
    #[serde(default)]
    use_local_tz: bool,
    block_size: Option<SizeValue>,
    block_ram_buffer_max: Option<SizeValue>,
    sled_cache_capacity: Option<SizeValue>,
    sled_flush_every_ms: Option<u64>,
    lmdb_map_size: Option<SizeValue>,
    replication_mode: Option<String>,
    replication_factor: Option<u64>,
    consistency_mode: Option<ConsistencyMode>,
    compression_level: Option<toml::Value>,
    rpc_secret: Option<String>,
    rpc_secret_file: Option<PathBuf>,
    rpc_bind_addr: Option<String>,
    rpc_bind_outgoing: Option<bool>,
    rpc_public_addr: Option<String>,
    rpc_timeout_msec: Option<u64>,
    rpc_ping_timeout_msec: Option<u64>,
    #[serde(default)]
    bootstrap_peers: Vec<String>,
    #[serde(default)]
    allow_world_readable_secrets: bool,
    table_sync_interval_secs: Option<u64>,
    tombstone_gc_delay_secs: Option<u64>,
    block_gc_delay_secs: Option<u64>,
    scrub_pause_msec: Option<u64>,
    consul_host: Option<String>,
    consul_service_name: Option<String>,
    s3_api: Option<S3ApiConfig>,
    s3_web: Option<WebConfig>,
    #[serde(default)]
    admin: AdminConfig,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDataDir {
    Single(PathBuf),
    Many(Vec<RawDataDirEntry>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataDirEntry {
    path: PathBuf,
    capacity: Option<SizeValue>,
    #[serde(default)]
    read_only: bool,
}

/// A size written as an integer or as a string with a unit ("1M", "128MiB").
#[derive(Debug, Clone)]
struct SizeValue(Result<u64, String>);

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Int(u64),
            Str(String),
        }
        Ok(SizeValue(match Either::deserialize(d)? {
            Either::Int(n) => Ok(n),
            Either::Str(s) => parse_size(&s).map_err(|e| e.to_string()),
        }))
    }
}

fn default_region() -> String {
    "garage".into()
}
fn default_index() -> String {
    "index.html".into()
}
fn default_db_engine() -> String {
    "sled".into()
}

/// The validated configuration with every default resolved.
#[derive(Clone, Debug)]
pub struct Config {
    pub metadata_dir: PathBuf,
    pub data_dirs: Vec<DataDir>,
    pub db_engine: String,
    pub metadata_fsync: bool,
    pub data_fsync: bool,
    pub disable_scrub: bool,
    pub use_local_tz: bool,
    pub block_size: u64,
    pub block_ram_buffer_max: u64,
    pub sled_cache_capacity: u64,
    pub sled_flush_every_ms: u64,
    pub lmdb_map_size: Option<u64>,
    pub replication_factor: usize,
    pub consistency_mode: ConsistencyMode,
    pub compression_level: CompressionLevel,
    /// The 32-byte network key of the cluster.
    pub rpc_secret: [u8; 32],
    pub rpc_bind_addr: SocketAddr,
    pub rpc_bind_outgoing: bool,
    pub rpc_public_addr: Option<String>,
    pub rpc_timeout_msec: u64,
    pub rpc_ping_timeout_msec: u64,
    pub bootstrap_peers: Vec<String>,
    pub allow_world_readable_secrets: bool,
    /// Interval between two full anti-entropy rounds of the tables.
    pub table_sync_interval_secs: u64,
    /// Age a tombstone must reach before it may be garbage-collected.
    pub tombstone_gc_delay_secs: u64,
    /// Delay before a block whose reference count fell to zero is deleted.
    pub block_gc_delay_secs: u64,
    /// Pause of the scrub worker between two blocks (its speed limit).
    pub scrub_pause_msec: u64,
    pub consul_host: Option<String>,
    pub consul_service_name: Option<String>,
    pub s3_api: S3ApiConfig,
    pub s3_api_bind_addr: Option<SocketAddr>,
    pub s3_web: Option<WebConfig>,
    pub s3_web_bind_addr: Option<SocketAddr>,
    pub admin: AdminConfig,
    pub admin_api_bind_addr: Option<SocketAddr>,
    pub admin_token: Option<String>,
    pub metrics_token: Option<String>,
}

/// Secrets given outside the file (environment or command line); they take precedence.
#[derive(Clone, Debug, Default)]
pub struct SecretOverrides {
    pub rpc_secret: Option<String>,
    pub rpc_secret_file: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub metrics_token: Option<String>,
}

impl SecretOverrides {
    /// Reads `GARAGE_RPC_SECRET`, `GARAGE_RPC_SECRET_FILE`, `GARAGE_ADMIN_TOKEN` and
    /// `GARAGE_METRICS_TOKEN` from the environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            rpc_secret: var("GARAGE_RPC_SECRET"),
            rpc_secret_file: var("GARAGE_RPC_SECRET_FILE").map(PathBuf::from),
            admin_token: var("GARAGE_ADMIN_TOKEN"),
            metrics_token: var("GARAGE_METRICS_TOKEN"),
        }
    }
}

/// Reads and validates the configuration file at `path`.
pub fn read_config(path: &Path, overrides: &SecretOverrides) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_config(&text, &path.display().to_string(), overrides)
}

/// Parses and validates configuration text; `origin` names it in errors.
pub fn parse_config(
    text: &str,
    origin: &str,
    overrides: &SecretOverrides,
) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.to_string(),
        message: toml_error_message(text, &e),
    })?;
    resolve(raw, overrides)
}

/// Largest list of accepted keys quoted in an unknown-key error; longer ones (the top level has
/// dozens of keys) are replaced by a pointer to the reference.
const MAX_QUOTED_KEYS: usize = 8;

/// The parser's message, prefixed with the line at fault. For an unknown key, serde lists every
/// accepted key: a short list (a section) helps spot a typo, a long one buries the key at fault.
fn toml_error_message(text: &str, e: &toml::de::Error) -> String {
    let mut message = e.message().trim().to_string();
    if let Some((unknown, expected)) = message.split_once(", expected one of ") {
        if expected.matches('`').count() / 2 > MAX_QUOTED_KEYS {
            message = format!(
                "{unknown} (the accepted keys are listed in doc/reference/configuration.md)"
            );
        }
    }
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not a socket address (expected e.g. \"[::]:3901\" or \"127.0.0.1:3901\")"),
        )
    })
}

fn size(key: &str, v: Option<SizeValue>, default: u64) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(SizeValue(Ok(n))) => Ok(n),
        Some(SizeValue(Err(e))) => Err(invalid(key, e)),
    }
}

/// Reads a secret file, refusing files readable by others unless allowed.
fn read_secret_file(
    key: &str,
    path: &Path,
    allow_world_readable: bool,
) -> Result<String, ConfigError> {
    let io_err = |source| ConfigError::SecretFile {
        key: key.to_string(),
        path: path.display().to_string(),
        source,
    };
    #[cfg(unix)]
    if !allow_world_readable {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io_err)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(invalid(
                key,
                format!(
                    "secret file {} is readable by other users (mode {:o}); chmod 600 it or set allow_world_readable_secrets = true",
                    path.display(),
                    mode & 0o777
                ),
            ));
        }
    }
    let s = std::fs::read_to_string(path).map_err(io_err)?;
    Ok(s.trim().to_string())
}

/// Picks a secret from, in order of precedence: override value, override file, file value,
/// file `*_file` key. Setting both the value and the file in the config is an error.
fn pick_secret(
    key: &str,
    over_value: Option<&String>,
    over_file: Option<&PathBuf>,
    value: Option<&String>,
    file: Option<&PathBuf>,
    allow_world_readable: bool,
) -> Result<Option<String>, ConfigError> {
    if let Some(v) = over_value {
        return Ok(Some(v.trim().to_string()));
    }
    if let Some(p) = over_file {
        return read_secret_file(key, p, allow_world_readable).map(Some);
    }
    match (value, file) {
        (Some(_), Some(_)) => Err(invalid(
            key,
            format!("set only one of `{key}` and `{key}_file`"),
        )),
        (Some(v), None) => Ok(Some(v.trim().to_string())),
        (None, Some(p)) => {
            read_secret_file(&format!("{key}_file"), p, allow_world_readable).map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// Decodes a 32-byte hex `rpc_secret`.
pub fn decode_rpc_secret(s: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = hex::decode(s.trim()).map_err(|_| {
        invalid(
            "rpc_secret",
            "must be 64 hex characters (generate one with `openssl rand -hex 32`)",
        )
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        invalid(
            "rpc_secret",
            format!(
                "must be 32 bytes (64 hex characters), got {} bytes (generate one with `openssl rand -hex 32`)",
                bytes.len()
            ),
        )
    })
}

fn replication_factor(raw: &RawConfig) -> Result<(usize, Option<ConsistencyMode>), ConfigError> {
    match (&raw.replication_mode, raw.replication_factor) {
        (Some(_), Some(_)) => Err(invalid(
            "replication_mode",
            "set either `replication_factor` (new) or `replication_mode` (old), not both",
        )),
        (None, Some(0)) => Err(invalid("replication_factor", "must be at least 1")),
        (None, Some(n)) => Ok((n as usize, None)),
        (Some(mode), None) => match mode.as_str() {
            "none" | "1" => Ok((1, None)),
            "2" => Ok((2, None)),
            "2-dangerous" => Ok((2, Some(ConsistencyMode::Dangerous))),
            "3" => Ok((3, None)),
            "3-degraded" => Ok((3, Some(ConsistencyMode::Degraded))),
            "3-dangerous" => Ok((3, Some(ConsistencyMode::Dangerous))),
            other => Err(invalid(
                "replication_mode",
                format!("unknown mode {other:?} (expected \"none\", \"1\", \"2\" or \"3\")"),
            )),
        },
        (None, None) => Err(invalid(
            "replication_factor",
            "missing: set `replication_factor` (1, 2, 3...) or the older `replication_mode`",
        )),
    }
}

fn compression(v: Option<&toml::Value>) -> Result<CompressionLevel, ConfigError> {
    let key = "compression_level";
    match v {
        None => Ok(CompressionLevel::Level(1)),
        Some(toml::Value::Integer(n)) if (-99..=22).contains(n) => {
            Ok(CompressionLevel::Level(*n as i32))
        }
        Some(toml::Value::String(s)) if s == "none" => Ok(CompressionLevel::None),
        Some(toml::Value::String(s)) => s
            .parse::<i32>()
            .ok()
            .filter(|n| (-99..=22).contains(n))
            .map(CompressionLevel::Level)
            .ok_or_else(|| {
                invalid(
                    key,
                    format!("{s:?} is not a zstd level (-99..=22) or \"none\""),
                )
            }),
        Some(other) => Err(invalid(
            key,
            format!("{other} is not a zstd level (-99..=22) or \"none\""),
        )),
    }
}

fn data_dirs(raw: Option<RawDataDir>) -> Result<Vec<DataDir>, ConfigError> {
    match raw {
        None => Err(invalid(
            "data_dir",
            "missing: where should object data be stored?",
        )),
        Some(RawDataDir::Single(path)) => Ok(vec![DataDir {
            path,
            capacity: None,
            read_only: false,
        }]),
        Some(RawDataDir::Many(entries)) => {
            if entries.is_empty() {
                return Err(invalid("data_dir", "the list of data directories is empty"));
            }
            entries
                .into_iter()
                .map(|e| {
                    let capacity = match e.capacity {
                        Some(c) => Some(size("data_dir.capacity", Some(c), 0)?),
                        None if !e.read_only => {
                            return Err(invalid(
                                "data_dir",
                                format!(
                                    "{}: give a `capacity` or set `read_only = true`",
                                    e.path.display()
                                ),
                            ))
                        }
                        None => None,
                    };
                    Ok(DataDir {
                        path: e.path,
                        capacity,
                        read_only: e.read_only,
                    })
                })
                .collect()
        }
    }
}

fn resolve(raw: RawConfig, over: &SecretOverrides) -> Result<Config, ConfigError> {
    let metadata_dir = raw
        .metadata_dir
        .clone()
        .ok_or_else(|| invalid("metadata_dir", "missing: where should metadata be stored?"))?;
    let (replication_factor, mode_consistency) = replication_factor(&raw)?;
    let consistency_mode = match (raw.consistency_mode, mode_consistency) {
        (Some(c), _) => c,
        (None, Some(c)) => c,
        (None, None) => ConsistencyMode::Consistent,
    };
    if !["sled"].contains(&raw.db_engine.as_str()) {
        return Err(invalid(
            "db_engine",
            format!(
                "unsupported engine {:?} (supported: \"sled\")",
                raw.db_engine
            ),
        ));
    }
    let allow = raw.allow_world_readable_secrets;
    let rpc_secret = pick_secret(
        "rpc_secret",
        over.rpc_secret.as_ref(),
        over.rpc_secret_file.as_ref(),
        raw.rpc_secret.as_ref(),
        raw.rpc_secret_file.as_ref(),
        allow,
    )?
    .ok_or_else(|| {
        invalid(
            "rpc_secret",
            "missing: set `rpc_secret`, `rpc_secret_file` or GARAGE_RPC_SECRET (generate one with `openssl rand -hex 32`)",
        )
    })?;
    let rpc_secret = decode_rpc_secret(&rpc_secret)?;
    let admin_token = pick_secret(
        "admin_token",
        over.admin_token.as_ref(),
        None,
        raw.admin.admin_token.as_ref(),
        raw.admin.admin_token_file.as_ref(),
        allow,
    )?;
    let metrics_token = pick_secret(
        "metrics_token",
        over.metrics_token.as_ref(),
        None,
        raw.admin.metrics_token.as_ref(),
        raw.admin.metrics_token_file.as_ref(),
        allow,
    )?;

    let rpc_bind_addr = parse_addr(
        "rpc_bind_addr",
        raw.rpc_bind_addr.as_deref().ok_or_else(|| {
            invalid(
                "rpc_bind_addr",
                "missing: the address to listen on for other nodes, e.g. \"[::]:3901\"",
            )
        })?,
    )?;
    let rpc_public_addr = raw.rpc_public_addr.clone().filter(|s| !s.is_empty());
    let s3_api = raw.s3_api.clone().unwrap_or(S3ApiConfig {
        api_bind_addr: None,
        s3_region: default_region(),
        root_domain: None,
    });
    let s3_api_bind_addr = match &s3_api.api_bind_addr {
        Some(a) => Some(parse_addr("s3_api.api_bind_addr", a)?),
        None => None,
    };
    let s3_web_bind_addr = match &raw.s3_web {
        Some(w) => Some(parse_addr("s3_web.bind_addr", &w.bind_addr)?),
        None => None,
    };
    let admin_api_bind_addr = match &raw.admin.api_bind_addr {
        Some(a) => Some(parse_addr("admin.api_bind_addr", a)?),
        None => None,
    };
    let block_size = size("block_size", raw.block_size.clone(), 1 << 20)?;
    if !(1024..=(16 << 20)).contains(&block_size) {
        return Err(invalid("block_size", "must be between 1 KiB and 16 MiB"));
    }
    for (i, peer) in raw.bootstrap_peers.iter().enumerate() {
        if peer
            .split_once('@')
            .is_none_or(|(id, addr)| id.len() != 64 || addr.is_empty())
        {
            return Err(invalid(
                &format!("bootstrap_peers[{i}]"),
                format!("{peer:?} is not of the form <64-hex node id>@<host>:<port>"),
            ));
        }
    }

    Ok(Config {
        metadata_dir,
        data_dirs: data_dirs(raw.data_dir)?,
        db_engine: raw.db_engine,
        metadata_fsync: raw.metadata_fsync,
        data_fsync: raw.data_fsync,
        disable_scrub: raw.disable_scrub,
        use_local_tz: raw.use_local_tz,
        block_size,
        block_ram_buffer_max: size("block_ram_buffer_max", raw.block_ram_buffer_max, 256 << 20)?,
        sled_cache_capacity: size("sled_cache_capacity", raw.sled_cache_capacity, 128 << 20)?,
        sled_flush_every_ms: raw.sled_flush_every_ms.unwrap_or(2000),
        lmdb_map_size: match raw.lmdb_map_size {
            Some(v) => Some(size("lmdb_map_size", Some(v), 0)?),
            None => None,
        },
        replication_factor,
        consistency_mode,
        compression_level: compression(raw.compression_level.as_ref())?,
        rpc_secret,
        rpc_bind_addr,
        rpc_bind_outgoing: raw.rpc_bind_outgoing.unwrap_or(false),
        rpc_public_addr,
        rpc_timeout_msec: raw.rpc_timeout_msec.unwrap_or(300_000),
        rpc_ping_timeout_msec: raw.rpc_ping_timeout_msec.unwrap_or(10_000),
        bootstrap_peers: raw.bootstrap_peers,
        allow_world_readable_secrets: allow,
        table_sync_interval_secs: raw.table_sync_interval_secs.unwrap_or(600).max(1),
        tombstone_gc_delay_secs: raw.tombstone_gc_delay_secs.unwrap_or(24 * 3600),
        block_gc_delay_secs: raw.block_gc_delay_secs.unwrap_or(600),
        scrub_pause_msec: raw.scrub_pause_msec.unwrap_or(100),
        consul_host: raw.consul_host,
        consul_service_name: raw.consul_service_name,
        s3_api,
        s3_api_bind_addr,
        s3_web: raw.s3_web,
        s3_web_bind_addr,
        admin: raw.admin,
        admin_api_bind_addr,
        admin_token,
        metrics_token,
    })
}

/// Where `garage server --single-node` keeps everything when no configuration file exists.
pub const SINGLE_NODE_DEFAULT_DIR: &str = "./garage-data";

/// The embedded configuration of `garage server --single-node` without a configuration file:
/// everything under `dir` (metadata, data, and a generated `rpc_secret` kept in
/// `dir/rpc_secret`), services on 127.0.0.1 (S3 3900, RPC 3901, web 3902, admin 3903).
pub fn single_node_config(dir: &Path) -> Result<Config, ConfigError> {
    std::fs::create_dir_all(dir).map_err(|source| ConfigError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let secret_path = dir.join("rpc_secret");
    let secret = match std::fs::read_to_string(&secret_path) {
        Ok(s) => s.trim().to_string(),
        Err(_) => {
            let s = hex::encode(rand::random::<[u8; 32]>());
            crate::util::file::write_atomic(&secret_path, s.as_bytes(), Some(0o600)).map_err(
                |source| ConfigError::SecretFile {
                    key: "rpc_secret".into(),
                    path: secret_path.display().to_string(),
                    source,
                },
            )?;
            s
        }
    };
    let dir_str = dir
        .display()
        .to_string()
        .replace('\\', "/")
        .replace('"', "\\\"");
    let text = format!(
        r#"metadata_dir = "{dir_str}/meta"
data_dir = "{dir_str}/data"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "{secret}"

[s3_api]
api_bind_addr = "127.0.0.1:3900"
s3_region = "garage"
root_domain = ".s3.garage.localhost"

[s3_web]
bind_addr = "127.0.0.1:3902"
root_domain = ".web.garage.localhost"
index = "index.html"

[admin]
api_bind_addr = "127.0.0.1:3903"
"#
    );
    parse_config(
        &text,
        "(embedded single-node configuration)",
        &SecretOverrides::default(),
    )
}

impl Config {
    /// Database options derived from this configuration.
    pub fn db_options(&self) -> crate::db::OpenOptions {
        crate::db::OpenOptions {
            engine: self.db_engine.clone(),
            fsync: self.metadata_fsync,
            sled_cache_capacity: self.sled_cache_capacity,
            sled_flush_every_ms: self.sled_flush_every_ms,
        }
    }
}

/// Every key the parser accepts: `key` at the top level, `s3_api.key`, `s3_web.key`,
/// `admin.key`, and `data_dir.key` for the entries of a list of data directories. Read from the
/// field lists the unknown-key check itself uses, so a new key is listed without further work.
pub fn known_keys() -> Vec<String> {
    use crate::util::serde_fields::struct_fields;
    [
        ("", struct_fields::<RawConfig>()),
        ("s3_api.", struct_fields::<S3ApiConfig>()),
        ("s3_web.", struct_fields::<WebConfig>()),
        ("admin.", struct_fields::<AdminConfig>()),
        ("data_dir.", struct_fields::<RawDataDirEntry>()),
    ]
    .into_iter()
    .flat_map(|(prefix, fields)| fields.iter().map(move |f| format!("{prefix}{f}")))
    .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
