//! The manifest: which segments the log is made of, so that recovery notices
//! a file that went missing or was cut short instead of starting from less.
//!
//! Records alone cannot show that a whole segment is gone (every remaining
//! record is valid) or that a finished segment lost whole records at its end.
//! Without this file a node whose newest segment was deleted would start with
//! an older term and vote, free to vote twice in one term.
//!
//! It is a short text file, rewritten (temporary file, fsync, rename) when the
//! set of segments changes: at start-up, when a segment fills up, and when a
//! snapshot replaces the older segments. It says:
//!
//! ```text
//! quorum-wal-manifest 1
//! snapshot 15            (or: snapshot none)
//! finished 7 67108912    (a full segment and its exact length in bytes)
//! active 8               (the segment being appended to)
//! crc32 1a2b3c4d         (of every line above: a damaged manifest is refused)
//! ```
//!
//! What a crash between two steps can leave is accepted: a segment above
//! `active` (created just before the manifest was rewritten), segments below
//! the first listed one (a snapshot's checkpoint made them obsolete and their
//! deletion was cut short), and a snapshot newer than the one named here.
//! What it cannot show: records lost from the end of the active segment, since
//! its length changes with every write (the torn-tail rules of the record
//! scan apply there), or a manifest deleted along with the segments.

use super::{io_error, replace_file, segment_name};
use quorum_core::StorageError;
use std::fs;
use std::path::Path;

const FILE: &str = "wal.manifest";
const HEADER: &str = "quorum-wal-manifest 1";

/// What the log was made of when the manifest was last written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The index of the snapshot the log sits on, if it has one.
    pub snapshot_index: Option<u64>,
    /// Full segments, oldest first, each with its length in bytes: they are
    /// never written again, so any other length is damage.
    pub finished: Vec<(u64, u64)>,
    /// The segment being appended to.
    pub active: u64,
}

/// What recovery should do with the segments on disk.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Segments to replay, oldest first.
    pub replay: Vec<u64>,
    /// Obsolete segments below a checkpoint, left by a cut-short deletion.
    pub obsolete: Vec<u64>,
}

fn corrupt(detail: String) -> StorageError {
    StorageError::Corrupt {
        location: FILE.to_string(),
        detail: format!("{detail}; refusing to start rather than lose durable state (restore this node's data directory from a peer)"),
    }
}

impl Manifest {
    /// Writes the manifest durably, replacing the previous one.
    pub fn write(&self, dir: &Path) -> Result<(), StorageError> {
        let mut text = format!("{HEADER}\n");
        match self.snapshot_index {
            Some(index) => text.push_str(&format!("snapshot {index}\n")),
            None => text.push_str("snapshot none\n"),
        }
        for (number, bytes) in &self.finished {
            text.push_str(&format!("finished {number} {bytes}\n"));
        }
        text.push_str(&format!("active {}\n", self.active));
        text.push_str(&format!("crc32 {:08x}\n", crc32fast::hash(text.as_bytes())));
        replace_file(dir, FILE, text.as_bytes())
    }

    /// Reads the manifest, if the log has one (a new directory, or one
    /// written before manifests existed, has none).
    pub fn read(dir: &Path) -> Result<Option<Manifest>, StorageError> {
        let path = dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e, "reading", &path)),
        };
        Self::parse(&text).map(Some).map_err(|why| corrupt(format!("unreadable manifest: {why}")))
    }

    fn parse(text: &str) -> Result<Manifest, String> {
        // The checksum line covers everything before it, so a lost or
        // changed line cannot pass for a smaller log.
        let body_len = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
        let (body, last) = text.split_at(body_len);
        let crc = last.trim_end().strip_prefix("crc32 ").ok_or("the last line is not its checksum")?;
        if u32::from_str_radix(crc, 16).ok() != Some(crc32fast::hash(body.as_bytes())) {
            return Err("its checksum does not match".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("the first line is not '{HEADER}'"));
        }
        let number = |word: Option<&str>, line: &str| -> Result<u64, String> {
            word.and_then(|w| w.parse().ok()).ok_or_else(|| format!("bad line '{line}'"))
        };
        let mut manifest = Manifest::default();
        let mut active = None;
        for line in lines {
            let mut words = line.split(' ');
            match words.next() {
                Some("snapshot") if line == "snapshot none" => manifest.snapshot_index = None,
                Some("snapshot") => manifest.snapshot_index = Some(number(words.next(), line)?),
                Some("finished") => {
                    let segment = number(words.next(), line)?;
                    manifest.finished.push((segment, number(words.next(), line)?));
                }
                Some("active") => active = Some(number(words.next(), line)?),
                _ => return Err(format!("bad line '{line}'")),
            }
        }
        manifest.active = active.ok_or("no 'active' line")?;
        let numbers: Vec<u64> = manifest.numbers().collect();
        if numbers.windows(2).any(|w| w[1] != w[0] + 1) {
            return Err(format!("segments {numbers:?} are not consecutive"));
        }
        Ok(manifest)
    }

    /// Every segment the manifest names, oldest first.
    fn numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.finished.iter().map(|(n, _)| *n).chain(std::iter::once(self.active))
    }

    /// Checks the segments on disk (`listed`, sorted) and the snapshot
    /// (`snapshot_index`) against the manifest, and says which to replay.
    pub fn check(&self, dir: &Path, listed: &[u64], snapshot_index: Option<u64>) -> Result<Plan, StorageError> {
        if let Some(expected) = self.snapshot_index {
            match snapshot_index {
                None => return Err(corrupt(format!("the snapshot at index {expected} is missing"))),
                Some(found) if found < expected => {
                    return Err(corrupt(format!("the snapshot is at index {found}, older than index {expected}")));
                }
                Some(_) => {}
            }
        }
        let first = self.finished.first().map_or(self.active, |(n, _)| *n);
        for number in self.numbers() {
            if listed.binary_search(&number).is_err() {
                return Err(corrupt(format!("segment {} is missing", segment_name(number))));
            }
        }
        for (number, bytes) in &self.finished {
            let path = dir.join(segment_name(*number));
            let len = fs::metadata(&path).map_err(|e| io_error(e, "reading size of", &path))?.len();
            if len != *bytes {
                return Err(corrupt(format!(
                    "the full segment {} is {len} bytes, it was {bytes} bytes when it was finished",
                    segment_name(*number)
                )));
            }
        }
        let (obsolete, replay): (Vec<u64>, Vec<u64>) = listed.iter().partition(|n| **n < first);
        // Above `active` only the segment a cut-short roll created may follow.
        if let Some(gap) = replay.windows(2).find(|w| w[1] != w[0] + 1) {
            return Err(corrupt(format!("segment {} is missing", segment_name(gap[0] + 1))));
        }
        Ok(Plan { replay, obsolete })
    }
}

/// Without a manifest (a new log, or one from before manifests) the segments
/// on disk must at least be consecutive, and a snapshot needs a segment
/// beside it (installing one always starts a segment).
pub fn check_unlisted(listed: &[u64], snapshot_index: Option<u64>) -> Result<Plan, StorageError> {
    if let Some(gap) = listed.windows(2).find(|w| w[1] != w[0] + 1) {
        return Err(corrupt(format!("segment {} is missing", segment_name(gap[0] + 1))));
    }
    if let (Some(index), true) = (snapshot_index, listed.is_empty()) {
        return Err(corrupt(format!("there is a snapshot at index {index} but no log segment beside it")));
    }
    Ok(Plan { replay: listed.to_vec(), obsolete: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_through_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest { snapshot_index: Some(15), finished: vec![(7, 100), (8, 120)], active: 9 };
        manifest.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), Some(manifest));
        Manifest { snapshot_index: None, finished: vec![], active: 1 }.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap().unwrap().active, 1);
    }

    #[test]
    fn a_damaged_manifest_is_refused() {
        let signed = |body: &str| format!("{body}crc32 {:08x}\n", crc32fast::hash(body.as_bytes()));
        for body in ["", "quorum-wal-manifest 1\n", "quorum-wal-manifest 1\nactive x\n", "nope\nactive 1\n"] {
            assert!(Manifest::parse(&signed(body)).is_err(), "{body:?}");
        }
        let gap = "quorum-wal-manifest 1\nsnapshot none\nfinished 1 10\nactive 3\n";
        assert!(Manifest::parse(&signed(gap)).unwrap_err().contains("consecutive"));
        let good = "quorum-wal-manifest 1\nsnapshot none\nfinished 1 10\nactive 2\n";
        assert!(Manifest::parse(&signed(good)).is_ok());
        assert!(Manifest::parse(good).unwrap_err().contains("checksum"));
        let edited = signed(good).replace("finished 1 10\n", "");
        assert!(Manifest::parse(&edited).unwrap_err().contains("checksum does not match"));
    }

    #[test]
    fn segments_above_active_and_below_the_first_are_what_a_crash_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest { snapshot_index: None, finished: vec![], active: 3 };
        let plan = manifest.check(dir.path(), &[1, 2, 3, 4], None).unwrap();
        assert_eq!(plan, Plan { replay: vec![3, 4], obsolete: vec![1, 2] });
        assert!(manifest.check(dir.path(), &[3, 5], None).is_err());
        assert!(manifest.check(dir.path(), &[4], None).is_err());
    }
}
