//! The block manager of one in-process node (`Garage::start` + `bootstrap_single_node`), called
//! directly: memory accounting of blocks in flight must not block a node on itself, and a block
//! written while unreferenced (its reference comes after it) is not deleted before the delay.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use garage::config::{parse_config, SecretOverrides};
use garage::net::frame::Priority;
use garage::server::Garage;
use garage::util::ids::blake2sum;
use rand::RngCore;

mod common;

async fn start(extra: &str) -> (tempfile::TempDir, Arc<Garage>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::inproc::node_config(dir.path(), common::free_port(), 1, extra);
    let config = parse_config(&text, "test", &SecretOverrides::default()).expect("config");
    let garage = Garage::start(config).await.expect("start");
    garage.bootstrap_single_node().await.expect("single node");
    (dir, garage)
}

fn random_block(len: usize) -> Bytes {
    let mut v = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut v);
    Bytes::from(v)
}

/// With `block_ram_buffer_max` equal to the block size, a put must still complete: the memory
/// reserved by the caller must not be needed a second time by the node's own Put handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_a_buffer_of_one_block_completes() {
    let (_dir, g) = start("block_ram_buffer_max = 1048576").await;
    let data = random_block(1 << 20);
    let hash = blake2sum(&data);
    let put = g.blocks.put_block(hash, data.clone(), Priority::Normal);
    tokio::time::timeout(Duration::from_secs(10), put)
        .await
        .expect("put_block blocked on its own memory reservation")
        .expect("put_block");
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        g.blocks.get_block(&hash, Priority::Normal),
    )
    .await
    .expect("get_block in time")
    .expect("get_block");
    assert_eq!(got, data);
    g.node.shutdown().await.expect("shutdown");
}

/// Many concurrent puts against a buffer of a few blocks all complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_with_a_small_buffer_complete() {
    let (_dir, g) = start("block_ram_buffer_max = 4194304").await;
    let blocks: Vec<Bytes> = (0..16).map(|_| random_block(1 << 20)).collect();
    let puts = blocks.iter().map(|b| {
        let g = g.clone();
        let b = b.clone();
        async move { g.blocks.put_block(blake2sum(&b), b, Priority::Normal).await }
    });
    let all = futures::future::join_all(puts);
    let results = tokio::time::timeout(Duration::from_secs(15), all)
        .await
        .expect("concurrent puts blocked on memory reservations");
    for r in results {
        r.expect("put_block");
    }
    for b in &blocks {
        let got = g
            .blocks
            .get_block(&blake2sum(b), Priority::Normal)
            .await
            .expect("get");
        assert_eq!(&got, b);
    }
    g.node.shutdown().await.expect("shutdown");
}

/// A block stored before its reference is recorded (an upload between `put_block` and the
/// `block_ref` insert) must survive a resync check that runs meanwhile (e.g. `repair blocks`);
/// if its reference never comes, it is deleted after the delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_not_yet_referenced_is_not_deleted_at_once() {
    let (_dir, g) = start("block_gc_delay_secs = 2").await;
    let data = random_block(100_000);
    let hash = blake2sum(&data);
    g.blocks
        .put_block(hash, data.clone(), Priority::Normal)
        .await
        .expect("put");
    let action = g.blocks.resync_block(&hash).await.expect("resync");
    assert!(
        g.blocks
            .local
            .has_block(&hash)
            .await
            .expect("has")
            .is_some(),
        "block deleted by a resync check right after it was written ({action:?})"
    );
    // A block that is never referenced (an upload that failed before recording it) does not
    // stay forever: it goes once the delay is past.
    let mut gone = false;
    for _ in 0..200 {
        if g.blocks
            .local
            .has_block(&hash)
            .await
            .expect("has")
            .is_none()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "a never referenced block was never deleted");
    g.node.shutdown().await.expect("shutdown");
}

/// A block whose last reference went long enough ago is deletable; writing it again (a new
/// upload of the same content, before its reference is recorded) makes it young again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_an_unreferenced_block_again_postpones_its_deletion() {
    use garage::model::block_ref::BlockRef;
    let (_dir, g) = start("block_gc_delay_secs = 1").await;
    let data = random_block(100_000);
    let hash = blake2sum(&data);
    g.blocks
        .put_block(hash, data.clone(), Priority::Normal)
        .await
        .expect("put");
    let version = garage::util::ids::Uuid::random();
    g.model
        .block_refs
        .insert(&BlockRef::new(hash, version))
        .await
        .expect("ref");
    g.model
        .block_refs
        .insert(&BlockRef::deleted(hash, version))
        .await
        .expect("unref");
    assert_eq!(g.blocks.rc_entry(&hash).expect("rc").count, 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The same content is uploaded again: the block is written, its reference comes next.
    g.blocks
        .put_block(hash, data.clone(), Priority::Normal)
        .await
        .expect("put again");
    let action = g.blocks.resync_block(&hash).await.expect("resync");
    assert!(
        g.blocks
            .local
            .has_block(&hash)
            .await
            .expect("has")
            .is_some(),
        "block deleted right after it was written again ({action:?})"
    );
    g.node.shutdown().await.expect("shutdown");
}
