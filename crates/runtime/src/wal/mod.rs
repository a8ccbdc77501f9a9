//! The write-ahead log: [`quorum_core::Storage`] on files.
//!
//! Layout of a data directory:
//!
//! - `wal-<n>.log`: segments, each a sequence of records (see [`record`]);
//!   a record is one [`WriteBatch`]. Replaying every segment in order onto the
//!   snapshot rebuilds the durable state.
//! - `snapshot`: the latest snapshot, replaced atomically (temp file, fsync, rename).
//!
//! **Group commit.** [`Storage::write`] appends every batch it is given with one
//! `write` and one `fdatasync`: a busy node pays one sync for many batches.
//!
//! **Snapshots.** A batch that carries a snapshot is handled in three durable
//! steps: the snapshot file is replaced; a new segment is started whose first
//! record is a *checkpoint* (the hard state and every entry above the snapshot,
//! with `truncate_from: Some(0)` so replay discards what came before); then the
//! older segments are deleted. A crash between any two steps recovers the same
//! state: older segments replay below the checkpoint and are truncated by it,
//! and entries at or below the snapshot are dropped on load.
//!
//! **Recovery.** [`Wal::open`] reads everything back. A record cut short at the
//! end of the newest segment (a crash during the last write, never acknowledged)
//! is truncated away; a bad record anywhere else is [`StorageError::Corrupt`],
//! naming the file and byte offset.

pub mod record;
mod snapshot_file;

use quorum_core::{Storage, StorageError, Stored, StoredState, WriteBatch};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use tracing::{debug, info, warn};

/// A new segment is started once the current one is this big.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

pub(crate) fn io_error(source: std::io::Error, doing: &str, path: &Path) -> StorageError {
    StorageError::Io { context: format!("{doing} {}", path.display()), source }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(e, "syncing directory", dir))
}

fn segment_name(number: u64) -> String {
    format!("wal-{number:020}.log")
}

fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()
}

/// A write-ahead log in a directory.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    /// Segment numbers on disk, oldest first; the last is being appended to.
    segments: Vec<u64>,
    active: fs::File,
    active_bytes: u64,
    segment_bytes: u64,
    /// What is durable, kept in memory for `load` and for checkpoints.
    durable: StoredState,
    snapshot_index: Option<u64>,
    buf: Vec<u8>,
    sync: bool,
}

impl Wal {
    /// Opens (creating if needed) the log in `dir` and recovers it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Wal, StorageError> {
        Self::open_with_segment_bytes(dir, DEFAULT_SEGMENT_BYTES)
    }

    /// Like [`Wal::open`], starting a new segment every `segment_bytes`.
    pub fn open_with_segment_bytes(dir: impl Into<PathBuf>, segment_bytes: u64) -> Result<Wal, StorageError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io_error(e, "creating", &dir))?;
        let mut durable = StoredState::default();
        let snapshot = snapshot_file::read(&dir)?;
        if let Some(snapshot) = &snapshot {
            durable.apply(&WriteBatch { snapshot: Some(snapshot.clone()), ..Default::default() });
        }
        let segments = list_segments(&dir)?;
        for (i, number) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            replay_segment(&dir, *number, last, &mut durable)?;
        }
        let snapshot_index = snapshot.as_ref().map(|s| s.index);
        if let Some(snapshot) = snapshot {
            durable = above_snapshot(&durable, snapshot);
        }
        let mut segments = segments;
        if segments.is_empty() {
            segments.push(1);
            create_segment(&dir, 1)?;
        }
        let active_number = *segments.last().expect("at least one segment");
        let path = dir.join(segment_name(active_number));
        let active = fs::OpenOptions::new().append(true).open(&path).map_err(|e| io_error(e, "opening", &path))?;
        let active_bytes = active.metadata().map_err(|e| io_error(e, "reading size of", &path))?.len();
        info!(dir = %dir.display(), segments = segments.len(), entries = durable.entry_count(), "write-ahead log recovered");
        Ok(Wal {
            dir,
            segments,
            active,
            active_bytes,
            segment_bytes,
            durable,
            snapshot_index,
            buf: Vec::new(),
            sync: true,
        })
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// With `false`, appends are not synced: a crash of the machine (not just
    /// the process) may lose acknowledged writes. For benchmarks that want to
    /// measure everything but the disk; never for data that matters.
    pub fn set_unsafe_no_sync(&mut self, no_sync: bool) {
        self.sync = !no_sync;
    }

    /// Number of segment files on disk.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn flush_and_sync(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = || self.dir.join(segment_name(*self.segments.last().expect("a segment")));
        self.active.write_all(&self.buf).map_err(|e| io_error(e, "appending to", &path()))?;
        if self.sync {
            self.active.sync_data().map_err(|e| io_error(e, "syncing", &path()))?;
        }
        self.active_bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Starts a new segment; with `checkpoint`, it begins with the whole durable
    /// state above the snapshot, so that every older segment may be deleted.
    fn roll(&mut self, checkpoint: bool) -> Result<(), StorageError> {
        let number = self.segments.last().expect("a segment") + 1;
        let path = create_segment(&self.dir, number)?;
        let mut file = fs::OpenOptions::new().append(true).open(&path).map_err(|e| io_error(e, "opening", &path))?;
        let mut bytes = Vec::new();
        if checkpoint {
            let stored = self.durable.to_stored();
            let checkpoint = WriteBatch {
                tag: 0,
                hard_state: stored.hard_state,
                truncate_from: Some(0),
                entries: stored.entries,
                snapshot: None,
            };
            record::encode(&checkpoint, &mut bytes);
            file.write_all(&bytes).map_err(|e| io_error(e, "writing checkpoint to", &path))?;
            file.sync_data().map_err(|e| io_error(e, "syncing", &path))?;
        }
        self.segments.push(number);
        self.active = file;
        self.active_bytes = bytes.len() as u64;
        debug!(segment = number, "started a new segment");
        Ok(())
    }

    /// Durably installs a snapshot (already applied to `durable`), then drops old segments.
    fn install_snapshot(&mut self, batch: &WriteBatch) -> Result<(), StorageError> {
        let snapshot = batch.snapshot.as_ref().expect("called with a snapshot");
        snapshot_file::write(&self.dir, snapshot)?;
        self.snapshot_index = Some(snapshot.index);
        self.roll(true)?;
        let keep = *self.segments.last().expect("a segment");
        for number in self.segments.drain(..).filter(|n| *n != keep).collect::<Vec<_>>() {
            let path = self.dir.join(segment_name(number));
            if let Err(e) = fs::remove_file(&path) {
                warn!(path = %path.display(), error = %e, "could not delete an old segment");
            }
        }
        self.segments = vec![keep];
        sync_dir(&self.dir)?;
        info!(index = snapshot.index, "snapshot installed; older segments deleted");
        Ok(())
    }
}

impl Storage for Wal {
    fn write(&mut self, batches: &[WriteBatch]) -> Result<(), StorageError> {
        for batch in batches {
            let newer_snapshot =
                batch.snapshot.as_ref().is_some_and(|s| self.snapshot_index.is_none_or(|i| i < s.index));
            // The in-memory mirror runs ahead of the disk only until the sync
            // below; a failed sync stops the node, so it is never read stale.
            self.durable.apply(batch);
            if newer_snapshot {
                self.flush_and_sync()?;
                self.install_snapshot(batch)?;
                continue;
            }
            if batch.snapshot.is_some() {
                record::encode(&WriteBatch { snapshot: None, ..batch.clone() }, &mut self.buf);
            } else {
                record::encode(batch, &mut self.buf);
            }
        }
        self.flush_and_sync()?;
        if self.active_bytes >= self.segment_bytes {
            self.roll(false)?;
        }
        Ok(())
    }

    fn load(&self) -> Result<Stored, StorageError> {
        Ok(self.durable.to_stored())
    }
}

/// The state with every entry at or below the snapshot dropped.
fn above_snapshot(state: &StoredState, snapshot: quorum_core::Snapshot) -> StoredState {
    let stored = state.to_stored();
    let mut fresh = StoredState::default();
    fresh.apply(&WriteBatch {
        tag: 0,
        hard_state: stored.hard_state,
        truncate_from: None,
        entries: stored.entries.into_iter().filter(|e| e.index > snapshot.index).collect(),
        snapshot: Some(snapshot),
    });
    fresh
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut numbers = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| io_error(e, "listing", dir))? {
        let item = item.map_err(|e| io_error(e, "listing", dir))?;
        if let Some(number) = item.file_name().to_str().and_then(segment_number) {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

fn create_segment(dir: &Path, number: u64) -> Result<PathBuf, StorageError> {
    let path = dir.join(segment_name(number));
    fs::OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| io_error(e, "creating", &path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Replays one segment onto `state`, truncating a torn tail of the newest one.
fn replay_segment(dir: &Path, number: u64, last: bool, state: &mut StoredState) -> Result<(), StorageError> {
    let path = dir.join(segment_name(number));
    let data = fs::read(&path).map_err(|e| io_error(e, "reading", &path))?;
    let scanned = record::scan(&data, &path.display().to_string(), last)?;
    for batch in &scanned.batches {
        state.apply(batch);
    }
    if scanned.valid_len < data.len() {
        warn!(
            path = %path.display(),
            offset = scanned.valid_len,
            dropped_bytes = data.len() - scanned.valid_len,
            "truncating a torn tail left by a crash during the last write"
        );
        let file = fs::OpenOptions::new().write(true).open(&path).map_err(|e| io_error(e, "opening", &path))?;
        file.set_len(scanned.valid_len as u64).map_err(|e| io_error(e, "truncating", &path))?;
        file.sync_all().map_err(|e| io_error(e, "syncing", &path))?;
    }
    Ok(())
}
