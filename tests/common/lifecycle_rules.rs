//! Building lifecycle rules with `aws-sdk-s3` and putting them on bucket `default`.
#![allow(dead_code)]

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::put_bucket_lifecycle_configuration::{
    PutBucketLifecycleConfigurationError as PutLifecycleError,
    PutBucketLifecycleConfigurationOutput as PutLifecycleOutput,
};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter,
};
use aws_sdk_s3::Client;

/// The bucket the rules are put on.
const BUCKET: &str = "default";

pub fn prefix_filter(p: &str) -> LifecycleRuleFilter {
    LifecycleRuleFilter::builder().prefix(p).build()
}

pub fn rule(
    id: &str,
    filter: LifecycleRuleFilter,
) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .filter(filter)
        .status(ExpirationStatus::Enabled)
}

pub fn days(d: i32) -> LifecycleExpiration {
    LifecycleExpiration::builder().days(d).build()
}

pub async fn put_rules(
    c: &Client,
    rules: Vec<LifecycleRule>,
) -> Result<PutLifecycleOutput, SdkError<PutLifecycleError>> {
    c.put_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .expect("configuration"),
        )
        .send()
        .await
}
