//! Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts, ListMultipartUploads.
//!
//! An upload is an object version in state `Uploading { multipart: true }`; its id is the
//! version id. Each part upload stores its blocks in that version's entry at positions
//! `(part_number << 40 | upload time, offset)` and records `part_etags[part] = "etag ts size"`,
//! so a re-uploaded part never mixes with its previous upload. Complete checks the part list
//! (order, ETags, sizes ≥ 5 MiB except the last), writes a new version holding exactly the
//! chosen blocks at `(part_number << 40, offset)` with its block references, marks the upload
//! version aborted (which frees the unused blocks through the cascade) and makes the new version
//! visible. ETag = MD5 of the parts' binary MD5s + `-N`. An upload created with an SSE-C key
//! records the key's MD5; every part must then be sent with the same key (`encryption.rs`).
//! Quotas (`quota.rs`) are checked for each part (size) and for the completed object.

use std::collections::BTreeMap;

use http::{Response, StatusCode};
use md5::{Digest, Md5};
use serde::Deserialize;

use super::encryption::{self, SseKey};
use super::error::S3Error;
use super::list::{after_prefix, scan};
use super::mpu_checksum::UploadChecksum;
use super::put::{check_body, expected, object_headers, store_blocks, BodyHashes, Expected};
use super::quota;
use super::request::{Need, ReqBody, ReqCtx, MAX_XML_BODY};
use super::version_time::new_version_timestamp;
use super::xml::{parse, Xml};
use super::{empty_body, full_body, ResBody};
use crate::api::signature::checksum::{Checksum, ChecksumAlgorithm};
use crate::model::block_ref::BlockRef;
use crate::model::bucket::BucketQuotas;
use crate::model::object::{
    Object, ObjectData, ObjectFilter, ObjectMeta, ObjectVersion, VersionState,
};
use crate::model::version::{PartEtag, Version};
use crate::table::schema::EmptyKey;
use crate::util::ids::Uuid;
use crate::util::time::{msec_to_rfc3339, unique_msec};

/// Smallest part allowed, except the last one.
const MIN_PART_SIZE: u64 = 5 << 20;
/// Highest part number.
const MAX_PART_NUMBER: u64 = 10_000;

/// The block position key of a part upload.
pub fn part_key(part: u64, upload_ts: u64) -> u64 {
    (part << 40) | (upload_ts & ((1 << 40) - 1))
}

/// The part number of a block position key.
pub fn part_of(key: u64) -> u64 {
    key >> 40
}

fn xml_ok(body: String) -> Result<Response<ResBody>, S3Error> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(body))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

fn upload_id(ctx: &ReqCtx) -> Result<Uuid, S3Error> {
    let id = ctx
        .route
        .query
        .get("uploadId")
        .ok_or_else(|| S3Error::InvalidRequest("missing uploadId".into()))?;
    Uuid::from_hex(id).map_err(|_| S3Error::NoSuchUpload)
}

/// The object and its upload version in progress.
async fn find_upload(
    ctx: &ReqCtx,
    bucket: &Uuid,
    key: &str,
    id: &Uuid,
) -> Result<(Object, ObjectVersion), S3Error> {
    let obj = ctx
        .api
        .model
        .objects
        .get(bucket, &key.to_string())
        .await?
        .ok_or(S3Error::NoSuchUpload)?;
    let v = obj
        .versions()
        .iter()
        .find(|v| {
            v.uuid == *id
                && matches!(
                    v.state,
                    VersionState::Uploading {
                        multipart: true,
                        ..
                    }
                )
        })
        .cloned()
        .ok_or(S3Error::NoSuchUpload)?;
    Ok((obj, v))
}

/// POST /bucket/key?uploads
pub async fn create(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Write).await?;
    let key = ctx.object_key()?.to_string();
    let sse = encryption::request_key(&ctx.headers)?;
    let checksum = UploadChecksum::from_headers(&ctx.headers)?;
    let uuid = Uuid::random();
    let version = ObjectVersion {
        uuid,
        timestamp: new_version_timestamp(ctx, &bucket.id, &key).await?,
        state: VersionState::Uploading {
            multipart: true,
            headers: object_headers(&ctx.headers),
            encryption: sse.as_ref().map(SseKey::stored),
        },
    };
    ctx.api
        .model
        .objects
        .insert(&Object::new(bucket.id, key.clone(), vec![version]))
        .await?;
    let mut upload_version = Version::new(uuid, bucket.id, key.clone());
    upload_version.checksum_spec = checksum.map(|c| c.encode());
    ctx.api.model.versions.insert(&upload_version).await?;
    let mut x = Xml::new("InitiateMultipartUploadResult");
    x.elem("Bucket", ctx.bucket_name()?)
        .elem("Key", &key)
        .elem("UploadId", &uuid.to_hex());
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml");
    if let Some(c) = checksum {
        resp = resp
            .header("x-amz-checksum-algorithm", c.algorithm.name())
            .header("x-amz-checksum-type", c.kind.name());
    }
    encryption::response_headers(resp, sse.map(|k| k.stored()).as_ref())
        .body(full_body(x.finish("InitiateMultipartUploadResult")))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// The `partNumber` of a part upload.
pub(super) fn part_number(ctx: &ReqCtx) -> Result<u64, S3Error> {
    ctx.route
        .query
        .get("partNumber")
        .and_then(|p| p.parse().ok())
        .filter(|p| (1..=MAX_PART_NUMBER).contains(p))
        .ok_or_else(|| {
            S3Error::InvalidArgument("partNumber must be an integer from 1 to 10000".into())
        })
}

/// The upload a part request names, after checking it exists.
pub(super) struct PartTarget {
    pub bucket: Uuid,
    pub key: String,
    pub upload: Uuid,
    /// The bucket's quotas.
    pub limits: BucketQuotas,
    /// The SSE-C key the part is encrypted with (checked against the upload's).
    pub sse: Option<SseKey>,
    /// The checksum chosen for the upload, if any: every part gets one of its algorithm.
    pub checksum: Option<UploadChecksum>,
}

pub(super) async fn part_target(ctx: &ReqCtx) -> Result<PartTarget, S3Error> {
    let bucket = ctx.bucket(Need::Write).await?;
    let key = ctx.object_key()?.to_string();
    let id = upload_id(ctx)?;
    let (_, upload) = find_upload(ctx, &bucket.id, &key, &id).await?;
    let upload_enc = match &upload.state {
        VersionState::Uploading { encryption, .. } => encryption.as_ref(),
        _ => None,
    };
    let sse = encryption::key_for_part(upload_enc, encryption::request_key(&ctx.headers)?)?;
    let checksum = upload_checksum(ctx, &id).await?;
    Ok(PartTarget {
        bucket: bucket.id,
        key,
        upload: id,
        limits: quota::limits(&bucket),
        sse,
        checksum,
    })
}

/// The checksum chosen for upload `id` (from its version entry).
async fn upload_checksum(ctx: &ReqCtx, id: &Uuid) -> Result<Option<UploadChecksum>, S3Error> {
    Ok(ctx
        .api
        .model
        .versions
        .get(id, &EmptyKey)
        .await?
        .and_then(|v| v.checksum_spec)
        .and_then(|s| UploadChecksum::decode(&s)))
}

/// Stores a part's data (a body stream of `declared_len` bytes, if known) in the upload,
/// encrypted with the target's SSE-C key if any, and records the part; returns its ETag. The
/// size quota is checked before storing when the length is known, else once the data is stored
/// (before the part is recorded).
pub(super) async fn store_part(
    ctx: &ReqCtx,
    target: &PartTarget,
    part: u64,
    body: ReqBody,
    hashes: BodyHashes,
    exp: Option<&Expected>,
    declared_len: Option<u64>,
) -> Result<(String, Option<Checksum>), S3Error> {
    let (bucket, key, id) = (target.bucket, target.key.as_str(), target.upload);
    let sse = target.sse.as_ref();
    if let Some(len) = declared_len {
        quota::check_part(&ctx.api, &bucket, &target.limits, len).await?;
    }
    let hashes = hashes.with_checksum(target.checksum.map(|c| c.algorithm));
    let ts = unique_msec();
    let ((_, size), hashes) = store_blocks(
        ctx,
        bucket,
        key,
        id,
        part_key(part, ts),
        bytes::BytesMut::new(),
        body,
        hashes,
        sse,
    )
    .await?;
    let (etag, checksum) = match exp {
        Some(exp) => {
            let (etag, stored) = check_body(ctx, exp, hashes)?;
            let checksum = stored.and_then(|(algo, value)| {
                Checksum::from_base64(ChecksumAlgorithm::from_name(&algo)?, &value).ok()
            });
            (etag, checksum)
        }
        None => hashes.md5_and_checksum(),
    };
    let etag = encryption::etag(sse, etag);
    if declared_len.is_none() {
        quota::check_part(&ctx.api, &bucket, &target.limits, size).await?;
    }
    let mut v = Version::new(id, bucket, key.to_string());
    let record = PartRecord {
        etag: etag.clone(),
        ts,
        size,
        checksum: checksum.clone(),
    };
    v.part_etags.put(part, record.encode());
    ctx.api.model.versions.insert(&v).await?;
    Ok((etag, checksum))
}

/// PUT /bucket/key?partNumber=N&uploadId=X
pub async fn upload_part(mut ctx: ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let target = part_target(&ctx).await?;
    let part = part_number(&ctx)?;
    let exp = expected(&ctx)?;
    if let (Some(given), Some(chosen)) = (exp.checksum_algorithm(), target.checksum) {
        if given != chosen.algorithm {
            return Err(S3Error::InvalidRequest(format!(
                "the part's {} checksum does not match the upload's checksum algorithm {}",
                given.name(),
                chosen.algorithm.name()
            )));
        }
    }
    let hashes = BodyHashes::for_request(&exp);
    let body = ctx.take_body();
    let len = exp.length;
    let (etag, checksum) = store_part(&ctx, &target, part, body, hashes, Some(&exp), len).await?;
    let sse = target.sse;
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::ETAG, format!("\"{etag}\""));
    if let Some(c) = checksum {
        resp = resp.header(c.algorithm().header_name(), c.to_base64());
    }
    encryption::response_headers(resp, sse.map(|k| k.stored()).as_ref())
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// A recorded part, stored as `"etag ts size [ALGO:base64]"`.
struct PartRecord {
    etag: String,
    /// Upload time (distinguishes uploads of the same part number).
    ts: u64,
    size: u64,
    checksum: Option<Checksum>,
}

impl PartRecord {
    fn encode(&self) -> PartEtag {
        let mut s = format!("{} {} {}", self.etag, self.ts, self.size);
        if let Some(c) = &self.checksum {
            s.push_str(&format!(" {}:{}", c.algorithm().name(), c.to_base64()));
        }
        PartEtag(s)
    }

    fn decode(p: &PartEtag) -> Option<Self> {
        let mut it = p.0.split(' ');
        let etag = it.next()?.to_string();
        let ts = it.next()?.parse().ok()?;
        let size = it.next()?.parse().ok()?;
        let checksum = it.next().and_then(|c| {
            let (algo, value) = c.split_once(':')?;
            Checksum::from_base64(ChecksumAlgorithm::from_name(algo)?, value).ok()
        });
        Some(Self {
            etag,
            ts,
            size,
            checksum,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteRequest {
    #[serde(default)]
    part: Vec<CompletePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompletePart {
    part_number: u64,
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(rename = "ChecksumCRC32", default)]
    checksum_crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C", default)]
    checksum_crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME", default)]
    checksum_crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1", default)]
    checksum_sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256", default)]
    checksum_sha256: Option<String>,
}

impl CompletePart {
    /// The part checksum the client lists, if any.
    fn checksum(&self) -> Result<Option<Checksum>, S3Error> {
        let given = [
            (ChecksumAlgorithm::Crc32, &self.checksum_crc32),
            (ChecksumAlgorithm::Crc32c, &self.checksum_crc32c),
            (ChecksumAlgorithm::Crc64Nvme, &self.checksum_crc64nvme),
            (ChecksumAlgorithm::Sha1, &self.checksum_sha1),
            (ChecksumAlgorithm::Sha256, &self.checksum_sha256),
        ];
        for (algo, v) in given {
            if let Some(v) = v {
                return Checksum::from_base64(algo, v)
                    .map(Some)
                    .map_err(|_| S3Error::InvalidPart);
            }
        }
        Ok(None)
    }
}

/// POST /bucket/key?uploadId=X
pub async fn complete(mut ctx: ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Write).await?;
    let key = ctx.object_key()?.to_string();
    let id = upload_id(&ctx)?;
    let body = ctx.read_small_body(MAX_XML_BODY).await?;
    let req: CompleteRequest = parse(&body)?;
    if req.part.is_empty() {
        return Err(S3Error::MalformedXml("the part list is empty".into()));
    }
    let (_, upload) = find_upload(&ctx, &bucket.id, &key, &id).await?;
    let (headers, encryption) = match &upload.state {
        VersionState::Uploading {
            headers,
            encryption,
            ..
        } => (headers.clone(), encryption.clone()),
        _ => return Err(S3Error::NoSuchUpload),
    };
    let version = ctx
        .api
        .model
        .versions
        .get(&id, &EmptyKey)
        .await?
        .filter(|v| !v.deleted.get())
        .ok_or(S3Error::NoSuchUpload)?;
    let mut last = 0;
    let mut md5s = Md5::new();
    let mut chosen: Vec<(u64, u64)> = vec![];
    let mut part_checksums: Vec<Option<(Checksum, u64)>> = vec![];
    let mut total = 0u64;
    for (i, p) in req.part.iter().enumerate() {
        if p.part_number <= last {
            return Err(S3Error::InvalidPartOrder);
        }
        last = p.part_number;
        let PartRecord {
            etag,
            ts,
            size,
            checksum,
        } = version
            .part_etags
            .get(&p.part_number)
            .and_then(PartRecord::decode)
            .ok_or(S3Error::InvalidPart)?;
        if p.etag.trim().trim_matches('"') != etag {
            return Err(S3Error::InvalidPart);
        }
        // A checksum listed by the client must be the one recorded for the part.
        if let Some(given) = p.checksum()? {
            if checksum.as_ref() != Some(&given) {
                return Err(S3Error::InvalidPart);
            }
        }
        part_checksums.push(checksum.map(|c| (c, size)));
        if size < MIN_PART_SIZE && i + 1 < req.part.len() {
            return Err(S3Error::EntityTooSmall);
        }
        md5s.update(hex::decode(&etag).map_err(|_| S3Error::InvalidPart)?);
        chosen.push((p.part_number, ts));
        total += size;
    }
    quota::check_object(&ctx.api, &bucket.id, &key, &quota::limits(&bucket), total).await?;
    // The object's checksum, from the parts' (all recorded with the upload's algorithm).
    let spec = version
        .checksum_spec
        .as_deref()
        .and_then(UploadChecksum::decode);
    let object_checksum = match spec {
        Some(spec) => {
            let parts: Vec<(Checksum, u64)> = part_checksums
                .into_iter()
                .collect::<Option<_>>()
                .ok_or(S3Error::InvalidPart)?;
            Some((spec, spec.combine(&parts)?))
        }
        None => None,
    };
    // The final version holds exactly the chosen blocks.
    let new_id = Uuid::random();
    let mut final_version = Version::new(new_id, bucket.id, key.clone());
    let mut refs = vec![];
    let mut first = None;
    for (part, ts) in &chosen {
        let pk = part_key(*part, *ts);
        for ((k, offset), b) in version.blocks.iter() {
            if *k == pk {
                final_version.blocks.put((part << 40, *offset), *b);
                refs.push(BlockRef::new(b.hash, new_id));
                if first.is_none() {
                    first = Some(b.hash);
                }
            }
        }
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
    ctx.api.model.versions.insert(&final_version).await?;
    ctx.api.model.block_refs.insert_many(&refs).await?;
    let meta = ObjectMeta {
        headers,
        size: total,
        etag: etag.clone(),
        checksum: object_checksum
            .as_ref()
            .map(|(spec, value)| (spec.algorithm.name().to_string(), value.clone())),
        encryption,
    };
    let data = match first {
        Some(h) => ObjectData::FirstBlock(meta, h),
        None => ObjectData::Inline(meta, vec![]),
    };
    let done = ObjectVersion {
        uuid: new_id,
        timestamp: upload.timestamp,
        state: VersionState::Complete(data),
    };
    let aborted = ObjectVersion {
        uuid: id,
        timestamp: upload.timestamp,
        state: VersionState::Aborted,
    };
    ctx.api
        .model
        .objects
        .insert(&Object::new(bucket.id, key.clone(), vec![aborted, done]))
        .await?;
    let mut x = Xml::new("CompleteMultipartUploadResult");
    x.elem("Location", &format!("/{}/{}", ctx.bucket_name()?, key))
        .elem("Bucket", ctx.bucket_name()?)
        .elem("Key", &key)
        .elem("ETag", &format!("\"{etag}\""));
    if let Some((spec, value)) = &object_checksum {
        x.elem(&format!("Checksum{}", spec.algorithm.name()), value)
            .elem("ChecksumType", spec.kind.name());
    }
    xml_ok(x.finish("CompleteMultipartUploadResult"))
}

/// DELETE /bucket/key?uploadId=X
pub async fn abort(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Write).await?;
    let key = ctx.object_key()?.to_string();
    let id = upload_id(ctx)?;
    let (_, upload) = find_upload(ctx, &bucket.id, &key, &id).await?;
    let aborted = ObjectVersion {
        uuid: id,
        timestamp: upload.timestamp,
        state: VersionState::Aborted,
    };
    ctx.api
        .model
        .objects
        .insert(&Object::new(bucket.id, key, vec![aborted]))
        .await?;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// GET /bucket/key?uploadId=X
pub async fn list_parts(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Read).await?;
    let key = ctx.object_key()?.to_string();
    let id = upload_id(ctx)?;
    find_upload(ctx, &bucket.id, &key, &id).await?;
    let version = ctx
        .api
        .model
        .versions
        .get(&id, &EmptyKey)
        .await?
        .ok_or(S3Error::NoSuchUpload)?;
    let q = &ctx.route.query;
    let max: usize = q
        .get("max-parts")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let marker: u64 = q
        .get("part-number-marker")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let parts: Vec<(u64, PartRecord)> = version
        .part_etags
        .iter()
        .filter(|(n, _)| **n > marker)
        .filter_map(|(n, p)| PartRecord::decode(p).map(|p| (*n, p)))
        .collect();
    let truncated = parts.len() > max;
    let mut x = Xml::new("ListPartsResult");
    x.elem("Bucket", ctx.bucket_name()?)
        .elem("Key", &key)
        .elem("UploadId", &id.to_hex())
        .elem("PartNumberMarker", &marker.to_string())
        .elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    if let Some((n, _)) = parts.iter().take(max).next_back().filter(|_| truncated) {
        x.elem("NextPartNumberMarker", &n.to_string());
    }
    for (n, p) in parts.iter().take(max) {
        x.open("Part")
            .elem("PartNumber", &n.to_string())
            .elem("LastModified", &msec_to_rfc3339(p.ts))
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.size.to_string());
        if let Some(c) = &p.checksum {
            x.elem(&format!("Checksum{}", c.algorithm().name()), &c.to_base64());
        }
        x.close("Part");
    }
    xml_ok(x.finish("ListPartsResult"))
}

/// GET /bucket?uploads
pub async fn list_uploads(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Read).await?;
    let q = &ctx.route.query;
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let max: usize = q
        .get("max-uploads")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    // After the marker; a marker that is a common prefix skips everything under it.
    let start = match q.get("key-marker").filter(|k| !k.is_empty()) {
        Some(k) if delimiter.as_ref().is_some_and(|d| k.ends_with(d.as_str())) => after_prefix(k),
        Some(k) => format!("{k}\0"),
        None => prefix.clone(),
    };
    let listing = scan(
        ctx,
        &bucket.id,
        &prefix,
        delimiter.as_deref(),
        start,
        max,
        ObjectFilter::IsUploading,
    )
    .await?;
    let mut uploads: BTreeMap<(String, u64, Uuid), ()> = BTreeMap::new();
    for o in &listing.objects {
        for v in o.versions() {
            if let VersionState::Uploading {
                multipart: true, ..
            } = v.state
            {
                uploads.insert((o.key.clone(), v.timestamp, v.uuid), ());
            }
        }
    }
    let mut x = Xml::new("ListMultipartUploadsResult");
    x.elem("Bucket", ctx.bucket_name()?)
        .elem("Prefix", &prefix)
        .elem("KeyMarker", q.get("key-marker").map_or("", String::as_str))
        .elem("MaxUploads", &max.to_string())
        .elem(
            "IsTruncated",
            if listing.truncated { "true" } else { "false" },
        );
    if let Some(d) = &delimiter {
        x.elem("Delimiter", d);
    }
    for (k, ts, id) in uploads.keys() {
        x.open("Upload")
            .elem("Key", k)
            .elem("UploadId", &id.to_hex())
            .elem("Initiated", &msec_to_rfc3339(*ts))
            .elem("StorageClass", "STANDARD")
            .close("Upload");
    }
    for p in &listing.prefixes {
        x.open("CommonPrefixes")
            .elem("Prefix", p)
            .close("CommonPrefixes");
    }
    if listing.truncated {
        if let Some(k) = &listing.last {
            x.elem("NextKeyMarker", k);
        }
    }
    xml_ok(x.finish("ListMultipartUploadsResult"))
}
