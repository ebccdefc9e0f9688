//! ListBuckets, CreateBucket, HeadBucket, GetBucketLocation, GetBucketVersioning, DeleteBucket,
//! permissions of a second key, and endpoints answered 501.

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Tag, Tagging,
};

use crate::s3util::*;
use crate::*;

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
    assert_s3_err(
        c.create_bucket()
            .bucket("elsewhere")
            .create_bucket_configuration(conf("eu-west-1"))
            .send()
            .await,
        "IllegalLocationConstraintException",
        400,
    );
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
        c.get_bucket_policy().bucket("photos").send().await,
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
