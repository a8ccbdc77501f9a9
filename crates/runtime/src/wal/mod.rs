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
//! **Preallocation.** The active segment is filled with zeros (and synced) a
//! chunk ahead of the records, as PostgreSQL does with its WAL files: a record
//! then overwrites blocks that already exist in a file whose size does not
//! change, so its `fdatasync` writes the data and nothing else. Appending to
//! the end of the file instead makes every sync write the inode (new size) and
//! allocation metadata too; on the development machine that is 3 disk writes
//! per sync instead of 2 and about twice the time and CPU. A finished segment
//! is cut back to its last record before the next one starts, so only the
//! newest segment ever ends in zeros, and recovery reads a zero header there
//! as the end of the log.
//!
//! **Snapshots.** A batch that carries a snapshot is handled in three durable
//! steps: the snapshot file is replaced; a new segment is started whose first
//! record is a *checkpoint* (the hard state and every entry above the snapshot,
//! with `truncate_from: Some(0)` so replay discards what came before); then the
//! older segments are deleted. A crash between any two steps recovers the same
//! state: older segments replay below the checkpoint and are truncated by it,
//! and entries at or below the snapshot are dropped on load.
//!
//! **Manifest.** `wal.manifest` names the segments and the snapshot index, and
//! each full segment's length, so that recovery refuses a directory that lost a
//! segment or whole records from a full one (see `manifest.rs`).
//!
//! **Recovery.** [`Wal::open`] reads everything back. A record cut short at the
//! end of the newest segment (a crash during the last write, never acknowledged)
//! is truncated away; a bad record anywhere else is [`StorageError::Corrupt`],
//! naming the file and byte offset.

mod manifest;
pub mod record;
mod snapshot_file;

use manifest::Manifest;
use quorum_core::{Storage, StorageError, Stored, StoredState, WriteBatch};
use record::{Format, SEGMENT_MAGIC};
use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tracing::{debug, info, warn};

/// A new segment is started once the current one is this big.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// The active segment is zero-filled this far ahead of its records.
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 1 << 20;
/// Zeros written per call while preallocating.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

pub(crate) fn io_error(source: std::io::Error, doing: &str, path: &Path) -> StorageError {
    StorageError::Io { context: format!("{doing} {}", path.display()), source }
}

/// Replaces `dir/name` with `bytes` so that a crash leaves the old file or
/// the new one, whole: written to `name.tmp`, synced, renamed, directory synced.
pub(crate) fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = fs::File::create(&temp).map_err(|e| io_error(e, "creating", &temp))?;
    file.write_all(bytes).map_err(|e| io_error(e, "writing", &temp))?;
    file.sync_all().map_err(|e| io_error(e, "syncing", &temp))?;
    let path = dir.join(name);
    fs::rename(&temp, &path).map_err(|e| io_error(e, "renaming into", &path))?;
    sync_dir(dir)
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
    /// Full segments on disk, oldest first, with their lengths.
    finished: Vec<(u64, u64)>,
    /// The number of the segment being appended to.
    active_number: u64,
    active: fs::File,
    /// Bytes of records in the active segment: the next record goes here.
    active_bytes: u64,
    /// How the next record in the active segment is written (the link it continues).
    format: Format,
    /// Length of the active segment file (records, then zeros).
    allocated_bytes: u64,
    preallocate_bytes: u64,
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
        let snapshot_index = snapshot.as_ref().map(|s| s.index);
        let listed = list_segments(&dir)?;
        let plan = match Manifest::read(&dir)? {
            Some(manifest) => manifest.check(&dir, &listed, snapshot_index)?,
            None => manifest::check_unlisted(&listed, snapshot_index)?,
        };
        let mut format = None;
        for (i, number) in plan.replay.iter().enumerate() {
            let last = i + 1 == plan.replay.len();
            format = Some(replay_segment(&dir, *number, last, &mut durable)?);
        }
        if let Some(snapshot) = snapshot {
            durable = above_snapshot(&durable, snapshot);
        }
        let mut finished = Vec::new();
        for number in &plan.replay {
            let path = dir.join(segment_name(*number));
            let len = fs::metadata(&path).map_err(|e| io_error(e, "reading size of", &path))?.len();
            finished.push((*number, len));
        }
        // Recovery cut the newest segment back to its last whole record.
        let (active_number, active_bytes, format) = match (finished.pop(), format) {
            (Some((number, bytes)), Some(format)) => (number, bytes, format),
            _ => {
                create_segment(&dir, 1)?;
                (1, SEGMENT_MAGIC.len() as u64, Format::new_segment(1))
            }
        };
        Manifest { snapshot_index, finished: finished.clone(), active: active_number }.write(&dir)?;
        for number in plan.obsolete {
            let path = dir.join(segment_name(number));
            warn!(path = %path.display(), "deleting a segment a snapshot made obsolete (its deletion was cut short)");
            fs::remove_file(&path).map_err(|e| io_error(e, "deleting", &path))?;
        }
        let path = dir.join(segment_name(active_number));
        let active = fs::OpenOptions::new().write(true).open(&path).map_err(|e| io_error(e, "opening", &path))?;
        info!(dir = %dir.display(), segments = finished.len() + 1, entries = durable.entry_count(), "write-ahead log recovered");
        Ok(Wal {
            dir,
            finished,
            active_number,
            active,
            active_bytes,
            format,
            allocated_bytes: active_bytes,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
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

    /// Zero-fill the active segment this many bytes ahead of its records
    /// (0: append to the end of the file instead). See the module docs.
    pub fn set_preallocate_bytes(&mut self, bytes: u64) {
        self.preallocate_bytes = bytes;
    }

    /// Bytes of records in the active segment (its file may be longer: zeros).
    pub fn active_segment_bytes(&self) -> u64 {
        self.active_bytes
    }

    /// Number of segment files on disk.
    pub fn segment_count(&self) -> usize {
        self.finished.len() + 1
    }

    fn active_path(&self) -> PathBuf {
        self.dir.join(segment_name(self.active_number))
    }

    fn write_manifest(&self) -> Result<(), StorageError> {
        let manifest = Manifest {
            snapshot_index: self.snapshot_index,
            finished: self.finished.clone(),
            active: self.active_number,
        };
        manifest.write(&self.dir)
    }

    fn flush_and_sync(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.active_bytes + self.buf.len() as u64;
        if self.sync && self.preallocate_bytes > 0 && end > self.allocated_bytes {
            self.preallocate(end)?;
        }
        let at = self.active_bytes;
        self.active.write_all_at(&self.buf, at).map_err(|e| io_error(e, "appending to", &self.active_path()))?;
        if self.sync {
            self.active.sync_data().map_err(|e| io_error(e, "syncing", &self.active_path()))?;
        }
        self.active_bytes = end;
        self.allocated_bytes = self.allocated_bytes.max(end);
        self.buf.clear();
        Ok(())
    }

    /// Zero-fills the active segment past `end` and syncs the zeros, so that
    /// records written there later never change the file's size or layout.
    fn preallocate(&mut self, end: u64) -> Result<(), StorageError> {
        let target = end.div_ceil(self.preallocate_bytes) * self.preallocate_bytes;
        let mut at = self.allocated_bytes.max(self.active_bytes);
        while at < target {
            let n = (target - at).min(ZEROS.len() as u64) as usize;
            self.active.write_all_at(&ZEROS[..n], at).map_err(|e| io_error(e, "preallocating", &self.active_path()))?;
            at += n as u64;
        }
        self.active.sync_data().map_err(|e| io_error(e, "syncing", &self.active_path()))?;
        self.allocated_bytes = target;
        Ok(())
    }

    /// Cuts the active segment's zero tail off, so that only the newest
    /// segment ever ends in preallocated zeros.
    fn trim_active(&mut self) -> Result<(), StorageError> {
        if self.allocated_bytes > self.active_bytes {
            let path = self.active_path();
            self.active.set_len(self.active_bytes).map_err(|e| io_error(e, "trimming", &path))?;
            self.active.sync_all().map_err(|e| io_error(e, "syncing", &path))?;
            self.allocated_bytes = self.active_bytes;
        }
        Ok(())
    }

    /// Starts a new segment; with `checkpoint`, it begins with the whole durable
    /// state above the snapshot, so that every older segment may be deleted.
    fn roll(&mut self, checkpoint: bool) -> Result<(), StorageError> {
        self.trim_active()?;
        let number = self.active_number + 1;
        let path = create_segment(&self.dir, number)?;
        let file = fs::OpenOptions::new().write(true).open(&path).map_err(|e| io_error(e, "opening", &path))?;
        let mut bytes = Vec::new();
        let mut format = Format::new_segment(number);
        if checkpoint {
            let stored = self.durable.to_stored();
            let checkpoint = WriteBatch {
                tag: 0,
                hard_state: stored.hard_state,
                truncate_from: Some(0),
                entries: stored.entries,
                snapshot: None,
            };
            record::encode(&checkpoint, &mut bytes, &mut format);
            let at = SEGMENT_MAGIC.len() as u64;
            file.write_all_at(&bytes, at).map_err(|e| io_error(e, "writing checkpoint to", &path))?;
            file.sync_data().map_err(|e| io_error(e, "syncing", &path))?;
        }
        self.finished.push((self.active_number, self.active_bytes));
        self.active_number = number;
        self.active = file;
        self.active_bytes = (SEGMENT_MAGIC.len() + bytes.len()) as u64;
        self.format = format;
        self.allocated_bytes = self.active_bytes;
        self.write_manifest()?;
        debug!(segment = number, "started a new segment");
        Ok(())
    }

    /// Durably installs a snapshot (already applied to `durable`), then drops old segments.
    fn install_snapshot(&mut self, batch: &WriteBatch) -> Result<(), StorageError> {
        let snapshot = batch.snapshot.as_ref().expect("called with a snapshot");
        snapshot_file::write(&self.dir, snapshot)?;
        self.snapshot_index = Some(snapshot.index);
        self.roll(true)?;
        // The manifest stops naming the old segments before they go, so a
        // crash in between leaves obsolete files, never missing ones.
        let obsolete = std::mem::take(&mut self.finished);
        self.write_manifest()?;
        for (number, _) in obsolete {
            let path = self.dir.join(segment_name(number));
            if let Err(e) = fs::remove_file(&path) {
                warn!(path = %path.display(), error = %e, "could not delete an old segment");
            }
        }
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
                record::encode(&WriteBatch { snapshot: None, ..batch.clone() }, &mut self.buf, &mut self.format);
            } else {
                record::encode(batch, &mut self.buf, &mut self.format);
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

/// Creates segment `number`, holding its magic (synced), and syncs the directory.
fn create_segment(dir: &Path, number: u64) -> Result<PathBuf, StorageError> {
    let path = dir.join(segment_name(number));
    let mut file =
        fs::OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| io_error(e, "creating", &path))?;
    file.write_all(&SEGMENT_MAGIC).and_then(|()| file.sync_data()).map_err(|e| io_error(e, "writing", &path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Replays one segment onto `state`, truncating a torn tail of the newest
/// one; returns how a record appended to it would continue.
fn replay_segment(dir: &Path, number: u64, last: bool, state: &mut StoredState) -> Result<Format, StorageError> {
    let path = dir.join(segment_name(number));
    let data = fs::read(&path).map_err(|e| io_error(e, "reading", &path))?;
    let scanned = record::scan(&data, number, &path.display().to_string(), last)?;
    for batch in &scanned.batches {
        state.apply(batch);
    }
    if scanned.valid_len < data.len() {
        if data[scanned.valid_len..].iter().all(|b| *b == 0) {
            debug!(path = %path.display(), offset = scanned.valid_len, "cutting off preallocated zeros");
        } else {
            warn!(
                path = %path.display(),
                offset = scanned.valid_len,
                dropped_bytes = data.len() - scanned.valid_len,
                "truncating a torn tail left by a crash during the last write"
            );
        }
        let file = fs::OpenOptions::new().write(true).open(&path).map_err(|e| io_error(e, "opening", &path))?;
        file.set_len(scanned.valid_len as u64).map_err(|e| io_error(e, "truncating", &path))?;
        file.sync_all().map_err(|e| io_error(e, "syncing", &path))?;
    }
    Ok(scanned.format)
}
