//! PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration and DeleteBucketLifecycle:
//! the round trip of every supported element, whole replacement, strict parsing (MalformedXML,
//! InvalidArgument, 501 for elements not applied, size bound) and the owner permission. The
//! passes that apply the rules are tested in `tests/s3_lifecycle.rs`.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, ExpirationStatus, LifecycleExpiration,
    LifecycleRuleAndOperator, LifecycleRuleFilter, Transition, TransitionStorageClass,
};

use crate::lifecycle_rules::*;
use crate::s3util::*;
use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_delete_lifecycle_configuration() {
    let node = SingleNode::start().await;
    let c = node.client();

    assert_s3_err(
        c.get_bucket_lifecycle_configuration()
            .bucket(BUCKET)
            .send()
            .await,
        "NoSuchLifecycleConfiguration",
        404,
    );
    let size_filter = LifecycleRuleFilter::builder()
        .and(
            LifecycleRuleAndOperator::builder()
                .prefix("big/")
                .object_size_greater_than(1000)
                .object_size_less_than(1_000_000)
                .build(),
        )
        .build();
    let date = aws_sdk_s3::primitives::DateTime::from_secs(1_893_456_000); // 2030-01-01
    let rules = vec![
        rule("logs", prefix_filter("logs/"))
            .expiration(days(3))
            .build()
            .expect("rule"),
        rule("big", size_filter)
            .status(ExpirationStatus::Disabled)
            .expiration(LifecycleExpiration::builder().date(date).build())
            .build()
            .expect("rule"),
        rule("uploads", prefix_filter(""))
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(2)
                    .build(),
            )
            .build()
            .expect("rule"),
    ];
    put_rules(&c, rules)
        .await
        .expect("PutBucketLifecycleConfiguration");
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .send()
        .await
        .expect("GetBucketLifecycleConfiguration");
    let r = got.rules();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].id(), Some("logs"));
    assert_eq!(r[0].status(), &ExpirationStatus::Enabled);
    assert_eq!(r[0].filter().and_then(|f| f.prefix()), Some("logs/"));
    assert_eq!(r[0].expiration().and_then(|e| e.days()), Some(3));
    assert_eq!(r[1].status(), &ExpirationStatus::Disabled);
    let and = r[1].filter().and_then(|f| f.and()).expect("And filter");
    assert_eq!(and.prefix(), Some("big/"));
    assert_eq!(and.object_size_greater_than(), Some(1000));
    assert_eq!(and.object_size_less_than(), Some(1_000_000));
    assert_eq!(r[1].expiration().and_then(|e| e.date()), Some(&date));
    assert_eq!(
        r[2].abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        Some(2)
    );
    assert_eq!(r[2].filter().and_then(|f| f.prefix()), Some(""));

    // A new configuration replaces the previous one as a whole.
    put_rules(
        &c,
        vec![rule("only", prefix_filter("x/"))
            .expiration(days(1))
            .build()
            .expect("rule")],
    )
    .await
    .expect("PutBucketLifecycleConfiguration again");
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .send()
        .await
        .expect("GetBucketLifecycleConfiguration");
    assert_eq!(got.rules().len(), 1);
    assert_eq!(got.rules()[0].id(), Some("only"));

    c.delete_bucket_lifecycle()
        .bucket(BUCKET)
        .send()
        .await
        .expect("DeleteBucketLifecycle");
    assert_s3_err(
        c.get_bucket_lifecycle_configuration()
            .bucket(BUCKET)
            .send()
            .await,
        "NoSuchLifecycleConfiguration",
        404,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_refused() {
    let node = SingleNode::start().await;
    let c = node.client();

    // Through the SDK: a transition is not applied by this server → 501, never ignored.
    let transition = rule("t", prefix_filter(""))
        .transitions(
            Transition::builder()
                .days(30)
                .storage_class(TransitionStorageClass::Glacier)
                .build(),
        )
        .build()
        .expect("rule");
    assert_s3_err(put_rules(&c, vec![transition]).await, "NotImplemented", 501);
    // Days must be positive; a Date must be at midnight UTC.
    let zero = rule("z", prefix_filter(""))
        .expiration(days(0))
        .build()
        .expect("rule");
    assert_s3_err(put_rules(&c, vec![zero]).await, "InvalidArgument", 400);
    let noon = aws_sdk_s3::primitives::DateTime::from_secs(1_893_456_000 + 43_200);
    let not_midnight = rule("d", prefix_filter(""))
        .expiration(LifecycleExpiration::builder().date(noon).build())
        .build()
        .expect("rule");
    assert_s3_err(
        put_rules(&c, vec![not_midnight]).await,
        "InvalidArgument",
        400,
    );
    // Nothing was stored by the refused requests.
    assert_s3_err(
        c.get_bucket_lifecycle_configuration()
            .bucket(BUCKET)
            .send()
            .await,
        "NoSuchLifecycleConfiguration",
        404,
    );

    // Raw signed requests for what the SDK cannot send (a blocking client: off the runtime).
    tokio::task::block_in_place(|| {
        let addr = format!("127.0.0.1:{}", node.s3_port).parse().expect("addr");
        let raw = s3::S3::new(addr, &node.key_id, &node.secret);
        let put = |body: &str| {
            raw.request_with_query("PUT", &format!("/{BUCKET}"), "lifecycle", body.as_bytes())
                .expect("request")
        };
        for (body, code, status) in [
            ("<LifecycleConfiguration><Rule>", "MalformedXML", 400),
            ("definitely not xml", "MalformedXML", 400),
            (
                "<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Days>1</Days></Expiration><Surprise/></Rule></LifecycleConfiguration>",
                "MalformedXML",
                400,
            ),
            (
                "<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Days>1</Days></Expiration><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter></Rule></LifecycleConfiguration>",
                "NotImplemented",
                501,
            ),
            (
                "<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule></LifecycleConfiguration>",
                "NotImplemented",
                501,
            ),
            (
                "<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Days>many</Days></Expiration></Rule></LifecycleConfiguration>",
                "InvalidArgument",
                400,
            ),
        ] {
            let r = put(body);
            assert_eq!(r.status, status, "{body}: {}", r.text());
            assert_eq!(xml_text(&r.text(), "Code"), Some(code), "{body}");
        }
        // An oversized body is refused, not read into memory.
        let huge = format!(
            "<LifecycleConfiguration>{}</LifecycleConfiguration>",
            "<Rule><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
                .repeat(4000)
        );
        let r = put(&huge);
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(xml_text(&r.text(), "Code"), Some("EntityTooLarge"));
        // Other methods on ?lifecycle.
        let r = raw
            .request_with_query("POST", &format!("/{BUCKET}"), "lifecycle", b"")
            .expect("request");
        assert_eq!(r.status, 405, "{}", r.text());
    });

    // Lifecycle configuration needs the owner permission.
    let (id, secret) = node.create_key("writer");
    node.cli(&["bucket", "allow", "--read", "--write", BUCKET, "--key", &id]);
    let writer = client(node.s3_port, &id, &secret, "garage");
    let ok_rule = rule("ok", prefix_filter(""))
        .expiration(days(1))
        .build()
        .expect("rule");
    assert_s3_err(put_rules(&writer, vec![ok_rule]).await, "AccessDenied", 403);
    assert_s3_err(
        writer
            .get_bucket_lifecycle_configuration()
            .bucket(BUCKET)
            .send()
            .await,
        "AccessDenied",
        403,
    );
    assert_s3_err(
        writer.delete_bucket_lifecycle().bucket(BUCKET).send().await,
        "AccessDenied",
        403,
    );
}
