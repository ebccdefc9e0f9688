//! CopyObject and UploadPartCopy: the source is read with read permission, the destination
//! written with write permission; `x-amz-copy-source-if-*` conditions apply to both.
//! CopyObject copies inline data and shares block data (a new version referencing the same
//! blocks, so reference counts go up and no byte is copied); metadata directive COPY or REPLACE.
//! UploadPartCopy streams the source (or its `x-amz-copy-source-range`) into the upload like an
//! UploadPart body: its ETag is the MD5 of those bytes, and blocks that come out identical to the
//! source's are stored once (blocks are content-addressed). The destination bucket's quotas
//! are checked before anything is written.
//!
//! SSE-C: an encrypted source needs its key in `x-amz-copy-source-server-side-encryption-
//! customer-*`, an encrypted destination gets the key of `x-amz-server-side-encryption-
//! customer-*`. When either side is encrypted, CopyObject decrypts and re-encrypts the data
//! into new blocks instead of sharing them.

use http::{Response, StatusCode};

use super::encryption::{self, SseKey};
use super::error::S3Error;
use super::get::{block_range_stream, check_conditions, find_object, version_blocks};
use super::multipart::{part_number, part_target, store_part};
use super::put::{object_headers, store_object, BodyHashes};
use super::quota;
use super::request::{Need, ReqBody, ReqCtx};
use super::version_time::new_version_timestamp;
use super::xml::Xml;
use super::{full_body, ResBody};
use crate::api::signature::canonical::percent_decode;
use crate::model::block_ref::BlockRef;
use crate::model::object::{Object, ObjectData, ObjectMeta, ObjectVersion, VersionState};
use crate::model::version::{Version, VersionBlock};
use crate::util::ids::Uuid;
use crate::util::time::{msec_to_rfc3339, unique_msec};

/// Parses `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded.
fn parse_source(v: &str) -> Result<(String, String), S3Error> {
    let (path, query) = v.split_once('?').unwrap_or((v, ""));
    if !query.is_empty() && query != "versionId=null" {
        return Err(S3Error::NotImplemented(
            "copying a specific object version".into(),
        ));
    }
    let decoded = String::from_utf8(percent_decode(path.as_bytes(), false))
        .map_err(|_| S3Error::InvalidArgument("x-amz-copy-source is not valid UTF-8".into()))?;
    let decoded = decoded.trim_start_matches('/');
    let (b, k) = decoded
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| {
            S3Error::InvalidArgument("x-amz-copy-source must be <bucket>/<key>".into())
        })?;
    Ok((b.to_string(), k.to_string()))
}

/// The copy source of a request, read with read permission, its conditions checked:
/// (bucket id, key, version, metadata).
async fn copy_source(ctx: &ReqCtx) -> Result<(Uuid, String, ObjectVersion, ObjectMeta), S3Error> {
    let (src_bucket_name, src_key) = parse_source(ctx.header("x-amz-copy-source").unwrap_or(""))?;
    let src_bucket = ctx.bucket_by_name(&src_bucket_name, Need::Read).await?;
    let (_, src_version, src_meta) = find_object(&ctx.api, &src_bucket.id, &src_key).await?;
    check_conditions(
        &ctx.headers,
        "x-amz-copy-source-",
        &src_meta.etag,
        src_version.timestamp,
        true,
    )?;
    Ok((src_bucket.id, src_key, src_version, src_meta))
}

/// Parses `x-amz-copy-source-range: bytes=FIRST-LAST` (both given, inclusive, inside the object).
fn parse_copy_range(v: &str, size: u64) -> Result<(u64, u64), S3Error> {
    let bad = || {
        S3Error::InvalidArgument(format!(
            "x-amz-copy-source-range {v:?} is not bytes=FIRST-LAST within the source object of size {size}"
        ))
    };
    let (a, b) = v
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last || last >= size {
        return Err(bad());
    }
    Ok((first, last))
}

/// The key to read a copy source with (`None` for a plain source).
fn source_key(ctx: &ReqCtx, src_meta: &ObjectMeta) -> Result<Option<SseKey>, S3Error> {
    encryption::key_for_read(
        src_meta.encryption.as_ref(),
        encryption::copy_source_key(&ctx.headers)?,
    )
}

/// The plaintext bytes `[start, end)` of a source version, as a body stream.
async fn source_body(
    ctx: &ReqCtx,
    src_version: &ObjectVersion,
    (start, end): (u64, u64),
    sse: Option<SseKey>,
) -> Result<ReqBody, S3Error> {
    Ok(match src_version.data() {
        Some(ObjectData::Inline(_, bytes)) => {
            let plain = encryption::open(sse.as_ref(), bytes::Bytes::from(bytes.clone()))?;
            let slice = plain
                .get(start as usize..end as usize)
                .map(bytes::Bytes::copy_from_slice)
                .ok_or_else(|| S3Error::Internal("inline data shorter than recorded".into()))?;
            Box::pin(futures::stream::once(async move { Ok(slice) }))
        }
        Some(ObjectData::FirstBlock(..)) => {
            let blocks = version_blocks(&ctx.api, &src_version.uuid).await?;
            Box::pin(futures::StreamExt::map(
                block_range_stream(&ctx.api, blocks, start, end, sse),
                |r| r.map_err(|e| S3Error::ServiceUnavailable(e.to_string())),
            ))
        }
        _ => return Err(S3Error::NoSuchKey),
    })
}

/// PUT /bucket/key?partNumber=N&uploadId=X with x-amz-copy-source.
pub async fn upload_part_copy(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let (_, _, src_version, src_meta) = copy_source(ctx).await?;
    let src_sse = source_key(ctx, &src_meta)?;
    let target = part_target(ctx).await?;
    let part = part_number(ctx)?;
    let (start, end) = match ctx.header("x-amz-copy-source-range") {
        Some(r) => {
            let (first, last) = parse_copy_range(r, src_meta.size)?;
            (first, last + 1)
        }
        None => (0, src_meta.size),
    };
    if end - start > super::put::MAX_PUT_SIZE {
        return Err(S3Error::InvalidRequest(
            "a copied part may not exceed 5 GiB: use x-amz-copy-source-range".into(),
        ));
    }
    let body = source_body(ctx, &src_version, (start, end), src_sse).await?;
    let (etag, checksum) = store_part(
        ctx,
        &target,
        part,
        body,
        BodyHashes::md5_only(),
        None,
        Some(end - start),
    )
    .await?;
    let mut x = Xml::new("CopyPartResult");
    x.elem("ETag", &format!("\"{etag}\""))
        .elem("LastModified", &msec_to_rfc3339(unique_msec()));
    if let Some(c) = &checksum {
        x.elem(&format!("Checksum{}", c.algorithm().name()), &c.to_base64());
    }
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml");
    encryption::response_headers(resp, target.sse.map(|k| k.stored()).as_ref())
        .body(full_body(x.finish("CopyPartResult")))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// PUT /bucket/key with x-amz-copy-source.
pub async fn copy_object(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let (src_bucket_id, src_key, src_version, src_meta) = copy_source(ctx).await?;
    let src_sse = source_key(ctx, &src_meta)?;
    let dst_sse = encryption::request_key(&ctx.headers)?;
    let dst_bucket = ctx.bucket(Need::Write).await?;
    let dst_key = ctx.object_key()?.to_string();
    let replace = match ctx.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(S3Error::InvalidArgument(format!(
                "unknown x-amz-metadata-directive {other:?} (COPY or REPLACE)"
            )))
        }
    };
    let same_encryption =
        src_sse.as_ref().map(SseKey::key_md5) == dst_sse.as_ref().map(SseKey::key_md5);
    if src_bucket_id == dst_bucket.id && src_key == dst_key && !replace && same_encryption {
        return Err(S3Error::InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata".into(),
        ));
    }
    let headers = if replace {
        object_headers(&ctx.headers)
    } else {
        src_meta.headers.clone()
    };
    quota::check_object(
        &ctx.api,
        &dst_bucket.id,
        &dst_key,
        &quota::limits(&dst_bucket),
        src_meta.size,
    )
    .await?;
    if src_sse.is_some() || dst_sse.is_some() {
        // Encrypted data cannot be shared: decrypt and re-encrypt into new blocks, which is
        // bounded as a single PutObject.
        if src_meta.size > super::put::MAX_PUT_SIZE {
            return Err(S3Error::InvalidRequest(format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {}",
                super::put::MAX_PUT_SIZE
            )));
        }
        let body = source_body(ctx, &src_version, (0, src_meta.size), src_sse).await?;
        let checksum = src_meta.checksum.clone();
        let (meta, timestamp) = store_object(
            ctx,
            (dst_bucket.id, &dst_key),
            headers,
            body,
            BodyHashes::md5_only(),
            dst_sse.as_ref(),
            |h| Ok((h.md5_hex(), checksum)),
            None,
        )
        .await?;
        return copy_result(&meta, timestamp);
    }
    let meta = ObjectMeta {
        headers,
        ..src_meta.clone()
    };
    let uuid = Uuid::random();
    let timestamp = new_version_timestamp(ctx, &dst_bucket.id, &dst_key).await?;
    let data = match src_version.data() {
        Some(ObjectData::Inline(_, bytes)) => ObjectData::Inline(meta.clone(), bytes.clone()),
        Some(ObjectData::FirstBlock(_, first)) => {
            let blocks = version_blocks(&ctx.api, &src_version.uuid).await?;
            let mut v = Version::new(uuid, dst_bucket.id, dst_key.clone());
            let mut offset = 0u64;
            for b in &blocks {
                v.blocks.put(
                    (0, offset),
                    VersionBlock {
                        hash: b.hash,
                        size: b.size,
                    },
                );
                offset += b.size;
            }
            ctx.api.model.versions.insert(&v).await?;
            let refs: Vec<BlockRef> = blocks.iter().map(|b| BlockRef::new(b.hash, uuid)).collect();
            ctx.api.model.block_refs.insert_many(&refs).await?;
            ObjectData::FirstBlock(meta.clone(), *first)
        }
        _ => return Err(S3Error::NoSuchKey),
    };
    let version = ObjectVersion {
        uuid,
        timestamp,
        state: VersionState::Complete(data),
    };
    ctx.api
        .model
        .objects
        .insert(&Object::new(dst_bucket.id, dst_key, vec![version]))
        .await?;
    copy_result(&meta, timestamp)
}

/// The answer to a CopyObject that wrote `meta` at `timestamp`.
fn copy_result(meta: &ObjectMeta, timestamp: u64) -> Result<Response<ResBody>, S3Error> {
    let mut x = Xml::new("CopyObjectResult");
    x.elem("ETag", &format!("\"{}\"", meta.etag))
        .elem("LastModified", &msec_to_rfc3339(timestamp));
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml");
    encryption::response_headers(resp, meta.encryption.as_ref())
        .body(full_body(x.finish("CopyObjectResult")))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources() {
        assert_eq!(
            parse_source("/b/a%20key/x").ok(),
            Some(("b".to_string(), "a key/x".to_string()))
        );
        assert_eq!(parse_source("b/k").ok(), Some(("b".into(), "k".into())));
        assert!(parse_source("b").is_err());
        assert!(parse_source("/b/").is_err());
    }

    #[test]
    fn copy_ranges() {
        assert_eq!(parse_copy_range("bytes=0-9", 10).ok(), Some((0, 9)));
        assert_eq!(parse_copy_range("bytes=5-5", 10).ok(), Some((5, 5)));
        for bad in [
            "bytes=0-10",
            "bytes=5-4",
            "bytes=-5",
            "bytes=3-",
            "0-3",
            "bytes=a-b",
        ] {
            assert!(parse_copy_range(bad, 10).is_err(), "{bad}");
        }
    }
}
