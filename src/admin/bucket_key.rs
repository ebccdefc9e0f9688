//! Bucket and key administration in the daemon: listings, info views, creation and deletion,
//! aliases and permissions (the multi-table work is in `model::helper`).

use serde::{Deserialize, Serialize};

use crate::model::bucket::{Bucket, BucketKeyPerm, BucketQuotas};
use crate::model::counters::bucket_usage;
use crate::model::helper::{ModelError, ModelHelper};
use crate::model::key::Key;
use crate::util::ids::Uuid;

/// A bucket in `bucket list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketSummary {
    pub id: Uuid,
    pub aliases: Vec<String>,
    pub local_aliases: Vec<(String, String)>,
    pub created: u64,
}

/// `bucket info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketInfo {
    pub summary: BucketSummary,
    /// (key id, key name, permissions)
    pub keys: Vec<(String, String, BucketKeyPerm)>,
    pub website: Option<(String, Option<String>)>,
    /// Redirects of the website configuration, in words (none when empty).
    #[serde(default)]
    pub website_redirects: Option<String>,
    /// From the `counters` table (may lag writes by a second or two).
    pub objects: u64,
    pub bytes: u64,
    pub unfinished_uploads: u64,
    pub quotas: BucketQuotas,
}

/// A key in `key list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeySummary {
    pub id: String,
    pub name: String,
}

/// `key info` (and the answer of `key create` / `key import`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub secret: Option<String>,
    pub allow_create_bucket: bool,
    /// (bucket id, its global aliases, local aliases of this key, permissions)
    pub buckets: Vec<(Uuid, Vec<String>, Vec<String>, BucketKeyPerm)>,
}

pub fn summary(b: &Bucket) -> BucketSummary {
    let p = b.params();
    BucketSummary {
        id: b.id,
        aliases: p
            .map(|p| {
                p.aliases
                    .iter()
                    .filter(|(_, a)| **a)
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default(),
        local_aliases: p
            .map(|p| {
                p.local_aliases
                    .iter()
                    .filter(|(_, a)| **a)
                    .map(|((k, n), _)| (k.clone(), n.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        created: p.map(|p| p.creation_date).unwrap_or(0),
    }
}

pub async fn bucket_info(h: &ModelHelper, b: &Bucket) -> Result<BucketInfo, ModelError> {
    let mut keys = vec![];
    if let Some(p) = b.params() {
        for (key_id, perm) in p.authorized_keys.iter() {
            if perm.is_any() {
                let name = h
                    .get_key(key_id)
                    .await?
                    .map(|k| k.name())
                    .unwrap_or_default();
                keys.push((key_id.clone(), name, *perm));
            }
        }
    }
    let usage = bucket_usage(&h.model.counters, &b.id).await?;
    Ok(BucketInfo {
        summary: summary(b),
        keys,
        website: b
            .params()
            .and_then(|p| p.website_config.get().clone())
            .map(|w| (w.index_document, w.error_document)),
        website_redirects: b
            .params()
            .and_then(|p| p.website_config.get().as_ref())
            .and_then(website_redirects),
        objects: usage.objects,
        bytes: usage.bytes,
        unfinished_uploads: usage.unfinished_uploads,
        quotas: b.params().map(|p| *p.quotas.get()).unwrap_or_default(),
    })
}

/// "all requests redirected to https://host" or "N routing rules", for `bucket info`.
fn website_redirects(w: &crate::model::bucket::WebsiteConfig) -> Option<String> {
    if let Some(all) = &w.redirect_all {
        let proto = all.protocol.map(|p| format!("{}://", p.as_str()));
        return Some(format!(
            "all requests redirected to {}{}",
            proto.unwrap_or_default(),
            all.host_name
        ));
    }
    match w.routing_rules.len() {
        0 => None,
        1 => Some("1 routing rule".into()),
        n => Some(format!("{n} routing rules")),
    }
}

/// A change of one quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuotaChange {
    Keep,
    Remove,
    Set(u64),
}

impl QuotaChange {
    fn apply(self, current: Option<u64>) -> Option<u64> {
        match self {
            Self::Keep => current,
            Self::Remove => None,
            Self::Set(n) => Some(n),
        }
    }
}

/// Changes the quotas of a bucket; returns the new quotas.
pub async fn set_quotas(
    h: &ModelHelper,
    bucket: &str,
    max_size: QuotaChange,
    max_objects: QuotaChange,
) -> Result<BucketQuotas, ModelError> {
    if max_size == QuotaChange::Keep && max_objects == QuotaChange::Keep {
        return Err(ModelError::Invalid(
            "give --max-size and/or --max-objects (a value, or `none` to remove the quota)".into(),
        ));
    }
    let mut b = h.find_bucket(bucket).await?;
    let Some(p) = b.params_mut() else {
        return Err(ModelError::NoSuchBucket(bucket.to_string()));
    };
    let mut q = *p.quotas.get();
    q.max_size = max_size.apply(q.max_size);
    q.max_objects = max_objects.apply(q.max_objects);
    p.quotas.update(q);
    h.model.buckets.insert(&b).await?;
    Ok(q)
}

pub async fn key_info(h: &ModelHelper, k: &Key, show_secret: bool) -> Result<KeyInfo, ModelError> {
    let mut buckets = vec![];
    if let Some(p) = k.params() {
        for (bid, perm) in p.authorized_buckets.iter() {
            if !perm.is_any() {
                continue;
            }
            if let Some(b) = h.get_bucket(bid).await? {
                let s = summary(&b);
                let locals = s
                    .local_aliases
                    .iter()
                    .filter(|(kid, _)| *kid == k.key_id)
                    .map(|(_, n)| n.clone())
                    .collect();
                buckets.push((b.id, s.aliases, locals, *perm));
            }
        }
    }
    Ok(KeyInfo {
        id: k.key_id.clone(),
        name: k.name(),
        secret: if show_secret {
            k.params().map(|p| p.secret_key.clone())
        } else {
            None
        },
        allow_create_bucket: k
            .params()
            .map(|p| *p.allow_create_bucket.get())
            .unwrap_or(false),
        buckets,
    })
}

/// Sets a key's permission to create buckets.
pub async fn set_create_bucket(h: &ModelHelper, key: &str, allow: bool) -> Result<Key, ModelError> {
    let mut k = h.find_key(key).await?;
    if let Some(p) = k.params_mut() {
        p.allow_create_bucket.update(allow);
    }
    h.model.keys.insert(&k).await?;
    Ok(k)
}

/// Renames a key.
pub async fn rename_key(h: &ModelHelper, key: &str, name: &str) -> Result<Key, ModelError> {
    let mut k = h.find_key(key).await?;
    if let Some(p) = k.params_mut() {
        p.name.update(name.to_string());
    }
    h.model.keys.insert(&k).await?;
    Ok(k)
}

/// Changes (adds or removes) permissions of a key on a bucket.
pub async fn change_permissions(
    h: &ModelHelper,
    bucket: &str,
    key: &str,
    change: BucketKeyPerm,
    allow: bool,
) -> Result<BucketKeyPerm, ModelError> {
    let b = h.find_bucket(bucket).await?;
    let k = h.find_key(key).await?;
    let mut perm = k.bucket_perm(&b.id);
    if change.allow_read {
        perm.allow_read = allow;
    }
    if change.allow_write {
        perm.allow_write = allow;
    }
    if change.allow_owner {
        perm.allow_owner = allow;
    }
    h.set_permissions(&b.id, &k.key_id, perm).await?;
    Ok(perm)
}
