//! Log entries and the contiguous log that Raft and Zab share.
//!
//! An entry is `{ index, stamp, payload }`. The stamp is the protocol's own
//! ordering token, written as two numbers compared lexicographically:
//! Raft's term is `(term, 0)`, a Paxos ballot is `(round, node)`, a Zab zxid is
//! `(epoch, counter)`. Paxos-family protocols keep sparse slots and do not use
//! [`Log`]; they still write [`Entry`] values to storage, one per slot.

use crate::{Command, Membership};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

/// A protocol's ordering token for an entry, compared lexicographically.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Stamp {
    /// Term, ballot round or epoch.
    pub major: u64,
    /// Zero for Raft, the proposer's node id for a ballot, the counter of a zxid.
    pub minor: u64,
}

impl Stamp {
    /// The stamp before every real one.
    pub const ZERO: Stamp = Stamp { major: 0, minor: 0 };

    /// A stamp from its two parts.
    pub const fn new(major: u64, minor: u64) -> Self {
        Stamp { major, minor }
    }
}

impl fmt::Debug for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What an entry carries.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    /// Nothing to apply: a new leader's first entry, or a Paxos gap filler.
    Noop,
    /// A client command for the state machine.
    Command(Command),
    /// A change of membership, for protocols that support it.
    Membership(Membership),
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Noop => write!(f, "noop"),
            Payload::Command(c) => write!(f, "{c:?}"),
            Payload::Membership(m) => write!(f, "members{:?}", m.voters),
        }
    }
}

/// One log entry.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log (or slot number); the first entry is 1.
    pub index: u64,
    /// The protocol's ordering token for this entry.
    pub stamp: Stamp,
    /// What the entry carries.
    pub payload: Payload,
}

impl Entry {
    /// An entry that carries nothing (a new leader's first entry, a gap filler).
    pub fn noop(index: u64, stamp: Stamp) -> Entry {
        Entry { index, stamp, payload: Payload::Noop }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{:?}:{:?}", self.index, self.stamp, self.payload)
    }
}

/// A contiguous log `(first_index ..= last_index)` that begins after a compaction
/// point: everything at or below `offset` lives in a snapshot.
#[derive(Clone, Debug, Hash, Default)]
pub struct Log {
    offset: u64,
    offset_stamp: Stamp,
    entries: VecDeque<Entry>,
}

impl Log {
    /// An empty log whose compaction point is `(offset, offset_stamp)`.
    pub fn new(offset: u64, offset_stamp: Stamp) -> Self {
        Log { offset, offset_stamp, entries: VecDeque::new() }
    }

    /// Rebuilds a log from recovered entries, which must be contiguous from `offset + 1`.
    /// Entries at or below the offset are skipped; a gap is an error.
    pub fn recover(offset: u64, offset_stamp: Stamp, entries: impl IntoIterator<Item = Entry>) -> Result<Self, String> {
        let mut log = Log::new(offset, offset_stamp);
        for e in entries {
            if e.index <= offset {
                continue;
            }
            if e.index != log.last_index() + 1 {
                return Err(format!(
                    "recovered log has a gap: expected index {}, found {}",
                    log.last_index() + 1,
                    e.index
                ));
            }
            log.entries.push_back(e);
        }
        Ok(log)
    }

    /// The compaction point: the index of the last entry folded into a snapshot.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The stamp of the entry at the compaction point.
    pub fn offset_stamp(&self) -> Stamp {
        self.offset_stamp
    }

    /// The first index still held as an entry.
    pub fn first_index(&self) -> u64 {
        self.offset + 1
    }

    /// The last index in the log (the offset if it holds no entries).
    pub fn last_index(&self) -> u64 {
        self.offset + self.entries.len() as u64
    }

    /// The stamp of the last entry (the offset's stamp if empty).
    pub fn last_stamp(&self) -> Stamp {
        self.entries.back().map_or(self.offset_stamp, |e| e.stamp)
    }

    /// Number of entries held (not counting the compacted prefix).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entries are held above the offset.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The stamp at `index`: known for the offset and held entries, `None` otherwise.
    pub fn stamp_at(&self, index: u64) -> Option<Stamp> {
        if index == self.offset {
            Some(self.offset_stamp)
        } else {
            self.get(index).map(|e| e.stamp)
        }
    }

    /// The entry at `index`, if held.
    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index <= self.offset {
            return None;
        }
        self.entries.get((index - self.offset - 1) as usize)
    }

    /// Appends one entry, which must take the next index.
    pub fn append(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "log append must be contiguous");
        self.entries.push_back(entry);
    }

    /// Drops every entry at or above `index`. Entries below the offset are never touched.
    pub fn truncate_from(&mut self, index: u64) {
        assert!(
            index > self.offset,
            "cannot truncate into the compacted prefix (index {index}, offset {})",
            self.offset
        );
        let keep = (index - self.offset - 1) as usize;
        self.entries.truncate(keep);
    }

    /// Clones the entries in `from ..= to` (clipped to what is held), at most `max` of them.
    pub fn slice(&self, from: u64, to: u64, max: usize) -> Vec<Entry> {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index());
        if from > to {
            return Vec::new();
        }
        let start = (from - self.offset - 1) as usize;
        let count = ((to - from + 1) as usize).min(max);
        self.entries.range(start..start + count).cloned().collect()
    }

    /// Iterates over the entries held, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Folds everything up to `index` into the compaction point. If `index` is past
    /// the end of the log, the log becomes empty at `(index, stamp)`.
    pub fn compact_to(&mut self, index: u64, stamp: Stamp) {
        if index <= self.offset {
            return;
        }
        if index >= self.last_index() {
            self.entries.clear();
        } else {
            let drop = (index - self.offset) as usize;
            self.entries.drain(..drop);
        }
        self.offset = index;
        self.offset_stamp = stamp;
    }
}

/// A no-op entry at `index` of `term`: what the storage and log tests hold.
#[cfg(test)]
pub(crate) fn entry(index: u64, term: u64) -> Entry {
    Entry::noop(index, Stamp::new(term, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_truncate_and_slice() {
        let mut log = Log::default();
        for i in 1..=5 {
            log.append(entry(i, 1));
        }
        log.truncate_from(4);
        assert_eq!(log.last_index(), 3);
        log.append(entry(4, 2));
        assert_eq!(log.last_stamp(), Stamp::new(2, 0));
        let s = log.slice(2, 10, 2);
        assert_eq!(s.iter().map(|e| e.index).collect::<Vec<_>>(), vec![2, 3]);
        assert!(log.slice(9, 12, 5).is_empty());
    }

    #[test]
    fn compaction_keeps_the_stamp_of_the_offset() {
        let mut log = Log::default();
        for i in 1..=5 {
            log.append(entry(i, i));
        }
        log.compact_to(3, Stamp::new(3, 0));
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.stamp_at(3), Some(Stamp::new(3, 0)));
        assert_eq!(log.get(3), None);
        assert_eq!(log.get(4).map(|e| e.stamp), Some(Stamp::new(4, 0)));
        log.compact_to(9, Stamp::new(7, 0));
        assert!(log.is_empty());
        assert_eq!(log.last_index(), 9);
        assert_eq!(log.last_stamp(), Stamp::new(7, 0));
    }

    #[test]
    fn recover_rejects_a_gap() {
        let err = Log::recover(0, Stamp::ZERO, vec![entry(1, 1), entry(3, 1)]).unwrap_err();
        assert!(err.contains("expected index 2, found 3"), "{err}");
        let log = Log::recover(2, Stamp::new(1, 0), vec![entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.last_index(), 3);
    }

    #[test]
    #[should_panic(expected = "contiguous")]
    fn append_with_a_gap_panics() {
        let mut log = Log::default();
        log.append(entry(2, 1));
    }
}
