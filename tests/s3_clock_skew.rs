//! Clock skew between nodes: an object version written by a node whose clock is ahead (here put
//! straight into the object table of an in-process node, with a timestamp an hour ahead) must
//! not hide the writes that come after it through a node with a correct clock. PutObject (inline
//! and in blocks), CopyObject, DeleteObject and multipart uploads all order their new version
//! after every version the key already has.

use std::sync::Arc;

use garage::config::{parse_config, SecretOverrides};
use garage::model::helper::ModelHelper;
use garage::model::object::{
    Object, ObjectData, ObjectHeaders, ObjectMeta, ObjectVersion, VersionState,
};
use garage::server::Garage;
use garage::util::ids::Uuid;
use garage::util::time::now_msec;

mod common;
#[path = "common/s3.rs"]
mod s3util;

use s3util::*;

const HOUR_MS: u64 = 3_600_000;

struct Node {
    _dir: tempfile::TempDir,
    garage: Arc<Garage>,
    client: aws_sdk_s3::Client,
    bucket: Uuid,
}

async fn start() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let extra = s3_config(port);
    let text = common::inproc::node_config(dir.path(), common::free_port(), 1, &extra);
    let config = parse_config(&text, "test", &SecretOverrides::default()).expect("config");
    let garage = Garage::start(config).await.expect("start");
    let info = garage.bootstrap_single_node().await.expect("single node");
    garage.start_s3().await.expect("S3 endpoint");
    let bucket = ModelHelper::new(garage.model.clone())
        .find_bucket(&info.bucket)
        .await
        .expect("bucket")
        .id;
    Node {
        _dir: dir,
        garage,
        client: client(port, &info.key_id, &info.secret, "garage"),
        bucket,
    }
}

impl Node {
    /// Writes a complete inline version of `key` dated an hour from now, as a node whose clock
    /// is an hour ahead would.
    async fn write_from_the_future(&self, key: &str, body: &[u8]) {
        let meta = ObjectMeta {
            headers: ObjectHeaders {
                content_type: None,
                other: vec![],
            },
            size: body.len() as u64,
            etag: "future".into(),
            checksum: None,
            encryption: None,
        };
        let version = ObjectVersion {
            uuid: Uuid::random(),
            timestamp: now_msec() + HOUR_MS,
            state: VersionState::Complete(ObjectData::Inline(meta, body.to_vec())),
        };
        self.garage
            .model
            .objects
            .insert(&Object::new(self.bucket, key.into(), vec![version]))
            .await
            .expect("insert");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_a_version_from_a_clock_ahead_are_seen() {
    let n = start().await;
    let c = &n.client;
    let big = data(3 << 20, 7);

    for (key, body) in [("inline", b"now".to_vec()), ("blocks", big.clone())] {
        n.write_from_the_future(key, b"from the future").await;
        put(c, "default", key, &body).await;
        assert!(
            get_bytes(c, "default", key).await == body,
            "PutObject of {key} after a version from a clock ahead is not the one read"
        );
    }

    n.write_from_the_future("copy", b"from the future").await;
    c.copy_object()
        .bucket("default")
        .key("copy")
        .copy_source("default/inline")
        .send()
        .await
        .expect("CopyObject");
    assert_eq!(get_bytes(c, "default", "copy").await, b"now");

    n.write_from_the_future("deleted", b"from the future").await;
    c.delete_object()
        .bucket("default")
        .key("deleted")
        .send()
        .await
        .expect("DeleteObject");
    assert_s3_err(
        c.get_object().bucket("default").key("deleted").send().await,
        "NoSuchKey",
        404,
    );

    n.write_from_the_future("multipart", b"from the future")
        .await;
    put_multipart(c, "default", "multipart", &[b"last part".to_vec()]).await;
    assert_eq!(get_bytes(c, "default", "multipart").await, b"last part");

    n.garage.node.shutdown().await.expect("shutdown");
}
