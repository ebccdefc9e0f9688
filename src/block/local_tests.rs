//! Tests of [`super::LocalStore`] on temporary directories: encodings on disk, atomic and
//! idempotent writes, corruption handling, markers, several data directories.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::dir_layout::{DataLayout, DirEntry};
use super::*;
use crate::config::{CompressionLevel, DataDir};
use crate::util::ids::{blake2sum, Hash, Uuid};

fn dir(path: &Path, capacity: Option<u64>, read_only: bool) -> DataDir {
    DataDir {
        path: path.to_path_buf(),
        capacity,
        read_only,
    }
}

fn config(root: &Path, data_dirs: Vec<DataDir>) -> LocalStoreConfig {
    LocalStoreConfig {
        metadata_dir: root.join("meta"),
        data_dirs,
        data_fsync: true,
        max_plain_len: DEFAULT_MAX_PLAIN_LEN,
    }
}

async fn single(root: &Path) -> LocalStore {
    let cfg = config(root, vec![dir(&root.join("data"), None, false)]);
    LocalStore::open(cfg).await.expect("open")
}

fn text(n: usize, seed: u64) -> Bytes {
    let line = format!("line {seed}: the quick brown fox jumps over the lazy dog\n");
    Bytes::from(line.bytes().cycle().take(n).collect::<Vec<u8>>())
}

fn random(n: usize) -> Bytes {
    Bytes::from((0..n).map(|_| rand::random::<u8>()).collect::<Vec<u8>>())
}

async fn put(store: &LocalStore, data: &Bytes, level: CompressionLevel) -> Hash {
    let hash = blake2sum(data);
    let block = DataBlock::from_plain(data.clone(), level);
    store.write_block(&hash, &block).await.expect("write");
    hash
}

/// Every file under `root`, recursively.
fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x10;
    std::fs::write(path, bytes).expect("write");
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn round_trip_plain_compressed_and_none() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = single(tmp.path()).await;

    let text_data = text(1 << 20, 1);
    let h = put(&store, &text_data, CompressionLevel::Level(1)).await;
    let f = store.has_block(&h).await.expect("has").expect("stored");
    assert!(f.compressed && file_name(&f.path).ends_with(".zst"));
    assert!(f.size < text_data.len() as u64 / 10, "size {}", f.size);
    assert_eq!(
        f.path,
        tmp.path()
            .join("data")
            .join(format!("{:02x}/{:02x}/{h}.zst", h.0[0], h.0[1]))
    );
    assert!(store.read_block(&h).await.expect("read").is_compressed());
    assert_eq!(store.read_block_plain(&h).await.expect("read"), text_data);

    let rnd = random(1 << 20);
    let h = put(&store, &rnd, CompressionLevel::Level(1)).await;
    let f = store.has_block(&h).await.expect("has").expect("stored");
    assert!(!f.compressed && f.size == rnd.len() as u64);
    assert_eq!(
        store.read_block(&h).await.expect("read"),
        DataBlock::Plain(rnd)
    );

    let text2 = text(100_000, 2);
    let h = put(&store, &text2, CompressionLevel::None).await;
    let f = store.has_block(&h).await.expect("has").expect("stored");
    assert!(!f.compressed && f.size == text2.len() as u64);
    assert_eq!(store.read_block_plain(&h).await.expect("read"), text2);

    let missing = blake2sum(b"missing");
    assert!(store.has_block(&missing).await.expect("has").is_none());
    let err = store.read_block(&missing).await.expect_err("absent");
    assert!(matches!(err, BlockError::NotFound { hash } if hash == missing));
}

#[tokio::test]
async fn writes_leave_no_temporary_files_and_keep_one_encoding() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = single(tmp.path()).await;
    let data = text(50_000, 3);
    let h = blake2sum(&data);
    let compressed = DataBlock::from_plain(data.clone(), CompressionLevel::Level(1));
    let plain = DataBlock::Plain(data.clone());
    for block in [
        &plain,
        &plain,
        &compressed,
        &compressed,
        &plain,
        &compressed,
    ] {
        store.write_block(&h, block).await.expect("write");
    }
    for i in 0..20 {
        put(&store, &text(10_000, 100 + i), CompressionLevel::Level(1)).await;
    }
    let files = all_files(&tmp.path().join("data"));
    assert_eq!(files.len(), 21 + 1, "21 blocks and the marker: {files:?}");
    assert!(files.iter().all(|p| !file_name(p).contains(".tmp")));
    let copies: Vec<_> = files
        .iter()
        .filter(|p| file_name(p).starts_with(&h.to_hex()))
        .collect();
    assert_eq!(copies.len(), 1, "one encoding of the block: {copies:?}");
    assert!(file_name(copies[0]).ends_with(".zst"));
    assert_eq!(store.read_block_plain(&h).await.expect("read"), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_of_both_encodings_keep_the_block() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = single(tmp.path()).await;
    let data = text(100_000, 9);
    let h = blake2sum(&data);
    let blocks = [
        DataBlock::Plain(data.clone()),
        DataBlock::from_plain(data.clone(), CompressionLevel::Level(1)),
    ];
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (store, block) = (store.clone(), blocks[i % 2].clone());
        tasks.push(tokio::spawn(async move {
            store.write_block(&h, &block).await.expect("write");
            store
                .read_block_plain(&h)
                .await
                .expect("readable at every moment")
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), data);
    }
    let copies = all_files(&tmp.path().join("data"))
        .into_iter()
        .filter(|p| file_name(p).starts_with(&h.to_hex()))
        .count();
    assert_eq!(copies, 1);
}

#[tokio::test]
async fn corrupt_file_is_moved_aside_and_restored_by_a_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = single(tmp.path()).await;
    for (data, level) in [
        (text(200_000, 4), CompressionLevel::Level(1)),
        (random(200_000), CompressionLevel::Level(1)),
    ] {
        let h = put(&store, &data, level).await;
        let f = store.has_block(&h).await.expect("has").expect("stored");
        flip_byte(&f.path, f.size as usize / 2);
        let err = store.read_block(&h).await.expect_err("corrupt");
        assert!(
            matches!(&err, BlockError::Corrupted { hash, path } if *hash == h && *path == f.path),
            "{err}"
        );
        assert!(!f.path.exists());
        let mut aside = f.path.clone().into_os_string();
        aside.push(CORRUPTED_SUFFIX);
        assert!(PathBuf::from(aside).exists(), "moved aside");
        assert!(store.has_block(&h).await.expect("has").is_none());
        // The caller fetches it elsewhere and writes it back.
        put(&store, &data, level).await;
        assert_eq!(store.read_block_plain(&h).await.expect("restored"), data);
    }
    // Scrub path: verify_file on a damaged file.
    let data = text(30_000, 5);
    let h = put(&store, &data, CompressionLevel::None).await;
    let f = store.has_block(&h).await.expect("has").expect("stored");
    store.verify_file(&f).await.expect("valid file");
    flip_byte(&f.path, 0);
    let err = store.verify_file(&f).await.expect_err("corrupt");
    assert!(matches!(err, BlockError::Corrupted { .. }));
    assert!(!f.path.exists());
}

#[tokio::test]
async fn oversized_plaintext_is_refused_and_left_in_place() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(tmp.path(), vec![dir(&tmp.path().join("data"), None, false)]);
    cfg.max_plain_len = 1 << 20;
    let store = LocalStore::open(cfg).await.expect("open");
    let data = Bytes::from(vec![7u8; 3 << 20]);
    let h = put(&store, &data, CompressionLevel::Level(1)).await;
    let err = store.read_block(&h).await.expect_err("too large");
    assert!(matches!(err, BlockError::TooLarge { limit } if limit == 1 << 20));
    assert!(
        store.has_block(&h).await.expect("has").is_some(),
        "not moved aside"
    );
}

#[tokio::test]
async fn delete_and_list() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = single(tmp.path()).await;
    let mut hashes = Vec::new();
    for i in 0..30 {
        hashes.push(put(&store, &text(5_000, 200 + i), CompressionLevel::Level(1)).await);
    }
    // Noise the listing must skip.
    let f = store
        .has_block(&hashes[0])
        .await
        .expect("has")
        .expect("stored");
    let leaf = f.path.parent().expect("leaf").to_path_buf();
    std::fs::write(leaf.join(format!("{}.tmp42", hashes[0])), b"x").expect("write");
    std::fs::write(leaf.join("README"), b"x").expect("write");
    hashes.sort();

    let mut lister = store.list_blocks(None);
    let mut listed = Vec::new();
    while let Some(f) = lister.next().await {
        listed.push(f.expect("file").hash);
    }
    assert_eq!(listed, hashes, "every block once, in hash order");

    let mut lister = store.list_blocks(Some(hashes[9]));
    let mut rest = Vec::new();
    while let Some(f) = lister.next().await {
        rest.push(f.expect("file").hash);
    }
    assert_eq!(rest, hashes[10..].to_vec(), "resumes after a hash");

    assert!(store.delete_block(&hashes[3]).await.expect("delete"));
    assert!(!store.delete_block(&hashes[3]).await.expect("delete again"));
    assert!(store.has_block(&hashes[3]).await.expect("has").is_none());
}

#[tokio::test]
async fn markers_detect_wrong_or_missing_disks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let store = single(tmp.path()).await;
    let h = put(&store, &text(1000, 6), CompressionLevel::Level(1)).await;
    drop(store);
    let marker = data.join(MARKER_FILE);
    let id = std::fs::read_to_string(&marker).expect("marker created at first start");
    assert_eq!(id.trim().len(), 64);
    // Reopening with the same disk works.
    let store = single(tmp.path()).await;
    assert!(store.has_block(&h).await.expect("has").is_some());
    drop(store);

    // Another disk mounted here.
    std::fs::write(&marker, format!("{}\n", Uuid::random())).expect("write");
    let err = LocalStore::open(config(tmp.path(), vec![dir(&data, None, false)]))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&err, BlockError::WrongDisk { dir, reason: WrongDiskReason::MarkerMismatch { .. } } if *dir == data),
        "{err}"
    );
    assert!(err.to_string().contains(&data.display().to_string()));

    // Disk not mounted: the mount point is empty.
    std::fs::rename(&data, tmp.path().join("elsewhere")).expect("rename");
    std::fs::create_dir(&data).expect("mkdir");
    let err = LocalStore::open(config(tmp.path(), vec![dir(&data, None, false)]))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            BlockError::WrongDisk {
                reason: WrongDiskReason::MissingMarker { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        all_files(&data).is_empty(),
        "nothing written on the wrong disk"
    );
}

#[tokio::test]
async fn new_dir_with_foreign_marker_is_refused_and_moved_disk_is_recognised() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let store = LocalStore::open(config(tmp.path(), vec![dir(&a, Some(1), false)]))
        .await
        .expect("open");
    let h = put(&store, &text(1000, 7), CompressionLevel::Level(1)).await;
    drop(store);

    std::fs::create_dir(&b).expect("mkdir");
    std::fs::write(b.join(MARKER_FILE), format!("{}\n", Uuid::random())).expect("write");
    let two = vec![dir(&a, Some(1), false), dir(&b, Some(1), false)];
    let err = LocalStore::open(config(tmp.path(), two))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            BlockError::WrongDisk {
                reason: WrongDiskReason::ForeignMarker { .. },
                ..
            }
        ),
        "{err}"
    );

    // Disk `a` now mounted at `c`: same marker, so the same directory.
    let c = tmp.path().join("c");
    std::fs::rename(&a, &c).expect("rename");
    let store = LocalStore::open(config(tmp.path(), vec![dir(&c, Some(1), false)]))
        .await
        .expect("moved disk accepted");
    assert_eq!(
        store.read_block_plain(&h).await.expect("read"),
        text(1000, 7)
    );
}

#[tokio::test]
async fn interrupted_start_completes_the_marker() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    drop(
        LocalStore::open(config(tmp.path(), vec![dir(&a, Some(1), false)]))
            .await
            .expect("open"),
    );
    // Simulate a crash after recording `b` but before writing its marker.
    let path = tmp.path().join("meta").join(DATA_LAYOUT_FILE);
    let mut layout = DataLayout::load(&path).expect("load").expect("present");
    let id = Uuid::random();
    layout.dirs.push(DirEntry {
        path: b.clone(),
        id: Some(id),
        weight: 1,
        read_only: false,
        pending_marker: true,
    });
    layout.save(&path).expect("save");
    let two = vec![dir(&a, Some(1), false), dir(&b, Some(1), false)];
    let store = LocalStore::open(config(tmp.path(), two))
        .await
        .expect("open");
    assert_eq!(store.layout().dirs[1].id, Some(id));
    assert!(!store.layout().dirs[1].pending_marker);
    let marker = std::fs::read_to_string(b.join(MARKER_FILE)).expect("marker written");
    assert_eq!(marker.trim(), id.to_hex());
}

#[tokio::test]
async fn capacities_share_the_blocks_and_changes_keep_blocks_readable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let dirs = vec![dir(&a, Some(1 << 40), false), dir(&b, Some(3 << 40), false)];
    let store = LocalStore::open(config(tmp.path(), dirs))
        .await
        .expect("open");
    assert_eq!(store.layout().slot_count(0), 16384);
    assert_eq!(store.layout().slot_count(1), 49152);
    let mut blocks = Vec::new();
    for i in 0..400 {
        let data = text(300, 1000 + i);
        blocks.push((put(&store, &data, CompressionLevel::None).await, data));
    }
    let (in_a, in_b) = (all_files(&a).len() - 1, all_files(&b).len() - 1);
    assert_eq!(in_a + in_b, 400);
    assert!(
        (60..=140).contains(&in_a),
        "about a quarter in a: {in_a} / {in_b}"
    );
    drop(store);

    // Capacity change 1:3 -> 1:1: a quarter of the slots move, old blocks are still found.
    let dirs = vec![dir(&a, Some(1 << 40), false), dir(&b, Some(1 << 40), false)];
    let store = LocalStore::open(config(tmp.path(), dirs))
        .await
        .expect("reopen");
    assert_eq!(store.layout().slot_count(0), 32768);
    for (h, data) in &blocks {
        assert_eq!(&store.read_block_plain(h).await.expect("read"), data);
    }
}

#[tokio::test]
async fn read_only_dir_is_read_but_never_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let both = vec![dir(&a, Some(1), false), dir(&b, Some(1), false)];
    let store = LocalStore::open(config(tmp.path(), both))
        .await
        .expect("open");
    let mut old = Vec::new();
    for i in 0..40 {
        old.push(put(&store, &text(500, 2000 + i), CompressionLevel::Level(1)).await);
    }
    drop(store);
    let files_in_b = |b: &Path| {
        all_files(b)
            .into_iter()
            .filter(|p| file_name(p) != MARKER_FILE)
            .count()
    };
    let before_b = files_in_b(&b);
    assert!(before_b > 0);

    let dirs = vec![dir(&a, Some(1), false), dir(&b, None, true)];
    let store = LocalStore::open(config(tmp.path(), dirs))
        .await
        .expect("open");
    assert_eq!(store.layout().slot_count(1), 0);
    for h in &old {
        store.read_block(h).await.expect("readable");
    }
    for i in 0..40 {
        put(&store, &text(500, 3000 + i), CompressionLevel::Level(1)).await;
    }
    assert_eq!(
        files_in_b(&b),
        before_b,
        "nothing written to the read-only dir"
    );
    // A copy in the read-only dir is neither deleted nor moved aside.
    let f = {
        let mut found = None;
        for h in &old {
            let f = store.has_block(h).await.expect("has").expect("stored");
            if f.dir == 1 {
                found = Some(f);
                break;
            }
        }
        found.expect("some block lives in b")
    };
    store.delete_block(&f.hash).await.expect("delete");
    assert!(f.path.exists());
    flip_byte(&f.path, 3);
    let err = store.read_block(&f.hash).await.expect_err("corrupt");
    assert!(matches!(err, BlockError::Corrupted { .. }));
    assert!(f.path.exists(), "read-only file left in place");
}

#[tokio::test]
async fn invalid_configurations_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a");
    let cases = [
        (vec![], DataDirProblem::Empty),
        (vec![dir(&a, None, true)], DataDirProblem::NoWritable),
        (
            vec![dir(&a, Some(1), false), dir(&a, Some(2), false)],
            DataDirProblem::Duplicate { path: a.clone() },
        ),
        (
            vec![dir(&a, Some(0), false)],
            DataDirProblem::ZeroCapacity { path: a.clone() },
        ),
    ];
    for (dirs, expected) in cases {
        let err = LocalStore::open(config(tmp.path(), dirs))
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(&err, BlockError::Config { problem } if *problem == expected),
            "{err}"
        );
    }
}
