//! Operations on buckets, aliases and keys shared by the admin commands and the S3 API: name
//! resolution (a key's local aliases first, then global aliases), bucket name rules, and the
//! multi-table updates (bucket ↔ key permissions, bucket ↔ alias) kept consistent in both
//! directions.

use std::sync::Arc;

use super::bucket::{Bucket, BucketFilter, BucketKeyPerm};
use super::bucket_alias::BucketAlias;
use super::key::{new_key_id, new_secret, Key, KeyFilter};
use super::object::ObjectFilter;
use super::Model;
use crate::table::schema::EmptyKey;
use crate::table::TableError;
use crate::util::ids::Uuid;
use crate::util::time::now_msec;

/// Errors of model operations; each names what was not found or not allowed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("bucket {0:?} does not exist")]
    NoSuchBucket(String),
    #[error("access key {0:?} does not exist")]
    NoSuchKey(String),
    #[error("{0:?} matches several keys ({1}); give more characters of the key id")]
    AmbiguousKey(String, String),
    #[error("bucket name {name:?} is already used")]
    BucketAlreadyExists { name: String, owned_by_you: bool },
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName { name: String, reason: &'static str },
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Checks a bucket name against the S3 rules.
pub fn check_bucket_name(name: &str) -> Result<(), ModelError> {
    let bad = |reason| {
        Err(ModelError::InvalidBucketName {
            name: name.to_string(),
            reason,
        })
    };
    if name.len() < 3 || name.len() > 63 {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
    {
        return bad("only lowercase letters, digits, dots and hyphens are allowed");
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !(first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()) {
        return bad("must begin and end with a letter or a digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("dots cannot be next to each other or to a hyphen");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not look like an IP address");
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
        return bad("reserved prefix or suffix");
    }
    Ok(())
}

/// Name and permission operations over the model tables.
pub struct ModelHelper {
    pub model: Arc<Model>,
}

impl ModelHelper {
    pub fn new(model: Arc<Model>) -> Self {
        Self { model }
    }

    /// A live key by exact id.
    pub async fn get_key(&self, key_id: &str) -> Result<Option<Key>, ModelError> {
        Ok(self
            .model
            .keys
            .get(&EmptyKey, &key_id.to_string())
            .await?
            .filter(|k| !k.is_deleted()))
    }

    /// Every live key.
    pub async fn list_keys(&self) -> Result<Vec<Key>, ModelError> {
        Ok(self
            .model
            .keys
            .get_range(&EmptyKey, None, Some(&KeyFilter::Live), 100_000, false)
            .await?)
    }

    /// A key by id, unambiguous id prefix, or name.
    pub async fn find_key(&self, pattern: &str) -> Result<Key, ModelError> {
        if let Some(k) = self.get_key(pattern).await? {
            return Ok(k);
        }
        let keys = self.list_keys().await?;
        let matches: Vec<&Key> = keys
            .iter()
            .filter(|k| k.key_id.starts_with(pattern) || k.name() == pattern)
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ModelError::NoSuchKey(pattern.to_string())),
            many => Err(ModelError::AmbiguousKey(
                pattern.to_string(),
                many.iter()
                    .map(|k| format!("{} ({})", k.key_id, k.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// A live bucket by id.
    pub async fn get_bucket(&self, id: &Uuid) -> Result<Option<Bucket>, ModelError> {
        Ok(self
            .model
            .buckets
            .get(&EmptyKey, id)
            .await?
            .filter(|b| !b.is_deleted()))
    }

    /// Resolves a bucket name: the key's local aliases first, then global aliases.
    pub async fn resolve_bucket(
        &self,
        name: &str,
        key: Option<&Key>,
    ) -> Result<Option<Uuid>, ModelError> {
        if let Some(Some(id)) = key
            .and_then(|k| k.params())
            .and_then(|p| p.local_aliases.get(&name.to_string()).cloned())
        {
            return Ok(Some(id));
        }
        let alias = self
            .model
            .bucket_aliases
            .get(&EmptyKey, &name.to_string())
            .await?;
        Ok(alias.and_then(|a| a.target()))
    }

    /// Resolves a name, an id in hex, or an unambiguous id prefix to a live bucket.
    pub async fn find_bucket(&self, pattern: &str) -> Result<Bucket, ModelError> {
        if let Some(id) = self.resolve_bucket(pattern, None).await? {
            if let Some(b) = self.get_bucket(&id).await? {
                return Ok(b);
            }
        }
        if pattern.len() >= 8 && pattern.chars().all(|c| c.is_ascii_hexdigit()) {
            let all = self.list_buckets().await?;
            let m: Vec<_> = all
                .into_iter()
                .filter(|b| b.id.to_hex().starts_with(pattern))
                .collect();
            if m.len() == 1 {
                return Ok(m.into_iter().next().expect("one element"));
            }
        }
        Err(ModelError::NoSuchBucket(pattern.to_string()))
    }

    /// Every live bucket.
    pub async fn list_buckets(&self) -> Result<Vec<Bucket>, ModelError> {
        Ok(self
            .model
            .buckets
            .get_range(&EmptyKey, None, Some(&BucketFilter::Live), 100_000, false)
            .await?)
    }

    /// Creates a bucket with global alias `name`; `owner` gets every permission.
    pub async fn create_bucket(
        &self,
        name: &str,
        owner: Option<&Key>,
    ) -> Result<Bucket, ModelError> {
        check_bucket_name(name)?;
        if let Some(existing) = self.resolve_bucket(name, None).await? {
            if self.get_bucket(&existing).await?.is_some() {
                let owned_by_you = owner.is_some_and(|k| k.bucket_perm(&existing).allow_owner);
                return Err(ModelError::BucketAlreadyExists {
                    name: name.to_string(),
                    owned_by_you,
                });
            }
        }
        let mut bucket = Bucket::new(Uuid::random(), now_msec());
        if let Some(p) = bucket.params_mut() {
            p.aliases.update_in_place(name.to_string(), true);
        }
        self.model.buckets.insert(&bucket).await?;
        self.model
            .bucket_aliases
            .insert(&BucketAlias::new(name, Some(bucket.id)))
            .await?;
        if let Some(k) = owner {
            self.set_permissions(&bucket.id, &k.key_id, BucketKeyPerm::ALL)
                .await?;
        }
        Ok(self.get_bucket(&bucket.id).await?.unwrap_or(bucket))
    }

    /// Whether a bucket holds objects or uploads in progress.
    pub async fn bucket_is_empty(&self, id: &Uuid) -> Result<bool, ModelError> {
        for filter in [ObjectFilter::HasData, ObjectFilter::IsUploading] {
            let objs = self
                .model
                .objects
                .get_range(id, None, Some(&filter), 1, false)
                .await?;
            if !objs.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Deletes an empty bucket: frees its aliases and removes every key's permission.
    pub async fn delete_bucket(&self, bucket: &Bucket) -> Result<(), ModelError> {
        let Some(params) = bucket.params() else {
            return Ok(());
        };
        if !self.bucket_is_empty(&bucket.id).await? {
            let name = params
                .aliases
                .iter()
                .find(|(_, a)| **a)
                .map(|(n, _)| n.clone());
            return Err(ModelError::BucketNotEmpty(
                name.unwrap_or_else(|| bucket.id.to_hex()),
            ));
        }
        for (name, active) in params.aliases.iter() {
            if *active {
                let alias = self.model.bucket_aliases.get(&EmptyKey, name).await?;
                if alias.and_then(|a| a.target()) == Some(bucket.id) {
                    self.model
                        .bucket_aliases
                        .insert(&BucketAlias::new(name, None))
                        .await?;
                }
            }
        }
        for ((key_id, name), active) in params.local_aliases.iter() {
            if *active {
                if let Some(mut k) = self.get_key(key_id).await? {
                    if let Some(p) = k.params_mut() {
                        p.local_aliases.update_in_place(name.clone(), None);
                    }
                    self.model.keys.insert(&k).await?;
                }
            }
        }
        for (key_id, perm) in params.authorized_keys.iter() {
            if perm.is_any() {
                self.set_permissions(&bucket.id, key_id, BucketKeyPerm::NONE)
                    .await?;
            }
        }
        let mut deleted = bucket.clone();
        deleted.state = crate::util::crdt::Deletable::Deleted;
        self.model.buckets.insert(&deleted).await?;
        Ok(())
    }

    /// Sets a key's permissions on a bucket, on both sides.
    pub async fn set_permissions(
        &self,
        bucket_id: &Uuid,
        key_id: &str,
        perm: BucketKeyPerm,
    ) -> Result<(), ModelError> {
        let mut bucket = self
            .get_bucket(bucket_id)
            .await?
            .ok_or_else(|| ModelError::NoSuchBucket(bucket_id.to_hex()))?;
        let mut key = self
            .get_key(key_id)
            .await?
            .ok_or_else(|| ModelError::NoSuchKey(key_id.to_string()))?;
        if let Some(p) = bucket.params_mut() {
            p.authorized_keys.update_in_place(key_id.to_string(), perm);
        }
        if let Some(p) = key.params_mut() {
            p.authorized_buckets.update_in_place(*bucket_id, perm);
        }
        self.model.buckets.insert(&bucket).await?;
        self.model.keys.insert(&key).await?;
        Ok(())
    }

    /// Adds a global alias (fails if the name points to another live bucket).
    pub async fn set_global_alias(&self, bucket_id: &Uuid, name: &str) -> Result<(), ModelError> {
        check_bucket_name(name)?;
        if let Some(other) = self.resolve_bucket(name, None).await? {
            if other != *bucket_id && self.get_bucket(&other).await?.is_some() {
                return Err(ModelError::BucketAlreadyExists {
                    name: name.to_string(),
                    owned_by_you: false,
                });
            }
        }
        let mut bucket = self
            .get_bucket(bucket_id)
            .await?
            .ok_or_else(|| ModelError::NoSuchBucket(bucket_id.to_hex()))?;
        if let Some(p) = bucket.params_mut() {
            p.aliases.update_in_place(name.to_string(), true);
        }
        self.model
            .bucket_aliases
            .insert(&BucketAlias::new(name, Some(*bucket_id)))
            .await?;
        self.model.buckets.insert(&bucket).await?;
        Ok(())
    }

    /// Removes a global alias of a bucket.
    pub async fn unset_global_alias(&self, bucket_id: &Uuid, name: &str) -> Result<(), ModelError> {
        let mut bucket = self
            .get_bucket(bucket_id)
            .await?
            .ok_or_else(|| ModelError::NoSuchBucket(bucket_id.to_hex()))?;
        let Some(p) = bucket.params_mut() else {
            return Ok(());
        };
        if p.aliases.get(&name.to_string()) != Some(&true) {
            return Err(ModelError::Invalid(format!(
                "bucket has no global alias {name:?}"
            )));
        }
        let remaining = p
            .aliases
            .iter()
            .filter(|(n, a)| **a && n.as_str() != name)
            .count()
            + p.local_aliases.iter().filter(|(_, a)| **a).count();
        if remaining == 0 {
            return Err(ModelError::Invalid(format!(
                "{name:?} is the last alias of this bucket; add another alias first, or delete the bucket"
            )));
        }
        p.aliases.update_in_place(name.to_string(), false);
        self.model
            .bucket_aliases
            .insert(&BucketAlias::new(name, None))
            .await?;
        self.model.buckets.insert(&bucket).await?;
        Ok(())
    }

    /// Adds a local alias of a bucket in a key's namespace.
    pub async fn set_local_alias(
        &self,
        bucket_id: &Uuid,
        key_id: &str,
        name: &str,
    ) -> Result<(), ModelError> {
        check_bucket_name(name)?;
        let mut key = self
            .get_key(key_id)
            .await?
            .ok_or_else(|| ModelError::NoSuchKey(key_id.to_string()))?;
        let mut bucket = self
            .get_bucket(bucket_id)
            .await?
            .ok_or_else(|| ModelError::NoSuchBucket(bucket_id.to_hex()))?;
        if let Some(p) = key.params_mut() {
            p.local_aliases
                .update_in_place(name.to_string(), Some(*bucket_id));
        }
        if let Some(p) = bucket.params_mut() {
            p.local_aliases
                .update_in_place((key_id.to_string(), name.to_string()), true);
        }
        self.model.keys.insert(&key).await?;
        self.model.buckets.insert(&bucket).await?;
        Ok(())
    }

    /// Removes a local alias.
    pub async fn unset_local_alias(
        &self,
        bucket_id: &Uuid,
        key_id: &str,
        name: &str,
    ) -> Result<(), ModelError> {
        let mut key = self
            .get_key(key_id)
            .await?
            .ok_or_else(|| ModelError::NoSuchKey(key_id.to_string()))?;
        if key
            .params()
            .and_then(|p| p.local_aliases.get(&name.to_string()).cloned())
            != Some(Some(*bucket_id))
        {
            return Err(ModelError::Invalid(format!(
                "key {key_id} has no local alias {name:?} for this bucket"
            )));
        }
        if let Some(p) = key.params_mut() {
            p.local_aliases.update_in_place(name.to_string(), None);
        }
        self.model.keys.insert(&key).await?;
        if let Some(mut bucket) = self.get_bucket(bucket_id).await? {
            if let Some(p) = bucket.params_mut() {
                p.local_aliases
                    .update_in_place((key_id.to_string(), name.to_string()), false);
            }
            self.model.buckets.insert(&bucket).await?;
        }
        Ok(())
    }

    /// Creates a key (random id and secret, or the given ones for `key import`).
    pub async fn create_key(
        &self,
        name: &str,
        import: Option<(String, String)>,
    ) -> Result<Key, ModelError> {
        let (id, secret) = match import {
            Some((id, secret)) => {
                if !(id.starts_with("GK")
                    && id.len() == 26
                    && id[2..].chars().all(|c| c.is_ascii_hexdigit()))
                {
                    return Err(ModelError::Invalid(format!(
                        "{id:?} is not a valid key id (GK followed by 24 hex characters)"
                    )));
                }
                if secret.len() != 64 || !secret.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(ModelError::Invalid(
                        "the secret key must be 64 hex characters".into(),
                    ));
                }
                if self.model.keys.get(&EmptyKey, &id).await?.is_some() {
                    return Err(ModelError::Invalid(format!(
                        "key {id} already exists (or existed: a deleted key id cannot be reused)"
                    )));
                }
                (id, secret)
            }
            None => (new_key_id(), new_secret()),
        };
        let key = Key::new(id, secret, name);
        self.model.keys.insert(&key).await?;
        Ok(key)
    }

    /// Deletes a key: removes its permissions and local aliases everywhere.
    pub async fn delete_key(&self, key: &Key) -> Result<(), ModelError> {
        if let Some(p) = key.params() {
            for (bucket_id, perm) in p.authorized_buckets.iter() {
                if perm.is_any() {
                    if let Some(mut b) = self.get_bucket(bucket_id).await? {
                        if let Some(bp) = b.params_mut() {
                            bp.authorized_keys
                                .update_in_place(key.key_id.clone(), BucketKeyPerm::NONE);
                            for (name, target) in p.local_aliases.iter() {
                                if *target == Some(*bucket_id) {
                                    bp.local_aliases
                                        .update_in_place((key.key_id.clone(), name.clone()), false);
                                }
                            }
                        }
                        self.model.buckets.insert(&b).await?;
                    }
                }
            }
        }
        let mut deleted = key.clone();
        deleted.state = crate::util::crdt::Deletable::Deleted;
        self.model.keys.insert(&deleted).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket", "a.b.c", "1bucket", &"a".repeat(63)] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "a_b",
            &"a".repeat(64),
            "a b",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
