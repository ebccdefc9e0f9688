//! Request routing: bucket and key from the Host header (vhost style, when `root_domain` is set)
//! or from the path (path style), then the S3 operation from the method and query parameters.

use std::collections::BTreeMap;

use super::error::S3Error;
use crate::api::signature::canonical::{parse_query, percent_decode};

/// Longest object key accepted (bytes).
pub const MAX_KEY_LEN: usize = 1024;

/// The S3 operations this endpoint knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    GetBucketVersioning,
    ListObjects,
    ListObjectsV2,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
    PutBucketWebsite,
    GetBucketWebsite,
    DeleteBucketWebsite,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    /// CORS preflight (any path; unauthenticated).
    Options,
    /// POST /bucket with a multipart/form-data body (browser upload; authenticated by the form).
    PostObject,
    PutBucketLifecycle,
    GetBucketLifecycle,
    DeleteBucketLifecycle,
    /// Recognised but not implemented: answered 501.
    Unsupported(&'static str),
}

/// A routed request.
#[derive(Debug)]
pub struct Route {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub endpoint: Endpoint,
    pub query: BTreeMap<String, String>,
}

/// Strips the port from a Host header value.
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal.
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host)
}

/// Bucket-level sub-resources that we do not implement.
const UNSUPPORTED_BUCKET_QUERIES: &[(&str, &str)] = &[
    ("acl", "bucket ACLs"),
    ("policy", "bucket policies"),
    ("tagging", "bucket tagging"),
    ("replication", "replication"),
    ("encryption", "bucket encryption"),
    ("logging", "bucket logging"),
    ("notification", "bucket notifications"),
    ("object-lock", "object lock"),
    ("requestPayment", "request payment"),
    ("accelerate", "transfer acceleration"),
    ("versions", "ListObjectVersions"),
    ("ownershipControls", "ownership controls"),
    ("publicAccessBlock", "public access block"),
    ("analytics", "analytics"),
    ("metrics", "metrics"),
    ("inventory", "inventory"),
    ("intelligent-tiering", "intelligent tiering"),
];

const UNSUPPORTED_OBJECT_QUERIES: &[(&str, &str)] = &[
    ("acl", "object ACLs"),
    ("tagging", "object tagging"),
    ("retention", "object retention"),
    ("legal-hold", "legal hold"),
    ("torrent", "torrents"),
    ("restore", "RestoreObject"),
    ("select", "SelectObjectContent"),
    ("attributes", "GetObjectAttributes"),
    ("versionId", "object versions"),
];

/// Routes a request.
pub fn route(
    method: &http::Method,
    raw_path: &str,
    raw_query: &str,
    host: Option<&str>,
    root_domain: Option<&str>,
    has_copy_source: bool,
) -> Result<Route, S3Error> {
    let query: BTreeMap<String, String> = parse_query(raw_query)
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    let path = percent_decode(raw_path.as_bytes(), false);
    let path = String::from_utf8(path)
        .map_err(|_| S3Error::InvalidArgument("the request path is not valid UTF-8".into()))?;
    let path = path.strip_prefix('/').unwrap_or(&path);

    // Virtual-hosted style: <bucket>.<root_domain>.
    let vhost_bucket = match (host, root_domain) {
        (Some(h), Some(root)) => {
            let h = host_without_port(h).to_ascii_lowercase();
            let root = root.trim_start_matches('.').to_ascii_lowercase();
            h.strip_suffix(&root)
                .and_then(|b| b.strip_suffix('.'))
                .filter(|b| !b.is_empty())
                .map(String::from)
        }
        _ => None,
    };
    let (bucket, key) = match vhost_bucket {
        Some(b) => (Some(b), (!path.is_empty()).then(|| path.to_string())),
        None => match path.split_once('/') {
            None if path.is_empty() => (None, None),
            None => (Some(path.to_string()), None),
            Some((b, k)) => (Some(b.to_string()), (!k.is_empty()).then(|| k.to_string())),
        },
    };
    if let Some(k) = &key {
        if k.len() > MAX_KEY_LEN {
            return Err(S3Error::KeyTooLongError);
        }
    }
    let has = |q: &str| query.contains_key(q);
    use http::Method as M;
    let endpoint = match (&bucket, &key) {
        _ if *method == M::OPTIONS => Endpoint::Options,
        (None, _) => match *method {
            M::GET => Endpoint::ListBuckets,
            _ => return Err(S3Error::MethodNotAllowed),
        },
        (Some(_), None) if has("uploads") && *method == M::GET => Endpoint::ListMultipartUploads,
        (Some(_), None) if has("lifecycle") => match *method {
            M::PUT => Endpoint::PutBucketLifecycle,
            M::GET => Endpoint::GetBucketLifecycle,
            M::DELETE => Endpoint::DeleteBucketLifecycle,
            _ => return Err(S3Error::MethodNotAllowed),
        },
        (Some(_), Some(_)) if has("uploads") && *method == M::POST => {
            Endpoint::CreateMultipartUpload
        }
        (Some(_), Some(_)) if has("uploadId") => match *method {
            M::PUT if has_copy_source => Endpoint::UploadPartCopy,
            M::PUT => Endpoint::UploadPart,
            M::POST => Endpoint::CompleteMultipartUpload,
            M::DELETE => Endpoint::AbortMultipartUpload,
            M::GET => Endpoint::ListParts,
            _ => return Err(S3Error::MethodNotAllowed),
        },
        (Some(_), None) if has("website") => match *method {
            M::PUT => Endpoint::PutBucketWebsite,
            M::GET => Endpoint::GetBucketWebsite,
            M::DELETE => Endpoint::DeleteBucketWebsite,
            _ => return Err(S3Error::MethodNotAllowed),
        },
        (Some(_), None) if has("cors") => match *method {
            M::GET => Endpoint::GetBucketCors,
            M::PUT => Endpoint::PutBucketCors,
            M::DELETE => Endpoint::DeleteBucketCors,
            _ => return Err(S3Error::MethodNotAllowed),
        },
        (Some(_), None) => {
            if let Some((_, what)) = UNSUPPORTED_BUCKET_QUERIES.iter().find(|(q, _)| has(q)) {
                Endpoint::Unsupported(what)
            } else {
                match *method {
                    // Not a CreateBucket: without this, an existing bucket answered 409.
                    M::PUT if has("versioning") => Endpoint::Unsupported("PutBucketVersioning"),
                    M::PUT => Endpoint::CreateBucket,
                    M::DELETE => Endpoint::DeleteBucket,
                    M::HEAD => Endpoint::HeadBucket,
                    M::GET if has("location") => Endpoint::GetBucketLocation,
                    M::GET if has("versioning") => Endpoint::GetBucketVersioning,
                    M::GET if query.get("list-type").map(String::as_str) == Some("2") => {
                        Endpoint::ListObjectsV2
                    }
                    M::GET => Endpoint::ListObjects,
                    M::POST if has("delete") => Endpoint::DeleteObjects,
                    M::POST => Endpoint::PostObject,
                    _ => return Err(S3Error::MethodNotAllowed),
                }
            }
        }
        (Some(_), Some(_)) => {
            if let Some((_, what)) = UNSUPPORTED_OBJECT_QUERIES.iter().find(|(q, _)| has(q)) {
                Endpoint::Unsupported(what)
            } else {
                match *method {
                    M::PUT if has_copy_source => Endpoint::CopyObject,
                    M::PUT => Endpoint::PutObject,
                    M::GET => Endpoint::GetObject,
                    M::HEAD => Endpoint::HeadObject,
                    M::DELETE => Endpoint::DeleteObject,
                    _ => return Err(S3Error::MethodNotAllowed),
                }
            }
        }
    };
    Ok(Route {
        bucket,
        key,
        endpoint,
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn r(m: Method, p: &str, q: &str, host: Option<&str>) -> Route {
        route(&m, p, q, host, Some(".s3.garage"), false).expect("route")
    }

    #[test]
    fn path_and_vhost_styles() {
        let x = r(Method::GET, "/", "", Some("localhost:3900"));
        assert_eq!(x.endpoint, Endpoint::ListBuckets);
        let x = r(Method::PUT, "/bkt/a/b%20c//d", "", Some("localhost"));
        assert_eq!(x.bucket.as_deref(), Some("bkt"));
        assert_eq!(x.key.as_deref(), Some("a/b c//d"));
        assert_eq!(x.endpoint, Endpoint::PutObject);
        let x = r(Method::GET, "/some/key", "", Some("bkt.s3.garage:3900"));
        assert_eq!(x.bucket.as_deref(), Some("bkt"));
        assert_eq!(x.key.as_deref(), Some("some/key"));
        let x = r(
            Method::GET,
            "/",
            "list-type=2&prefix=a",
            Some("bkt.s3.garage"),
        );
        assert_eq!(x.endpoint, Endpoint::ListObjectsV2);
        assert_eq!(x.query.get("prefix").map(String::as_str), Some("a"));
        let x = r(Method::GET, "/bkt", "location", None);
        assert_eq!(x.endpoint, Endpoint::GetBucketLocation);
        let x = r(Method::GET, "/bkt", "acl", None);
        assert!(matches!(x.endpoint, Endpoint::Unsupported(_)));
        let x = r(Method::PUT, "/bkt", "versioning", None);
        assert!(matches!(x.endpoint, Endpoint::Unsupported(_)));
        let x = r(Method::GET, "/bkt", "versioning", None);
        assert_eq!(x.endpoint, Endpoint::GetBucketVersioning);
        let x = r(Method::PUT, "/bkt", "website", None);
        assert_eq!(x.endpoint, Endpoint::PutBucketWebsite);
        let x = r(Method::GET, "/", "website", Some("bkt.s3.garage"));
        assert_eq!(x.endpoint, Endpoint::GetBucketWebsite);
        let x = r(Method::DELETE, "/bkt", "website=", None);
        assert_eq!(x.endpoint, Endpoint::DeleteBucketWebsite);
        let x = r(Method::PUT, "/bkt", "cors", None);
        assert_eq!(x.endpoint, Endpoint::PutBucketCors);
        let x = r(Method::GET, "/", "cors", Some("bkt.s3.garage"));
        assert_eq!(x.endpoint, Endpoint::GetBucketCors);
        assert_eq!(x.bucket.as_deref(), Some("bkt"));
        let x = r(Method::DELETE, "/bkt", "cors", None);
        assert_eq!(x.endpoint, Endpoint::DeleteBucketCors);
        let x = r(Method::OPTIONS, "/bkt/some/key", "", None);
        assert_eq!(x.endpoint, Endpoint::Options);
        assert_eq!(x.key.as_deref(), Some("some/key"));
        let x = r(Method::POST, "/bkt", "", None);
        assert_eq!(x.endpoint, Endpoint::PostObject);
        let x = r(Method::POST, "/", "", Some("bkt.s3.garage"));
        assert_eq!(x.endpoint, Endpoint::PostObject);
        let x = r(Method::PUT, "/bkt", "lifecycle", None);
        assert_eq!(x.endpoint, Endpoint::PutBucketLifecycle);
        let x = r(Method::GET, "/bkt", "lifecycle", None);
        assert_eq!(x.endpoint, Endpoint::GetBucketLifecycle);
        let x = r(Method::DELETE, "/bkt", "lifecycle", None);
        assert_eq!(x.endpoint, Endpoint::DeleteBucketLifecycle);
    }

    #[test]
    fn hostile_keys_are_kept_verbatim() {
        let x = r(Method::GET, "/bkt/../../etc/passwd", "", None);
        assert_eq!(x.key.as_deref(), Some("../../etc/passwd"));
        let x = r(Method::GET, "/bkt//leading", "", None);
        assert_eq!(x.key.as_deref(), Some("/leading"));
        let long = format!("/bkt/{}", "a".repeat(1025));
        assert!(matches!(
            route(&Method::GET, &long, "", None, None, false),
            Err(S3Error::KeyTooLongError)
        ));
    }

    #[test]
    fn host_ports() {
        assert_eq!(host_without_port("a.b:3900"), "a.b");
        assert_eq!(host_without_port("[::1]:3900"), "::1");
        assert_eq!(host_without_port("a.b"), "a.b");
    }
}
