//! ListObjects (v1) and ListObjectsV2: a range scan of the bucket's partition in the object
//! table (read quorum, merged), with prefix, delimiter and common prefixes, max-keys,
//! marker / start-after / continuation-token, encoding-type=url and fetch-owner.

use std::collections::BTreeSet;

use base64::Engine;
use http::{Response, StatusCode};

use super::error::S3Error;
use super::request::{Need, ReqCtx};
use super::xml::Xml;
use super::{full_body, ResBody};
use crate::api::signature::canonical::uri_encode;
use crate::model::object::{Object, ObjectFilter};
use crate::util::time::msec_to_rfc3339;

/// Objects read per range query.
const PAGE: usize = 1000;

/// The key just after `k` in byte order.
fn key_after(k: &str) -> String {
    let mut s = k.to_string();
    s.push('\0');
    s
}

/// A key after every key starting with `prefix` (UTF-8 never contains byte 0xFF, so any
/// character above every continuation works: U+10FFFF encodes as F4 8F BF BF).
pub(super) fn after_prefix(prefix: &str) -> String {
    let mut s = prefix.to_string();
    s.push('\u{10FFFF}');
    s
}

/// One page of a listing.
pub(super) struct Listing {
    pub objects: Vec<Object>,
    pub prefixes: BTreeSet<String>,
    pub truncated: bool,
    /// Where the next page starts (inclusive), if truncated.
    next_start: Option<String>,
    /// The last key or prefix returned.
    pub last: Option<String>,
}

/// Lists the objects matching `filter` from `start` (inclusive) under `prefix`, grouping keys
/// into common prefixes at `delimiter`, up to `max_keys` objects and prefixes.
pub(super) async fn scan(
    ctx: &ReqCtx,
    bucket: &crate::util::ids::Uuid,
    prefix: &str,
    delimiter: Option<&str>,
    start: String,
    max_keys: usize,
    filter: ObjectFilter,
) -> Result<Listing, S3Error> {
    let mut out = Listing {
        objects: vec![],
        prefixes: BTreeSet::new(),
        truncated: false,
        next_start: None,
        last: None,
    };
    let mut cursor = if start.as_str() < prefix {
        prefix.to_string()
    } else {
        start
    };
    loop {
        let page = ctx
            .api
            .model
            .objects
            .get_range(bucket, Some(&cursor), Some(&filter), PAGE, false)
            .await?;
        let exhausted = page.len() < PAGE;
        let mut jumped = false;
        for o in page {
            if o.key < cursor {
                continue;
            }
            if !o.key.starts_with(prefix) {
                if o.key.as_str() > prefix {
                    return Ok(out);
                }
                continue;
            }
            let count = out.objects.len() + out.prefixes.len();
            // A common prefix groups every key up to the delimiter.
            let common = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                o.key[prefix.len()..]
                    .find(d)
                    .map(|i| o.key[..prefix.len() + i + d.len()].to_string())
            });
            if count >= max_keys {
                out.truncated = true;
                out.next_start = Some(o.key.clone());
                return Ok(out);
            }
            match common {
                Some(cp) => {
                    out.prefixes.insert(cp.clone());
                    out.last = Some(cp.clone());
                    cursor = after_prefix(&cp);
                    jumped = true;
                    break;
                }
                None => {
                    out.last = Some(o.key.clone());
                    cursor = key_after(&o.key);
                    out.objects.push(o);
                }
            }
        }
        if exhausted && !jumped {
            return Ok(out);
        }
    }
}

fn encode_key(s: &str, url: bool) -> String {
    if url {
        uri_encode(s.as_bytes(), false)
    } else {
        s.to_string()
    }
}

/// GET /bucket (v1) or GET /bucket?list-type=2 (v2).
pub async fn list_objects(ctx: &ReqCtx, v2: bool) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Read).await?;
    let q = &ctx.route.query;
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let max_keys = match q.get("max-keys") {
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| {
                S3Error::InvalidArgument(format!(
                    "max-keys must be a non-negative integer, got {m:?}"
                ))
            })?
            .min(1000),
        None => 1000,
    };
    let url = match q.get("encoding-type").map(String::as_str) {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(S3Error::InvalidArgument(format!(
                "invalid encoding-type {other:?}"
            )))
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let start = if v2 {
        match (q.get("continuation-token"), q.get("start-after")) {
            (Some(t), _) => b64
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    S3Error::InvalidArgument("the continuation token is not valid".into())
                })?,
            (None, Some(sa)) => key_after(sa),
            (None, None) => String::new(),
        }
    } else {
        match (q.get("marker"), &delimiter) {
            // A marker that is a common prefix: skip everything under it.
            (Some(m), Some(d)) if m.ends_with(d.as_str()) => after_prefix(m),
            (Some(m), _) => key_after(m),
            (None, _) => String::new(),
        }
    };
    let bucket_name = ctx.bucket_name()?;
    let listing = if max_keys == 0 {
        Listing {
            objects: vec![],
            prefixes: BTreeSet::new(),
            truncated: false,
            next_start: None,
            last: None,
        }
    } else {
        scan(
            ctx,
            &bucket.id,
            &prefix,
            delimiter.as_deref(),
            start,
            max_keys,
            ObjectFilter::HasData,
        )
        .await?
    };

    let mut x = Xml::new("ListBucketResult");
    x.elem("Name", bucket_name)
        .elem("Prefix", &encode_key(&prefix, url))
        .elem("MaxKeys", &max_keys.to_string())
        .elem(
            "IsTruncated",
            if listing.truncated { "true" } else { "false" },
        );
    if let Some(d) = &delimiter {
        x.elem("Delimiter", &encode_key(d, url));
    }
    if url {
        x.elem("EncodingType", "url");
    }
    if v2 {
        x.elem(
            "KeyCount",
            &(listing.objects.len() + listing.prefixes.len()).to_string(),
        );
        if let Some(t) = q.get("continuation-token") {
            x.elem("ContinuationToken", t);
        }
        if let Some(sa) = q.get("start-after") {
            x.elem("StartAfter", &encode_key(sa, url));
        }
        if let (true, Some(next)) = (listing.truncated, &listing.next_start) {
            x.elem("NextContinuationToken", &b64.encode(next.as_bytes()));
        }
    } else {
        x.elem(
            "Marker",
            &encode_key(q.get("marker").map(String::as_str).unwrap_or(""), url),
        );
        if listing.truncated {
            if let Some(last) = &listing.last {
                x.elem("NextMarker", &encode_key(last, url));
            }
        }
    }
    let fetch_owner = !v2 || q.get("fetch-owner").map(String::as_str) == Some("true");
    for o in &listing.objects {
        let Some(v) = o.last_data() else { continue };
        let Some(meta) = v.meta() else { continue };
        x.open("Contents")
            .elem("Key", &encode_key(&o.key, url))
            .elem("LastModified", &msec_to_rfc3339(v.timestamp))
            .elem("ETag", &format!("\"{}\"", meta.etag))
            .elem("Size", &meta.size.to_string())
            .elem("StorageClass", "STANDARD");
        if fetch_owner {
            x.open("Owner")
                .elem("ID", &ctx.key.key_id)
                .elem("DisplayName", &ctx.key.name())
                .close("Owner");
        }
        x.close("Contents");
    }
    for p in &listing.prefixes {
        x.open("CommonPrefixes")
            .elem("Prefix", &encode_key(p, url))
            .close("CommonPrefixes");
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(x.finish("ListBucketResult")))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ordering_helpers() {
        assert!(key_after("a").as_str() > "a");
        assert!(key_after("a").as_str() < "a\u{1}");
        let p = after_prefix("dir/");
        assert!(p.as_str() > "dir/zzzz\u{FFFF}");
        assert!(p.as_str() < "dir0");
    }
}
