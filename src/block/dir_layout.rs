//! Placement of block files over several data directories, persisted in
//! `metadata_dir/data_layout`.
//!
//! The hash space is cut into [`SLOTS`] slots, one per leaf directory `<hash[0]>/<hash[1]>`. Each
//! slot has one *primary* directory, always writable, where new blocks of that slot are written;
//! [`super::slots`] shares the slots among writable directories in proportion to capacity, moving
//! as few as possible when capacities change. Blocks written before a change stay where they are:
//! reads look in the primary directory first, then in every other directory (including read-only
//! ones).
//!
//! Format (`DataLayout`, marker `GdataL1`): msgpack with named fields; `dirs` lists the
//! directories with their marker id, `primary` is 65536 bytes, the index in `dirs` of each
//! slot's primary directory (hence at most [`MAX_DATA_DIRS`] directories).
//!
//! Markers: a writable directory new to the layout is first recorded with a fresh id and
//! `pending_marker = true`, then its marker file is written, then the flag is cleared. So a start
//! interrupted between the two steps is recognised at the next start, while a recorded directory
//! whose marker is missing or different is refused ([`super::WrongDiskReason`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{BlockError, DataDirProblem, WrongDiskReason};
use super::slots::{assign_slots, SLOTS};
use super::{marker, DATA_LAYOUT_FILE};
use crate::config::DataDir;
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::file::write_atomic;
use crate::util::ids::{Hash, Uuid};

/// Most data directories a node may have (slot owners are stored as one byte).
pub const MAX_DATA_DIRS: usize = 256;

/// One data directory as recorded in the layout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub path: PathBuf,
    /// Id in the directory's marker file; `None` for a read-only directory without a marker.
    pub id: Option<Uuid>,
    /// Share of the slots (the configured capacity; 0 for a read-only directory).
    pub weight: u64,
    pub read_only: bool,
    /// The id is recorded but the marker file may not have been written yet.
    pub pending_marker: bool,
}

/// The persisted placement of blocks over data directories.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DataLayout {
    /// The directories, in configuration order.
    pub dirs: Vec<DirEntry>,
    /// For each of the [`SLOTS`] slots, the index in `dirs` of its primary directory.
    #[serde(with = "serde_bytes")]
    pub primary: Vec<u8>,
}

impl Migrate for DataLayout {
    const VERSION_MARKER: &'static [u8] = b"GdataL1";
    type Previous = NoPrevious;
    fn migrate(previous: NoPrevious) -> Self {
        match previous {}
    }
}

impl DataLayout {
    /// The slot of a block: its first two bytes.
    pub fn slot_of(hash: &Hash) -> usize {
        (usize::from(hash.0[0]) << 8) | usize::from(hash.0[1])
    }

    /// Index in `dirs` of the directory where `hash` is written.
    pub fn primary_dir(&self, hash: &Hash) -> usize {
        usize::from(self.primary[Self::slot_of(hash)])
    }

    /// Indexes of the directories to search for `hash`: the primary one, then every other.
    pub fn read_order(&self, hash: &Hash) -> impl Iterator<Item = usize> {
        let primary = self.primary_dir(hash);
        std::iter::once(primary).chain((0..self.dirs.len()).filter(move |i| *i != primary))
    }

    /// Number of slots whose primary directory is `dir`.
    pub fn slot_count(&self, dir: usize) -> usize {
        self.primary
            .iter()
            .filter(|p| usize::from(**p) == dir)
            .count()
    }

    fn check(&self) -> Result<(), &'static str> {
        if self.dirs.is_empty() || self.dirs.len() > MAX_DATA_DIRS {
            return Err("wrong number of directories");
        }
        if self.primary.len() != SLOTS {
            return Err("wrong number of slots");
        }
        let bad = |p: &u8| self.dirs.get(usize::from(*p)).is_none_or(|d| d.read_only);
        if self.primary.iter().any(bad) {
            return Err("a slot points to a missing or read-only directory");
        }
        Ok(())
    }

    /// Reads the layout file; `None` if it does not exist (first start).
    pub fn load(path: &Path) -> Result<Option<DataLayout>, BlockError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlockError::io(path)(e)),
        };
        let layout = DataLayout::decode(&bytes).map_err(|source| BlockError::LayoutFile {
            path: path.to_path_buf(),
            source,
        })?;
        layout
            .check()
            .map_err(|problem| BlockError::LayoutInvalid {
                path: path.to_path_buf(),
                problem,
            })?;
        Ok(Some(layout))
    }

    /// Writes the layout file atomically (creating the metadata directory if needed).
    pub fn save(&self, path: &Path) -> Result<(), BlockError> {
        let file_err = |source| BlockError::LayoutFile {
            path: path.to_path_buf(),
            source,
        };
        let bytes = self.encode().map_err(file_err)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(BlockError::io(dir))?;
        }
        write_atomic(path, &bytes, None).map_err(BlockError::io(path))
    }
}

/// Loads the layout from `metadata_dir`, checks every directory's marker against it, adapts it to
/// the configured directories and capacities, persists it and writes the markers of new
/// directories. Blocking: call from `spawn_blocking` or at start.
pub fn open_layout(metadata_dir: &Path, config: &[DataDir]) -> Result<DataLayout, BlockError> {
    check_config(config)?;
    let path = metadata_dir.join(DATA_LAYOUT_FILE);
    let previous = DataLayout::load(&path)?;
    let markers = config
        .iter()
        .map(|d| marker::read_marker(&d.path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut layout = reconcile(config, previous.as_ref(), &markers)?;
    if previous.as_ref() != Some(&layout) {
        if let Some(prev) = &previous {
            let moved = moved_slots(prev, &layout);
            tracing::info!(
                moved,
                "data directories changed: {moved} of {SLOTS} slots move"
            );
        }
        layout.save(&path)?;
    }
    if layout.dirs.iter().any(|d| d.pending_marker) {
        for d in layout.dirs.iter_mut().filter(|d| d.pending_marker) {
            if let Some(id) = &d.id {
                marker::write_marker(&d.path, id)?;
                tracing::info!(dir = %d.path.display(), "initialised new data directory");
            }
            d.pending_marker = false;
        }
        layout.save(&path)?;
    }
    Ok(layout)
}

fn check_config(config: &[DataDir]) -> Result<(), BlockError> {
    let problem = |problem| Err(BlockError::Config { problem });
    if config.is_empty() {
        return problem(DataDirProblem::Empty);
    }
    if config.len() > MAX_DATA_DIRS {
        return problem(DataDirProblem::TooMany {
            count: config.len(),
            max: MAX_DATA_DIRS,
        });
    }
    if config.iter().all(|d| d.read_only) {
        return problem(DataDirProblem::NoWritable);
    }
    for (i, d) in config.iter().enumerate() {
        if config[..i].iter().any(|o| o.path == d.path) {
            return problem(DataDirProblem::Duplicate {
                path: d.path.clone(),
            });
        }
        if !d.read_only && d.capacity == Some(0) {
            return problem(DataDirProblem::ZeroCapacity {
                path: d.path.clone(),
            });
        }
    }
    Ok(())
}

/// Builds the new layout from the configuration, the previous layout and the markers found on
/// disk (`markers[i]` for `config[i]`). Pure except for drawing ids of new directories.
fn reconcile(
    config: &[DataDir],
    previous: Option<&DataLayout>,
    markers: &[Option<Uuid>],
) -> Result<DataLayout, BlockError> {
    let prev_dirs: &[DirEntry] = previous.map_or(&[], |p| &p.dirs);
    let mut dirs = Vec::with_capacity(config.len());
    // For each previous directory, its index in the new layout.
    let mut new_index: Vec<Option<usize>> = vec![None; prev_dirs.len()];
    for (i, (cfg, found)) in config.iter().zip(markers).enumerate() {
        let by_path = prev_dirs.iter().position(|d| d.path == cfg.path);
        // A recorded disk mounted at a new path (and not at its old one) is recognised by id.
        let moved = || {
            prev_dirs.iter().position(|d| {
                d.id.is_some()
                    && d.id == *found
                    && !d.pending_marker
                    && !config.iter().any(|c| c.path == d.path)
            })
        };
        let old_idx = by_path.or_else(moved);
        let old = old_idx.map(|j| &prev_dirs[j]);
        let (id, pending_marker) =
            resolve_marker(cfg, old, *found).map_err(|reason| BlockError::WrongDisk {
                dir: cfg.path.clone(),
                reason,
            })?;
        if let Some(other) = dirs.iter().find(|d: &&DirEntry| id.is_some() && d.id == id) {
            return Err(BlockError::WrongDisk {
                dir: cfg.path.clone(),
                reason: WrongDiskReason::DuplicateMarker {
                    other: other.path.clone(),
                },
            });
        }
        if let Some(j) = old_idx {
            new_index[j] = Some(i);
        }
        dirs.push(DirEntry {
            path: cfg.path.clone(),
            id,
            weight: if cfg.read_only {
                0
            } else {
                cfg.capacity.unwrap_or(1)
            },
            read_only: cfg.read_only,
            pending_marker,
        });
    }
    let prev_primary: Vec<Option<usize>> = match previous {
        Some(p) => p
            .primary
            .iter()
            .map(|d| new_index.get(usize::from(*d)).copied().flatten())
            .collect(),
        None => vec![None; SLOTS],
    };
    let weights: Vec<u64> = dirs.iter().map(|d| d.weight).collect();
    let primary = assign_slots(&prev_primary, &weights);
    Ok(DataLayout { dirs, primary })
}

/// Decides the id of a configured directory from its previous record and its marker on disk.
/// Returns `(id, marker still to be written)`.
fn resolve_marker(
    cfg: &DataDir,
    old: Option<&DirEntry>,
    found: Option<Uuid>,
) -> Result<(Option<Uuid>, bool), WrongDiskReason> {
    let marker = marker::marker_path(&cfg.path);
    let was_pending = old.is_some_and(|o| o.pending_marker);
    match (old.and_then(|o| o.id), found) {
        (Some(id), Some(m)) if m == id => Ok((Some(id), false)),
        (Some(_), Some(m)) if was_pending => {
            Err(WrongDiskReason::ForeignMarker { marker, found: m })
        }
        (Some(id), Some(m)) => Err(WrongDiskReason::MarkerMismatch {
            expected: id,
            found: m,
        }),
        // An interrupted start recorded the id but did not write the marker yet.
        (Some(_), None) if was_pending && cfg.read_only => Ok((None, false)),
        (Some(id), None) if was_pending => Ok((Some(id), true)),
        // The whole directory is gone: the operator removed it or points to a new disk path
        // (recovery of a failed disk). Start it afresh; `garage repair blocks` refills it.
        (Some(_), None) if !cfg.read_only && !cfg.path.exists() => {
            tracing::warn!(
                dir = %cfg.path.display(),
                "data directory is missing: creating a new empty one; run `garage repair --yes blocks` to fetch its blocks from other nodes"
            );
            Ok((Some(Uuid::random()), true))
        }
        (Some(_), None) => Err(WrongDiskReason::MissingMarker { marker }),
        // Read-only directories are never written: any marker is adopted, none is created.
        (None, Some(m)) if cfg.read_only => Ok((Some(m), false)),
        (None, Some(m)) => Err(WrongDiskReason::ForeignMarker { marker, found: m }),
        (None, None) if cfg.read_only => Ok((None, false)),
        (None, None) => Ok((Some(Uuid::random()), true)),
    }
}

/// Number of slots whose primary directory (compared by path) differs between two layouts.
fn moved_slots(a: &DataLayout, b: &DataLayout) -> usize {
    let path = |l: &DataLayout, slot: usize| {
        l.dirs
            .get(usize::from(l.primary[slot]))
            .map(|d| d.path.clone())
    };
    (0..SLOTS).filter(|s| path(a, *s) != path(b, *s)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let layout = DataLayout {
            dirs: vec![DirEntry {
                path: PathBuf::from("/d"),
                id: None,
                weight: 1,
                read_only: false,
                pending_marker: false,
            }],
            primary: vec![0, 0],
        };
        let enc = layout.encode().expect("encode");
        let mut expected = b"GdataL1\x82\xa4dirs\x91\x85".to_vec();
        expected.extend_from_slice(b"\xa4path\xa2/d\xa2id\xc0\xa6weight\x01");
        expected.extend_from_slice(b"\xa9read_only\xc2\xaepending_marker\xc2");
        expected.extend_from_slice(b"\xa7primary\xc4\x02\x00\x00");
        assert_eq!(enc, expected);
        assert_eq!(DataLayout::decode(&enc).expect("decode"), layout);
        assert!(layout.check().is_err(), "two slots only");
    }
}
