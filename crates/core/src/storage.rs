//! Durable storage: hard state, log entries and snapshots.
//!
//! A protocol never writes to disk itself. It emits a [`WriteBatch`] through its
//! effects; the driver makes the batch durable, atomically and in the order the
//! batches were issued, then reports it with `Protocol::on_persisted(tag)`.
//! After a crash the driver calls [`Storage::load`] and hands the result to the
//! protocol's constructor.

use crate::{Entry, Stamp};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// A snapshot of the state machine at `index`, plus protocol metadata
/// (for example the membership in force at that index).
#[derive(Clone, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last log index folded into the snapshot.
    pub index: u64,
    /// The stamp of the entry at `index`.
    pub stamp: Stamp,
    /// Protocol-owned metadata, opaque to the driver.
    pub meta: Bytes,
    /// The state machine's own snapshot bytes.
    pub data: Bytes,
}

impl Snapshot {
    /// A snapshot of `data` at `index` with no history before it: the zero
    /// stamp and no metadata (see [`crate::Protocol::seed_snapshot`]).
    pub fn seed(index: u64, data: Bytes) -> Snapshot {
        Snapshot { index, stamp: Stamp::ZERO, meta: Bytes::new(), data }
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snapshot(index={}, stamp={:?}, {}B)", self.index, self.stamp, self.data.len())
    }
}

/// One atomic write. Applied in this order: hard state, truncation, entries, snapshot.
#[derive(Clone, Debug, Hash, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBatch {
    /// The protocol's own id for this write, handed back by `on_persisted`.
    /// Tags must increase from one batch to the next.
    pub tag: u64,
    /// Replaces the stored hard state (term and vote, promised ballot, epochs...).
    pub hard_state: Option<Bytes>,
    /// Drops every stored entry with an index at or above this one.
    pub truncate_from: Option<u64>,
    /// Entries to store; an entry replaces any stored entry at the same index.
    pub entries: Vec<Entry>,
    /// Installs a snapshot and drops every stored entry at or below its index.
    pub snapshot: Option<Snapshot>,
}

impl WriteBatch {
    /// An empty batch with the given tag.
    pub fn new(tag: u64) -> Self {
        WriteBatch { tag, ..Default::default() }
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.truncate_from.is_none() && self.entries.is_empty() && self.snapshot.is_none()
    }
}

/// Everything storage holds, as recovered after a restart.
#[derive(Clone, Debug, Hash, Default, PartialEq, Eq)]
pub struct Stored {
    /// The last hard state written, if any.
    pub hard_state: Option<Bytes>,
    /// Stored entries in index order (above the snapshot, if there is one).
    pub entries: Vec<Entry>,
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
}

impl Stored {
    /// The protocol's hard state decoded from its postcard bytes, or its
    /// default on a first start; bytes that do not decode are
    /// [`InitError::CorruptState`](crate::InitError::CorruptState).
    pub fn decode_hard_state<H: serde::de::DeserializeOwned + Default>(&self) -> Result<H, crate::InitError> {
        match &self.hard_state {
            Some(bytes) => postcard::from_bytes(bytes).map_err(|e| crate::InitError::corrupt("hard state", e)),
            None => Ok(H::default()),
        }
    }
}

/// Why storage failed. The runtime stops a node rather than run on after this.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating system error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What storage was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Stored data failed its checks; `location` names the file and offset.
    #[error("corrupt record at {location}: {detail}")]
    Corrupt {
        /// The file and byte offset of the bad record.
        location: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// Durable storage for one node.
pub trait Storage {
    /// Makes every batch durable, atomically each and in order, before returning.
    /// An implementation may write them all with one sync (group commit).
    fn write(&mut self, batches: &[WriteBatch]) -> Result<(), StorageError>;

    /// Reads back what is durable.
    fn load(&self) -> Result<Stored, StorageError>;
}

/// The state a batch applies to; shared by every in-memory store.
#[derive(Clone, Debug, Hash, Default)]
pub struct StoredState {
    hard_state: Option<Bytes>,
    entries: BTreeMap<u64, Entry>,
    snapshot: Option<Snapshot>,
}

impl StoredState {
    /// Applies one batch in the documented order.
    pub fn apply(&mut self, batch: &WriteBatch) {
        if let Some(hs) = &batch.hard_state {
            self.hard_state = Some(hs.clone());
        }
        if let Some(from) = batch.truncate_from {
            self.entries.split_off(&from);
        }
        for e in &batch.entries {
            self.entries.insert(e.index, e.clone());
        }
        if let Some(snap) = &batch.snapshot {
            let newer = self.snapshot.as_ref().is_none_or(|s| s.index < snap.index);
            if newer {
                self.entries = self.entries.split_off(&(snap.index + 1));
                self.snapshot = Some(snap.clone());
            }
        }
    }

    /// A copy of the state, as [`Storage::load`] returns it.
    pub fn to_stored(&self) -> Stored {
        Stored {
            hard_state: self.hard_state.clone(),
            entries: self.entries.values().cloned().collect(),
            snapshot: self.snapshot.clone(),
        }
    }

    /// True if the entry at `index` carries `payload`, or a snapshot covers
    /// `index` (its effect is then part of the state machine image).
    pub fn holds(&self, index: u64, payload: &crate::Payload) -> bool {
        self.entries.get(&index).is_some_and(|e| e.payload == *payload)
            || self.snapshot.as_ref().is_some_and(|s| s.index >= index)
    }

    /// The last `n` entries held, oldest first.
    pub fn last_entries(&self, n: usize) -> Vec<&Entry> {
        let mut tail: Vec<&Entry> = self.entries.values().rev().take(n).collect();
        tail.reverse();
        tail
    }

    /// Number of entries held.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }
}

/// In-memory storage with crash semantics: a staged batch is durable only once
/// synced, and [`MemStorage::crash`] forgets every batch that was not.
/// The simulator stages a batch when a protocol emits it and syncs it when the
/// simulated disk's fsync completes.
#[derive(Clone, Debug, Hash, Default)]
pub struct MemStorage {
    durable: StoredState,
    staged: VecDeque<WriteBatch>,
}

impl MemStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a batch; it is not durable until synced.
    pub fn stage(&mut self, batch: WriteBatch) {
        self.staged.push_back(batch);
    }

    /// Makes the oldest staged batch durable and returns its tag.
    pub fn sync_next(&mut self) -> Option<u64> {
        let batch = self.staged.pop_front()?;
        self.durable.apply(&batch);
        Some(batch.tag)
    }

    /// Number of batches staged but not yet durable.
    pub fn staged_len(&self) -> usize {
        self.staged.len()
    }

    /// A crash: everything not synced is lost.
    pub fn crash(&mut self) {
        self.crash_keeping(0);
    }

    /// A crash that tears the tail: the oldest `keep` staged batches reached
    /// the disk before it (as whole records, the way the write-ahead log
    /// recovers a torn tail), the rest are lost. The protocol never heard
    /// they were durable; it finds them when it restarts.
    pub fn crash_keeping(&mut self, keep: usize) {
        for _ in 0..keep {
            if self.sync_next().is_none() {
                break;
            }
        }
        self.staged.clear();
    }

    /// The durable state.
    pub fn durable(&self) -> &StoredState {
        &self.durable
    }
}

impl Storage for MemStorage {
    fn write(&mut self, batches: &[WriteBatch]) -> Result<(), StorageError> {
        for b in batches {
            self.stage(b.clone());
        }
        while self.sync_next().is_some() {}
        Ok(())
    }

    fn load(&self) -> Result<Stored, StorageError> {
        Ok(self.durable.to_stored())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::log::entry;

    #[test]
    fn a_crash_loses_exactly_the_unsynced_batches() {
        let mut s = MemStorage::new();
        s.stage(WriteBatch { tag: 1, entries: vec![entry(1, 1), entry(2, 1)], ..Default::default() });
        s.stage(WriteBatch {
            tag: 2,
            hard_state: Some(Bytes::from_static(b"hs")),
            entries: vec![entry(3, 1)],
            ..Default::default()
        });
        assert_eq!(s.sync_next(), Some(1));
        s.crash();
        let stored = s.load().unwrap();
        assert_eq!(stored.entries.len(), 2);
        assert_eq!(stored.hard_state, None);
        assert_eq!(s.sync_next(), None);
    }

    #[test]
    fn truncation_then_append_replaces_a_suffix() {
        let mut s = MemStorage::new();
        s.write(&[WriteBatch { tag: 1, entries: (1..=5).map(|i| entry(i, 1)).collect(), ..Default::default() }])
            .unwrap();
        s.write(&[WriteBatch { tag: 2, truncate_from: Some(3), entries: vec![entry(3, 2)], ..Default::default() }])
            .unwrap();
        let stored = s.load().unwrap();
        let stamps: Vec<_> = stored.entries.iter().map(|e| (e.index, e.stamp.major)).collect();
        assert_eq!(stamps, vec![(1, 1), (2, 1), (3, 2)]);
    }

    #[test]
    fn a_snapshot_drops_the_entries_it_covers_and_never_goes_back() {
        let mut s = MemStorage::new();
        s.write(&[WriteBatch { tag: 1, entries: (1..=5).map(|i| entry(i, 1)).collect(), ..Default::default() }])
            .unwrap();
        let snap =
            |index| Snapshot { index, stamp: Stamp::new(1, 0), meta: Bytes::new(), data: Bytes::from_static(b"sm") };
        s.write(&[WriteBatch { tag: 2, snapshot: Some(snap(3)), ..Default::default() }]).unwrap();
        s.write(&[WriteBatch { tag: 3, snapshot: Some(snap(2)), ..Default::default() }]).unwrap();
        let stored = s.load().unwrap();
        assert_eq!(stored.snapshot.unwrap().index, 3);
        assert_eq!(stored.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 5]);
    }

    #[test]
    fn a_torn_tail_keeps_the_oldest_unsynced_writes_whole() {
        let mut disk = MemStorage::new();
        for tag in 1..=3 {
            let entry = crate::Entry { index: tag, stamp: crate::Stamp::new(1, 0), payload: crate::Payload::Noop };
            disk.stage(WriteBatch { tag, entries: vec![entry], ..Default::default() });
        }
        disk.crash_keeping(2);
        assert_eq!(disk.staged_len(), 0);
        let indexes: Vec<u64> = disk.load().unwrap().entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![1, 2], "the two oldest writes survive, the third is lost");
    }
}
