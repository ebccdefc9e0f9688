//! DeleteObject and DeleteObjects: a delete marker version is written with one quorum write;
//! blocks are freed by the cascade. DeleteObjects handles its keys concurrently.

use futures::stream::{self, StreamExt};
use http::{Response, StatusCode};
use serde::Deserialize;

use super::error::S3Error;
use super::request::{Need, ReqCtx, MAX_XML_BODY};
use super::version_time::next_timestamp;
use super::xml::{parse, Xml};
use super::{empty_body, full_body, ResBody};
use crate::model::object::{Object, ObjectData, ObjectVersion, VersionState};
use crate::util::ids::Uuid;

/// Keys deleted concurrently by DeleteObjects.
const DELETE_CONCURRENCY: usize = 16;
/// Most keys in one DeleteObjects request (as S3).
const MAX_DELETE_KEYS: usize = 1000;

/// Writes a delete marker for `key` if it has visible data. Returns whether it existed.
pub async fn delete_key(ctx: &ReqCtx, bucket: &Uuid, key: &str) -> Result<bool, S3Error> {
    let existing = ctx.api.model.objects.get(bucket, &key.to_string()).await?;
    let Some(existing) = existing else {
        return Ok(false);
    };
    if existing.last_data().is_none() && !existing.has_uploading() {
        return Ok(false);
    }
    let marker = ObjectVersion {
        uuid: Uuid::random(),
        timestamp: next_timestamp(Some(&existing)),
        state: VersionState::Complete(ObjectData::DeleteMarker),
    };
    let obj = Object::new(*bucket, key.to_string(), vec![marker]);
    ctx.api.model.objects.insert(&obj).await?;
    Ok(true)
}

/// DELETE /bucket/key
pub async fn delete_object(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Write).await?;
    delete_key(ctx, &bucket.id, ctx.object_key()?).await?;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    #[serde(default)]
    quiet: bool,
    #[serde(default)]
    object: Vec<DeleteItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteItem {
    key: String,
}

/// POST /bucket?delete
pub async fn delete_objects(mut ctx: ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Write).await?;
    let body = ctx.read_small_body(MAX_XML_BODY).await?;
    let req: DeleteRequest = parse(&body)?;
    if req.object.len() > MAX_DELETE_KEYS {
        return Err(S3Error::MalformedXml(format!(
            "at most {MAX_DELETE_KEYS} keys per request"
        )));
    }
    let ctx = &ctx;
    let bucket_id = bucket.id;
    let results: Vec<(String, Result<bool, S3Error>)> = stream::iter(req.object)
        .map(|item| async move {
            let r = delete_key(ctx, &bucket_id, &item.key).await;
            (item.key, r)
        })
        .buffered(DELETE_CONCURRENCY)
        .collect()
        .await;
    let mut x = Xml::new("DeleteResult");
    for (key, r) in results {
        match r {
            Ok(_) => {
                if !req.quiet {
                    x.open("Deleted").elem("Key", &key).close("Deleted");
                }
            }
            Err(e) => {
                x.open("Error")
                    .elem("Key", &key)
                    .elem("Code", e.code())
                    .elem("Message", &e.to_string())
                    .close("Error");
            }
        }
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(x.finish("DeleteResult")))
        .map_err(|e| S3Error::Internal(e.to_string()))
}
