//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation,
//! GetBucketVersioning.

use http::{Response, StatusCode};
use serde::Deserialize;

use super::error::S3Error;
use super::request::{Need, ReqCtx, MAX_XML_BODY};
use super::xml::{parse, Xml};
use super::{empty_body, full_body, ResBody};
use crate::util::time::msec_to_rfc3339;

fn xml_response(body: String) -> Result<Response<ResBody>, S3Error> {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(body))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

fn empty(status: StatusCode) -> Result<Response<ResBody>, S3Error> {
    Response::builder()
        .status(status)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// GET / : the buckets this key can use, by their names for this key.
pub async fn list_buckets(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let mut entries: Vec<(String, u64)> = vec![];
    for b in ctx.api.helper.list_buckets().await? {
        if !ctx.perm(&b.id).is_any() {
            continue;
        }
        let Some(p) = b.params() else { continue };
        for (name, active) in p.aliases.iter() {
            if *active {
                entries.push((name.clone(), p.creation_date));
            }
        }
        for ((key_id, name), active) in p.local_aliases.iter() {
            if *active && *key_id == ctx.key.key_id {
                entries.push((name.clone(), p.creation_date));
            }
        }
    }
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    let mut x = Xml::new("ListAllMyBucketsResult");
    x.open("Owner")
        .elem("ID", &ctx.key.key_id)
        .elem("DisplayName", &ctx.key.name())
        .close("Owner")
        .open("Buckets");
    for (name, created) in entries {
        x.open("Bucket")
            .elem("Name", &name)
            .elem("CreationDate", &msec_to_rfc3339(created))
            .close("Bucket");
    }
    x.close("Buckets");
    xml_response(x.finish("ListAllMyBucketsResult"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBucketConfiguration {
    location_constraint: Option<String>,
}

/// PUT /bucket
pub async fn create_bucket(mut ctx: ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let name = ctx.bucket_name()?.to_string();
    let body = ctx.read_small_body(MAX_XML_BODY).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let conf: CreateBucketConfiguration = parse(&body)?;
        if let Some(loc) = conf.location_constraint {
            if loc != ctx.api.region {
                return Err(S3Error::IllegalLocationConstraint(format!(
                    "cannot create a bucket in region {loc:?}: this server's region is {:?}",
                    ctx.api.region
                )));
            }
        }
    }
    // The name may already be this key's (local alias or owned bucket).
    if let Some(id) = ctx.api.helper.resolve_bucket(&name, Some(&ctx.key)).await? {
        if ctx.api.helper.get_bucket(&id).await?.is_some() {
            return Err(if ctx.perm(&id).allow_owner {
                S3Error::BucketAlreadyOwnedByYou
            } else {
                S3Error::BucketAlreadyExists
            });
        }
    }
    let allowed = ctx
        .key
        .params()
        .map(|p| *p.allow_create_bucket.get())
        .unwrap_or(false);
    if !allowed {
        return Err(S3Error::AccessDenied(format!(
            "key {} is not allowed to create buckets (see `garage key allow --create-bucket`)",
            ctx.key.key_id
        )));
    }
    ctx.api.helper.create_bucket(&name, Some(&ctx.key)).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::LOCATION, format!("/{name}"))
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// DELETE /bucket (only when empty; owner permission).
pub async fn delete_bucket(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Owner).await?;
    ctx.api.helper.delete_bucket(&bucket).await?;
    empty(StatusCode::NO_CONTENT)
}

/// HEAD /bucket
pub async fn head_bucket(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    ctx.bucket(Need::Any).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", ctx.api.region.as_str())
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// GET /bucket?location
pub async fn get_location(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    ctx.bucket(Need::Any).await?;
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
        super::xml::XMLNS,
        super::xml::escape(&ctx.api.region)
    );
    xml_response(body)
}

/// GET /bucket?versioning: versioning is never enabled.
pub async fn get_versioning(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    ctx.bucket(Need::Any).await?;
    xml_response(Xml::new("VersioningConfiguration").finish("VersioningConfiguration"))
}
