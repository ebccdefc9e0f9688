//! SSE-C (server-side encryption with customer-provided keys) through aws-sdk-s3: round trips of
//! inline and multi-block objects, ranges and HEAD, the errors for missing, wrong and malformed
//! keys, multipart uploads, copies between plain and encrypted objects, and a scan of the node's
//! files showing that the data at rest holds no plaintext.

use std::path::Path;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use md5::{Digest, Md5};

use crate::s3util::*;
use crate::*;

/// A customer key: base64 of the 32 bytes and of their MD5.
#[derive(Clone)]
struct SseKey {
    raw: [u8; 32],
    key: String,
    md5: String,
}

fn sse_key(seed: u8) -> SseKey {
    let raw: [u8; 32] = std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8));
    SseKey {
        raw,
        key: B64.encode(raw),
        md5: B64.encode(Md5::digest(raw)),
    }
}

/// Adds the SSE-C headers of key `$k` to an aws-sdk-s3 request builder.
macro_rules! with_key {
    ($b:expr, $k:expr) => {
        $b.sse_customer_algorithm("AES256")
            .sse_customer_key(&$k.key)
            .sse_customer_key_md5(&$k.md5)
    };
}

/// Adds the copy-source SSE-C headers of key `$k`.
macro_rules! with_source_key {
    ($b:expr, $k:expr) => {
        $b.copy_source_sse_customer_algorithm("AES256")
            .copy_source_sse_customer_key(&$k.key)
            .copy_source_sse_customer_key_md5(&$k.md5)
    };
}

/// A case of malformed SSE-C parameters: (what, algorithm, key, key MD5).
type BadParams = (
    &'static str,
    Option<&'static str>,
    Option<String>,
    Option<String>,
);

async fn put_sse(c: &Client, key: &str, body: &[u8], k: &SseKey) -> String {
    let out = with_key!(c.put_object().bucket(BUCKET).key(key), k)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject SSE-C {key}: {e:?}"));
    assert_eq!(out.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(out.sse_customer_key_md5(), Some(k.md5.as_str()));
    out.e_tag().expect("etag").to_string()
}

async fn get_sse(c: &Client, key: &str, k: &SseKey) -> Vec<u8> {
    let out = with_key!(c.get_object().bucket(BUCKET).key(key), k)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject SSE-C {key}: {e:?}"));
    assert_eq!(out.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(out.sse_customer_key_md5(), Some(k.md5.as_str()));
    read_body(out.body).await
}

async fn get_range_sse(c: &Client, key: &str, k: &SseKey, range: &str) -> (Vec<u8>, String) {
    let out = with_key!(c.get_object().bucket(BUCKET).key(key), k)
        .range(range)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject SSE-C {key} {range}: {e:?}"));
    let cr = out.content_range().expect("Content-Range").to_string();
    (read_body(out.body).await, cr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssec_round_trips_ranges_and_head() {
    let node = SingleNode::start().await;
    let c = node.client();
    let k = sse_key(1);
    let small = data(1000, 11);
    // Three blocks and a bit (default block size 1 MiB).
    let large = data(3 * MIB + 4321, 12);

    let empty = vec![];
    for (name, body) in [("small", &small), ("dir/large", &large), ("empty", &empty)] {
        let etag = put_sse(&c, name, body, &k).await;
        // The ETag of an SSE-C object is not the MD5 of its plaintext.
        assert_ne!(etag, format!("\"{}\"", md5_hex(body)), "{name}");
        assert_eq!(&get_sse(&c, name, &k).await, body, "{name}");

        let head = with_key!(c.head_object().bucket(BUCKET).key(name), &k)
            .send()
            .await
            .expect("HeadObject SSE-C");
        assert_eq!(head.content_length(), Some(body.len() as i64));
        assert_eq!(head.e_tag(), Some(etag.as_str()));
        assert_eq!(head.sse_customer_algorithm(), Some("AES256"));
        assert_eq!(head.sse_customer_key_md5(), Some(k.md5.as_str()));
    }
    // Listings show the plaintext size.
    let list = c
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .expect("ListObjectsV2");
    let size_of = |n: &str| {
        list.contents()
            .iter()
            .find(|o| o.key() == Some(n))
            .and_then(|o| o.size())
    };
    assert_eq!(size_of("small"), Some(small.len() as i64));
    assert_eq!(size_of("dir/large"), Some(large.len() as i64));

    // Ranges: inside an inline object, inside one block, across block boundaries, suffix.
    let (got, cr) = get_range_sse(&c, "small", &k, "bytes=10-99").await;
    assert_eq!(got, &small[10..100]);
    assert_eq!(cr, format!("bytes 10-99/{}", small.len()));
    let total = large.len();
    for (range, from, to) in [
        ("bytes=5-20".to_string(), 5, 21),
        (
            format!("bytes={}-{}", MIB - 10, 2 * MIB + 10),
            MIB - 10,
            2 * MIB + 11,
        ),
        ("bytes=-5000".to_string(), total - 5000, total),
        (format!("bytes={}-", 3 * MIB), 3 * MIB, total),
    ] {
        let (got, cr) = get_range_sse(&c, "dir/large", &k, &range).await;
        assert!(got == large[from..to], "{range}");
        assert_eq!(cr, format!("bytes {from}-{}/{total}", to - 1), "{range}");
    }
    // partNumber=1 of a single-part object is the whole object.
    let out = with_key!(c.get_object().bucket(BUCKET).key("dir/large"), &k)
        .part_number(1)
        .send()
        .await
        .expect("GetObject partNumber=1");
    assert!(read_body(out.body).await == large);

    // A conditional GET still works with the key.
    let etag = with_key!(c.head_object().bucket(BUCKET).key("small"), &k)
        .send()
        .await
        .expect("HeadObject")
        .e_tag()
        .expect("etag")
        .to_string();
    let r = with_key!(c.get_object().bucket(BUCKET).key("small"), &k)
        .if_none_match(&etag)
        .send()
        .await;
    assert_status(r, 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssec_key_errors() {
    let node = SingleNode::start().await;
    let c = node.client();
    let k = sse_key(2);
    let other = sse_key(3);
    let small = data(200, 21);
    let large = data(MIB + 77, 22);
    put_sse(&c, "small", &small, &k).await;
    put_sse(&c, "large", &large, &k).await;
    put(&c, BUCKET, "plain", b"plain data").await;

    for name in ["small", "large"] {
        // No key: 400 InvalidRequest (HEAD: the status only).
        let r = c.get_object().bucket(BUCKET).key(name).send().await;
        assert_s3_err(r, "InvalidRequest", 400);
        let r = c.head_object().bucket(BUCKET).key(name).send().await;
        assert_status(r, 400);
        // Another key: 403 AccessDenied.
        let r = with_key!(c.get_object().bucket(BUCKET).key(name), &other)
            .send()
            .await;
        assert_s3_err(r, "AccessDenied", 403);
        let r = with_key!(c.head_object().bucket(BUCKET).key(name), &other)
            .send()
            .await;
        assert_status(r, 403);
        // A key MD5 that is not the key's: 400 InvalidArgument.
        let r = c
            .get_object()
            .bucket(BUCKET)
            .key(name)
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&k.key)
            .sse_customer_key_md5(&other.md5)
            .send()
            .await;
        assert_s3_err(r, "InvalidArgument", 400);
    }
    // Conditions are not evaluated before the key is checked.
    let r = c
        .get_object()
        .bucket(BUCKET)
        .key("small")
        .if_none_match("*")
        .send()
        .await;
    assert_s3_err(r, "InvalidRequest", 400);
    // SSE-C parameters for a plain object: 400 InvalidRequest.
    let r = with_key!(c.get_object().bucket(BUCKET).key("plain"), &k)
        .send()
        .await;
    assert_s3_err(r, "InvalidRequest", 400);

    // Malformed PutObject parameters: 400 InvalidArgument, nothing written.
    let bad: Vec<BadParams> = vec![
        (
            "no algorithm",
            None,
            Some(k.key.clone()),
            Some(k.md5.clone()),
        ),
        (
            "bad algorithm",
            Some("AES128"),
            Some(k.key.clone()),
            Some(k.md5.clone()),
        ),
        ("no key", Some("AES256"), None, Some(k.md5.clone())),
        ("no md5", Some("AES256"), Some(k.key.clone()), None),
        (
            "bad md5",
            Some("AES256"),
            Some(k.key.clone()),
            Some(other.md5.clone()),
        ),
        (
            "short key",
            Some("AES256"),
            Some(B64.encode(&k.raw[..16])),
            Some(B64.encode(Md5::digest(&k.raw[..16]))),
        ),
        (
            "not base64",
            Some("AES256"),
            Some("@@@".into()),
            Some(k.md5.clone()),
        ),
    ];
    for (what, algo, key, md5) in bad {
        let r = c
            .put_object()
            .bucket(BUCKET)
            .key("rejected")
            .set_sse_customer_algorithm(algo.map(String::from))
            .set_sse_customer_key(key)
            .set_sse_customer_key_md5(md5)
            .body(b"x".to_vec().into())
            .send()
            .await;
        let (code, status) = err_parts(r);
        assert_eq!(
            (code.as_deref(), status),
            (Some("InvalidArgument"), 400),
            "{what}"
        );
    }
    let r = c.head_object().bucket(BUCKET).key("rejected").send().await;
    assert_status(r, 404);

    // SSE-C cannot be combined with SSE-S3.
    let r = with_key!(c.put_object().bucket(BUCKET).key("rejected"), &k)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .body(b"x".to_vec().into())
        .send()
        .await;
    assert_s3_err(r, "InvalidArgument", 400);

    // The objects are intact and readable with the right key.
    assert_eq!(get_sse(&c, "small", &k).await, small);
    assert!(get_sse(&c, "large", &k).await == large);
    // Overwriting with another key replaces the key.
    put_sse(&c, "small", b"new content", &other).await;
    assert_eq!(get_sse(&c, "small", &other).await, b"new content");
    let r = with_key!(c.get_object().bucket(BUCKET).key("small"), &k)
        .send()
        .await;
    assert_s3_err(r, "AccessDenied", 403);
}

/// Every file under `dir`, zstd files decompressed.
fn file_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let bytes = if p.extension().is_some_and(|x| x == "zst") {
                zstd::stream::decode_all(&bytes[..]).expect("valid zstd block file")
            } else {
                bytes
            };
            out.push((p.display().to_string(), bytes));
        }
    }
    out
}

/// The files under `dir` that contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    file_contents(dir)
        .into_iter()
        .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
        .map(|(p, _)| p)
        .collect()
}

/// Compressible text made of `marker` repeated with a counter, `len` bytes.
fn marked_text(marker: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(format!("{marker} line {i}\n").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssec_data_at_rest_holds_no_plaintext() {
    let node = SingleNode::start().await;
    let c = node.client();
    let k = sse_key(4);
    let secret = "SECRET-SSEC-MARKER-9f3a";
    let control = "PLAIN-CONTROL-MARKER-51c7";
    // Encrypted: inline, multi-block, multipart.
    put_sse(&c, "secret-small", &marked_text(secret, 2000), &k).await;
    put_sse(&c, "secret-large", &marked_text(secret, 2 * MIB + 5), &k).await;
    let id = with_key!(
        c.create_multipart_upload().bucket(BUCKET).key("secret-mpu"),
        &k
    )
    .send()
    .await
    .expect("CreateMultipartUpload")
    .upload_id()
    .expect("upload id")
    .to_string();
    let mut parts = vec![];
    for (n, len) in [(1, 5 * MIB), (2, 100_000)] {
        let etag = with_key!(
            c.upload_part()
                .bucket(BUCKET)
                .key("secret-mpu")
                .upload_id(&id)
                .part_number(n),
            &k
        )
        .body(marked_text(secret, len).into())
        .send()
        .await
        .expect("UploadPart")
        .e_tag()
        .expect("etag")
        .to_string();
        parts.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key("secret-mpu")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload");
    // A copy decrypted and re-encrypted with another key.
    let k2 = sse_key(40);
    with_key!(
        with_source_key!(
            c.copy_object()
                .bucket(BUCKET)
                .key("secret-copy")
                .copy_source(format!("{BUCKET}/secret-large")),
            &k
        ),
        &k2
    )
    .send()
    .await
    .expect("CopyObject SSE-C -> SSE-C");
    // Plain control objects written after: the scan must find them (inline in the metadata,
    // blocks in the data directory), which shows it would find plaintext.
    put(&c, BUCKET, "control-small", &marked_text(control, 2000)).await;
    put(&c, BUCKET, "control-large", &marked_text(control, MIB + 5)).await;

    let data_dir = node.dir.path().join("data");
    let meta_dir = node.dir.path().join("meta");
    let found = common::wait_for(std::time::Duration::from_secs(30), || {
        let in_meta = !files_containing(&meta_dir, control.as_bytes()).is_empty();
        let in_data = !files_containing(&data_dir, control.as_bytes()).is_empty();
        (in_meta && in_data).then_some(())
    });
    assert!(
        found.is_some(),
        "the scan never found the plain control objects"
    );
    // Nothing in the node's directory (metadata, blocks, log) holds the encrypted objects'
    // plaintext, nor the keys.
    let holders = files_containing(node.dir.path(), secret.as_bytes());
    assert!(
        holders.is_empty(),
        "plaintext of SSE-C objects found in {holders:?}"
    );
    for key in [&k, &k2] {
        assert!(files_containing(node.dir.path(), key.key.as_bytes()).is_empty());
        assert!(files_containing(node.dir.path(), &key.raw).is_empty());
    }

    // The objects still read back.
    assert_eq!(
        get_sse(&c, "secret-small", &k).await,
        marked_text(secret, 2000)
    );
    assert!(get_sse(&c, "secret-large", &k).await == marked_text(secret, 2 * MIB + 5));
    let mpu = get_sse(&c, "secret-mpu", &k).await;
    assert_eq!(mpu.len(), 5 * MIB + 100_000);
    assert!(mpu[..5 * MIB] == marked_text(secret, 5 * MIB));
    assert!(get_sse(&c, "secret-copy", &k2).await == marked_text(secret, 2 * MIB + 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssec_multipart() {
    let node = SingleNode::start().await;
    let c = node.client();
    let k = sse_key(5);
    let other = sse_key(6);
    let key = "mpu/encrypted";
    let p1 = data(5 * MIB, 51);
    let p2 = data(MIB + 3, 52);
    let create = with_key!(c.create_multipart_upload().bucket(BUCKET).key(key), &k)
        .send()
        .await
        .expect("CreateMultipartUpload");
    assert_eq!(create.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(create.sse_customer_key_md5(), Some(k.md5.as_str()));
    let id = create.upload_id().expect("upload id").to_string();
    let part = |n: i32| {
        c.upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(n)
    };

    // A part without the key, or with another key, is refused.
    let r = part(1).body(p1.clone().into()).send().await;
    assert_s3_err(r, "InvalidRequest", 400);
    let r = with_key!(part(1), &other)
        .body(p1.clone().into())
        .send()
        .await;
    assert_s3_err(r, "InvalidArgument", 400);

    let out = with_key!(part(1), &k)
        .body(p1.clone().into())
        .send()
        .await
        .expect("UploadPart 1");
    assert_eq!(out.sse_customer_key_md5(), Some(k.md5.as_str()));
    let e1 = out.e_tag().expect("etag").to_string();
    assert_ne!(e1, format!("\"{}\"", md5_hex(&p1)));
    let e2 = with_key!(part(2), &k)
        .body(p2.clone().into())
        .send()
        .await
        .expect("UploadPart 2")
        .e_tag()
        .expect("etag")
        .to_string();
    // Completing does not need the key.
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(&e1).build())
                .parts(CompletedPart::builder().part_number(2).e_tag(&e2).build())
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload");

    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert!(get_sse(&c, key, &k).await == whole);
    let r = c.get_object().bucket(BUCKET).key(key).send().await;
    assert_s3_err(r, "InvalidRequest", 400);
    let r = with_key!(c.get_object().bucket(BUCKET).key(key), &other)
        .send()
        .await;
    assert_s3_err(r, "AccessDenied", 403);
    // Part 2 alone, and a range across the parts.
    let out = with_key!(c.get_object().bucket(BUCKET).key(key), &k)
        .part_number(2)
        .send()
        .await
        .expect("GetObject partNumber=2");
    assert_eq!(out.parts_count(), Some(2));
    assert!(read_body(out.body).await == p2);
    let (got, _) = get_range_sse(
        &c,
        key,
        &k,
        &format!("bytes={}-{}", 5 * MIB - 3, 5 * MIB + 2),
    )
    .await;
    assert_eq!(got, &whole[5 * MIB - 3..5 * MIB + 3]);

    // UploadPartCopy: an SSE-C source (with its key) into an upload with another key, and a
    // plain source into it.
    put(&c, BUCKET, "plain-src", &p2).await;
    let create = with_key!(
        c.create_multipart_upload().bucket(BUCKET).key("mpu/copied"),
        &other
    )
    .send()
    .await
    .expect("CreateMultipartUpload");
    let id2 = create.upload_id().expect("upload id").to_string();
    let copy_part = |n: i32, src: &str| {
        c.upload_part_copy()
            .bucket(BUCKET)
            .key("mpu/copied")
            .upload_id(&id2)
            .part_number(n)
            .copy_source(format!("{BUCKET}/{src}"))
    };
    // The source key is required for an SSE-C source.
    let r = with_key!(copy_part(1, "mpu/encrypted"), &other)
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await;
    assert_s3_err(r, "InvalidRequest", 400);
    let r = with_source_key!(copy_part(1, "mpu/encrypted"), &k)
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await;
    assert_s3_err(r, "InvalidRequest", 400);
    let c1 = with_source_key!(with_key!(copy_part(1, "mpu/encrypted"), &other), &k)
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await
        .expect("UploadPartCopy from SSE-C");
    let c2 = with_key!(copy_part(2, "plain-src"), &other)
        .send()
        .await
        .expect("UploadPartCopy from plain");
    let etag = |o: Option<&aws_sdk_s3::types::CopyPartResult>| {
        o.and_then(|r| r.e_tag()).expect("etag").to_string()
    };
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key("mpu/copied")
        .upload_id(&id2)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(etag(c1.copy_part_result()))
                        .build(),
                )
                .parts(
                    CompletedPart::builder()
                        .part_number(2)
                        .e_tag(etag(c2.copy_part_result()))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload");
    assert!(get_sse(&c, "mpu/copied", &other).await == whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssec_copy_object() {
    let node = SingleNode::start().await;
    let c = node.client();
    let k = sse_key(7);
    let k2 = sse_key(8);
    let small = data(2500, 71);
    let large = data(2 * MIB + 999, 72);
    for (suffix, body) in [("small", &small), ("large", &large)] {
        let plain = format!("plain-{suffix}");
        put(&c, BUCKET, &plain, body).await;
        let copy = |dst: &str, src: &str| {
            c.copy_object()
                .bucket(BUCKET)
                .key(dst)
                .copy_source(format!("{BUCKET}/{src}"))
        };

        // plain -> SSE-C
        let enc = format!("enc-{suffix}");
        let out = with_key!(copy(&enc, &plain), &k)
            .send()
            .await
            .expect("CopyObject plain -> SSE-C");
        assert_eq!(out.sse_customer_key_md5(), Some(k.md5.as_str()));
        assert!(get_sse(&c, &enc, &k).await == *body);
        let r = c.get_object().bucket(BUCKET).key(&enc).send().await;
        assert_s3_err(r, "InvalidRequest", 400);

        // SSE-C -> plain (needs the source key)
        let back = format!("back-{suffix}");
        let r = copy(&back, &enc).send().await;
        assert_s3_err(r, "InvalidRequest", 400);
        let r = with_source_key!(copy(&back, &enc), &k2).send().await;
        assert_s3_err(r, "AccessDenied", 403);
        let out = with_source_key!(copy(&back, &enc), &k)
            .send()
            .await
            .expect("CopyObject SSE-C -> plain");
        let res = out.copy_object_result().expect("result");
        assert_eq!(res.e_tag(), Some(format!("\"{}\"", md5_hex(body)).as_str()));
        assert!(out.sse_customer_key_md5().is_none());
        assert!(get_bytes(&c, BUCKET, &back).await == *body);

        // SSE-C -> SSE-C with another key
        let other = format!("other-{suffix}");
        with_key!(with_source_key!(copy(&other, &enc), &k), &k2)
            .send()
            .await
            .expect("CopyObject SSE-C -> SSE-C");
        assert!(get_sse(&c, &other, &k2).await == *body);
        let r = with_key!(c.get_object().bucket(BUCKET).key(&other), &k)
            .send()
            .await;
        assert_s3_err(r, "AccessDenied", 403);

        // In place: rotating the key of an object is allowed without REPLACE; copying onto
        // itself with the same key is not.
        let r = with_key!(with_source_key!(copy(&other, &other), &k2), &k2)
            .send()
            .await;
        assert_s3_err(r, "InvalidRequest", 400);
        with_key!(with_source_key!(copy(&other, &other), &k2), &k)
            .send()
            .await
            .expect("CopyObject key rotation");
        assert!(get_sse(&c, &other, &k).await == *body);
        let r = with_key!(c.get_object().bucket(BUCKET).key(&other), &k2)
            .send()
            .await;
        assert_s3_err(r, "AccessDenied", 403);
    }
}
