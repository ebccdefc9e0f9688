//! ListObjects (v1) and ListObjectsV2 paging, prefixes and delimiters, encoding-type=url,
//! fetch-owner; DeleteObjects.

use std::collections::BTreeSet;

use aws_sdk_s3::types::{Delete, EncodingType, ObjectIdentifier};
use aws_sdk_s3::Client;

use crate::s3util::*;
use crate::*;

/// All pages of a ListObjectsV2; returns (keys, common prefixes, number of pages).
pub async fn list_v2_all(
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
pub async fn list_v1_all(
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
