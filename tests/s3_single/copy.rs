//! CopyObject: directives, conditions, between buckets, multi-block sources, permissions.

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::MetadataDirective;

use crate::s3util::*;
use crate::*;

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
