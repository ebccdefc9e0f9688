//! `garage bucket …`, `garage key …` and `garage block …`: commands and their output.

use clap::{Args, Subcommand};

use crate::admin::bucket_key::{BucketInfo, KeyInfo, QuotaChange};
use crate::admin::{AdminResponse, AdminRpc, BlockInfoView};
use crate::util::size::{format_size, parse_size};
use crate::util::time::msec_to_rfc3339;

use super::table::format_table;

/// `garage bucket …`
#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// List the buckets of the cluster
    List,
    /// Show a bucket: id, aliases, authorized keys, website, objects, bytes and quotas
    Info {
        /// Bucket name (global alias) or id (prefix of 8+ hex characters)
        name: String,
    },
    /// Create a bucket with a global alias
    Create {
        /// Bucket name
        name: String,
    },
    /// Delete an empty bucket
    Delete {
        /// Bucket name or id
        name: String,
        /// Confirm the deletion
        #[arg(long)]
        yes: bool,
    },
    /// Add an alias to a bucket (global, or local to a key with --local)
    Alias(AliasOpt),
    /// Remove an alias of a bucket
    Unalias(AliasOpt),
    /// Allow or deny serving the bucket as a static website on the web endpoint
    Website(WebsiteOpt),
    /// Give a key permissions on a bucket
    Allow(PermOpt),
    /// Take permissions of a key on a bucket away
    Deny(PermOpt),
    /// Set or remove the quotas of a bucket (maximum total size, maximum number of objects)
    SetQuotas(QuotaOpt),
    /// Abort the incomplete multipart uploads of buckets, and free their data
    CleanupIncompleteUploads {
        /// Abort only uploads started more than this long ago (e.g. 30m, 12h, 1d, 2w)
        #[arg(long, default_value = "1d", value_parser = duration_arg)]
        older_than: std::time::Duration,
        /// Bucket names or ids
        #[arg(required = true)]
        buckets: Vec<String>,
    },
}

/// Parses a duration argument (`30m`, `12h`, `1d`, `2w`).
pub fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::util::time::parse_duration(s).map_err(|e| e.to_string())
}

/// Options of `bucket set-quotas`.
#[derive(Debug, Args)]
pub struct QuotaOpt {
    /// The bucket (name or id)
    pub bucket: String,
    /// Maximum total size of the bucket's objects (e.g. 10G, 500M, 1TiB), or `none`
    #[arg(long)]
    pub max_size: Option<String>,
    /// Maximum number of objects in the bucket, or `none`
    #[arg(long)]
    pub max_objects: Option<String>,
}

/// Parses a quota value: `none` removes the quota.
fn quota_value(
    v: &Option<String>,
    option: &str,
    parse: impl Fn(&str) -> anyhow::Result<u64>,
) -> anyhow::Result<QuotaChange> {
    match v.as_deref().map(str::trim) {
        None => Ok(QuotaChange::Keep),
        Some(t) if t.eq_ignore_ascii_case("none") => Ok(QuotaChange::Remove),
        Some(t) => parse(t)
            .map(QuotaChange::Set)
            .map_err(|e| anyhow::anyhow!("{option}: {e}")),
    }
}

/// Options of `bucket alias` / `bucket unalias`.
#[derive(Debug, Args)]
pub struct AliasOpt {
    /// The bucket (name or id)
    pub bucket: String,
    /// The alias
    pub name: String,
    /// Make the alias local to this key (id, prefix or name) instead of global
    #[arg(long)]
    pub local: Option<String>,
}

/// Options of `bucket website`.
#[derive(Debug, Args)]
pub struct WebsiteOpt {
    /// The bucket (name or id)
    pub bucket: String,
    /// Allow website access
    #[arg(long, conflicts_with = "deny")]
    pub allow: bool,
    /// Deny website access
    #[arg(long)]
    pub deny: bool,
    /// Index document served for paths ending in / (default index.html)
    #[arg(short = 'i', long = "index-document")]
    pub index_document: Option<String>,
    /// Document served with status 404 when an object is missing
    #[arg(short = 'e', long = "error-document")]
    pub error_document: Option<String>,
}

/// Options of `bucket allow` / `bucket deny`.
#[derive(Debug, Args)]
pub struct PermOpt {
    /// The bucket (name or id)
    pub bucket: String,
    /// The key (id, unambiguous prefix or name)
    #[arg(long)]
    pub key: String,
    /// Read permission
    #[arg(long)]
    pub read: bool,
    /// Write permission
    #[arg(long)]
    pub write: bool,
    /// Owner permission (delete the bucket, configure it)
    #[arg(long)]
    pub owner: bool,
}

/// `garage key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the access keys
    List,
    /// Show a key: id, name, permissions, buckets
    Info {
        /// Key id, unambiguous prefix or name
        key: String,
        /// Also show the secret key
        #[arg(long)]
        show_secret: bool,
    },
    /// Create a key (prints its id and secret)
    #[command(alias = "new")]
    Create {
        /// Name of the key
        name: Option<String>,
        /// Name of the key (older spelling of the positional argument)
        #[arg(long = "name", hide = true)]
        name_opt: Option<String>,
    },
    /// Rename a key
    Rename {
        /// Key id, prefix or name
        key: String,
        /// New name
        new_name: String,
    },
    /// Delete a key
    Delete {
        /// Key id, prefix or name
        key: String,
        /// Confirm the deletion
        #[arg(long)]
        yes: bool,
    },
    /// Import an existing key id and secret (e.g. from another cluster)
    Import {
        /// Key id (GK + 24 hex characters)
        key_id: String,
        /// Secret key (64 hex characters)
        secret_key: String,
        /// Name of the key
        #[arg(short = 'n', long = "name", default_value = "Imported key")]
        name: String,
        /// Confirm the import
        #[arg(long)]
        yes: bool,
    },
    /// Give a key a permission (only --create-bucket exists)
    Allow(KeyPermOpt),
    /// Take a permission of a key away
    Deny(KeyPermOpt),
}

/// Options of `key allow` / `key deny`.
#[derive(Debug, Args)]
pub struct KeyPermOpt {
    /// Key id, prefix or name
    pub key: String,
    /// Permission to create buckets
    #[arg(long)]
    pub create_bucket: bool,
}

/// `garage block …`
#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// List blocks whose resync failed, with their retry times
    ListErrors,
    /// Show a block: reference count, versions referencing it, where it is
    Info {
        /// Block hash (64 hex characters)
        hash: String,
    },
    /// Retry the resync of failed blocks now
    RetryNow {
        /// Retry every failed block
        #[arg(long)]
        all: bool,
        /// Block hashes
        hashes: Vec<String>,
    },
    /// Delete the objects that use these blocks (for blocks lost for good)
    Purge {
        /// Confirm: this deletes data
        #[arg(long)]
        yes: bool,
        /// Block hashes
        #[arg(required = true)]
        hashes: Vec<String>,
    },
}

pub fn bucket_request(cmd: &BucketCommand) -> anyhow::Result<AdminRpc> {
    Ok(match cmd {
        BucketCommand::List => AdminRpc::BucketList,
        BucketCommand::Info { name } => AdminRpc::BucketInfo { name: name.clone() },
        BucketCommand::Create { name } => AdminRpc::BucketCreate { name: name.clone() },
        BucketCommand::Delete { name, yes } => {
            if !yes {
                anyhow::bail!("add --yes to delete bucket {name}");
            }
            AdminRpc::BucketDelete { name: name.clone() }
        }
        BucketCommand::Website(o) => {
            if o.allow == o.deny {
                anyhow::bail!("give exactly one of --allow and --deny");
            }
            AdminRpc::BucketWebsite {
                bucket: o.bucket.clone(),
                allow: o.allow,
                index: o.index_document.clone(),
                error: o.error_document.clone(),
            }
        }
        BucketCommand::Alias(o) => AdminRpc::BucketAlias {
            bucket: o.bucket.clone(),
            name: o.name.clone(),
            local: o.local.clone(),
        },
        BucketCommand::Unalias(o) => AdminRpc::BucketUnalias {
            bucket: o.bucket.clone(),
            name: o.name.clone(),
            local: o.local.clone(),
        },
        BucketCommand::SetQuotas(o) => {
            let max_size = quota_value(&o.max_size, "--max-size", |t| Ok(parse_size(t)?))?;
            let max_objects = quota_value(&o.max_objects, "--max-objects", |t| {
                t.parse::<u64>().map_err(|_| {
                    anyhow::anyhow!("invalid number {t:?}: expected an integer or `none`")
                })
            })?;
            if max_size == QuotaChange::Keep && max_objects == QuotaChange::Keep {
                anyhow::bail!(
                    "give --max-size and/or --max-objects (a value, or `none` to remove the quota)"
                );
            }
            AdminRpc::BucketSetQuotas {
                bucket: o.bucket.clone(),
                max_size,
                max_objects,
            }
        }
        BucketCommand::CleanupIncompleteUploads {
            older_than,
            buckets,
        } => AdminRpc::BucketCleanupIncompleteUploads {
            buckets: buckets.clone(),
            older_than_secs: older_than.as_secs(),
        },
        BucketCommand::Allow(o) | BucketCommand::Deny(o) => AdminRpc::BucketPerm {
            bucket: o.bucket.clone(),
            key: o.key.clone(),
            read: o.read,
            write: o.write,
            owner: o.owner,
            allow: matches!(cmd, BucketCommand::Allow(_)),
        },
    })
}

pub fn key_request(cmd: &KeyCommand) -> anyhow::Result<AdminRpc> {
    Ok(match cmd {
        KeyCommand::List => AdminRpc::KeyList,
        KeyCommand::Info { key, show_secret } => AdminRpc::KeyInfo {
            key: key.clone(),
            show_secret: *show_secret,
        },
        KeyCommand::Create { name, name_opt } => AdminRpc::KeyCreate {
            name: name
                .clone()
                .or_else(|| name_opt.clone())
                .unwrap_or_else(|| "Unnamed key".into()),
        },
        KeyCommand::Rename { key, new_name } => AdminRpc::KeyRename {
            key: key.clone(),
            name: new_name.clone(),
        },
        KeyCommand::Delete { key, yes } => {
            if !yes {
                anyhow::bail!("add --yes to delete key {key}");
            }
            AdminRpc::KeyDelete { key: key.clone() }
        }
        KeyCommand::Import {
            key_id,
            secret_key,
            name,
            yes,
        } => {
            if !yes {
                anyhow::bail!("add --yes to import a key: make sure it is not used by another cluster you do not control");
            }
            AdminRpc::KeyImport {
                id: key_id.clone(),
                secret: secret_key.clone(),
                name: name.clone(),
            }
        }
        KeyCommand::Allow(o) | KeyCommand::Deny(o) => {
            if !o.create_bucket {
                anyhow::bail!("give the permission to change: --create-bucket");
            }
            AdminRpc::KeyCreateBucketPerm {
                key: o.key.clone(),
                allow: matches!(cmd, KeyCommand::Allow(_)),
            }
        }
    })
}

pub fn block_request(cmd: &BlockCommand) -> anyhow::Result<AdminRpc> {
    Ok(match cmd {
        BlockCommand::ListErrors => AdminRpc::BlockListErrors,
        BlockCommand::Info { hash } => AdminRpc::BlockInfo { hash: hash.clone() },
        BlockCommand::RetryNow { all, hashes } => AdminRpc::BlockRetryNow {
            all: *all,
            hashes: hashes.clone(),
        },
        BlockCommand::Purge { yes, hashes } => {
            if !yes {
                anyhow::bail!("add --yes to purge: the objects using these blocks are deleted");
            }
            AdminRpc::BlockPurge {
                hashes: hashes.clone(),
            }
        }
    })
}

fn perm_text(p: &crate::model::bucket::BucketKeyPerm) -> String {
    format!(
        "{}{}{}",
        if p.allow_read { "R" } else { "" },
        if p.allow_write { "W" } else { "" },
        if p.allow_owner { "O" } else { "" }
    )
}

fn format_bucket(b: &BucketInfo) -> String {
    let mut out = format!(
        "Bucket: {}\nCreated: {}\n\nGlobal aliases: {}\n",
        b.summary.id,
        msec_to_rfc3339(b.summary.created),
        b.summary.aliases.join(", ")
    );
    for (k, n) in &b.summary.local_aliases {
        out.push_str(&format!("Local alias: {n} (key {k})\n"));
    }
    out.push_str(&format!(
        "\nObjects: {}\nSize: {} ({} bytes)\nUnfinished uploads: {}\n",
        b.objects,
        format_size(b.bytes),
        b.bytes,
        b.unfinished_uploads
    ));
    out.push_str(&format!(
        "\nQuotas:\n  Max size: {}\n  Max objects: {}\n",
        b.quotas
            .max_size
            .map(|s| format!("{} ({s} bytes)", format_size(s)))
            .unwrap_or_else(|| "none".into()),
        b.quotas
            .max_objects
            .map(|n| n.to_string())
            .unwrap_or_else(|| "none".into())
    ));
    match &b.website {
        Some((index, err)) => {
            let mut details = vec![];
            if !index.is_empty() {
                details.push(format!("index {index}"));
            }
            if let Some(e) = err {
                details.push(format!("error document {e}"));
            }
            if let Some(r) = &b.website_redirects {
                details.push(r.clone());
            }
            out.push_str(&format!(
                "\nWebsite access: enabled ({})\n",
                details.join(", ")
            ));
        }
        None => out.push_str("\nWebsite access: disabled\n"),
    }
    out.push_str("\nAuthorized keys:\n");
    let mut rows = vec![];
    for (id, name, p) in &b.keys {
        rows.push(vec![perm_text(p), id.clone(), name.clone()]);
    }
    out.push_str(&format_table(&rows));
    out
}

fn format_key(k: &KeyInfo) -> String {
    let mut out = format!(
        "Key name: {}\nKey ID: {}\nSecret key: {}\nCan create buckets: {}\n\nBuckets:\n",
        k.name,
        k.id,
        k.secret
            .as_deref()
            .unwrap_or("(redacted; use --show-secret)"),
        k.allow_create_bucket
    );
    let mut rows = vec![vec![
        "Permissions".to_string(),
        "ID".into(),
        "Global aliases".into(),
        "Local aliases".into(),
    ]];
    for (id, g, l, p) in &k.buckets {
        rows.push(vec![perm_text(p), id.short(), g.join(","), l.join(",")]);
    }
    out.push_str(&format_table(&rows));
    out
}

fn format_block(b: &BlockInfoView) -> String {
    let mut out = format!("Block hash: {}\nReference count: {}\n", b.hash, b.refcount);
    if b.refcount == 0 && b.deletable_after > 0 {
        out.push_str(&format!(
            "Deletable after: {}\n",
            msec_to_rfc3339(b.deletable_after)
        ));
    }
    match &b.stored_here {
        Some((path, c, size)) => out.push_str(&format!(
            "Stored here: {} ({}, {} bytes)\n",
            path,
            if *c { "compressed" } else { "plain" },
            size
        )),
        None => out.push_str("Stored here: no\n"),
    }
    out.push_str(&format!(
        "Replicas: {}\n\nVersions:\n",
        b.holders
            .iter()
            .map(|n| n.short())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut rows = vec![vec![
        "Version".to_string(),
        "Deleted".into(),
        "Bucket".into(),
        "Key".into(),
    ]];
    for (v, del, o) in &b.versions {
        let (bucket, key) = o
            .as_ref()
            .map(|(b, k)| (b.short(), k.clone()))
            .unwrap_or_default();
        rows.push(vec![v.short(), del.to_string(), bucket, key]);
    }
    out.push_str(&format_table(&rows));
    out
}

/// Prints an answer of a bucket, key or block command.
pub fn print(resp: AdminResponse) -> anyhow::Result<()> {
    match resp {
        AdminResponse::Buckets(list) => {
            let mut rows = vec![vec![
                "ID".to_string(),
                "Created".into(),
                "Global aliases".into(),
                "Local aliases".into(),
            ]];
            for b in list {
                rows.push(vec![
                    b.id.short(),
                    msec_to_rfc3339(b.created),
                    b.aliases.join(","),
                    b.local_aliases
                        .iter()
                        .map(|(k, n)| format!("{n} ({k})"))
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
            print!("{}", format_table(&rows));
        }
        AdminResponse::Bucket(b) => print!("{}", format_bucket(&b)),
        AdminResponse::Keys(list) => {
            let mut rows = vec![vec!["ID".to_string(), "Name".into()]];
            for k in list {
                rows.push(vec![k.id, k.name]);
            }
            print!("{}", format_table(&rows));
        }
        AdminResponse::Key(k) => print!("{}", format_key(&k)),
        AdminResponse::BlockErrors(list) => {
            let mut rows = vec![vec![
                "Hash".to_string(),
                "Errors".into(),
                "Last try".into(),
                "Next try".into(),
            ]];
            for e in list {
                rows.push(vec![
                    e.hash.to_hex(),
                    e.errors.to_string(),
                    msec_to_rfc3339(e.last_try),
                    msec_to_rfc3339(e.next_try),
                ]);
            }
            print!("{}", format_table(&rows));
        }
        AdminResponse::Block(b) => print!("{}", format_block(&b)),
        AdminResponse::Done(t) => println!("{}", t),
        other => anyhow::bail!("unexpected answer: {:?}", other),
    }
    Ok(())
}
