//! GetObject and HeadObject: a quorum read of the object entry, conditional requests
//! (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since), single byte ranges
//! (including suffix ranges), `partNumber`, `response-*` header overrides and
//! `x-amz-checksum-mode`. Block data is read from the closest replica and streamed in order,
//! with the next block fetched while the current one is sent. SSE-C objects need their key
//! (`encryption.rs`); their blocks are decrypted whole, then sliced.

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};

use super::encryption::{self, SseKey};
use super::error::S3Error;
use super::request::{Need, ReqCtx};
use super::{empty_body, full_body, ResBody, S3Api};
use crate::model::object::{Object, ObjectData, ObjectMeta, ObjectVersion};
use crate::model::version::VersionBlock;
use crate::net::frame::Priority;
use crate::table::schema::EmptyKey;
use crate::util::time::{msec_to_http_date, parse_http_date};

/// Blocks fetched ahead of the one being sent.
const READ_AHEAD: usize = 2;

/// Checks conditional headers (`prefix` is "" for GET/HEAD, "x-amz-copy-source-" for copies).
pub fn check_conditions(
    headers: &http::HeaderMap,
    prefix: &str,
    etag: &str,
    last_modified: u64,
    copy: bool,
) -> Result<(), S3Error> {
    let h = |n: &str| {
        headers
            .get(format!("{prefix}{n}"))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let matches = |list: &str| {
        list.split(',')
            .map(|e| e.trim().trim_start_matches("W/").trim_matches('"'))
            .any(|e| e == "*" || e == etag)
    };
    // Dates have second precision.
    let lm = last_modified / 1000 * 1000;
    let if_match = h("if-match");
    if let Some(m) = if_match {
        if !matches(m) {
            return Err(S3Error::PreconditionFailed);
        }
    } else if let Some(d) = h("if-unmodified-since").and_then(parse_http_date) {
        if lm > d {
            return Err(S3Error::PreconditionFailed);
        }
    }
    let fail_unmodified = if copy {
        S3Error::PreconditionFailed
    } else {
        S3Error::NotModified
    };
    if let Some(m) = h("if-none-match") {
        if matches(m) {
            return Err(fail_unmodified);
        }
    } else if let Some(d) = h("if-modified-since").and_then(parse_http_date) {
        if lm <= d {
            return Err(fail_unmodified);
        }
    }
    Ok(())
}

/// Parses a `Range` header against an object size: the inclusive byte range to send.
pub fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Several ranges: S3 answers the whole object.
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(S3Error::InvalidRange)?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| S3Error::InvalidRange)?;
        if n == 0 {
            return Err(S3Error::InvalidRange);
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| S3Error::InvalidRange)?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            let e: u64 = b.parse().map_err(|_| S3Error::InvalidRange)?;
            if e < start {
                return Err(S3Error::InvalidRange);
            }
            e.min(size.saturating_sub(1))
        };
        (start, end)
    };
    if size == 0 || range.0 >= size {
        return Err(S3Error::InvalidRange);
    }
    Ok(Some(range))
}

/// The object's visible version and its metadata.
pub async fn find_object(
    api: &S3Api,
    bucket: &crate::util::ids::Uuid,
    key: &str,
) -> Result<(Object, ObjectVersion, ObjectMeta), S3Error> {
    let obj = api
        .model
        .objects
        .get(bucket, &key.to_string())
        .await?
        .ok_or(S3Error::NoSuchKey)?;
    let v = obj.last_data().cloned().ok_or(S3Error::NoSuchKey)?;
    let meta = v.meta().cloned().ok_or(S3Error::NoSuchKey)?;
    Ok((obj, v, meta))
}

/// The block list of a version, in order.
pub async fn version_blocks(
    api: &S3Api,
    version: &crate::util::ids::Uuid,
) -> Result<Vec<VersionBlock>, S3Error> {
    Ok(version_blocks_with_parts(api, version)
        .await?
        .into_iter()
        .map(|(_, b)| b)
        .collect())
}

/// The block list of a version with the part number of each block, in order.
pub async fn version_blocks_with_parts(
    api: &S3Api,
    version: &crate::util::ids::Uuid,
) -> Result<Vec<(u64, VersionBlock)>, S3Error> {
    let v = api
        .model
        .versions
        .get(version, &EmptyKey)
        .await?
        .ok_or_else(|| S3Error::Internal("the object's block list is missing".into()))?;
    if v.deleted.get() {
        return Err(S3Error::NoSuchKey);
    }
    Ok(v.blocks
        .iter()
        .map(|((k, _), b)| (super::multipart::part_of(*k), *b))
        .collect())
}

/// GET or HEAD /bucket/key
pub async fn get_object(ctx: &ReqCtx, head_only: bool) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Read).await?;
    let key = ctx.object_key()?;
    let (_, version, meta) = find_object(&ctx.api, &bucket.id, key).await?;
    let checksum = ctx
        .header("x-amz-checksum-mode")
        .map(|m| m.eq_ignore_ascii_case("enabled"))
        == Some(true);
    object_response(
        &ctx.api,
        &version,
        &meta,
        &ctx.headers,
        &ctx.route.query,
        head_only,
        checksum,
    )
    .await
}

/// The answer to a GET or HEAD of an object version: conditional requests, range,
/// `partNumber`, `response-*` overrides, stored headers, and the streamed body. Shared by the
/// S3 endpoint and the website endpoint.
pub async fn object_response(
    api: &S3Api,
    version: &ObjectVersion,
    meta: &ObjectMeta,
    headers: &http::HeaderMap,
    q: &std::collections::BTreeMap<String, String>,
    head_only: bool,
    with_checksum: bool,
) -> Result<Response<ResBody>, S3Error> {
    let sse =
        encryption::key_for_read(meta.encryption.as_ref(), encryption::request_key(headers)?)?;
    check_conditions(headers, "", &meta.etag, version.timestamp, false)?;
    let mut range = match headers.get("range").and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, meta.size)?,
        None => None,
    };
    // Block list (for block objects) and the byte range of each part.
    let blocks = match version.data() {
        Some(ObjectData::FirstBlock(..)) => {
            Some(version_blocks_with_parts(api, &version.uuid).await?)
        }
        _ => None,
    };
    let mut parts: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    let mut offset = 0u64;
    for (part, b) in blocks.iter().flatten() {
        let e = parts.entry(*part).or_insert((offset, offset));
        e.1 = offset + b.size;
        offset += b.size;
    }
    let part_count = parts.len().max(1);
    if let Some(p) = q.get("partNumber") {
        let n: u64 = p
            .parse()
            .map_err(|_| S3Error::InvalidArgument(format!("invalid part number {p:?}")))?;
        if parts.len() <= 1 {
            // A single-part object: part 1 is the whole object.
            if n != 1 {
                return Err(S3Error::InvalidPart);
            }
            range = None;
        } else {
            let (s, e) = parts
                .values()
                .nth((n as usize).wrapping_sub(1))
                .copied()
                .ok_or(S3Error::InvalidPart)?;
            range = (e > s).then(|| (s, e - 1));
        }
    }

    let mut resp = Response::builder()
        .header(http::header::ETAG, format!("\"{}\"", meta.etag))
        .header(
            http::header::LAST_MODIFIED,
            msec_to_http_date(version.timestamp),
        )
        .header(http::header::ACCEPT_RANGES, "bytes");
    resp = encryption::response_headers(resp, meta.encryption.as_ref());
    let override_or = |param: &str, stored: Option<&str>| -> Option<String> {
        q.get(param).cloned().or_else(|| stored.map(String::from))
    };
    if let Some(ct) = override_or(
        "response-content-type",
        meta.headers.content_type.as_deref(),
    ) {
        resp = resp.header(http::header::CONTENT_TYPE, ct);
    }
    for (name, value) in &meta.headers.other {
        let overridden = q.contains_key(&format!("response-{name}"));
        if !overridden {
            resp = resp.header(name.as_str(), value.as_str());
        }
    }
    for h in [
        "content-language",
        "expires",
        "cache-control",
        "content-disposition",
        "content-encoding",
    ] {
        if let Some(v) = q.get(&format!("response-{h}")) {
            resp = resp.header(h, v.as_str());
        }
    }
    if q.contains_key("partNumber") {
        resp = resp.header("x-amz-mp-parts-count", part_count.to_string());
    }
    // The stored checksum is of the whole object: a range answer carries none (as S3), else
    // clients that validate it (aws-sdk-s3 does by default) reject the partial body.
    if with_checksum && range.is_none() {
        if let Some((algo, value)) = &meta.checksum {
            // Composite checksums of multipart objects end with `-<parts>`.
            let kind = if value.contains('-') {
                "COMPOSITE"
            } else {
                "FULL_OBJECT"
            };
            resp = resp
                .header(
                    format!("x-amz-checksum-{}", algo.to_ascii_lowercase()),
                    value.as_str(),
                )
                .header("x-amz-checksum-type", kind);
        }
    }
    let (status, start, end) = match range {
        Some((s, e)) => {
            resp = resp.header(
                http::header::CONTENT_RANGE,
                format!("bytes {s}-{e}/{}", meta.size),
            );
            (StatusCode::PARTIAL_CONTENT, s, e + 1)
        }
        None => (StatusCode::OK, 0, meta.size),
    };
    resp = resp
        .status(status)
        .header(http::header::CONTENT_LENGTH, (end - start).to_string());
    if head_only {
        return resp
            .body(empty_body())
            .map_err(|e| S3Error::Internal(e.to_string()));
    }
    let body = match version.data() {
        Some(ObjectData::Inline(_, bytes)) => {
            let plain = encryption::open(sse.as_ref(), Bytes::from(bytes.clone()))?;
            let slice = plain
                .get(start as usize..end as usize)
                .ok_or_else(|| S3Error::Internal("inline data shorter than recorded".into()))?;
            full_body(Bytes::copy_from_slice(slice))
        }
        Some(ObjectData::FirstBlock(_, _)) => {
            let blocks = blocks
                .unwrap_or_default()
                .into_iter()
                .map(|(_, b)| b)
                .collect();
            stream_blocks(api, blocks, start, end, sse)
        }
        _ => return Err(S3Error::NoSuchKey),
    };
    resp.body(body)
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// The bytes `[start, end)` of a block list, as a stream of slices of its blocks (read ahead),
/// decrypted with `sse` if given.
pub fn block_range_stream(
    api: &S3Api,
    blocks: Vec<VersionBlock>,
    start: u64,
    end: u64,
    sse: Option<SseKey>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut wanted = vec![];
    let mut offset = 0u64;
    for b in blocks {
        let (bs, be) = (offset, offset + b.size);
        offset = be;
        if be <= start || bs >= end {
            continue;
        }
        let from = start.saturating_sub(bs);
        let to = (end.min(be)) - bs;
        wanted.push((b.hash, from as usize, to as usize));
    }
    let mgr = api.blocks.clone();
    stream::iter(wanted)
        .map(move |(hash, from, to)| {
            let mgr = mgr.clone();
            let sse = sse.clone();
            async move {
                let data = mgr
                    .get_block(&hash, Priority::Normal)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let data = match sse {
                    Some(k) => {
                        tokio::task::spawn_blocking(move || encryption::open(Some(&k), data))
                            .await
                            .map_err(std::io::Error::other)?
                            .map_err(|e| std::io::Error::other(e.to_string()))?
                    }
                    None => data,
                };
                if to > data.len() || from > to {
                    return Err(std::io::Error::other("block shorter than recorded"));
                }
                Ok(data.slice(from..to))
            }
        })
        .buffered(READ_AHEAD)
}

/// Streams the bytes `[start, end)` of a block list as a response body.
fn stream_blocks(
    api: &S3Api,
    blocks: Vec<VersionBlock>,
    start: u64,
    end: u64,
    sse: Option<SseKey>,
) -> ResBody {
    let s = block_range_stream(api, blocks, start, end, sse).map_ok(hyper::body::Frame::data);
    BodyExt::boxed_unsync(StreamBody::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).ok().flatten(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).ok().flatten(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).ok().flatten(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-500", 100).ok().flatten(), Some((0, 99)));
        assert_eq!(
            parse_range("bytes=50-500", 100).ok().flatten(),
            Some((50, 99))
        );
        assert!(matches!(
            parse_range("bytes=100-", 100),
            Err(S3Error::InvalidRange)
        ));
        assert!(matches!(
            parse_range("bytes=5-2", 100),
            Err(S3Error::InvalidRange)
        ));
        assert!(matches!(
            parse_range("bytes=x-2", 100),
            Err(S3Error::InvalidRange)
        ));
        assert!(matches!(
            parse_range("bytes=0-0", 0),
            Err(S3Error::InvalidRange)
        ));
        assert_eq!(parse_range("items=0-1", 100).ok().flatten(), None);
    }
}
