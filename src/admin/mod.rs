//! The admin RPC service: what the CLI asks the daemon to do. The daemon does the work and
//! returns structured results; the CLI formats them. Every CLI command that needs the cluster
//! is one [`AdminRpc`] variant.

pub mod bucket_key;
pub mod layout;
pub mod lifecycle;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::layout::manager::LayoutManager;
use crate::layout::{NodeRole, ZoneRedundancy};
use crate::rpc::endpoint::{Handler, Rpc};
use crate::rpc::system::{KnownNode, System};
use crate::util::ids::NodeId;

/// Requests from the CLI.
#[derive(Debug, Serialize, Deserialize)]
pub enum AdminRpc {
    /// The cluster as this node sees it.
    Status,
    /// Connect to `<node id>@<host>:<port>` and keep it in the mesh.
    Connect {
        peer: String,
    },
    LayoutShow,
    LayoutAssign(layout::AssignRequest),
    LayoutRemove {
        node: String,
    },
    LayoutConfig {
        zone_redundancy: ZoneRedundancy,
    },
    LayoutApply {
        version: Option<u64>,
    },
    LayoutRevert {
        version: u64,
    },
    LayoutHistory,
    LayoutSkipDeadNodes {
        version: u64,
    },
    /// Background workers of this node.
    WorkerList,
    /// Table and node statistics.
    Stats,
    /// Start an anti-entropy round of every table now.
    RepairTables,
    BucketList,
    BucketInfo {
        name: String,
    },
    BucketCreate {
        name: String,
    },
    BucketDelete {
        name: String,
    },
    BucketAlias {
        bucket: String,
        name: String,
        local: Option<String>,
    },
    BucketUnalias {
        bucket: String,
        name: String,
        local: Option<String>,
    },
    BucketWebsite {
        bucket: String,
        allow: bool,
        index: Option<String>,
        error: Option<String>,
    },
    BucketPerm {
        bucket: String,
        key: String,
        read: bool,
        write: bool,
        owner: bool,
        allow: bool,
    },
    /// Change the quotas of a bucket.
    BucketSetQuotas {
        bucket: String,
        max_size: bucket_key::QuotaChange,
        max_objects: bucket_key::QuotaChange,
    },
    KeyList,
    KeyInfo {
        key: String,
        show_secret: bool,
    },
    KeyCreate {
        name: String,
    },
    KeyImport {
        id: String,
        secret: String,
        name: String,
    },
    KeyRename {
        key: String,
        name: String,
    },
    KeyDelete {
        key: String,
    },
    KeyCreateBucketPerm {
        key: String,
        allow: bool,
    },
    BlockListErrors,
    BlockInfo {
        hash: String,
    },
    BlockRetryNow {
        all: bool,
        hashes: Vec<String>,
    },
    BlockPurge {
        hashes: Vec<String>,
    },
    RepairBlocks,
    /// Rebuild this node's bucket totals from its local object table.
    RepairCounters,
    Scrub {
        command: String,
    },
    /// Abort the multipart uploads of these buckets started more than `older_than_secs` ago.
    BucketCleanupIncompleteUploads {
        buckets: Vec<String>,
        older_than_secs: u64,
    },
    /// Run a lifecycle pass over every bucket now, as if the clock were `time_offset_secs` later.
    RepairLifecycle {
        time_offset_secs: u64,
    },
}

/// A version referencing a block: (version id, deleted, (bucket id, object key)).
pub type BlockVersionRef = (
    crate::util::ids::Uuid,
    bool,
    Option<(crate::util::ids::Uuid, String)>,
);

/// `garage block info`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockInfoView {
    pub hash: crate::util::ids::Hash,
    pub refcount: u64,
    pub deletable_after: u64,
    pub stored_here: Option<(String, bool, u64)>,
    pub holders: Vec<NodeId>,
    /// (version id, deleted, bucket id, object key)
    pub versions: Vec<BlockVersionRef>,
}

/// What `garage stats` shows for one node.
#[derive(Debug, Serialize, Deserialize)]
pub struct NodeStats {
    pub node: NodeId,
    pub hostname: String,
    pub tables: Vec<crate::table::data::TableStats>,
    pub layout_version: u64,
    pub blocks: BlockStats,
}

/// The block store part of `garage stats`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockStats {
    /// Entries in the resync queue.
    pub resync_queue: u64,
    /// Blocks whose last resync failed (`garage block list-errors`).
    pub resync_errors: u64,
    /// Blocks with a non-zero reference count on this node.
    pub referenced: u64,
    /// All reference count entries (including blocks at zero waiting for deletion).
    pub rc_entries: u64,
}

/// What `garage status` shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub local: NodeId,
    pub nodes: Vec<KnownNode>,
    pub layout_version: u64,
    pub roles: BTreeMap<NodeId, NodeRole>,
    /// Staged (not yet applied) changes exist.
    pub staged_changes: bool,
}

/// Answers to the CLI.
#[derive(Debug, Serialize, Deserialize)]
pub enum AdminResponse {
    Status(ClusterStatus),
    LayoutShow(Box<layout::LayoutShow>),
    LayoutHistory(layout::HistoryView),
    Workers(Vec<crate::util::background::WorkerStatus>),
    Buckets(Vec<bucket_key::BucketSummary>),
    Bucket(Box<bucket_key::BucketInfo>),
    Keys(Vec<bucket_key::KeySummary>),
    Key(Box<bucket_key::KeyInfo>),
    BlockErrors(Vec<crate::block::resync::ResyncError>),
    Block(Box<BlockInfoView>),
    Stats(NodeStats),
    /// The command succeeded; the text says what was done.
    Done(String),
    /// The command failed; the text says what is wrong and what to do.
    Error(String),
}

impl Rpc for AdminRpc {
    type Response = AdminResponse;
}

/// The daemon side of the admin RPC.
pub struct AdminService {
    pub system: Arc<System>,
    pub layout: Arc<LayoutManager>,
    pub workers: Arc<crate::util::background::WorkerRegistry>,
    pub tables: Arc<crate::table::registry::TableRegistry>,
    pub model: Arc<crate::model::Model>,
    pub blocks: Arc<crate::block::manager::BlockManager>,
    pub scrub: Arc<crate::block::resync::ScrubControl>,
}

fn done(r: Result<String, String>) -> AdminResponse {
    match r {
        Ok(t) => AdminResponse::Done(t),
        Err(e) => AdminResponse::Error(e),
    }
}

impl Handler<AdminRpc> for AdminService {
    async fn handle(
        self: Arc<Self>,
        msg: AdminRpc,
        _from: NodeId,
    ) -> Result<AdminResponse, String> {
        let m = &self.layout;
        Ok(match msg {
            AdminRpc::Status => {
                let (layout_version, roles, staged_changes) = m.read(|h| {
                    (
                        h.current().version,
                        h.current().roles.clone(),
                        !h.staging.is_empty(),
                    )
                });
                AdminResponse::Status(ClusterStatus {
                    local: self.system.id(),
                    nodes: self.system.known_nodes(),
                    layout_version,
                    roles,
                    staged_changes,
                })
            }
            AdminRpc::LayoutShow => AdminResponse::LayoutShow(Box::new(m.read(layout::show))),
            AdminRpc::LayoutAssign(req) => done(layout::assign(m, req)),
            AdminRpc::LayoutRemove { node } => done(layout::remove(m, &node)),
            AdminRpc::LayoutConfig { zone_redundancy } => done(layout::config(m, zone_redundancy)),
            AdminRpc::LayoutApply { version } => done(layout::apply(m, version)),
            AdminRpc::LayoutRevert { version } => done(layout::revert(m, version)),
            AdminRpc::LayoutHistory => AdminResponse::LayoutHistory(m.read(layout::history)),
            AdminRpc::LayoutSkipDeadNodes { version } => done(layout::skip_dead_nodes(m, version)),
            AdminRpc::WorkerList => AdminResponse::Workers(self.workers.list()),
            AdminRpc::Stats => {
                let mut tables = vec![];
                for t in self.tables.all() {
                    match t.stats() {
                        Ok(s) => tables.push(s),
                        Err(e) => return Ok(AdminResponse::Error(e.to_string())),
                    }
                }
                AdminResponse::Stats(NodeStats {
                    node: self.system.id(),
                    hostname: self.system.local_status().hostname,
                    tables,
                    layout_version: m.read(|h| h.current().version),
                    blocks: {
                        let (referenced, rc_entries) = self.blocks.rc_counts();
                        BlockStats {
                            resync_queue: self.blocks.resync_queue_len() as u64,
                            resync_errors: self.blocks.resync_errors.len().unwrap_or(0) as u64,
                            referenced,
                            rc_entries,
                        }
                    },
                })
            }
            AdminRpc::BucketList
            | AdminRpc::BucketInfo { .. }
            | AdminRpc::BucketCreate { .. }
            | AdminRpc::BucketDelete { .. }
            | AdminRpc::BucketAlias { .. }
            | AdminRpc::BucketUnalias { .. }
            | AdminRpc::BucketPerm { .. }
            | AdminRpc::BucketWebsite { .. }
            | AdminRpc::BucketSetQuotas { .. }
            | AdminRpc::KeyList
            | AdminRpc::KeyInfo { .. }
            | AdminRpc::KeyCreate { .. }
            | AdminRpc::KeyImport { .. }
            | AdminRpc::KeyRename { .. }
            | AdminRpc::KeyDelete { .. }
            | AdminRpc::KeyCreateBucketPerm { .. }
            | AdminRpc::BucketCleanupIncompleteUploads { .. } => match self.bucket_key(msg).await {
                Ok(r) => r,
                Err(e) => AdminResponse::Error(e.to_string()),
            },
            AdminRpc::BlockListErrors
            | AdminRpc::BlockInfo { .. }
            | AdminRpc::BlockRetryNow { .. }
            | AdminRpc::BlockPurge { .. }
            | AdminRpc::RepairBlocks
            | AdminRpc::Scrub { .. } => match self.block(msg).await {
                Ok(r) => r,
                Err(e) => AdminResponse::Error(e),
            },
            AdminRpc::RepairCounters => {
                let store = self.model.objects.core.data.store.clone();
                match self.model.local_counters.recount(store).await {
                    Ok(r) => AdminResponse::Done(format!(
                        "Bucket counters recomputed from {} local object entries ({} buckets); \
                         they are published to the cluster within a few seconds.",
                        r.entries, r.buckets
                    )),
                    Err(e) => AdminResponse::Error(format!("cannot recount: {e}")),
                }
            }
            AdminRpc::RepairLifecycle { time_offset_secs } => {
                done(lifecycle::repair_lifecycle(&self.model, &self.layout, time_offset_secs).await)
            }
            AdminRpc::RepairTables => {
                let all = self.tables.all();
                for t in &all {
                    t.trigger_sync();
                }
                AdminResponse::Done(format!(
                    "Anti-entropy started for {} table(s); follow it with `garage worker list`.",
                    all.len()
                ))
            }
            AdminRpc::Connect { peer } => match System::resolve_peer(&peer).await {
                Err(e) => AdminResponse::Error(e),
                Ok((id, addr)) => match self.system.peering.connect_now(id, addr).await {
                    Ok(()) => AdminResponse::Done(format!("Success: connected to {}@{}", id, addr)),
                    Err(e) => {
                        AdminResponse::Error(format!("Cannot connect to {}@{}: {}", id, addr, e))
                    }
                },
            },
        })
    }
}

impl AdminService {
    async fn bucket_key(
        &self,
        msg: AdminRpc,
    ) -> Result<AdminResponse, crate::model::helper::ModelError> {
        use crate::model::bucket::BucketKeyPerm;
        let h = crate::model::helper::ModelHelper::new(self.model.clone());
        Ok(match msg {
            AdminRpc::BucketList => AdminResponse::Buckets(
                h.list_buckets()
                    .await?
                    .iter()
                    .map(bucket_key::summary)
                    .collect(),
            ),
            AdminRpc::BucketInfo { name } => {
                let b = h.find_bucket(&name).await?;
                AdminResponse::Bucket(Box::new(bucket_key::bucket_info(&h, &b).await?))
            }
            AdminRpc::BucketCreate { name } => {
                let b = h.create_bucket(&name, None).await?;
                AdminResponse::Done(format!("Bucket {} was created (id {}).", name, b.id))
            }
            AdminRpc::BucketDelete { name } => {
                let b = h.find_bucket(&name).await?;
                h.delete_bucket(&b).await?;
                AdminResponse::Done(format!("Bucket {} was deleted.", name))
            }
            AdminRpc::BucketAlias {
                bucket,
                name,
                local,
            } => {
                let b = h.find_bucket(&bucket).await?;
                match local {
                    Some(k) => {
                        let k = h.find_key(&k).await?;
                        h.set_local_alias(&b.id, &k.key_id, &name).await?;
                        AdminResponse::Done(format!(
                            "Alias {} now points to bucket {} in the namespace of key {}.",
                            name,
                            b.id.short(),
                            k.key_id
                        ))
                    }
                    None => {
                        h.set_global_alias(&b.id, &name).await?;
                        AdminResponse::Done(format!(
                            "Alias {} now points to bucket {}.",
                            name,
                            b.id.short()
                        ))
                    }
                }
            }
            AdminRpc::BucketUnalias {
                bucket,
                name,
                local,
            } => {
                let b = h.find_bucket(&bucket).await?;
                match local {
                    Some(k) => {
                        let k = h.find_key(&k).await?;
                        h.unset_local_alias(&b.id, &k.key_id, &name).await?;
                    }
                    None => h.unset_global_alias(&b.id, &name).await?,
                }
                AdminResponse::Done(format!(
                    "Alias {} was removed from bucket {}.",
                    name,
                    b.id.short()
                ))
            }
            AdminRpc::BucketPerm {
                bucket,
                key,
                read,
                write,
                owner,
                allow,
            } => {
                if !(read || write || owner) {
                    return Ok(AdminResponse::Error(
                        "give at least one of --read, --write, --owner".into(),
                    ));
                }
                let change = BucketKeyPerm {
                    allow_read: read,
                    allow_write: write,
                    allow_owner: owner,
                };
                let p = bucket_key::change_permissions(&h, &bucket, &key, change, allow).await?;
                AdminResponse::Done(format!(
                    "New permissions for key {} on bucket {}: read {}, write {}, owner {}.",
                    key, bucket, p.allow_read, p.allow_write, p.allow_owner
                ))
            }
            AdminRpc::BucketWebsite {
                bucket,
                allow,
                index,
                error,
            } => {
                let mut b = h.find_bucket(&bucket).await?;
                let conf = allow.then(|| {
                    crate::model::bucket::WebsiteConfig::documents(
                        index.unwrap_or_else(|| "index.html".into()),
                        error,
                    )
                });
                if let Some(p) = b.params_mut() {
                    p.website_config.update(conf.clone());
                }
                h.model.buckets.insert(&b).await?;
                AdminResponse::Done(match conf {
                    Some(c) => format!(
                        "Website access allowed for bucket {bucket} (index document {}{}).",
                        c.index_document,
                        c.error_document
                            .map(|e| format!(", error document {e}"))
                            .unwrap_or_default()
                    ),
                    None => format!("Website access denied for bucket {bucket}."),
                })
            }
            AdminRpc::BucketSetQuotas {
                bucket,
                max_size,
                max_objects,
            } => {
                let q = bucket_key::set_quotas(&h, &bucket, max_size, max_objects).await?;
                let show = |v: Option<u64>, f: fn(u64) -> String| v.map(f).unwrap_or("none".into());
                AdminResponse::Done(format!(
                    "Quotas of bucket {bucket}: max size {}, max objects {}.",
                    show(q.max_size, |b| format!(
                        "{} ({b} bytes)",
                        crate::util::size::format_size(b)
                    )),
                    show(q.max_objects, |n| n.to_string())
                ))
            }
            AdminRpc::KeyList => AdminResponse::Keys(
                h.list_keys()
                    .await?
                    .iter()
                    .map(|k| bucket_key::KeySummary {
                        id: k.key_id.clone(),
                        name: k.name(),
                    })
                    .collect(),
            ),
            AdminRpc::KeyInfo { key, show_secret } => {
                let k = h.find_key(&key).await?;
                AdminResponse::Key(Box::new(bucket_key::key_info(&h, &k, show_secret).await?))
            }
            AdminRpc::KeyCreate { name } => {
                let k = h.create_key(&name, None).await?;
                AdminResponse::Key(Box::new(bucket_key::key_info(&h, &k, true).await?))
            }
            AdminRpc::KeyImport { id, secret, name } => {
                let k = h.create_key(&name, Some((id, secret))).await?;
                AdminResponse::Key(Box::new(bucket_key::key_info(&h, &k, true).await?))
            }
            AdminRpc::KeyRename { key, name } => {
                let k = bucket_key::rename_key(&h, &key, &name).await?;
                AdminResponse::Done(format!("Key {} is now named {:?}.", k.key_id, name))
            }
            AdminRpc::KeyDelete { key } => {
                let k = h.find_key(&key).await?;
                h.delete_key(&k).await?;
                AdminResponse::Done(format!("Key {} was deleted.", k.key_id))
            }
            AdminRpc::BucketCleanupIncompleteUploads {
                buckets,
                older_than_secs,
            } => AdminResponse::Done(
                lifecycle::cleanup_incomplete_uploads(&h, &buckets, older_than_secs).await?,
            ),
            AdminRpc::KeyCreateBucketPerm { key, allow } => {
                let k = bucket_key::set_create_bucket(&h, &key, allow).await?;
                AdminResponse::Done(format!(
                    "Key {} {} create buckets.",
                    k.key_id,
                    if allow { "can now" } else { "can no longer" }
                ))
            }
            other => AdminResponse::Error(format!("not a bucket or key command: {:?}", other)),
        })
    }

    async fn block(&self, msg: AdminRpc) -> Result<AdminResponse, String> {
        use crate::util::ids::Hash;
        let parse = |s: &str| Hash::from_hex(s).map_err(|e| e.to_string());
        let b = &self.blocks;
        Ok(match msg {
            AdminRpc::BlockListErrors => {
                AdminResponse::BlockErrors(b.list_errors().map_err(|e| e.to_string())?)
            }
            AdminRpc::BlockInfo { hash } => {
                let hash = parse(&hash)?;
                let rc = b.rc_entry(&hash).map_err(|e| e.to_string())?;
                let file = b.local.has_block(&hash).await.map_err(|e| e.to_string())?;
                let refs = self
                    .model
                    .block_refs
                    .get_range(&hash, None, None, 10_000, false)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut versions = vec![];
                for r in refs {
                    let v = self
                        .model
                        .versions
                        .get(&r.version, &crate::table::schema::EmptyKey)
                        .await
                        .map_err(|e| e.to_string())?;
                    versions.push((r.version, r.deleted.get(), v.map(|v| (v.bucket_id, v.key))));
                }
                AdminResponse::Block(Box::new(BlockInfoView {
                    hash,
                    refcount: rc.count,
                    deletable_after: rc.deletable_after,
                    stored_here: file.map(|f| (f.path.display().to_string(), f.compressed, f.size)),
                    holders: b.holders(&hash),
                    versions,
                }))
            }
            AdminRpc::BlockRetryNow { all, hashes } => {
                let list = hashes
                    .iter()
                    .map(|h| parse(h))
                    .collect::<Result<Vec<_>, _>>()?;
                if !all && list.is_empty() {
                    return Err("give block hashes, or --all".into());
                }
                let n = b
                    .retry_now(if all { None } else { Some(&list) })
                    .map_err(|e| e.to_string())?;
                AdminResponse::Done(format!("{n} block(s) queued for a new resync attempt."))
            }
            AdminRpc::BlockPurge { hashes } => {
                let list = hashes
                    .iter()
                    .map(|h| parse(h))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut versions = 0;
                for hash in &list {
                    let refs = self
                        .model
                        .block_refs
                        .get_range(hash, None, None, 100_000, false)
                        .await
                        .map_err(|e| e.to_string())?;
                    for r in refs.into_iter().filter(|r| !r.deleted.get()) {
                        if let Some(v) = self
                            .model
                            .versions
                            .get(&r.version, &crate::table::schema::EmptyKey)
                            .await
                            .map_err(|e| e.to_string())?
                        {
                            // Deleting the version deletes the object data that uses this block.
                            let mut obj = self
                                .model
                                .objects
                                .get(&v.bucket_id, &v.key)
                                .await
                                .map_err(|e| e.to_string())?;
                            if let Some(o) = obj
                                .as_mut()
                                .filter(|o| o.last_data().map(|d| d.uuid) == Some(r.version))
                            {
                                let marker = crate::model::object::ObjectVersion {
                                    uuid: crate::util::ids::Uuid::random(),
                                    timestamp: crate::api::s3::version_time::next_timestamp(Some(
                                        o,
                                    )),
                                    state: crate::model::object::VersionState::Complete(
                                        crate::model::object::ObjectData::DeleteMarker,
                                    ),
                                };
                                let upd = crate::model::object::Object::new(
                                    v.bucket_id,
                                    v.key.clone(),
                                    vec![marker],
                                );
                                self.model
                                    .objects
                                    .insert(&upd)
                                    .await
                                    .map_err(|e| e.to_string())?;
                            }
                            let del = crate::model::version::Version::deleted(
                                r.version,
                                v.bucket_id,
                                v.key,
                            );
                            self.model
                                .versions
                                .insert(&del)
                                .await
                                .map_err(|e| e.to_string())?;
                            versions += 1;
                        }
                        let dr = crate::model::block_ref::BlockRef::deleted(r.block, r.version);
                        self.model
                            .block_refs
                            .insert(&dr)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
                AdminResponse::Done(format!(
                    "Purged {} block(s): {} object version(s) referencing them were deleted.",
                    list.len(),
                    versions
                ))
            }
            AdminRpc::RepairBlocks => {
                let n = b.repair_all().await.map_err(|e| e.to_string())?;
                AdminResponse::Done(format!(
                    "{n} block(s) queued for a resync check; follow it with `garage worker list`."
                ))
            }
            AdminRpc::Scrub { command } => {
                use crate::block::resync::{SCRUB_CANCELLED, SCRUB_PAUSED, SCRUB_RUN};
                let s = match command.as_str() {
                    "start" | "resume" => SCRUB_RUN,
                    "pause" => SCRUB_PAUSED,
                    "cancel" => SCRUB_CANCELLED,
                    other => {
                        return Err(format!(
                            "unknown scrub command {other:?} (start, pause, resume, cancel)"
                        ))
                    }
                };
                self.scrub.set(s);
                AdminResponse::Done(format!("Scrub: {command}."))
            }
            other => AdminResponse::Error(format!("not a block command: {:?}", other)),
        })
    }
}
