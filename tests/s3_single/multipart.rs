//! Multipart uploads through aws-sdk-s3: create, upload (and re-upload) parts, UploadPartCopy with
//! and without ranges, list parts and uploads, complete (ETag, part checks), abort, and reading
//! parts back with `partNumber`.

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::{Digest, Md5};

use crate::s3util::*;
use crate::*;

/// ETag of a multipart object: MD5 of the parts' binary MD5s, `-N`.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(h.finalize()), parts.len())
}

async fn create(c: &Client, key: &str) -> String {
    c.create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .content_type("application/x-test")
        .metadata("kind", "multipart")
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id()
        .expect("upload id")
        .to_string()
}

async fn upload(c: &Client, key: &str, id: &str, n: i32, body: &[u8]) -> String {
    c.upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart {n}: {e:?}"))
        .e_tag()
        .expect("part etag")
        .to_string()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_lifecycle() {
    let node = SingleNode::start().await;
    let c = node.client();
    let key = "big/file.bin";
    let p1 = data(5 * MIB, 1);
    let p2_first = data(5 * MIB + 17, 2);
    let p2 = data(5 * MIB + 1, 3);
    let p3 = data(1234, 4);
    let id = create(&c, key).await;

    // Parts in any order; a part uploaded again replaces the first upload.
    let e3 = upload(&c, key, &id, 3, &p3).await;
    let e2_first = upload(&c, key, &id, 2, &p2_first).await;
    let e1 = upload(&c, key, &id, 1, &p1).await;
    let e2 = upload(&c, key, &id, 2, &p2).await;
    assert_eq!(e1, format!("\"{}\"", md5_hex(&p1)));
    assert_ne!(e2, e2_first);

    // ListParts: the latest upload of each part, paginated.
    let page = c
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .expect("ListParts");
    let nums: Vec<i32> = page
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(nums, vec![1, 2]);
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.parts()[1].size(), Some(p2.len() as i64));
    let marker = page.next_part_number_marker().expect("marker").to_string();
    let page = c
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number_marker(marker)
        .send()
        .await
        .expect("ListParts page 2");
    let nums: Vec<i32> = page
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(nums, vec![3]);
    assert_eq!(page.is_truncated(), Some(false));

    // The upload is listed until it completes.
    let uploads = c
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .expect("ListMultipartUploads");
    assert!(uploads
        .uploads()
        .iter()
        .any(|u| u.upload_id() == Some(id.as_str()) && u.key() == Some(key)));

    // Complete checks: order, ETags, sizes.
    assert_s3_err(
        c.complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .multipart_upload(completed(&[(2, &e2), (1, &e1)]))
            .send()
            .await,
        "InvalidPartOrder",
        400,
    );
    assert_s3_err(
        c.complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (2, &e2_first)]))
            .send()
            .await,
        "InvalidPart",
        400,
    );
    assert_s3_err(
        c.complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (3, &e3), (4, &e3)]))
            .send()
            .await
            .map(|_| ()),
        "EntityTooSmall",
        400,
    );
    assert_s3_err(
        c.complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (4, &e3)]))
            .send()
            .await,
        "InvalidPart",
        400,
    );

    // All three: the final ETag and the data.
    let out = c
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2), (3, &e3)]))
        .send()
        .await
        .expect("CompleteMultipartUpload");
    let etag = multipart_etag(&[&p1, &p2, &p3]);
    assert_eq!(out.e_tag(), Some(etag.as_str()));
    let whole: Vec<u8> = [p1.clone(), p2.clone(), p3.clone()].concat();
    let got = c
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("kind"))
            .map(String::as_str),
        Some("multipart")
    );
    assert!(read_body(got.body).await == whole, "object data");

    // partNumber reads exactly one part.
    for (n, p) in [(1, &p1), (2, &p2), (3, &p3)] {
        let got = c
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .part_number(n)
            .send()
            .await
            .expect("GetObject partNumber");
        assert_eq!(got.parts_count(), Some(3));
        assert_eq!(got.content_length(), Some(p.len() as i64));
        assert!(read_body(got.body).await == *p, "part {n}");
    }
    assert_s3_err(
        c.get_object()
            .bucket(BUCKET)
            .key(key)
            .part_number(4)
            .send()
            .await,
        "InvalidPart",
        400,
    );

    // The upload is gone once complete.
    assert_s3_err(
        c.list_parts()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .send()
            .await,
        "NoSuchUpload",
        404,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_errors_abort_and_listing() {
    let node = SingleNode::start().await;
    let c = node.client();

    // A part below 5 MiB that is not the last.
    let id = create(&c, "small-parts").await;
    let a = data(MIB, 5);
    let b = data(MIB, 6);
    let ea = upload(&c, "small-parts", &id, 1, &a).await;
    let eb = upload(&c, "small-parts", &id, 2, &b).await;
    assert_s3_err(
        c.complete_multipart_upload()
            .bucket(BUCKET)
            .key("small-parts")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &ea), (2, &eb)]))
            .send()
            .await,
        "EntityTooSmall",
        400,
    );
    // A single small part is fine (it is the last).
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key("small-parts")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &ea)]))
        .send()
        .await
        .expect("Complete with one part");
    assert!(get_bytes(&c, BUCKET, "small-parts").await == a);

    // Bad part numbers and unknown uploads.
    let id = create(&c, "dir/x").await;
    for n in [0, 10_001] {
        assert_s3_err(
            c.upload_part()
                .bucket(BUCKET)
                .key("dir/x")
                .upload_id(&id)
                .part_number(n)
                .body(b"x".to_vec().into())
                .send()
                .await,
            "InvalidArgument",
            400,
        );
    }
    assert_s3_err(
        c.upload_part()
            .bucket(BUCKET)
            .key("dir/x")
            .upload_id("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
            .part_number(1)
            .body(b"x".to_vec().into())
            .send()
            .await,
        "NoSuchUpload",
        404,
    );
    assert_s3_err(
        c.upload_part()
            .bucket(BUCKET)
            .key("dir/x")
            .upload_id("not-hex")
            .part_number(1)
            .body(b"x".to_vec().into())
            .send()
            .await,
        "NoSuchUpload",
        404,
    );

    // ListMultipartUploads with prefix and delimiter.
    let id2 = create(&c, "dir/y").await;
    let id3 = create(&c, "other/z").await;
    let out = c
        .list_multipart_uploads()
        .bucket(BUCKET)
        .prefix("dir/")
        .send()
        .await
        .expect("ListMultipartUploads prefix");
    let mut keys: Vec<&str> = out.uploads().iter().filter_map(|u| u.key()).collect();
    keys.sort();
    assert_eq!(keys, vec!["dir/x", "dir/y"]);
    let out = c
        .list_multipart_uploads()
        .bucket(BUCKET)
        .delimiter("/")
        .send()
        .await
        .expect("ListMultipartUploads delimiter");
    let mut prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    prefixes.sort();
    assert_eq!(prefixes, vec!["dir/", "other/"]);
    assert!(out.uploads().is_empty());

    // Abort: the upload disappears; its parts are gone.
    upload(&c, "dir/y", &id2, 1, &data(100, 7)).await;
    c.abort_multipart_upload()
        .bucket(BUCKET)
        .key("dir/y")
        .upload_id(&id2)
        .send()
        .await
        .expect("AbortMultipartUpload");
    assert_s3_err(
        c.list_parts()
            .bucket(BUCKET)
            .key("dir/y")
            .upload_id(&id2)
            .send()
            .await,
        "NoSuchUpload",
        404,
    );
    assert_s3_err(
        c.abort_multipart_upload()
            .bucket(BUCKET)
            .key("dir/y")
            .upload_id(&id2)
            .send()
            .await,
        "NoSuchUpload",
        404,
    );
    let out = c
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .expect("ListMultipartUploads");
    let ids: Vec<&str> = out.uploads().iter().filter_map(|u| u.upload_id()).collect();
    assert!(ids.contains(&id.as_str()) && ids.contains(&id3.as_str()));
    assert!(!ids.contains(&id2.as_str()));
    // An aborted upload's key does not exist as an object.
    assert_s3_err(
        c.get_object().bucket(BUCKET).key("dir/y").send().await,
        "NoSuchKey",
        404,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy() {
    let node = SingleNode::start().await;
    let c = node.client();
    c.create_bucket()
        .bucket("src")
        .send()
        .await
        .expect("CreateBucket");
    let big = data(7 * MIB + 333, 8);
    let small = data(2000, 9);
    put(&c, "src", "big", &big).await;
    put(&c, "src", "small", &small).await;

    let key = "assembled";
    let id = create(&c, key).await;
    // Part 1: the whole big object (block-stored source).
    let r1 = c
        .upload_part_copy()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .copy_source("src/big")
        .send()
        .await
        .expect("UploadPartCopy whole");
    let e1 = r1
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("etag")
        .to_string();
    assert_eq!(e1, format!("\"{}\"", md5_hex(&big)));
    // Part 2: a range across block boundaries.
    let (first, last) = (MIB - 10, 6 * MIB + 5);
    let r2 = c
        .upload_part_copy()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number(2)
        .copy_source("src/big")
        .copy_source_range(format!("bytes={first}-{last}"))
        .send()
        .await
        .expect("UploadPartCopy range");
    let range = &big[first..=last];
    let e2 = r2
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("etag")
        .to_string();
    assert_eq!(e2, format!("\"{}\"", md5_hex(range)));
    // Part 3: a range of an inline source.
    let r3 = c
        .upload_part_copy()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number(3)
        .copy_source("src/small")
        .copy_source_range("bytes=100-199")
        .send()
        .await
        .expect("UploadPartCopy inline range");
    let e3 = r3
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("etag")
        .to_string();

    // Bad ranges, bad sources, failed conditions.
    for bad in ["bytes=0-99999999", "bytes=10-5", "bytes=5-", "rows=1-2"] {
        assert_s3_err(
            c.upload_part_copy()
                .bucket(BUCKET)
                .key(key)
                .upload_id(&id)
                .part_number(4)
                .copy_source("src/big")
                .copy_source_range(bad)
                .send()
                .await,
            "InvalidArgument",
            400,
        );
    }
    assert_s3_err(
        c.upload_part_copy()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(4)
            .copy_source("src/missing")
            .send()
            .await,
        "NoSuchKey",
        404,
    );
    assert_s3_err(
        c.upload_part_copy()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(4)
            .copy_source("src/big")
            .copy_source_if_match("\"0000\"")
            .send()
            .await,
        "PreconditionFailed",
        412,
    );

    let out = c
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2), (3, &e3)]))
        .send()
        .await
        .expect("Complete");
    let expected: Vec<u8> = [&big[..], range, &small[100..200]].concat();
    assert_eq!(
        out.e_tag(),
        Some(multipart_etag(&[&big, range, &small[100..200]]).as_str())
    );
    assert!(
        get_bytes(&c, BUCKET, key).await == expected,
        "assembled data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_checksums() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};
    let node = SingleNode::start().await;
    let c = node.client();
    let p1 = data(5 * MIB, 21);
    let p2 = data(1000, 22);
    let whole: Vec<u8> = [p1.clone(), p2.clone()].concat();
    let b64 = |b: &[u8]| B64.encode(b);

    for (algo, kind) in [
        (ChecksumAlgorithm::Crc32, None),
        (ChecksumAlgorithm::Crc32, Some(ChecksumType::FullObject)),
        (ChecksumAlgorithm::Crc64Nvme, None),
        (ChecksumAlgorithm::Sha256, None),
    ] {
        let key = format!("sum/{}-{:?}", algo.as_str(), kind);
        let id = c
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(&key)
            .checksum_algorithm(algo.clone())
            .set_checksum_type(kind.clone())
            .send()
            .await
            .expect("CreateMultipartUpload with a checksum")
            .upload_id()
            .expect("id")
            .to_string();
        let mut parts = vec![];
        let mut part_sums = vec![];
        for (n, body) in [(1, &p1), (2, &p2)] {
            let out = c
                .upload_part()
                .bucket(BUCKET)
                .key(&key)
                .upload_id(&id)
                .part_number(n)
                .checksum_algorithm(algo.clone())
                .body(body.clone().into())
                .send()
                .await
                .expect("UploadPart with a checksum");
            let sum = match algo {
                ChecksumAlgorithm::Crc32 => out.checksum_crc32(),
                ChecksumAlgorithm::Crc64Nvme => out.checksum_crc64_nvme(),
                _ => out.checksum_sha256(),
            }
            .map(String::from);
            let mut p = CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().expect("etag"));
            p = match algo {
                ChecksumAlgorithm::Crc32 => p.set_checksum_crc32(sum.clone()),
                ChecksumAlgorithm::Crc64Nvme => p.set_checksum_crc64_nvme(sum.clone()),
                _ => p.set_checksum_sha256(sum.clone()),
            };
            parts.push(p.build());
            part_sums.push(sum);
        }
        // ListParts shows the part checksums.
        let listed = c
            .list_parts()
            .bucket(BUCKET)
            .key(&key)
            .upload_id(&id)
            .send()
            .await
            .expect("ListParts");
        let listed_sums: Vec<Option<String>> = listed
            .parts()
            .iter()
            .map(|p| {
                p.checksum_crc32()
                    .or(p.checksum_crc64_nvme())
                    .or(p.checksum_sha256())
                    .map(String::from)
            })
            .collect();
        assert_eq!(listed_sums, part_sums, "{key}");

        let expected = match (&algo, &kind) {
            (ChecksumAlgorithm::Crc32, None) => {
                let raw: Vec<u8> = [&p1, &p2]
                    .iter()
                    .flat_map(|p| crc32fast::hash(p).to_be_bytes())
                    .collect();
                format!("{}-2", b64(&crc32fast::hash(&raw).to_be_bytes()))
            }
            (ChecksumAlgorithm::Crc32, Some(_)) => b64(&crc32fast::hash(&whole).to_be_bytes()),
            (ChecksumAlgorithm::Crc64Nvme, _) => {
                let mut d = crc64fast_nvme::Digest::new();
                d.write(&whole);
                b64(&d.sum64().to_be_bytes())
            }
            _ => {
                use sha2::{Digest as _, Sha256};
                let raw: Vec<u8> = [&p1, &p2]
                    .iter()
                    .flat_map(|p| Sha256::digest(p).to_vec())
                    .collect();
                format!("{}-2", b64(&Sha256::digest(&raw)))
            }
        };
        // A wrong part checksum is refused.
        let mut bad = parts.clone();
        bad[1] = CompletedPart::builder()
            .part_number(2)
            .e_tag(parts[1].e_tag().expect("etag"))
            .checksum_crc32("AAAAAA==")
            .build();
        assert_s3_err(
            c.complete_multipart_upload()
                .bucket(BUCKET)
                .key(&key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(bad))
                        .build(),
                )
                .send()
                .await,
            "InvalidPart",
            400,
        );
        let out = c
            .complete_multipart_upload()
            .bucket(BUCKET)
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .expect("Complete");
        let got = out
            .checksum_crc32()
            .or(out.checksum_crc64_nvme())
            .or(out.checksum_sha256());
        assert_eq!(got, Some(expected.as_str()), "{key}");
        let head = c
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("HeadObject");
        let got = head
            .checksum_crc32()
            .or(head.checksum_crc64_nvme())
            .or(head.checksum_sha256());
        assert_eq!(got, Some(expected.as_str()), "{key} HEAD");
        // And the data reads back (the SDK validates full-object checksums).
        let got = c
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("GetObject");
        assert!(read_body(got.body).await == whole, "{key} data");
    }

    // Invalid choices.
    for (algo, kind) in [
        (ChecksumAlgorithm::Sha256, ChecksumType::FullObject),
        (ChecksumAlgorithm::Crc64Nvme, ChecksumType::Composite),
    ] {
        assert_s3_err(
            c.create_multipart_upload()
                .bucket(BUCKET)
                .key("sum/bad")
                .checksum_algorithm(algo)
                .checksum_type(kind)
                .send()
                .await,
            "InvalidRequest",
            400,
        );
    }
}

/// The reference count `garage block info` shows (node 1 on a cluster) for the block `bytes`.
fn refcount(node: &SingleNode, bytes: &[u8]) -> u64 {
    let hash = garage::util::ids::blake2sum(bytes).to_hex();
    let out = node.cli(&["block", "info", &hash]);
    line_value(&out, "Reference count:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no reference count in:\n{out}"))
}

/// Waits (bounded) until the block `bytes` has reference count `rc`.
async fn wait_refcount(node: &SingleNode, bytes: &[u8], rc: u64, what: &str) {
    let ok = wait_async(std::time::Duration::from_secs(60), || async {
        (refcount(node, bytes) == rc).then_some(())
    })
    .await;
    assert!(ok.is_some(), "{what}: reference count never became {rc}");
}

/// The data of parts that end up unused is released through the cascade (version → block
/// references → block reference counts): parts left out at Complete, parts of an aborted upload,
/// and the parts of a completed object once it is overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_parts_are_freed_through_the_cascade() {
    let node = SingleNode::start().await;
    let c = node.client();
    // Each part is two 1 MiB blocks and a bit; the blocks checked are each part's first.
    let kept = data(5 * MIB + 100, 301);
    let left_out = data(2 * MIB + 100, 302);
    let aborted = data(2 * MIB + 100, 303);
    let first_block = |d: &[u8]| d[..MIB].to_vec();

    let id = create(&c, "mp/freed").await;
    let e1 = upload(&c, "mp/freed", &id, 1, &kept).await;
    upload(&c, "mp/freed", &id, 2, &left_out).await;
    wait_refcount(&node, &first_block(&left_out), 1, "uploaded part").await;
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key("mp/freed")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1)]))
        .send()
        .await
        .expect("CompleteMultipartUpload with part 1 only");
    assert_eq!(get_bytes(&c, BUCKET, "mp/freed").await, kept);
    wait_refcount(
        &node,
        &first_block(&left_out),
        0,
        "part left out at Complete",
    )
    .await;
    wait_refcount(&node, &first_block(&kept), 1, "part of the object").await;

    let id = create(&c, "mp/aborted").await;
    upload(&c, "mp/aborted", &id, 1, &aborted).await;
    wait_refcount(&node, &first_block(&aborted), 1, "uploaded part").await;
    c.abort_multipart_upload()
        .bucket(BUCKET)
        .key("mp/aborted")
        .upload_id(&id)
        .send()
        .await
        .expect("AbortMultipartUpload");
    wait_refcount(
        &node,
        &first_block(&aborted),
        0,
        "part of an aborted upload",
    )
    .await;

    put(&c, BUCKET, "mp/freed", b"small now").await;
    wait_refcount(
        &node,
        &first_block(&kept),
        0,
        "part of an overwritten object",
    )
    .await;
}
