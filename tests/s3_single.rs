//! The S3 API of a real `garage server --single-node` daemon, driven with `aws-sdk-s3` over plain
//! HTTP: every implemented endpoint, and every error with its S3 code and HTTP status.
//!
//! Each test starts its own daemon (private directory, ephemeral ports) and reads the access key
//! printed on its stdout.

mod common;
#[path = "common/s3.rs"]
mod s3util;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode,
    CreateBucketConfiguration, Delete, EncodingType, MetadataDirective, ObjectIdentifier, Tag,
    Tagging,
};
use aws_sdk_s3::Client;
use base64::Engine;
use md5::{Digest, Md5};
use s3util::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The bucket `--single-node` creates.
const BUCKET: &str = "default";
const MIB: usize = 1 << 20;

fn md5_hex(d: &[u8]) -> String {
    hex::encode(Md5::digest(d))
}

fn crc32_b64(d: &[u8]) -> String {
    B64.encode(crc32fast::hash(d).to_be_bytes())
}

fn crc32c_b64(d: &[u8]) -> String {
    B64.encode(crc32c::crc32c(d).to_be_bytes())
}

async fn bucket_names(c: &Client) -> Vec<String> {
    c.list_buckets()
        .send()
        .await
        .expect("ListBuckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_permissions_and_unimplemented_endpoints() {
    let node = SingleNode::start().await;
    let c = node.client();

    // ListBuckets: the bucket created by --single-node.
    assert_eq!(bucket_names(&c).await, vec![BUCKET.to_string()]);

    // CreateBucket with the key's create permission; then it is listed and usable.
    c.create_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("CreateBucket");
    assert_eq!(bucket_names(&c).await, vec![BUCKET, "photos"]);
    // With a CreateBucketConfiguration body naming this region; another region is refused.
    let conf = |loc: &str| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(loc))
            .build()
    };
    c.create_bucket()
        .bucket("located")
        .create_bucket_configuration(conf("garage"))
        .send()
        .await
        .expect("CreateBucket with LocationConstraint");
    let (_, status) = err_parts(
        c.create_bucket()
            .bucket("elsewhere")
            .create_bucket_configuration(conf("eu-west-1"))
            .send()
            .await,
    );
    assert_eq!(status, 400);
    c.delete_bucket()
        .bucket("located")
        .send()
        .await
        .expect("DeleteBucket");
    assert_s3_err(
        c.create_bucket().bucket("photos").send().await,
        "BucketAlreadyOwnedByYou",
        409,
    );
    assert_s3_err(
        c.create_bucket().bucket(BUCKET).send().await,
        "BucketAlreadyOwnedByYou",
        409,
    );
    for bad in [
        "ab",
        "Upper",
        "under_score",
        "-leading-hyphen",
        "trailing-hyphen-",
        "double..dot",
        "192.168.1.1",
        &"x".repeat(64),
    ] {
        let r = c.create_bucket().bucket(bad).send().await;
        let (code, status) = err_parts(r);
        assert_eq!(
            (code.as_deref(), status),
            (Some("InvalidBucketName"), 400),
            "bucket name {bad:?}"
        );
    }
    assert_eq!(bucket_names(&c).await, vec![BUCKET, "photos"]);

    // HeadBucket, GetBucketLocation, GetBucketVersioning.
    let head = c
        .head_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("HeadBucket");
    assert_eq!(head.bucket_region(), Some("garage"));
    assert_status(c.head_bucket().bucket("nothere").send().await, 404);
    let loc = c
        .get_bucket_location()
        .bucket("photos")
        .send()
        .await
        .expect("GetBucketLocation");
    assert_eq!(
        loc.location_constraint().map(|l| l.as_str()),
        Some("garage")
    );
    let ver = c
        .get_bucket_versioning()
        .bucket("photos")
        .send()
        .await
        .expect("GetBucketVersioning");
    assert_eq!(ver.status(), None::<&BucketVersioningStatus>);
    assert_s3_err(
        c.get_bucket_location().bucket("nothere").send().await,
        "NoSuchBucket",
        404,
    );
    assert_s3_err(
        c.list_objects_v2().bucket("nothere").send().await,
        "NoSuchBucket",
        404,
    );

    // Endpoints that are not implemented answer 501 NotImplemented.
    assert_s3_err(
        c.get_bucket_acl().bucket("photos").send().await,
        "NotImplemented",
        501,
    );
    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("k").value("v").build().expect("tag"))
        .build()
        .expect("tagging");
    assert_s3_err(
        c.put_bucket_tagging()
            .bucket("photos")
            .tagging(tagging)
            .send()
            .await,
        "NotImplemented",
        501,
    );
    assert_s3_err(
        c.get_bucket_cors().bucket("photos").send().await,
        "NotImplemented",
        501,
    );

    // A second key, without any permission.
    put(&c, BUCKET, "secret.txt", b"mine").await;
    let (id2, secret2) = node.create_key("other");
    let c2 = client(node.s3_port, &id2, &secret2, "garage");
    assert!(bucket_names(&c2).await.is_empty());
    assert_status(c2.head_bucket().bucket(BUCKET).send().await, 403);
    assert_s3_err(
        c2.get_object()
            .bucket(BUCKET)
            .key("secret.txt")
            .send()
            .await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        c2.put_object()
            .bucket(BUCKET)
            .key("intruder")
            .body(b"x".to_vec().into())
            .send()
            .await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        c2.list_objects_v2().bucket(BUCKET).send().await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        c2.delete_object()
            .bucket(BUCKET)
            .key("secret.txt")
            .send()
            .await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        c2.delete_bucket().bucket("photos").send().await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        c2.create_bucket().bucket("theirs").send().await,
        "AccessDenied",
        403,
    );
    // With the create permission: a name taken by another key's bucket is BucketAlreadyExists.
    node.cli(&["key", "allow", "--create-bucket", &id2]);
    assert_s3_err(
        c2.create_bucket().bucket("photos").send().await,
        "BucketAlreadyExists",
        409,
    );
    c2.create_bucket()
        .bucket("theirs")
        .send()
        .await
        .expect("CreateBucket with the second key");
    assert_eq!(bucket_names(&c2).await, vec!["theirs"]);
    assert_s3_err(
        c.create_bucket().bucket("theirs").send().await,
        "BucketAlreadyExists",
        409,
    );
    assert_s3_err(
        c.list_objects_v2().bucket("theirs").send().await,
        "AccessDenied",
        403,
    );
    // Read-only access through the CLI: reads work, writes do not.
    node.cli(&["bucket", "allow", "--read", BUCKET, "--key", &id2]);
    assert_eq!(get_bytes(&c2, BUCKET, "secret.txt").await, b"mine");
    assert_s3_err(
        c2.put_object()
            .bucket(BUCKET)
            .key("intruder")
            .body(b"x".to_vec().into())
            .send()
            .await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        c2.delete_bucket().bucket(BUCKET).send().await,
        "AccessDenied",
        403,
    );

    // DeleteBucket: refused while not empty, then deleted.
    put(&c, "photos", "a.jpg", &data(5000, 1)).await;
    assert_s3_err(
        c.delete_bucket().bucket("photos").send().await,
        "BucketNotEmpty",
        409,
    );
    c.delete_object()
        .bucket("photos")
        .key("a.jpg")
        .send()
        .await
        .expect("DeleteObject");
    c.delete_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("DeleteBucket of an empty bucket");
    assert_status(c.head_bucket().bucket("photos").send().await, 404);
    assert_s3_err(
        c.delete_bucket().bucket("photos").send().await,
        "NoSuchBucket",
        404,
    );
    assert_eq!(bucket_names(&c).await, vec![BUCKET]);
    // The name is free again.
    c.create_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("CreateBucket of a deleted name");
    assert!(c
        .list_objects_v2()
        .bucket("photos")
        .send()
        .await
        .expect("list")
        .contents()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_head_with_headers_ranges_and_conditions() {
    let node = SingleNode::start().await;
    let c = node.client();

    // Small (inline) and multi-block objects round-trip; ETag is the MD5.
    let small = data(3000, 2);
    let large = data(5 * MIB + 12345, 3);
    for (key, body) in [("small", &small), ("large", &large)] {
        let out = c
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.clone().into())
            .send()
            .await
            .expect("PutObject");
        assert_eq!(out.e_tag(), Some(format!("\"{}\"", md5_hex(body)).as_str()));
        assert_eq!(&get_bytes(&c, BUCKET, key).await, body, "{key}");
        let head = c
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("HeadObject");
        assert_eq!(head.content_length(), Some(body.len() as i64));
        assert_eq!(head.e_tag(), out.e_tag());
        // The SDK sends application/octet-stream when no type is given.
        assert_eq!(head.content_type(), Some("application/octet-stream"));
    }
    // Exactly the inline threshold, one byte above it, an empty object, block boundaries.
    for (key, len) in [
        ("t3072", 3072),
        ("t3073", 3073),
        ("empty", 0),
        ("one-block", MIB),
        ("one-block-plus-1", MIB + 1),
        ("two-blocks", 2 * MIB),
    ] {
        let body = data(len, len as u64);
        put(&c, BUCKET, key, &body).await;
        assert_eq!(get_bytes(&c, BUCKET, key).await, body, "{key}");
    }
    // Overwrite: the new content wins.
    put(&c, BUCKET, "small", b"overwritten").await;
    assert_eq!(get_bytes(&c, BUCKET, "small").await, b"overwritten");
    put(&c, BUCKET, "small", &small).await;

    // Stored headers and user metadata, on a small and on a large object.
    let expires = DateTime::from_secs(2_000_000_000);
    for (key, body) in [("meta-small", &small), ("meta-large", &large)] {
        c.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.clone().into())
            .content_type("text/x-test")
            .content_encoding("gzip")
            .content_disposition("attachment; filename=\"x.txt\"")
            .content_language("fr-CH")
            .cache_control("max-age=60")
            .expires(expires)
            .metadata("color", "blue")
            .metadata("Mixed-Case", "Value with spaces")
            .send()
            .await
            .expect("PutObject with headers");
        let head = c
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("HeadObject");
        let get = c
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("GetObject");
        assert_eq!(head.content_type(), Some("text/x-test"), "{key}");
        assert_eq!(get.content_type(), Some("text/x-test"));
        for (ce, cd, cl, cc, ex, meta) in [
            (
                head.content_encoding(),
                head.content_disposition(),
                head.content_language(),
                head.cache_control(),
                head.expires_string(),
                head.metadata(),
            ),
            (
                get.content_encoding(),
                get.content_disposition(),
                get.content_language(),
                get.cache_control(),
                get.expires_string(),
                get.metadata(),
            ),
        ] {
            assert_eq!(ce, Some("gzip"), "{key}: Content-Encoding");
            assert_eq!(cd, Some("attachment; filename=\"x.txt\""));
            assert_eq!(cl, Some("fr-CH"));
            assert_eq!(cc, Some("max-age=60"));
            assert_eq!(ex, Some("Wed, 18 May 2033 03:33:20 GMT"));
            let meta = meta.expect("user metadata");
            assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
            assert_eq!(
                meta.get("mixed-case").map(String::as_str),
                Some("Value with spaces")
            );
            assert_eq!(meta.len(), 2, "{meta:?}");
        }
        assert_eq!(&read_body(get.body).await, body);
    }
    // An object put without Content-Encoding has none (aws-chunked is transport only).
    let plain = c
        .head_object()
        .bucket(BUCKET)
        .key("large")
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(plain.content_encoding(), None);

    // Ranges: plain, open-ended, suffix, spanning block boundaries, past the end.
    let size = large.len();
    let ranges: Vec<(String, usize, usize)> = vec![
        ("bytes=0-0".into(), 0, 1),
        ("bytes=10-99".into(), 10, 100),
        (
            format!("bytes={}-{}", MIB - 10, MIB + 9),
            MIB - 10,
            MIB + 10,
        ),
        (
            format!("bytes={}-{}", MIB / 2, 3 * MIB + 17),
            MIB / 2,
            3 * MIB + 18,
        ),
        (format!("bytes={}-", 4 * MIB + 5), 4 * MIB + 5, size),
        ("bytes=-100000".into(), size - 100000, size),
        (format!("bytes=-{}", size + 10), 0, size),
        (format!("bytes=5-{}", size + 1000), 5, size),
    ];
    for (range, start, end) in ranges {
        let out = c
            .get_object()
            .bucket(BUCKET)
            .key("large")
            .range(&range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: {e:?}"));
        assert_eq!(
            out.content_range(),
            Some(format!("bytes {start}-{}/{size}", end - 1).as_str()),
            "{range}"
        );
        assert_eq!(out.content_length(), Some((end - start) as i64), "{range}");
        let got = read_body(out.body).await;
        assert!(got == large[start..end], "{range}: wrong bytes");
    }
    let two = data(2 * MIB, (2 * MIB) as u64);
    for (range, start, end) in [
        (format!("bytes={}-{}", MIB - 1, MIB), MIB - 1, MIB + 1),
        (format!("bytes={}-", MIB), MIB, 2 * MIB),
        (format!("bytes=0-{}", MIB - 1), 0, MIB),
        ("bytes=-1".to_string(), 2 * MIB - 1, 2 * MIB),
    ] {
        let out = c
            .get_object()
            .bucket(BUCKET)
            .key("two-blocks")
            .range(&range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: {e:?}"));
        assert!(read_body(out.body).await == two[start..end], "{range}");
    }
    let out = c
        .get_object()
        .bucket(BUCKET)
        .key("small")
        .range("bytes=-10")
        .send()
        .await
        .expect("suffix range of an inline object");
    assert_eq!(read_body(out.body).await, small[small.len() - 10..]);
    for bad in [format!("bytes={size}-"), "bytes=-0".to_string()] {
        assert_s3_err(
            c.get_object()
                .bucket(BUCKET)
                .key("large")
                .range(&bad)
                .send()
                .await,
            "InvalidRange",
            416,
        );
    }
    assert_s3_err(
        c.get_object()
            .bucket(BUCKET)
            .key("empty")
            .range("bytes=0-")
            .send()
            .await,
        "InvalidRange",
        416,
    );

    // Conditional requests.
    let head = c
        .head_object()
        .bucket(BUCKET)
        .key("large")
        .send()
        .await
        .expect("HeadObject");
    let etag = head.e_tag().expect("etag").to_string();
    let lm = *head.last_modified().expect("last modified");
    let hour_before = DateTime::from_secs(lm.secs() - 3600);
    let hour_after = DateTime::from_secs(lm.secs() + 3600);
    let get = || c.get_object().bucket(BUCKET).key("large");
    let ok = |r: Result<aws_sdk_s3::operation::get_object::GetObjectOutput, _>| {
        let r: aws_sdk_s3::operation::get_object::GetObjectOutput =
            r.unwrap_or_else(|e| panic!("conditional GET should succeed: {e:?}"));
        assert_eq!(r.content_length(), Some(size as i64));
    };
    ok(get().if_match(&etag).send().await);
    ok(get().if_match("*").send().await);
    ok(get().if_none_match("\"other\"").send().await);
    ok(get().if_modified_since(hour_before).send().await);
    ok(get().if_unmodified_since(hour_after).send().await);
    ok(get().if_unmodified_since(lm).send().await);
    // If-Match wins over If-Unmodified-Since; If-None-Match over If-Modified-Since.
    ok(get()
        .if_match(&etag)
        .if_unmodified_since(hour_before)
        .send()
        .await);
    ok(get()
        .if_none_match("\"other\"")
        .if_modified_since(hour_after)
        .send()
        .await);
    assert_s3_err(
        get().if_match("\"0123\"").send().await,
        "PreconditionFailed",
        412,
    );
    assert_s3_err(
        get().if_unmodified_since(hour_before).send().await,
        "PreconditionFailed",
        412,
    );
    assert_status(get().if_none_match(&etag).send().await, 304);
    assert_status(get().if_none_match("*").send().await, 304);
    assert_status(get().if_modified_since(lm).send().await, 304);
    assert_status(get().if_modified_since(hour_after).send().await, 304);
    assert_status(
        c.head_object()
            .bucket(BUCKET)
            .key("large")
            .if_none_match(&etag)
            .send()
            .await,
        304,
    );
    assert_status(
        c.head_object()
            .bucket(BUCKET)
            .key("large")
            .if_match("\"0123\"")
            .send()
            .await,
        412,
    );

    // response-* overrides.
    let out = c
        .get_object()
        .bucket(BUCKET)
        .key("meta-small")
        .response_content_type("application/json")
        .response_content_disposition("inline")
        .response_content_encoding("identity")
        .response_content_language("en")
        .response_cache_control("no-cache")
        .response_expires(DateTime::from_secs(1_000_000_000))
        .send()
        .await
        .expect("GetObject with overrides");
    assert_eq!(out.content_type(), Some("application/json"));
    assert_eq!(out.content_disposition(), Some("inline"));
    assert_eq!(out.content_encoding(), Some("identity"));
    assert_eq!(out.content_language(), Some("en"));
    assert_eq!(out.cache_control(), Some("no-cache"));
    assert_eq!(out.expires_string(), Some("Sun, 09 Sep 2001 01:46:40 GMT"));
    assert_eq!(read_body(out.body).await, small);

    // partNumber=1 is the whole (single-part) object.
    let out = c
        .get_object()
        .bucket(BUCKET)
        .key("large")
        .part_number(1)
        .send()
        .await
        .expect("partNumber=1");
    assert_eq!(out.parts_count(), Some(1));
    assert_eq!(out.content_length(), Some(size as i64));
    assert!(read_body(out.body).await == large);
    let head = c
        .head_object()
        .bucket(BUCKET)
        .key("small")
        .part_number(1)
        .send()
        .await
        .expect("HEAD partNumber=1");
    assert_eq!(head.content_length(), Some(small.len() as i64));

    // Missing keys and buckets.
    assert_s3_err(
        c.get_object().bucket(BUCKET).key("nothing").send().await,
        "NoSuchKey",
        404,
    );
    assert_status(
        c.head_object().bucket(BUCKET).key("nothing").send().await,
        404,
    );
    assert_s3_err(
        c.get_object().bucket("nobucket").key("k").send().await,
        "NoSuchBucket",
        404,
    );
    assert_s3_err(
        c.put_object()
            .bucket("nobucket")
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await,
        "NoSuchBucket",
        404,
    );

    // DeleteObject: gone afterwards; deleting a missing key succeeds.
    c.delete_object()
        .bucket(BUCKET)
        .key("large")
        .send()
        .await
        .expect("DeleteObject");
    assert_s3_err(
        c.get_object().bucket(BUCKET).key("large").send().await,
        "NoSuchKey",
        404,
    );
    c.delete_object()
        .bucket(BUCKET)
        .key("large")
        .send()
        .await
        .expect("DeleteObject of a missing key");
    // And it can be written again.
    put(&c, BUCKET, "large", &small).await;
    assert_eq!(get_bytes(&c, BUCKET, "large").await, small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_and_digests() {
    let node = SingleNode::start().await;
    let c = node.client();
    let small = data(2000, 4);
    let large = data(3 * MIB + 7, 5);

    let empty: Vec<u8> = vec![];
    for (key, body) in [("small", &small), ("large", &large), ("empty", &empty)] {
        // Default, in-memory body: the SDK signs the payload (SHA-256) and sends its CRC32 as
        // an `x-amz-checksum-crc32` header.
        let out = c
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.clone().into())
            .send()
            .await
            .expect("PutObject with the default checksum");
        assert_eq!(
            out.checksum_crc32(),
            Some(crc32_b64(body).as_str()),
            "{key}"
        );
        let got = c
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("GetObject with checksum mode");
        assert_eq!(
            got.checksum_crc32(),
            Some(crc32_b64(body).as_str()),
            "{key}"
        );
        assert_eq!(&read_body(got.body).await, body);
        // Without checksum mode, no checksum header.
        let got = c
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("HeadObject");
        assert_eq!(got.checksum_crc32(), None);
        let got = c
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("HeadObject with checksum mode");
        assert_eq!(got.checksum_crc32(), Some(crc32_b64(body).as_str()));

        // CRC32C chosen explicitly.
        let k = format!("{key}-crc32c");
        let out = c
            .put_object()
            .bucket(BUCKET)
            .key(&k)
            .body(body.clone().into())
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .expect("PutObject with CRC32C");
        assert_eq!(out.checksum_crc32_c(), Some(crc32c_b64(body).as_str()));
        let got = c
            .get_object()
            .bucket(BUCKET)
            .key(&k)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("GetObject CRC32C");
        assert_eq!(got.checksum_crc32_c(), Some(crc32c_b64(body).as_str()));
        assert_eq!(&read_body(got.body).await, body);

        // A streaming body (from a file): the SDK sends it aws-chunked with signed chunks and
        // a signed trailer carrying the checksum; Content-Encoding gets `aws-chunked` added as
        // a second header, which must not be stored.
        let path = node.dir.path().join(format!("{key}.body"));
        std::fs::write(&path, body).expect("write body file");
        for (algo, enc) in [
            (None, None),
            (Some(ChecksumAlgorithm::Crc32C), Some("gzip")),
            (Some(ChecksumAlgorithm::Sha256), None),
            (Some(ChecksumAlgorithm::Sha1), Some("br")),
            (Some(ChecksumAlgorithm::Crc64Nvme), None),
        ] {
            let k = format!("{key}-streamed-{algo:?}");
            let stream = aws_sdk_s3::primitives::ByteStream::read_from()
                .path(&path)
                .buffer_size(100_000)
                .build()
                .await
                .expect("file body");
            let out = c
                .put_object()
                .bucket(BUCKET)
                .key(&k)
                .body(stream)
                .set_checksum_algorithm(algo.clone())
                .set_content_encoding(enc.map(String::from))
                .send()
                .await
                .unwrap_or_else(|e| panic!("streamed PutObject {k}: {e:?}"));
            assert_eq!(out.e_tag(), Some(format!("\"{}\"", md5_hex(body)).as_str()));
            let got = c
                .get_object()
                .bucket(BUCKET)
                .key(&k)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .expect("GetObject");
            match algo {
                None => {
                    assert_eq!(out.checksum_crc32(), Some(crc32_b64(body).as_str()));
                    assert_eq!(got.checksum_crc32(), Some(crc32_b64(body).as_str()));
                }
                Some(ChecksumAlgorithm::Crc32C) => {
                    assert_eq!(out.checksum_crc32_c(), Some(crc32c_b64(body).as_str()));
                    assert_eq!(got.checksum_crc32_c(), Some(crc32c_b64(body).as_str()));
                }
                Some(ChecksumAlgorithm::Sha256) => {
                    let want = B64.encode(sha2::Sha256::digest(body));
                    assert_eq!(out.checksum_sha256(), Some(want.as_str()));
                    assert_eq!(got.checksum_sha256(), Some(want.as_str()));
                }
                Some(ChecksumAlgorithm::Sha1) => {
                    let want = B64.encode(sha1::Sha1::digest(body));
                    assert_eq!(out.checksum_sha1(), Some(want.as_str()));
                    assert_eq!(got.checksum_sha1(), Some(want.as_str()));
                }
                Some(_) => {
                    assert!(out.checksum_crc64_nvme().is_some());
                    assert_eq!(got.checksum_crc64_nvme(), out.checksum_crc64_nvme());
                }
            }
            assert_eq!(got.content_encoding(), enc, "{k}: stored Content-Encoding");
            assert_eq!(got.content_length(), Some(body.len() as i64));
            assert!(&read_body(got.body).await == body, "{k}: content");
        }

        // Streamed with a wrong checksum or MD5 given by the caller: refused, nothing stored.
        let k = format!("{key}-streamed-wrong");
        for wrong in ["crc32", "md5"] {
            let stream = aws_sdk_s3::primitives::ByteStream::from_path(&path)
                .await
                .expect("file body");
            let req = c.put_object().bucket(BUCKET).key(&k).body(stream);
            let req = match wrong {
                "crc32" => req.checksum_crc32(crc32_b64(b"not this")),
                _ => req.content_md5(B64.encode(Md5::digest(b"not this"))),
            };
            assert_s3_err(req.send().await, "BadDigest", 400);
            assert_s3_err(
                c.get_object().bucket(BUCKET).key(&k).send().await,
                "NoSuchKey",
                404,
            );
        }

        // A checksum given as a header: right, then wrong.
        let k = format!("{key}-given");
        c.put_object()
            .bucket(BUCKET)
            .key(&k)
            .body(body.clone().into())
            .checksum_crc32(crc32_b64(body))
            .send()
            .await
            .expect("PutObject with a correct x-amz-checksum-crc32");
        assert_eq!(&get_bytes(&c, BUCKET, &k).await, body);
        let k = format!("{key}-wrong-crc");
        assert_s3_err(
            c.put_object()
                .bucket(BUCKET)
                .key(&k)
                .body(body.clone().into())
                .checksum_crc32(crc32_b64(b"something else"))
                .send()
                .await,
            "BadDigest",
            400,
        );
        assert_s3_err(
            c.get_object().bucket(BUCKET).key(&k).send().await,
            "NoSuchKey",
            404,
        );

        // Content-MD5: right, then wrong (nothing is stored).
        let k = format!("{key}-md5");
        c.put_object()
            .bucket(BUCKET)
            .key(&k)
            .body(body.clone().into())
            .content_md5(B64.encode(Md5::digest(body)))
            .send()
            .await
            .expect("PutObject with a correct Content-MD5");
        assert_eq!(&get_bytes(&c, BUCKET, &k).await, body);
        let k = format!("{key}-bad-md5");
        assert_s3_err(
            c.put_object()
                .bucket(BUCKET)
                .key(&k)
                .body(body.clone().into())
                .content_md5(B64.encode(Md5::digest(b"other")))
                .send()
                .await,
            "BadDigest",
            400,
        );
        assert_s3_err(
            c.get_object().bucket(BUCKET).key(&k).send().await,
            "NoSuchKey",
            404,
        );
        // A failed overwrite keeps the previous content.
        assert_s3_err(
            c.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(b"replacement".to_vec().into())
                .content_md5(B64.encode(Md5::digest(b"other")))
                .send()
                .await,
            "BadDigest",
            400,
        );
        assert_eq!(&get_bytes(&c, BUCKET, key).await, body);
    }
}

/// All pages of a ListObjectsV2; returns (keys, common prefixes, number of pages).
async fn list_v2_all(
    c: &Client,
    prefix: Option<&str>,
    delimiter: Option<&str>,
    max_keys: i32,
    start_after: Option<&str>,
) -> (Vec<String>, Vec<String>, usize) {
    let mut keys = vec![];
    let mut prefixes = vec![];
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 100, "too many pages");
        let out = c
            .list_objects_v2()
            .bucket(BUCKET)
            .set_prefix(prefix.map(String::from))
            .set_delimiter(delimiter.map(String::from))
            .max_keys(max_keys)
            .set_start_after(start_after.map(String::from))
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("ListObjectsV2");
        let n = out.contents().len() + out.common_prefixes().len();
        assert!(n <= max_keys as usize, "page larger than max-keys");
        assert_eq!(out.key_count(), Some(n as i32));
        assert_eq!(out.max_keys(), Some(max_keys));
        assert_eq!(out.continuation_token(), token.as_deref());
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        prefixes.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(String::from)),
        );
        if out.is_truncated() == Some(true) {
            assert_eq!(n, max_keys as usize, "a truncated page is full");
            token = Some(
                out.next_continuation_token()
                    .expect("NextContinuationToken")
                    .to_string(),
            );
        } else {
            assert_eq!(out.next_continuation_token(), None);
            return (keys, prefixes, pages);
        }
    }
}

/// All pages of a ListObjects (v1).
async fn list_v1_all(
    c: &Client,
    prefix: Option<&str>,
    delimiter: Option<&str>,
    max_keys: i32,
) -> (Vec<String>, Vec<String>, usize) {
    let mut keys: Vec<String> = vec![];
    let mut prefixes: Vec<String> = vec![];
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 100, "too many pages");
        let out = c
            .list_objects()
            .bucket(BUCKET)
            .set_prefix(prefix.map(String::from))
            .set_delimiter(delimiter.map(String::from))
            .max_keys(max_keys)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("ListObjects");
        let n = out.contents().len() + out.common_prefixes().len();
        assert!(n <= max_keys as usize, "page larger than max-keys");
        assert_eq!(out.marker().unwrap_or(""), marker.as_deref().unwrap_or(""));
        for o in out.contents() {
            assert!(o.owner().is_some(), "v1 lists owners");
        }
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        prefixes.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(String::from)),
        );
        if out.is_truncated() == Some(true) {
            // NextMarker, or else the last key (as clients do without a delimiter).
            let next = out
                .next_marker()
                .map(String::from)
                .or_else(|| keys.last().cloned())
                .expect("a marker for the next page");
            marker = Some(next);
        } else {
            return (keys, prefixes, pages);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_and_deletes() {
    let node = SingleNode::start().await;
    let c = node.client();
    let flat: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    for k in &flat {
        put(&c, BUCKET, k, k.as_bytes()).await;
    }
    // Paging over 25 keys, 7 at a time.
    let (keys, prefixes, pages) = list_v2_all(&c, None, None, 7, None).await;
    assert_eq!(keys, flat);
    assert!(prefixes.is_empty());
    assert_eq!(pages, 4);
    let (keys, _, pages) = list_v1_all(&c, None, None, 7).await;
    assert_eq!(keys, flat);
    assert_eq!(pages, 4);
    let (keys, _, _) = list_v2_all(&c, None, None, 1000, None).await;
    assert_eq!(keys, flat);
    // start-after.
    let (keys, _, pages) = list_v2_all(&c, None, None, 7, Some("k10")).await;
    assert_eq!(keys, flat[11..]);
    assert_eq!(pages, 2);
    let (keys, _, _) = list_v2_all(&c, None, None, 7, Some("k105")).await;
    assert_eq!(keys, flat[11..]);
    // marker (v1) in the middle.
    let out = c
        .list_objects()
        .bucket(BUCKET)
        .marker("k20")
        .send()
        .await
        .expect("ListObjects with marker");
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["k21", "k22", "k23", "k24"]);
    assert_eq!(out.is_truncated(), Some(false));
    // max-keys=0.
    let out = c
        .list_objects_v2()
        .bucket(BUCKET)
        .max_keys(0)
        .send()
        .await
        .expect("max-keys=0");
    assert!(out.contents().is_empty());
    assert_eq!(out.key_count(), Some(0));
    // Object details and fetch-owner.
    let out = c
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("k0")
        .send()
        .await
        .expect("ListObjectsV2");
    assert_eq!(out.contents().len(), 10);
    let o = &out.contents()[3];
    assert_eq!(o.key(), Some("k03"));
    assert_eq!(o.size(), Some(3));
    assert_eq!(o.e_tag(), Some(format!("\"{}\"", md5_hex(b"k03")).as_str()));
    assert!(o.last_modified().is_some());
    assert!(o.owner().is_none(), "v2 lists owners only with fetch-owner");
    let out = c
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("k0")
        .fetch_owner(true)
        .send()
        .await
        .expect("ListObjectsV2 fetch-owner");
    let owner = out.contents()[0].owner().expect("owner");
    assert_eq!(owner.id(), Some(node.key_id.as_str()));

    // DeleteObjects: existing and missing keys are all reported deleted.
    let del: Vec<ObjectIdentifier> = flat
        .iter()
        .map(String::as_str)
        .chain(["never-existed"])
        .map(|k| ObjectIdentifier::builder().key(k).build().expect("id"))
        .collect();
    let out = c
        .delete_objects()
        .bucket(BUCKET)
        .delete(
            Delete::builder()
                .set_objects(Some(del))
                .build()
                .expect("delete"),
        )
        .send()
        .await
        .expect("DeleteObjects");
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    let deleted: BTreeSet<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted.len(), 26);
    assert!(deleted.contains("never-existed"));
    let (keys, _, _) = list_v2_all(&c, None, None, 1000, None).await;
    assert!(keys.is_empty(), "{keys:?}");
    // Quiet mode lists nothing.
    put(&c, BUCKET, "q1", b"1").await;
    let out = c
        .delete_objects()
        .bucket(BUCKET)
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("q1").build().expect("id"))
                .quiet(true)
                .build()
                .expect("delete"),
        )
        .send()
        .await
        .expect("DeleteObjects quiet");
    assert!(out.deleted().is_empty() && out.errors().is_empty());
    assert_s3_err(
        c.get_object().bucket(BUCKET).key("q1").send().await,
        "NoSuchKey",
        404,
    );

    // Delimiter and common prefixes.
    let tree = [
        "dir1/a",
        "dir1/b",
        "dir2/c",
        "dir2/sub/d",
        "dir2/sub/e",
        "dir3/",
        "top1",
        "top2",
    ];
    for k in tree {
        put(&c, BUCKET, k, b"t").await;
    }
    for max in [1, 2, 3, 1000] {
        let (keys, prefixes, _) = list_v2_all(&c, None, Some("/"), max, None).await;
        assert_eq!(keys, ["top1", "top2"], "max-keys {max}");
        assert_eq!(prefixes, ["dir1/", "dir2/", "dir3/"], "max-keys {max}");
        let (keys, prefixes, _) = list_v1_all(&c, None, Some("/"), max).await;
        assert_eq!(keys, ["top1", "top2"], "v1 max-keys {max}");
        assert_eq!(prefixes, ["dir1/", "dir2/", "dir3/"], "v1 max-keys {max}");
        let (keys, prefixes, _) = list_v2_all(&c, Some("dir2/"), Some("/"), max, None).await;
        assert_eq!(keys, ["dir2/c"]);
        assert_eq!(prefixes, ["dir2/sub/"]);
        let (keys, prefixes, _) = list_v1_all(&c, Some("dir2/"), Some("/"), max).await;
        assert_eq!(keys, ["dir2/c"]);
        assert_eq!(prefixes, ["dir2/sub/"]);
    }
    let (keys, prefixes, _) = list_v2_all(&c, Some("dir"), None, 3, None).await;
    assert_eq!(keys, tree[..6]);
    assert!(prefixes.is_empty());
    let (keys, prefixes, _) = list_v2_all(&c, Some("dir3/"), Some("/"), 10, None).await;
    assert_eq!(keys, ["dir3/"]);
    assert!(prefixes.is_empty());
    let (keys, prefixes, _) = list_v2_all(&c, Some("zzz"), Some("/"), 10, None).await;
    assert!(keys.is_empty() && prefixes.is_empty());
    // Another delimiter.
    let (keys, prefixes, _) = list_v2_all(&c, None, Some("sub"), 1000, None).await;
    assert_eq!(prefixes, ["dir2/sub"]);
    assert_eq!(keys.len(), tree.len() - 2);

    // encoding-type=url: keys with spaces, '%', '+' and non-ASCII come back percent-encoded
    // ('/' is kept, as S3 does); the SDK does not decode them.
    let odd = ["odd key/a b", "odd key/100%", "odd key/c+d", "odd key/é"];
    for k in odd {
        put(&c, BUCKET, k, b"o").await;
    }
    let out = c
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("odd key/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .expect("ListObjectsV2 encoding-type=url");
    let raw: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(out.prefix(), Some("odd%20key/"));
    for k in &raw {
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"%-_.~/".contains(&b)),
            "{k:?} is not URL-encoded"
        );
    }
    let decoded: BTreeSet<String> = raw
        .iter()
        .map(|k| {
            percent_encoding::percent_decode_str(k)
                .decode_utf8()
                .expect("utf-8")
                .into_owned()
        })
        .collect();
    assert_eq!(decoded, odd.iter().map(|k| k.to_string()).collect());
    let out = c
        .list_objects()
        .bucket(BUCKET)
        .prefix("odd ")
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .expect("ListObjects encoding-type=url");
    let p: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(p, ["odd%20key/"]);
    // Without encoding, the keys are as stored (XML-escaped on the wire).
    let out = c
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("odd key/")
        .send()
        .await
        .expect("ListObjectsV2");
    let plain: BTreeSet<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(plain, odd.into_iter().collect());

    // Bad parameters.
    let r = c
        .list_objects_v2()
        .bucket(BUCKET)
        .continuation_token("!!not base64!!")
        .send()
        .await;
    assert_s3_err(r, "InvalidArgument", 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object() {
    let node = SingleNode::start().await;
    let c = node.client();
    c.create_bucket()
        .bucket("other")
        .send()
        .await
        .expect("CreateBucket");
    let small = data(1000, 6);
    let large = data(4 * MIB + 99, 7);
    c.put_object()
        .bucket(BUCKET)
        .key("src small")
        .body(small.clone().into())
        .content_type("text/plain")
        .metadata("origin", "first")
        .send()
        .await
        .expect("PutObject");
    c.put_object()
        .bucket(BUCKET)
        .key("src/large")
        .body(large.clone().into())
        .content_type("application/x-large")
        .metadata("origin", "big")
        .send()
        .await
        .expect("PutObject");

    // COPY (default): data and metadata copied.
    let out = c
        .copy_object()
        .bucket(BUCKET)
        .key("copy1")
        .copy_source(format!("{BUCKET}/src%20small"))
        .send()
        .await
        .expect("CopyObject");
    let res = out.copy_object_result().expect("CopyObjectResult");
    assert_eq!(
        res.e_tag(),
        Some(format!("\"{}\"", md5_hex(&small)).as_str())
    );
    assert!(res.last_modified().is_some());
    let got = c
        .get_object()
        .bucket(BUCKET)
        .key("copy1")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("first")
    );
    assert_eq!(read_body(got.body).await, small);
    // Explicit COPY directive with a leading slash in the source.
    c.copy_object()
        .bucket(BUCKET)
        .key("copy2")
        .copy_source(format!("/{BUCKET}/src%20small"))
        .metadata_directive(MetadataDirective::Copy)
        .metadata("ignored", "yes")
        .send()
        .await
        .expect("CopyObject COPY");
    let head = c
        .head_object()
        .bucket(BUCKET)
        .key("copy2")
        .send()
        .await
        .expect("HeadObject");
    let meta = head.metadata().expect("metadata");
    assert_eq!(meta.get("origin").map(String::as_str), Some("first"));
    assert!(!meta.contains_key("ignored"));

    // REPLACE: new metadata, same data.
    c.copy_object()
        .bucket(BUCKET)
        .key("copy3")
        .copy_source(format!("{BUCKET}/src%20small"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/replaced")
        .metadata("origin", "replaced")
        .send()
        .await
        .expect("CopyObject REPLACE");
    let got = c
        .get_object()
        .bucket(BUCKET)
        .key("copy3")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.content_type(), Some("text/replaced"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("replaced")
    );
    assert_eq!(read_body(got.body).await, small);
    // REPLACE onto itself is allowed, COPY onto itself is not.
    c.copy_object()
        .bucket(BUCKET)
        .key("copy3")
        .copy_source(format!("{BUCKET}/copy3"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/again")
        .send()
        .await
        .expect("CopyObject onto itself with REPLACE");
    let head = c
        .head_object()
        .bucket(BUCKET)
        .key("copy3")
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(head.content_type(), Some("text/again"));
    assert_s3_err(
        c.copy_object()
            .bucket(BUCKET)
            .key("copy3")
            .copy_source(format!("{BUCKET}/copy3"))
            .send()
            .await,
        "InvalidRequest",
        400,
    );

    // Conditions on the source.
    let etag = format!("\"{}\"", md5_hex(&small));
    c.copy_object()
        .bucket(BUCKET)
        .key("copy4")
        .copy_source(format!("{BUCKET}/src%20small"))
        .copy_source_if_match(&etag)
        .send()
        .await
        .expect("CopyObject if-match");
    assert_s3_err(
        c.copy_object()
            .bucket(BUCKET)
            .key("copy5")
            .copy_source(format!("{BUCKET}/src%20small"))
            .copy_source_if_match("\"deadbeef\"")
            .send()
            .await,
        "PreconditionFailed",
        412,
    );
    assert_s3_err(
        c.copy_object()
            .bucket(BUCKET)
            .key("copy5")
            .copy_source(format!("{BUCKET}/src%20small"))
            .copy_source_if_none_match(&etag)
            .send()
            .await,
        "PreconditionFailed",
        412,
    );
    let lm = *c
        .head_object()
        .bucket(BUCKET)
        .key("src small")
        .send()
        .await
        .expect("HeadObject")
        .last_modified()
        .expect("Last-Modified");
    assert_s3_err(
        c.copy_object()
            .bucket(BUCKET)
            .key("copy5")
            .copy_source(format!("{BUCKET}/src%20small"))
            .copy_source_if_unmodified_since(DateTime::from_secs(lm.secs() - 3600))
            .send()
            .await,
        "PreconditionFailed",
        412,
    );
    assert_s3_err(
        c.copy_object()
            .bucket(BUCKET)
            .key("copy5")
            .copy_source(format!("{BUCKET}/src%20small"))
            .copy_source_if_modified_since(DateTime::from_secs(lm.secs() + 3600))
            .send()
            .await,
        "PreconditionFailed",
        412,
    );
    assert_s3_err(
        c.get_object().bucket(BUCKET).key("copy5").send().await,
        "NoSuchKey",
        404,
    );
    c.copy_object()
        .bucket(BUCKET)
        .key("copy5")
        .copy_source(format!("{BUCKET}/src%20small"))
        .copy_source_if_modified_since(DateTime::from_secs(lm.secs() - 3600))
        .copy_source_if_unmodified_since(lm)
        .send()
        .await
        .expect("CopyObject with date conditions that hold");
    assert_eq!(get_bytes(&c, BUCKET, "copy5").await, small);

    // Missing sources.
    assert_s3_err(
        c.copy_object()
            .bucket(BUCKET)
            .key("copy6")
            .copy_source(format!("{BUCKET}/nothing"))
            .send()
            .await,
        "NoSuchKey",
        404,
    );
    assert_s3_err(
        c.copy_object()
            .bucket(BUCKET)
            .key("copy6")
            .copy_source("nobucket/x")
            .send()
            .await,
        "NoSuchBucket",
        404,
    );

    // Between buckets, a multi-block object; the copy survives the deletion of its source.
    let out = c
        .copy_object()
        .bucket("other")
        .key("large copy")
        .copy_source(format!("{BUCKET}/src/large"))
        .send()
        .await
        .expect("CopyObject between buckets");
    assert_eq!(
        out.copy_object_result().and_then(|r| r.e_tag()),
        Some(format!("\"{}\"", md5_hex(&large)).as_str())
    );
    c.delete_object()
        .bucket(BUCKET)
        .key("src/large")
        .send()
        .await
        .expect("DeleteObject");
    assert_s3_err(
        c.get_object().bucket(BUCKET).key("src/large").send().await,
        "NoSuchKey",
        404,
    );
    let got = get_bytes(&c, "other", "large copy").await;
    assert!(
        got == large,
        "copy of a multi-block object after deleting its source"
    );
    let out = c
        .get_object()
        .bucket("other")
        .key("large copy")
        .range(format!("bytes={}-{}", MIB - 3, 2 * MIB + 3))
        .send()
        .await
        .expect("range of the copy");
    assert!(read_body(out.body).await == large[MIB - 3..2 * MIB + 4]);
    let head = c
        .head_object()
        .bucket("other")
        .key("large copy")
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(head.content_type(), Some("application/x-large"));

    // A multi-block object copied onto itself (REPLACE) keeps its blocks.
    c.copy_object()
        .bucket("other")
        .key("large copy")
        .copy_source("other/large%20copy")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/large")
        .send()
        .await
        .expect("CopyObject of a multi-block object onto itself");
    let got = c
        .get_object()
        .bucket("other")
        .key("large copy")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.content_type(), Some("text/large"));
    assert!(read_body(got.body).await == large);

    // Copying needs read on the source and write on the destination.
    let (id2, secret2) = node.create_key("copier");
    let c2 = client(node.s3_port, &id2, &secret2, "garage");
    node.cli(&[
        "bucket", "allow", "--read", "--write", "other", "--key", &id2,
    ]);
    assert_s3_err(
        c2.copy_object()
            .bucket("other")
            .key("stolen")
            .copy_source(format!("{BUCKET}/src%20small"))
            .send()
            .await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        c2.copy_object()
            .bucket(BUCKET)
            .key("pushed")
            .copy_source("other/large%20copy")
            .send()
            .await,
        "AccessDenied",
        403,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_authentication_and_presigned_urls() {
    let node = SingleNode::start().await;
    let c = node.client();

    // Keys that look like paths or need encoding are stored verbatim.
    let long_ok = "k".repeat(1024);
    let hostile = [
        "../x",
        "../../etc/passwd",
        "a//b",
        "/leading",
        "//double-leading",
        "%",
        "%2F",
        "a%20b",
        "sp ace",
        " leading space",
        "trailing space ",
        "tab\there",
        "ü/ñ/日本",
        "plus+and=equals&amp?q#frag",
        "./dot",
        "a/./b/../c",
        "<xml>&\"'",
        long_ok.as_str(),
    ];
    for (i, k) in hostile.iter().enumerate() {
        let body = data(100 + i, i as u64);
        put(&c, BUCKET, k, &body).await;
        assert_eq!(get_bytes(&c, BUCKET, k).await, body, "key {k:?}");
    }
    let (keys, _, _) = list_v2_all(&c, None, None, 1000, None).await;
    let mut want: Vec<String> = hostile.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(keys, want);
    for k in hostile {
        c.delete_object()
            .bucket(BUCKET)
            .key(k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteObject {k:?}: {e:?}"));
    }
    let (keys, _, _) = list_v2_all(&c, None, None, 1000, None).await;
    assert!(keys.is_empty(), "{keys:?}");
    // 1025 bytes is too long, also counted in bytes of UTF-8.
    let too_long = "k".repeat(1025);
    assert_s3_err(
        c.put_object()
            .bucket(BUCKET)
            .key(&too_long)
            .body(b"x".to_vec().into())
            .send()
            .await,
        "KeyTooLongError",
        400,
    );
    let too_long_utf8 = "é".repeat(513);
    assert_s3_err(
        c.put_object()
            .bucket(BUCKET)
            .key(&too_long_utf8)
            .body(b"x".to_vec().into())
            .send()
            .await,
        "KeyTooLongError",
        400,
    );
    assert_s3_err(
        c.get_object().bucket(BUCKET).key(&too_long).send().await,
        "KeyTooLongError",
        400,
    );

    // Authentication failures.
    put(&c, BUCKET, "obj", b"content").await;
    let wrong_region = client(node.s3_port, &node.key_id, &node.secret, "us-east-1");
    assert_s3_err(
        wrong_region.list_buckets().send().await,
        "AuthorizationHeaderMalformed",
        400,
    );
    assert_s3_err(
        wrong_region
            .get_object()
            .bucket(BUCKET)
            .key("obj")
            .send()
            .await,
        "AuthorizationHeaderMalformed",
        400,
    );
    let mut bad_secret = node.secret.clone();
    let last = if bad_secret.ends_with('0') { "1" } else { "0" };
    bad_secret.replace_range(bad_secret.len() - 1.., last);
    let wrong_secret = client(node.s3_port, &node.key_id, &bad_secret, "garage");
    assert_s3_err(
        wrong_secret.list_buckets().send().await,
        "SignatureDoesNotMatch",
        403,
    );
    assert_s3_err(
        wrong_secret
            .put_object()
            .bucket(BUCKET)
            .key("obj")
            .body(b"evil".to_vec().into())
            .send()
            .await,
        "SignatureDoesNotMatch",
        403,
    );
    let unknown = client(
        node.s3_port,
        "GK000000000000000000000000",
        &node.secret,
        "garage",
    );
    assert_s3_err(
        unknown.list_buckets().send().await,
        "InvalidAccessKeyId",
        403,
    );
    assert_s3_err(
        unknown.get_object().bucket(BUCKET).key("obj").send().await,
        "InvalidAccessKeyId",
        403,
    );
    assert_eq!(get_bytes(&c, BUCKET, "obj").await, b"content");
    // An unsigned request.
    let r = raw_request(node.s3_port, "GET", &format!("/{BUCKET}/obj"), &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(xml_text(&r.text(), "Code"), Some("AccessDenied"));

    // Presigned GET through a hand-written HTTP/1.1 request.
    let presign = |cfg: PresigningConfig| {
        let c = c.clone();
        async move {
            c.get_object()
                .bucket(BUCKET)
                .key("obj")
                .presigned(cfg)
                .await
                .expect("presign")
        }
    };
    let fetch = |p: aws_sdk_s3::presigning::PresignedRequest| {
        let uri = p.uri().to_string();
        let path = uri
            .split_once("127.0.0.1")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
            .expect("path of the presigned URL");
        let headers: Vec<(String, String)> = p
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let port = node.s3_port;
        tokio::task::spawn_blocking(move || raw_request(port, "GET", &path, &headers, b""))
    };
    let ok = presign(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg")).await;
    assert!(ok.uri().contains("X-Amz-Signature="), "{}", ok.uri());
    let r = fetch(ok).await.expect("raw GET");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"content");
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(b"content")).as_str())
    );
    // Expired an hour ago.
    let expired = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(7200))
        .expires_in(Duration::from_secs(3600))
        .build()
        .expect("cfg");
    let r = fetch(presign(expired).await).await.expect("raw GET");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(xml_text(&r.text(), "Code"), Some("AccessDenied"));
    // Presigned PUT (unsigned payload) without Content-Type: stored as binary/octet-stream.
    let p = c
        .put_object()
        .bucket(BUCKET)
        .key("presigned put")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg"))
        .await
        .expect("presign PUT");
    assert_eq!(p.method(), "PUT");
    let uri = p.uri().to_string();
    let path = uri
        .split_once("127.0.0.1")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .expect("path");
    let headers: Vec<(String, String)> = p
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let port = node.s3_port;
    let r = tokio::task::spawn_blocking(move || {
        raw_request(port, "PUT", &path, &headers, b"uploaded by URL")
    })
    .await
    .expect("raw PUT");
    assert_eq!(r.status, 200, "{}", r.text());
    let got = c
        .get_object()
        .bucket(BUCKET)
        .key("presigned put")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.content_type(), Some("binary/octet-stream"));
    assert_eq!(read_body(got.body).await, b"uploaded by URL");

    // A presigned URL whose signature was tampered with.
    let p = presign(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg")).await;
    let uri = p.uri().to_string();
    let path = uri
        .split_once("127.0.0.1")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .expect("path");
    let tampered = path.replace("/obj?", "/other?");
    let port = node.s3_port;
    let r = tokio::task::spawn_blocking(move || raw_request(port, "GET", &tampered, &[], b""))
        .await
        .expect("raw GET");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(xml_text(&r.text(), "Code"), Some("SignatureDoesNotMatch"));
}
