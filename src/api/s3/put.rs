//! PutObject. Small objects (≤ 3 KiB) are one quorum write of the object entry with the data
//! inline. Larger ones: the object entry is written `Uploading` first (so the version exists for
//! GC), the body is cut into `block_size` blocks that are hashed, sent to their replicas and
//! recorded in the version and block_ref tables (a few blocks in flight, bounded memory), then
//! the payload checks run (`x-amz-content-sha256`, `Content-MD5`, `x-amz-checksum-*` from a
//! header or trailer, length) and only then is the version marked `Complete`. A failed upload is
//! marked `Aborted`: nothing partial ever becomes visible. With SSE-C headers the data (inline
//! or each block) is encrypted with the customer's key before it is stored (`encryption.rs`).

use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use http::{HeaderMap, Response, StatusCode};
use md5::{Digest, Md5};
use sha2::Sha256;

use super::encryption::{self, SseKey};
use super::error::S3Error;
use super::quota;
use super::request::{Need, ReqBody, ReqCtx};
use super::version_time::new_version_timestamp;
use super::{empty_body, ResBody};
use crate::api::signature::checksum::{Checksum, ChecksumAlgorithm, Checksummer};
use crate::api::signature::ContentSha256;
use crate::model::block_ref::BlockRef;
use crate::model::bucket::BucketQuotas;
use crate::model::object::{
    Object, ObjectData, ObjectHeaders, ObjectMeta, ObjectVersion, VersionState, INLINE_THRESHOLD,
};
use crate::model::version::{Version, VersionBlock};
use crate::net::frame::Priority;
use crate::util::ids::{blake2sum, Uuid};

/// Blocks written concurrently per upload.
const BLOCKS_IN_FLIGHT: usize = 3;
/// Largest object accepted by a single PutObject (as S3).
pub const MAX_PUT_SIZE: u64 = 5 << 30;

/// Headers stored with an object and returned by GET/HEAD.
const STORED_HEADERS: &[&str] = &[
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// Extracts the headers to store with an object. `aws-chunked` is a transfer detail, not an
/// encoding of the object: clients send it either inside `Content-Encoding` (`gzip,aws-chunked`)
/// or as a second `Content-Encoding` header (aws-sdk-s3), so every `Content-Encoding` value is
/// merged into one list without it.
pub fn object_headers(h: &HeaderMap) -> ObjectHeaders {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(String::from);
    let mut other = vec![];
    let mut encodings: Vec<&str> = vec![];
    for (name, value) in h.iter() {
        let n = name.as_str();
        let Ok(v) = value.to_str() else { continue };
        if n == "content-encoding" {
            encodings.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked")),
            );
        } else if STORED_HEADERS.contains(&n) || n.starts_with("x-amz-meta-") {
            other.push((n.to_string(), v.to_string()));
        }
    }
    if !encodings.is_empty() {
        other.push(("content-encoding".to_string(), encodings.join(",")));
    }
    other.sort();
    ObjectHeaders {
        content_type: get("content-type").or_else(|| Some("binary/octet-stream".into())),
        other,
    }
}

/// Hashes computed over a body as it streams.
pub(super) struct BodyHashes {
    md5: Md5,
    sha256: Option<Sha256>,
    checksum: Option<Checksummer>,
    size: u64,
}

impl BodyHashes {
    /// The hashers a request's checks need (MD5 always, for the ETag).
    pub(super) fn for_request(exp: &Expected) -> Self {
        let algo = exp.checksum_algorithm();
        Self {
            md5: Md5::new(),
            sha256: matches!(exp.content_sha256, ContentSha256::Sha256(_)).then(Sha256::new),
            checksum: algo.map(Checksummer::new),
            size: 0,
        }
    }

    /// Only the MD5 (for the ETag), for data that comes from this server (copies).
    pub(super) fn md5_only() -> Self {
        Self {
            md5: Md5::new(),
            sha256: None,
            checksum: None,
            size: 0,
        }
    }

    /// Also computes a checksum of `algorithm` if none is computed yet (a multipart upload's
    /// chosen algorithm, for parts sent without a checksum).
    pub(super) fn with_checksum(mut self, algorithm: Option<ChecksumAlgorithm>) -> Self {
        if self.checksum.is_none() {
            self.checksum = algorithm.map(Checksummer::new);
        }
        self
    }

    /// The hex MD5 of the data seen (its ETag) and its checksum, if one was computed.
    pub(super) fn md5_and_checksum(self) -> (String, Option<Checksum>) {
        (
            hex::encode(self.md5.finalize()),
            self.checksum.map(Checksummer::finalize),
        )
    }

    /// The hex MD5 of the data seen: its ETag.
    pub(super) fn md5_hex(self) -> String {
        hex::encode(self.md5.finalize())
    }

    fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some(s) = &mut self.sha256 {
            s.update(data);
        }
        if let Some(c) = &mut self.checksum {
            c.update(data);
        }
        self.size += data.len() as u64;
    }
}

/// What the request says the body must be.
pub(super) struct Expected {
    content_sha256: ContentSha256,
    md5: Option<String>,
    /// Checksum given as a header.
    checksum: Option<Checksum>,
    /// Algorithm announced for a trailer checksum.
    trailer_algo: Option<ChecksumAlgorithm>,
    /// Declared length of the (decoded) body.
    pub(super) length: Option<u64>,
}

impl Expected {
    /// The algorithm of the checksum the request gives (header or announced trailer).
    pub(super) fn checksum_algorithm(&self) -> Option<ChecksumAlgorithm> {
        self.checksum
            .as_ref()
            .map(|c| c.algorithm())
            .or(self.trailer_algo)
    }
}

pub(super) fn expected(ctx: &ReqCtx) -> Result<Expected, S3Error> {
    let mut checksum = None;
    for algo in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ] {
        if let Some(v) = ctx.header(algo.header_name()) {
            checksum = Some(Checksum::from_base64(algo, v)?);
        }
    }
    let trailer_algo = ctx
        .header("x-amz-trailer")
        .and_then(ChecksumAlgorithm::from_header_name);
    let length = match ctx
        .header("x-amz-decoded-content-length")
        .or_else(|| ctx.header("content-length"))
    {
        Some(l) => Some(
            l.trim()
                .parse::<u64>()
                .map_err(|_| S3Error::InvalidArgument(format!("invalid content length {l:?}")))?,
        ),
        None => None,
    };
    if length.is_some_and(|l| l > MAX_PUT_SIZE) {
        return Err(S3Error::EntityTooLarge);
    }
    Ok(Expected {
        content_sha256: ctx.verified.content_sha256,
        md5: ctx.header("content-md5").map(String::from),
        checksum,
        trailer_algo,
        length,
    })
}

/// Checks the hashes of a complete body; returns (etag, stored checksum).
pub(super) fn check_body(
    ctx: &ReqCtx,
    exp: &Expected,
    h: BodyHashes,
) -> Result<(String, Option<(String, String)>), S3Error> {
    if let Some(l) = exp.length {
        if h.size != l {
            return Err(S3Error::IncompleteBody);
        }
    }
    let md5 = h.md5.finalize();
    if let Some(s) = h.sha256 {
        let digest: [u8; 32] = s.finalize().into();
        exp.content_sha256.verify_sha256(&digest)?;
    }
    if let Some(m) = &exp.md5 {
        let given = base64::engine::general_purpose::STANDARD
            .decode(m.trim())
            .map_err(|_| S3Error::InvalidArgument("Content-MD5 is not valid base64".into()))?;
        if given.as_slice() != md5.as_slice() {
            return Err(S3Error::BadDigest);
        }
    }
    let mut stored = None;
    if let Some(c) = h.checksum {
        let computed = c.finalize();
        if let Some(given) = &exp.checksum {
            given.verify(&computed)?;
        }
        if let Some(t) = ctx.trailers.as_ref().and_then(|t| t.get()) {
            if let Some(given) = t.checksum()? {
                given.verify(&computed)?;
            }
        }
        stored = Some((
            computed.algorithm().name().to_string(),
            computed.to_base64(),
        ));
    }
    Ok((hex::encode(md5), stored))
}

/// Reads up to `limit + 1` bytes, to decide between inline and blocks.
async fn read_head(body: &mut ReqBody, limit: usize) -> Result<(BytesMut, bool), S3Error> {
    let mut buf = BytesMut::new();
    while buf.len() <= limit {
        match body.next().await {
            Some(chunk) => buf.extend_from_slice(&chunk?),
            None => return Ok((buf, true)),
        }
    }
    Ok((buf, false))
}

/// Stores a body as object `key` of `bucket` (encrypted when the request gives an SSE-C key)
/// within quotas `limits`; returns its metadata. The quotas are checked before anything is
/// stored when the request gives the length, otherwise once the body is read, before the object
/// becomes visible.
pub async fn save_object(
    ctx: &ReqCtx,
    bucket: Uuid,
    key: &str,
    headers: ObjectHeaders,
    body: ReqBody,
    limits: &BucketQuotas,
) -> Result<ObjectMeta, S3Error> {
    let exp = expected(ctx)?;
    let sse = encryption::request_key(&ctx.headers)?;
    if let Some(len) = exp.length {
        quota::check_object(&ctx.api, &bucket, key, limits, len).await?;
    }
    let pending_quota = exp.length.is_none().then_some(limits);
    let hashes = BodyHashes::for_request(&exp);
    let check = |h| check_body(ctx, &exp, h);
    store_object(
        ctx,
        (bucket, key),
        headers,
        body,
        hashes,
        sse.as_ref(),
        check,
        pending_quota,
    )
    .await
    .map(|(meta, _)| meta)
}

/// Stores a body as object `key` of `bucket`, encrypted with `sse` if given; `check` verifies
/// the hashes of the whole body and gives (ETag, stored checksum); `pending_quota`, if given,
/// is checked for the body's size once it is known, before the object becomes visible. Returns
/// the metadata and the timestamp of the new version.
#[allow(clippy::too_many_arguments)]
pub(super) async fn store_object(
    ctx: &ReqCtx,
    (bucket, key): (Uuid, &str),
    headers: ObjectHeaders,
    mut body: ReqBody,
    mut hashes: BodyHashes,
    sse: Option<&SseKey>,
    check: impl FnOnce(BodyHashes) -> Result<(String, Option<(String, String)>), S3Error>,
    pending_quota: Option<&BucketQuotas>,
) -> Result<(ObjectMeta, u64), S3Error> {
    let (head, ended) = read_head(&mut body, INLINE_THRESHOLD).await?;
    if ended {
        hashes.update(&head);
        let (etag, checksum) = check(hashes)?;
        if let Some(limits) = pending_quota {
            quota::check_object(&ctx.api, &bucket, key, limits, head.len() as u64).await?;
        }
        let meta = ObjectMeta {
            headers,
            size: head.len() as u64,
            etag: encryption::etag(sse, etag),
            checksum,
            encryption: sse.map(SseKey::stored),
        };
        let stored = encryption::seal(sse, head.freeze())?;
        let timestamp = new_version_timestamp(ctx, &bucket, key).await?;
        let version = ObjectVersion {
            uuid: Uuid::random(),
            timestamp,
            state: VersionState::Complete(ObjectData::Inline(meta.clone(), stored.to_vec())),
        };
        ctx.api
            .model
            .objects
            .insert(&Object::new(bucket, key.to_string(), vec![version]))
            .await?;
        return Ok((meta, timestamp));
    }

    let uuid = Uuid::random();
    let timestamp = new_version_timestamp(ctx, &bucket, key).await?;
    let uploading = ObjectVersion {
        uuid,
        timestamp,
        state: VersionState::Uploading {
            multipart: false,
            headers: headers.clone(),
            encryption: sse.map(SseKey::stored),
        },
    };
    let objects = &ctx.api.model.objects;
    objects
        .insert(&Object::new(bucket, key.to_string(), vec![uploading]))
        .await?;
    let res = store_blocks(ctx, bucket, key, uuid, 0, head, body, hashes, sse).await;
    let res = match res {
        Ok((first, hashes)) => check(hashes).map(|(etag, cs)| (first, etag, cs)),
        Err(e) => Err(e),
    };
    let res = match (res, pending_quota) {
        (Ok(r), Some(limits)) => quota::check_object(&ctx.api, &bucket, key, limits, r.0 .1)
            .await
            .map(|()| r),
        (other, _) => other,
    };
    match res {
        Ok((first, etag, checksum)) => {
            let meta = ObjectMeta {
                headers,
                size: 0,
                etag: encryption::etag(sse, etag),
                checksum,
                encryption: sse.map(SseKey::stored),
            };
            let (first_hash, size) = first;
            let first_hash =
                first_hash.ok_or_else(|| S3Error::Internal("empty upload in block mode".into()))?;
            let meta = ObjectMeta { size, ..meta };
            let done = ObjectVersion {
                uuid,
                timestamp,
                state: VersionState::Complete(ObjectData::FirstBlock(meta.clone(), first_hash)),
            };
            objects
                .insert(&Object::new(bucket, key.to_string(), vec![done]))
                .await?;
            Ok((meta, timestamp))
        }
        Err(e) => {
            let aborted = ObjectVersion {
                uuid,
                timestamp,
                state: VersionState::Aborted,
            };
            if let Err(e2) = objects
                .insert(&Object::new(bucket, key.to_string(), vec![aborted]))
                .await
            {
                tracing::warn!("cannot mark failed upload of {key:?} as aborted: {e2}");
            }
            Err(e)
        }
    }
}

/// Cuts the body into blocks and stores them (each encrypted with `sse` if given); returns
/// (first block hash, total plaintext size).
#[allow(clippy::too_many_arguments)]
pub(super) async fn store_blocks(
    ctx: &ReqCtx,
    bucket: Uuid,
    key: &str,
    version: Uuid,
    part_key: u64,
    head: BytesMut,
    mut body: ReqBody,
    mut hashes: BodyHashes,
    sse: Option<&SseKey>,
) -> Result<((Option<crate::util::ids::Hash>, u64), BodyHashes), S3Error> {
    let block_size = ctx.api.block_size;
    let mut buf = head;
    let mut offset = 0u64;
    let mut first = None;
    let mut in_flight = FuturesUnordered::new();
    let mut ended = false;
    loop {
        // The node-wide budget for block bytes in memory covers this block from its first byte
        // read until every replica has stored it.
        let permit = ctx
            .api
            .blocks
            .reserve_buffer(block_size)
            .await
            .map_err(|e| S3Error::Internal(e.to_string()))?;
        while !ended && buf.len() < block_size {
            match body.next().await {
                Some(chunk) => buf.extend_from_slice(&chunk?),
                None => ended = true,
            }
        }
        if buf.is_empty() {
            break;
        }
        let take = buf.len().min(block_size);
        let block: Bytes = buf.split_to(take).freeze();
        let size = block.len() as u64;
        let (block, h, hash) = {
            let sse = sse.cloned();
            tokio::task::spawn_blocking(move || {
                let mut h = hashes;
                h.update(&block);
                // Encrypted blocks are named by the hash of what is stored.
                let stored = encryption::seal(sse.as_ref(), block)?;
                let hash = blake2sum(&stored);
                Ok::<_, S3Error>((stored, h, hash))
            })
            .await
            .map_err(|e| S3Error::Internal(e.to_string()))??
        };
        hashes = h;
        if first.is_none() {
            first = Some(hash);
        }
        let pos = (part_key, offset);
        offset += size;
        in_flight.push(async move {
            ctx.api
                .blocks
                .put_block_reserved(hash, block, Priority::Normal, permit)
                .await
                .map_err(|e| S3Error::ServiceUnavailable(e.to_string()))?;
            let mut v = Version::new(version, bucket, key.to_string());
            v.blocks.put(pos, VersionBlock { hash, size });
            ctx.api.model.versions.insert(&v).await?;
            ctx.api
                .model
                .block_refs
                .insert(&BlockRef::new(hash, version))
                .await?;
            Ok::<(), S3Error>(())
        });
        while in_flight.len() >= BLOCKS_IN_FLIGHT {
            if let Some(r) = in_flight.next().await {
                r?;
            }
        }
        if ended && buf.is_empty() {
            break;
        }
    }
    while let Some(r) = in_flight.next().await {
        r?;
    }
    Ok(((first, offset), hashes))
}

/// PUT /bucket/key
pub async fn put_object(mut ctx: ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Write).await?;
    let key = ctx.object_key()?.to_string();
    let headers = object_headers(&ctx.headers);
    let body = ctx.take_body();
    let limits = quota::limits(&bucket);
    let meta = save_object(&ctx, bucket.id, &key, headers, body, &limits).await?;
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::ETAG, format!("\"{}\"", meta.etag));
    resp = encryption::response_headers(resp, meta.encryption.as_ref());
    if let Some((algo, value)) = &meta.checksum {
        resp = resp.header(
            format!("x-amz-checksum-{}", algo.to_ascii_lowercase()),
            value.as_str(),
        );
    }
    resp.body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoding(values: &[&str]) -> Option<String> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("content-encoding", v.parse().expect("header value"));
        }
        object_headers(&h)
            .other
            .into_iter()
            .find(|(n, _)| n == "content-encoding")
            .map(|(_, v)| v)
    }

    #[test]
    fn aws_chunked_is_not_stored_as_an_encoding() {
        assert_eq!(encoding(&["aws-chunked"]), None);
        assert_eq!(encoding(&["gzip", "aws-chunked"]), Some("gzip".into()));
        assert_eq!(encoding(&["gzip,aws-chunked"]), Some("gzip".into()));
        assert_eq!(encoding(&["aws-chunked, br"]), Some("br".into()));
        assert_eq!(encoding(&["gzip", "br"]), Some("gzip,br".into()));
        assert_eq!(encoding(&[]), None);
    }
}
