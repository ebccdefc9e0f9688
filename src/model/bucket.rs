//! The `bucket` table (full copy): a bucket's id, creation date, which keys may use it and how,
//! its global and local aliases, and its configuration (website, CORS, lifecycle, quotas).
//! Deleting a bucket turns its parameters into a tombstone for good.

use serde::{Deserialize, Serialize};

use super::lifecycle::LifecycleRule;
use crate::table::schema::{EmptyKey, Entry, TableSchema};
use crate::util::crdt::{Crdt, Deletable, Lww, LwwMap};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::Uuid;

/// Permissions of one key on one bucket (last writer wins as a whole).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BucketKeyPerm {
    pub allow_read: bool,
    pub allow_write: bool,
    pub allow_owner: bool,
}

impl BucketKeyPerm {
    pub const NONE: Self = Self {
        allow_read: false,
        allow_write: false,
        allow_owner: false,
    };
    pub const ALL: Self = Self {
        allow_read: true,
        allow_write: true,
        allow_owner: true,
    };
    pub fn is_any(&self) -> bool {
        self.allow_read || self.allow_write || self.allow_owner
    }
}

/// Static website configuration (set by `garage bucket website --allow` or PutBucketWebsite).
/// The redirect fields were added later: they default to "none" so that older entries decode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebsiteConfig {
    /// Suffix served for paths ending in `/` (unused when `redirect_all` is set).
    pub index_document: String,
    pub error_document: Option<String>,
    /// Every request is redirected to this host (`RedirectAllRequestsTo`).
    #[serde(default)]
    pub redirect_all: Option<RedirectAll>,
    /// Conditional redirects, tried in order (`RoutingRules`).
    #[serde(default)]
    pub routing_rules: Vec<RoutingRule>,
}

impl WebsiteConfig {
    /// An index (and optional error) document, without redirects.
    pub fn documents(index_document: String, error_document: Option<String>) -> Self {
        Self {
            index_document,
            error_document,
            redirect_all: None,
            routing_rules: vec![],
        }
    }
}

/// `http` or `https` in a redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectProtocol {
    Http,
    Https,
}

impl RedirectProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// `RedirectAllRequestsTo`: the same key on another host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectAll {
    pub host_name: String,
    pub protocol: Option<RedirectProtocol>,
}

/// One `RoutingRule`: when `condition` holds (always, when absent), answer `redirect`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    pub condition: Option<RuleCondition>,
    pub redirect: RuleRedirect,
}

/// When a routing rule applies: both fields must hold when both are given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCondition {
    pub key_prefix_equals: Option<String>,
    /// The HTTP error status the request would otherwise get (4xx or 5xx).
    pub http_error_code_returned_equals: Option<u16>,
}

/// Where a routing rule sends the client; absent fields keep the request's value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRedirect {
    pub host_name: Option<String>,
    pub protocol: Option<RedirectProtocol>,
    /// 3xx status of the answer (301 when absent).
    pub http_redirect_code: Option<u16>,
    /// Replaces the part of the key matched by `key_prefix_equals` (at most one of the two
    /// replacements is set).
    pub replace_key_prefix_with: Option<String>,
    /// Replaces the whole key.
    pub replace_key_with: Option<String>,
}

/// One CORS rule of a bucket (as in S3 PutBucketCors). Matching lives in `api::s3::cors`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    /// Origins, each with at most one `*` wildcard.
    pub allowed_origins: Vec<String>,
    /// Methods among GET, PUT, HEAD, POST, DELETE.
    pub allowed_methods: Vec<String>,
    /// Request headers (case-insensitive), each with at most one `*` wildcard.
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u64>,
}

/// Quotas of a bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketQuotas {
    pub max_size: Option<u64>,
    pub max_objects: Option<u64>,
}

/// The parameters of a live bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketParams {
    pub creation_date: u64,
    /// Key id → permissions.
    pub authorized_keys: LwwMap<String, BucketKeyPerm>,
    /// Global aliases of this bucket (name → active).
    pub aliases: LwwMap<String, bool>,
    /// Local aliases: (key id, name) → active.
    pub local_aliases: LwwMap<(String, String), bool>,
    pub website_config: Lww<Option<WebsiteConfig>>,
    pub quotas: Lww<BucketQuotas>,
    /// CORS rules (`None`: no CORS configuration). Absent in entries written before it existed.
    #[serde(default = "no_cors")]
    pub cors_config: Lww<Option<Vec<CorsRule>>>,
    /// Lifecycle rules (`None`: no lifecycle configuration). Absent from entries written before
    /// lifecycle support: decodes as `None`.
    #[serde(default = "no_lifecycle")]
    pub lifecycle_config: Lww<Option<Vec<LifecycleRule>>>,
}

fn no_lifecycle() -> Lww<Option<Vec<LifecycleRule>>> {
    Lww::raw(0, None)
}

fn no_cors() -> Lww<Option<Vec<CorsRule>>> {
    Lww::raw(0, None)
}

impl BucketParams {
    pub fn new(creation_date: u64) -> Self {
        Self {
            creation_date,
            authorized_keys: LwwMap::new(),
            aliases: LwwMap::new(),
            local_aliases: LwwMap::new(),
            website_config: Lww::raw(0, None),
            quotas: Lww::raw(0, BucketQuotas::default()),
            cors_config: no_cors(),
            lifecycle_config: no_lifecycle(),
        }
    }
}

impl Crdt for BucketParams {
    fn merge(&mut self, o: &Self) {
        self.creation_date = self.creation_date.min(o.creation_date);
        self.authorized_keys.merge(&o.authorized_keys);
        self.aliases.merge(&o.aliases);
        self.local_aliases.merge(&o.local_aliases);
        self.website_config.merge(&o.website_config);
        self.quotas.merge(&o.quotas);
        self.cors_config.merge(&o.cors_config);
        self.lifecycle_config.merge(&o.lifecycle_config);
    }
}

/// A bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub id: Uuid,
    pub state: Deletable<BucketParams>,
}

impl Bucket {
    pub fn new(id: Uuid, creation_date: u64) -> Self {
        Self {
            id,
            state: Deletable::Present(BucketParams::new(creation_date)),
        }
    }
    pub fn params(&self) -> Option<&BucketParams> {
        self.state.as_option()
    }
    pub fn params_mut(&mut self) -> Option<&mut BucketParams> {
        match &mut self.state {
            Deletable::Present(p) => Some(p),
            Deletable::Deleted => None,
        }
    }
    pub fn is_deleted(&self) -> bool {
        self.state.is_deleted()
    }
}

impl Crdt for Bucket {
    fn merge(&mut self, o: &Self) {
        self.state.merge(&o.state);
    }
}

impl Migrate for Bucket {
    const VERSION_MARKER: &'static [u8] = b"Gbucket1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<EmptyKey, Uuid> for Bucket {
    fn partition_key(&self) -> &EmptyKey {
        &EmptyKey
    }
    fn sort_key(&self) -> &Uuid {
        &self.id
    }
    fn is_tombstone(&self) -> bool {
        // Buckets are kept as tombstones (their id must never be reused).
        false
    }
}

/// Filter of bucket listings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum BucketFilter {
    Live,
}

pub struct BucketTable;

impl TableSchema for BucketTable {
    const NAME: &'static str = "bucket_v1";
    type P = EmptyKey;
    type S = Uuid;
    type E = Bucket;
    type Filter = BucketFilter;

    fn matches_filter(e: &Bucket, f: &BucketFilter) -> bool {
        match f {
            BucketFilter::Live => !e.is_deleted(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The website configuration as it was encoded before redirects existed.
    #[derive(Clone, Serialize)]
    struct OldWebsiteConfig {
        index_document: String,
        error_document: Option<String>,
    }

    /// The parameters as they were before website redirects, `cors_config` and
    /// `lifecycle_config` existed.
    #[derive(Serialize)]
    struct OldParams {
        creation_date: u64,
        authorized_keys: LwwMap<String, BucketKeyPerm>,
        aliases: LwwMap<String, bool>,
        local_aliases: LwwMap<(String, String), bool>,
        website_config: Lww<Option<OldWebsiteConfig>>,
        quotas: Lww<BucketQuotas>,
    }

    #[derive(Serialize)]
    struct OldBucket {
        id: Uuid,
        state: Deletable<OldParams>,
    }

    #[test]
    fn entries_of_the_first_format_still_decode() {
        let id = Uuid::random();
        let mut aliases = LwwMap::new();
        aliases.update_in_place("b".to_string(), true);
        let old = OldBucket {
            id,
            state: Deletable::Present(OldParams {
                creation_date: 42,
                authorized_keys: LwwMap::new(),
                aliases,
                local_aliases: LwwMap::new(),
                website_config: Lww::raw(
                    7,
                    Some(OldWebsiteConfig {
                        index_document: "home.html".into(),
                        error_document: Some("oops.html".into()),
                    }),
                ),
                quotas: Lww::raw(0, BucketQuotas::default()),
            }),
        };
        let mut bytes = Bucket::VERSION_MARKER.to_vec();
        bytes.extend(rmp_serde::to_vec_named(&old).expect("encode"));
        let b = Bucket::decode(&bytes).expect("an old entry decodes");
        assert_eq!(b.id, id);
        let p = b.params().expect("live bucket");
        assert_eq!(p.creation_date, 42);
        assert_eq!(p.aliases.get(&"b".to_string()), Some(&true));
        assert_eq!(p.cors_config.get(), &None);
        assert_eq!(p.lifecycle_config.get(), &None);
        assert_eq!(
            p.website_config.get().clone(),
            Some(WebsiteConfig::documents(
                "home.html".into(),
                Some("oops.html".into())
            ))
        );
    }

    #[test]
    fn redirect_fields_round_trip() {
        let mut b = Bucket::new(Uuid::random(), 1);
        let conf = WebsiteConfig {
            index_document: String::new(),
            error_document: None,
            redirect_all: Some(RedirectAll {
                host_name: "example.com".into(),
                protocol: Some(RedirectProtocol::Https),
            }),
            routing_rules: vec![RoutingRule {
                condition: Some(RuleCondition {
                    key_prefix_equals: Some("docs/".into()),
                    http_error_code_returned_equals: Some(404),
                }),
                redirect: RuleRedirect {
                    replace_key_prefix_with: Some("documents/".into()),
                    http_redirect_code: Some(302),
                    ..Default::default()
                },
            }],
        };
        if let Some(p) = b.params_mut() {
            p.website_config.update(Some(conf.clone()));
        }
        let back = Bucket::decode(&b.encode().expect("encode")).expect("decode");
        assert_eq!(back, b);
    }

    #[test]
    fn cors_rules_round_trip() {
        let mut b = Bucket::new(Uuid::random(), 1);
        if let Some(p) = b.params_mut() {
            p.cors_config.update(Some(vec![CorsRule {
                allowed_origins: vec!["*".into()],
                allowed_methods: vec!["GET".into()],
                ..Default::default()
            }]));
        }
        let back = Bucket::decode(&b.encode().expect("encode")).expect("decode");
        assert_eq!(back, b);
    }

    #[test]
    fn lifecycle_round_trip_and_merge() {
        use crate::model::lifecycle::{LifecycleExpiration, LifecycleFilter};
        let mut b = Bucket::new(Uuid::random(), 1);
        let rules = vec![LifecycleRule {
            id: Some("expire-logs".into()),
            enabled: true,
            filter: LifecycleFilter {
                prefix: Some("logs/".into()),
                size_gt: None,
                size_lt: Some(10),
            },
            expiration: Some(LifecycleExpiration::AfterDays(3)),
            abort_incomplete_mpu_days: None,
        }];
        let mut other = b.clone();
        if let Some(p) = other.params_mut() {
            p.lifecycle_config.update(Some(rules.clone()));
        }
        let decoded = Bucket::decode(&other.encode().expect("encode")).expect("decode");
        assert_eq!(decoded, other);
        b.merge(&other);
        assert_eq!(
            b.params().map(|p| p.lifecycle_config.get().clone()),
            Some(Some(rules))
        );
    }
}
