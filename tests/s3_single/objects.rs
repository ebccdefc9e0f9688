//! PutObject, GetObject and HeadObject: sizes around the inline threshold and block boundaries,
//! stored headers, ranges, conditional requests, response-* overrides, partNumber, DeleteObject.

use aws_sdk_s3::primitives::DateTime;

use crate::s3util::*;
use crate::*;

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

/// Back-to-back writes of one key (on a cluster, each through the next node): every read sees
/// the latest write, inline or in blocks, and a delete then a rewrite are ordered too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_overwrites_keep_the_latest() {
    let node = SingleNode::start().await;
    let c = node.client();
    for i in 0..30u64 {
        // Alternate small (inline) and multi-block bodies.
        let body = if i % 3 == 2 {
            data(MIB + 1000, i)
        } else {
            format!("write {i}").into_bytes()
        };
        put(&c, BUCKET, "hot", &body).await;
        let got = get_bytes(&c, BUCKET, "hot").await;
        assert!(got == body, "read after write {i} returned another version");
        if i % 10 == 9 {
            c.delete_object()
                .bucket(BUCKET)
                .key("hot")
                .send()
                .await
                .expect("DeleteObject");
            assert_s3_err(
                c.get_object().bucket(BUCKET).key("hot").send().await,
                "NoSuchKey",
                404,
            );
        }
    }
}
