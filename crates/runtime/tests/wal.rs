//! Crash recovery of the write-ahead log.

use quorum_core::{Bytes, ClientId, Command, Entry, Payload, Snapshot, Stamp, Storage, StorageError, WriteBatch};
use quorum_runtime::Wal;
use std::fs;
use std::path::{Path, PathBuf};

fn entry(index: u64, term: u64) -> Entry {
    let cmd = Command::new(ClientId(7), index, Bytes::from(format!("value-{index}")));
    Entry { index, stamp: Stamp::new(term, 0), payload: Payload::Command(cmd) }
}

fn batch(tag: u64, entries: std::ops::RangeInclusive<u64>) -> WriteBatch {
    WriteBatch {
        tag,
        hard_state: Some(Bytes::from(format!("term={tag}"))),
        entries: entries.map(|i| entry(i, tag)).collect(),
        ..Default::default()
    }
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.pop().unwrap()
}

fn indexes(wal: &Wal) -> Vec<u64> {
    wal.load().unwrap().entries.iter().map(|e| e.index).collect()
}

#[test]
fn a_group_of_batches_is_durable_and_recovered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path()).unwrap();
    wal.write(&[batch(1, 1..=3), batch(2, 4..=4)]).unwrap();
    wal.write(&[WriteBatch { tag: 3, truncate_from: Some(3), entries: vec![entry(3, 3)], ..Default::default() }])
        .unwrap();
    let before = wal.load().unwrap();
    drop(wal);
    let after = Wal::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(before, after);
    assert_eq!(
        after.entries.iter().map(|e| (e.index, e.stamp.major)).collect::<Vec<_>>(),
        vec![(1, 1), (2, 1), (3, 3)]
    );
    assert_eq!(after.hard_state, Some(Bytes::from("term=2")));
}

#[test]
fn a_wal_cut_at_every_byte_of_its_last_record_recovers_to_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path()).unwrap();
    wal.set_preallocate_bytes(0); // the file ends where the records end: cut it anywhere
    wal.write(&[batch(1, 1..=2)]).unwrap();
    wal.write(&[batch(2, 3..=3)]).unwrap();
    let expected = wal.load().unwrap();
    let seg = only_segment(dir.path());
    let whole_len = fs::metadata(&seg).unwrap().len();
    wal.write(&[batch(3, 4..=6)]).unwrap();
    drop(wal);
    let full = fs::read(&seg).unwrap();
    assert!(full.len() as u64 > whole_len);
    for cut in whole_len..full.len() as u64 {
        let copy = tempfile::tempdir().unwrap();
        let name = seg.file_name().unwrap();
        fs::write(copy.path().join(name), &full[..cut as usize]).unwrap();
        let mut wal = Wal::open(copy.path()).unwrap_or_else(|e| panic!("cut at byte {cut}: {e}"));
        assert_eq!(wal.load().unwrap(), expected, "cut at byte {cut}");
        assert_eq!(fs::metadata(copy.path().join(name)).unwrap().len(), whole_len, "tail truncated at {cut}");
        // The log goes on after the truncated tail.
        wal.write(&[batch(4, 4..=4)]).unwrap();
        drop(wal);
        assert_eq!(indexes(&Wal::open(copy.path()).unwrap()), vec![1, 2, 3, 4], "cut at byte {cut}");
    }
}

/// A log in 150-byte segments holding `records` one-entry records (tags and
/// indexes 1, 2, ...): several segments, rolled over by size.
fn small_segments(records: u64) -> (tempfile::TempDir, Wal) {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open_with_segment_bytes(dir.path(), 150).unwrap();
    for tag in 1..=records {
        wal.write(&[batch(tag, tag..=tag)]).unwrap();
    }
    (dir, wal)
}

/// A closed log of three one-entry records in one segment: its directory,
/// the segment, and the byte offset where the second record starts.
fn three_records() -> (tempfile::TempDir, std::path::PathBuf, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path()).unwrap();
    wal.write(&[batch(1, 1..=1)]).unwrap();
    let second_at = wal.active_segment_bytes();
    wal.write(&[batch(2, 2..=2)]).unwrap();
    wal.write(&[batch(3, 3..=3)]).unwrap();
    let seg = only_segment(dir.path());
    (dir, seg, second_at)
}

#[test]
fn a_corrupt_record_in_the_middle_is_refused_naming_file_and_offset() {
    let (dir, seg, second_at) = three_records();
    let mut bytes = fs::read(&seg).unwrap();
    let flip = second_at as usize + 12;
    bytes[flip] ^= 0x40;
    fs::write(&seg, &bytes).unwrap();
    match Wal::open(dir.path()) {
        Err(StorageError::Corrupt { location, detail }) => {
            assert!(location.contains(seg.file_name().unwrap().to_str().unwrap()), "{location}");
            assert!(location.ends_with(&format!("byte offset {second_at}")), "{location}");
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    // Nothing was truncated: the data is still there for an operator.
    assert_eq!(fs::read(&seg).unwrap(), bytes);
}

#[test]
fn a_damaged_length_in_the_middle_is_refused_not_taken_for_a_torn_tail() {
    let (dir, seg, second_at) = three_records();
    let second_at = second_at as usize;
    let mut bytes = fs::read(&seg).unwrap();
    bytes[second_at..second_at + 4].copy_from_slice(&100_000u32.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    let err = Wal::open(dir.path()).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&format!("byte offset {second_at}")), "{err}");
}

#[test]
fn a_snapshot_deletes_old_segments_and_recovery_keeps_state_above_it() {
    let (dir, mut wal) = small_segments(20);
    assert!(wal.segment_count() > 2, "segments roll over by size");
    let snapshot =
        Snapshot { index: 15, stamp: Stamp::new(15, 0), meta: Bytes::from("m"), data: Bytes::from("kv image") };
    wal.write(&[batch(21, 21..=21), WriteBatch { tag: 22, snapshot: Some(snapshot.clone()), ..Default::default() }])
        .unwrap();
    assert_eq!(wal.segment_count(), 1, "the checkpoint segment alone");
    wal.write(&[batch(23, 22..=22)]).unwrap();
    let before = wal.load().unwrap();
    drop(wal);
    let wal = Wal::open(dir.path()).unwrap();
    let after = wal.load().unwrap();
    assert_eq!(before, after);
    assert_eq!(after.snapshot, Some(snapshot));
    assert_eq!(indexes(&wal), (16..=22).collect::<Vec<_>>());
    assert_eq!(after.hard_state, Some(Bytes::from("term=23")));
    assert!(!dir.path().join("snapshot.tmp").exists());
}

#[test]
fn a_crash_after_the_snapshot_file_but_before_old_segments_go_recovers_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path()).unwrap();
    for tag in 1..=5 {
        wal.write(&[batch(tag, tag..=tag)]).unwrap();
    }
    let seg = only_segment(dir.path());
    // What the roll to the checkpoint segment leaves: the records, zeros cut off.
    let old_segment = fs::read(&seg).unwrap()[..wal.active_segment_bytes() as usize].to_vec();
    let snapshot = Snapshot { index: 3, stamp: Stamp::new(3, 0), meta: Bytes::new(), data: Bytes::from("img") };
    wal.write(&[WriteBatch { tag: 6, snapshot: Some(snapshot.clone()), ..Default::default() }]).unwrap();
    let expected = wal.load().unwrap();
    drop(wal);
    // Put the deleted segment back, as if the crash came before its deletion.
    fs::write(&seg, &old_segment).unwrap();
    let recovered = Wal::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(recovered, expected);
    assert_eq!(recovered.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 5]);
}

#[test]
fn a_corrupt_snapshot_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path()).unwrap();
    let snapshot = Snapshot { index: 3, stamp: Stamp::new(3, 0), meta: Bytes::new(), data: Bytes::from("img") };
    wal.write(&[WriteBatch { tag: 1, snapshot: Some(snapshot), ..Default::default() }]).unwrap();
    drop(wal);
    let path = dir.path().join("snapshot");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).unwrap();
    let err = Wal::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("snapshot byte offset 0"), "{err}");
}

#[test]
fn a_preallocated_segment_recovers_its_records_and_the_log_goes_on_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path()).unwrap();
    wal.write(&[batch(1, 1..=2)]).unwrap();
    wal.write(&[batch(2, 3..=3)]).unwrap();
    let seg = only_segment(dir.path());
    let records = wal.active_segment_bytes();
    assert!(fs::metadata(&seg).unwrap().len() > records, "zeros ahead of the records");
    drop(wal);
    let mut wal = Wal::open(dir.path()).unwrap();
    assert_eq!(indexes(&wal), vec![1, 2, 3]);
    assert_eq!(wal.active_segment_bytes(), records, "the next record goes right after the last one");
    wal.write(&[batch(3, 4..=4)]).unwrap();
    drop(wal);
    assert_eq!(indexes(&Wal::open(dir.path()).unwrap()), vec![1, 2, 3, 4]);
}

/// A crash during a write into preallocated space may leave any of its pages
/// unwritten (zeros), the first one with the header included.
#[test]
fn a_write_torn_inside_preallocated_space_recovers_to_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path()).unwrap();
    wal.write(&[batch(1, 1..=2)]).unwrap();
    let expected = wal.load().unwrap();
    let torn_at = wal.active_segment_bytes() as usize;
    wal.write(&[batch(2, 3..=40)]).unwrap();
    let torn_end = wal.active_segment_bytes() as usize;
    drop(wal);
    let seg = only_segment(dir.path());
    let full = fs::read(&seg).unwrap();
    let middle = (torn_at + torn_end) / 2;
    let unwritten: [(&str, std::ops::Range<usize>); 4] = [
        ("the header", torn_at..torn_at + 8),
        ("the first half", torn_at..middle),
        ("the second half", middle..torn_end),
        ("all of it", torn_at..torn_end),
    ];
    for (what, range) in unwritten {
        let copy = tempfile::tempdir().unwrap();
        let mut bytes = full.clone();
        bytes[range].fill(0);
        fs::write(copy.path().join(seg.file_name().unwrap()), &bytes).unwrap();
        let mut wal = Wal::open(copy.path()).unwrap_or_else(|e| panic!("{what} unwritten: {e}"));
        assert_eq!(wal.load().unwrap(), expected, "{what} unwritten");
        wal.write(&[batch(3, 3..=3)]).unwrap();
        drop(wal);
        assert_eq!(indexes(&Wal::open(copy.path()).unwrap()), vec![1, 2, 3], "{what} unwritten");
    }
}

#[test]
fn finished_segments_are_cut_back_to_their_records_so_only_the_newest_ends_in_zeros() {
    let (dir, wal) = small_segments(10);
    assert!(wal.segment_count() > 2);
    drop(wal);
    let mut sizes: Vec<(PathBuf, u64)> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| (p.clone(), fs::metadata(&p).unwrap().len()))
        .collect();
    sizes.sort();
    sizes.pop(); // the newest: zeros ahead of its records, if it has any
    assert!(sizes.iter().all(|(_, len)| *len < 1024), "{sizes:?}");
    // Zeros in an older segment would be refused as corruption.
    assert_eq!(indexes(&Wal::open(dir.path()).unwrap()), (1..=10).collect::<Vec<_>>());
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segs.sort();
    segs
}

/// Opening must fail as corruption, with an error that says `says`.
fn refused(dir: &Path, says: &str) {
    match Wal::open(dir) {
        Err(err @ StorageError::Corrupt { .. }) => assert!(err.to_string().contains(says), "{err}"),
        Err(other) => panic!("expected a corruption error saying '{says}', got {other}"),
        Ok(wal) => panic!("opened with {:?} entries; expected a refusal saying '{says}'", indexes(&wal)),
    }
}

#[test]
fn a_lost_only_segment_is_refused_not_taken_for_an_empty_log() {
    let (dir, seg, _) = three_records();
    fs::remove_file(&seg).unwrap();
    // Starting empty would forget the term and the vote: the node could vote twice in a term.
    refused(dir.path(), "missing");
}

#[test]
fn a_lost_newest_segment_is_refused() {
    let (dir, wal) = small_segments(10);
    drop(wal);
    let segs = segments(dir.path());
    assert!(segs.len() > 2);
    fs::remove_file(segs.last().unwrap()).unwrap();
    refused(dir.path(), "missing");
}

#[test]
fn a_lost_segment_in_the_middle_is_refused() {
    let (dir, wal) = small_segments(10);
    drop(wal);
    let segs = segments(dir.path());
    fs::remove_file(&segs[1]).unwrap();
    refused(dir.path(), segs[1].file_name().unwrap().to_str().unwrap());
}

#[test]
fn a_finished_segment_shortened_at_a_record_boundary_is_refused() {
    let (dir, wal) = small_segments(10);
    drop(wal);
    use quorum_runtime::wal::record::{encode, scan, Format, SEGMENT_MAGIC};
    let first = &segments(dir.path())[0];
    let bytes = fs::read(first).unwrap();
    // Cut the last whole record off: what is left still scans cleanly.
    let records = scan(&bytes, 1, "seg", false).unwrap().batches;
    let mut shorter = SEGMENT_MAGIC.to_vec();
    let mut format = Format::new_segment(1);
    for batch in &records[..records.len() - 1] {
        encode(batch, &mut shorter, &mut format);
    }
    assert!(scan(&shorter, 1, "seg", false).is_ok());
    fs::write(first, &shorter).unwrap();
    refused(dir.path(), "bytes");
}

#[test]
fn a_lost_snapshot_file_is_refused() {
    let (dir, mut wal) = small_segments(5);
    let snapshot = Snapshot { index: 4, stamp: Stamp::new(4, 0), meta: Bytes::new(), data: Bytes::from("img") };
    wal.write(&[WriteBatch { tag: 6, snapshot: Some(snapshot), ..Default::default() }]).unwrap();
    drop(wal);
    fs::remove_file(dir.path().join("snapshot")).unwrap();
    refused(dir.path(), "snapshot");
}

#[test]
fn a_crash_between_starting_a_segment_and_naming_it_in_the_manifest_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open_with_segment_bytes(dir.path(), 150).unwrap();
    wal.write(&[batch(1, 1..=1)]).unwrap();
    let manifest = dir.path().join("wal.manifest");
    let before_roll = fs::read(&manifest).unwrap();
    let count = wal.segment_count();
    while wal.segment_count() == count {
        let tag = indexes(&wal).len() as u64 + 1;
        wal.write(&[batch(tag, tag..=tag)]).unwrap();
    }
    let expected = wal.load().unwrap();
    drop(wal);
    // The new segment exists, the manifest still names the old one as active.
    fs::write(&manifest, before_roll).unwrap();
    assert_eq!(Wal::open(dir.path()).unwrap().load().unwrap(), expected);
}

#[test]
fn a_log_without_a_manifest_opens_and_gains_one() {
    let (dir, wal) = small_segments(6);
    let expected = wal.load().unwrap();
    drop(wal);
    fs::remove_file(dir.path().join("wal.manifest")).unwrap();
    assert_eq!(Wal::open(dir.path()).unwrap().load().unwrap(), expected);
    let segs = segments(dir.path());
    fs::remove_file(segs.last().unwrap()).unwrap();
    refused(dir.path(), "missing");
}

#[test]
fn a_manifest_that_lost_a_line_is_refused_and_no_segment_is_deleted() {
    let (dir, wal) = small_segments(10);
    drop(wal);
    let path = dir.path().join("wal.manifest");
    let text = fs::read_to_string(&path).unwrap();
    let without_first: String =
        text.lines().filter(|l| !l.starts_with("finished 1 ")).map(|l| format!("{l}\n")).collect();
    assert_ne!(text, without_first);
    fs::write(&path, without_first).unwrap();
    let count = segments(dir.path()).len();
    refused(dir.path(), "manifest");
    assert_eq!(segments(dir.path()).len(), count);
}

#[test]
fn a_log_written_before_records_were_linked_opens_and_goes_on() {
    use quorum_runtime::wal::record::{encode, Format};
    let dir = tempfile::tempdir().unwrap();
    let mut old = Vec::new();
    for tag in 1..=3 {
        encode(&batch(tag, tag..=tag), &mut old, &mut Format::Unlinked);
    }
    fs::write(dir.path().join("wal-00000000000000000001.log"), &old).unwrap();
    let mut wal = Wal::open(dir.path()).unwrap();
    assert_eq!(indexes(&wal), vec![1, 2, 3]);
    wal.write(&[batch(4, 4..=4)]).unwrap();
    drop(wal);
    assert_eq!(indexes(&Wal::open(dir.path()).unwrap()), vec![1, 2, 3, 4]);
}

#[test]
fn a_record_cut_out_of_the_middle_of_the_newest_segment_is_refused_not_a_hole() {
    let (dir, seg, second_at) = three_records();
    let mut bytes = fs::read(&seg).unwrap();
    // The records have one shape, so the second is as long as the first.
    let first_len = second_at as usize - quorum_runtime::wal::record::SEGMENT_MAGIC.len();
    let third_at = second_at as usize + first_len;
    bytes.drain(second_at as usize..third_at);
    fs::write(&seg, &bytes).unwrap();
    refused(dir.path(), "does not follow");
}
