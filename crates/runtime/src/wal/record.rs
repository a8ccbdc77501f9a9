//! The record format of the write-ahead log, and the scan that recovers it.
//!
//! A segment starts with the 8 bytes [`SEGMENT_MAGIC`], then records
//! `len: u32 LE | crc: u32 LE | link: u32 LE | payload`, where `payload` is a
//! postcard-encoded [`WriteBatch`] of `len` bytes, `crc` is the CRC32 of the
//! length bytes followed by the payload (so a damaged length is caught too),
//! and `link` is the CRC32 of the previous record's `link` followed by this
//! record's `crc` (the first record links to the segment's number). A valid
//! record that is not where it was written — a piece of the file cut out,
//! or a record copied in from elsewhere — breaks the chain, and recovery
//! refuses it instead of returning a log with a hole in it (the fuzz target
//! for data directories found that hole). Segments written before the chain
//! have no magic and 8-byte headers; they are read as they are.
//!
//! Recovery tells a *torn tail* (the last write was cut short by a crash: drop
//! it, it was never acknowledged) from *corruption* (a bad record with good
//! data after it: refuse to start, never drop committed data silently).

use quorum_core::{StorageError, WriteBatch};

/// The first bytes of every segment in the linked format.
pub const SEGMENT_MAGIC: [u8; 8] = *b"QRMWAL02";

/// How the records of a segment are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Before the chain: `len | crc | payload`, no segment magic.
    Unlinked,
    /// `len | crc | link | payload` after [`SEGMENT_MAGIC`]; the value is the
    /// link the next record continues from.
    Linked(u32),
}

impl Format {
    /// The format a new segment numbered `number` starts in.
    pub fn new_segment(number: u64) -> Format {
        Format::Linked(crc32fast::hash(&number.to_le_bytes()))
    }

    /// The format of a segment, from its first bytes, and where its records start.
    pub fn of_segment(data: &[u8], number: u64) -> (Format, usize) {
        match data.starts_with(&SEGMENT_MAGIC) {
            true => (Format::new_segment(number), SEGMENT_MAGIC.len()),
            false => (Format::Unlinked, 0),
        }
    }

    fn header_bytes(self) -> usize {
        match self {
            Format::Unlinked => 8,
            Format::Linked(_) => 12,
        }
    }
}

fn link(previous: u32, crc: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&previous.to_le_bytes());
    hasher.update(&crc.to_le_bytes());
    hasher.finalize()
}

/// The most bytes before a record's payload.
pub const HEADER_BYTES: usize = 12;
/// The largest payload a record may have; a larger length field is damage.
pub const MAX_RECORD_BYTES: usize = 256 << 20;
/// A bad record followed by more than this many bytes is never taken for a torn tail
/// without proof (scanning further for good records would be too slow to be worth it).
const MAX_TAIL_SCAN_BYTES: usize = 4 << 20;

fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one record holding `batch` to `buf`, in `format`, which moves on
/// to the link the next record continues from.
pub fn encode(batch: &WriteBatch, buf: &mut Vec<u8>, format: &mut Format) {
    let start = buf.len();
    let header = format.header_bytes();
    buf.extend_from_slice(&[0; HEADER_BYTES][..header]);
    let buf_after = postcard::to_extend(batch, std::mem::take(buf)).expect("encoding a WriteBatch cannot fail");
    *buf = buf_after;
    let len = u32::try_from(buf.len() - start - header).expect("a record over 4 GiB");
    let len_bytes = len.to_le_bytes();
    let crc = checksum(len_bytes, &buf[start + header..]);
    buf[start..start + 4].copy_from_slice(&len_bytes);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    if let Format::Linked(previous) = format {
        let next = link(*previous, crc);
        buf[start + 8..start + 12].copy_from_slice(&next.to_le_bytes());
        *format = Format::Linked(next);
    }
}

/// Why the record at some offset could not be read.
#[derive(Debug, PartialEq, Eq)]
enum Bad {
    /// Fewer bytes than a header remain.
    ShortHeader,
    /// The length field runs past the end of the file.
    Overrun(usize),
    /// The length field is zero or absurd.
    ImpossibleLength(usize),
    /// The checksum does not match.
    Checksum,
    /// The checksum matches but the payload is not a batch.
    Undecodable(String),
    /// A whole, valid record that does not follow the one before it; its stored link.
    OutOfPlace(u32),
}

/// Reads the record at `offset` (its own checksum, not its link): the
/// batch, the offset after it, its checksum and its link.
fn read_at(data: &[u8], offset: usize, format: Format) -> Result<(WriteBatch, usize, u32, u32), Bad> {
    let header = format.header_bytes();
    let rest = &data[offset..];
    if rest.len() < header {
        return Err(Bad::ShortHeader);
    }
    let len_bytes: [u8; 4] = rest[..4].try_into().expect("four bytes");
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(Bad::ImpossibleLength(len));
    }
    if rest.len() < header + len {
        return Err(Bad::Overrun(len));
    }
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("four bytes"));
    let stored_link = match format {
        Format::Linked(_) => u32::from_le_bytes(rest[8..12].try_into().expect("four bytes")),
        Format::Unlinked => 0,
    };
    let payload = &rest[header..header + len];
    if checksum(len_bytes, payload) != crc {
        return Err(Bad::Checksum);
    }
    let batch = postcard::from_bytes(payload).map_err(|e| Bad::Undecodable(e.to_string()))?;
    Ok((batch, offset + header + len, crc, stored_link))
}

/// True if some whole, valid record starts anywhere in `data[from..]`.
fn any_valid_record_after(data: &[u8], from: usize, format: Format) -> bool {
    (from..data.len()).any(|offset| read_at(data, offset, format).is_ok())
}

/// What a segment's scan found.
#[derive(Debug)]
pub struct Scanned {
    /// Every whole record, in order.
    pub batches: Vec<WriteBatch>,
    /// Where the valid records end; bytes after this are a torn tail or
    /// preallocated zeros.
    pub valid_len: usize,
    /// The format a record appended after `valid_len` continues in.
    pub format: Format,
}

/// Reads every record of segment `number`. `last` says whether it is the
/// newest segment, the only one that may end in a torn tail.
pub fn scan(data: &[u8], number: u64, file: &str, last: bool) -> Result<Scanned, StorageError> {
    let (mut format, mut offset) = Format::of_segment(data, number);
    let mut batches = Vec::new();
    while offset < data.len() {
        let read = read_at(data, offset, format).and_then(|(batch, next, crc, stored_link)| match format {
            Format::Linked(previous) if stored_link != link(previous, crc) => Err(Bad::OutOfPlace(stored_link)),
            Format::Linked(_) => Ok((batch, next, Format::Linked(stored_link))),
            Format::Unlinked => Ok((batch, next, Format::Unlinked)),
        });
        match read {
            Ok((batch, next, after)) => {
                batches.push(batch);
                offset = next;
                format = after;
            }
            Err(bad) => {
                if last && is_torn_tail(data, offset, &bad, format) {
                    return Ok(Scanned { batches, valid_len: offset, format });
                }
                return Err(StorageError::Corrupt {
                    location: format!("{file} byte offset {offset}"),
                    detail: describe(&bad, data.len() - offset, last),
                });
            }
        }
    }
    Ok(Scanned { batches, valid_len: offset, format })
}

/// A bad record is a torn tail only if nothing valid follows it: the crash cut
/// the last write short. Anything else is damage to data once acknowledged.
///
/// The newest segment may end in preallocated zeros (see the `wal` module), so
/// "the end of the file" is where those zeros begin, and a write torn inside
/// them may have left any of its pages unwritten, the header's included.
fn is_torn_tail(data: &[u8], offset: usize, bad: &Bad, format: Format) -> bool {
    let remaining = data.len() - offset;
    let zeros_from = |at: usize| data.get(at..).is_none_or(|rest| rest.iter().all(|b| *b == 0));
    match bad {
        Bad::ShortHeader => true,
        // A whole record whose link was written wrong was put there by
        // something other than this log: cut-out bytes, a copied record.
        // Only a link never written (zeros: a torn write that skipped the
        // page holding it) may be a tail.
        Bad::OutOfPlace(stored) if *stored != 0 => false,
        Bad::Checksum | Bad::Undecodable(_) | Bad::ImpossibleLength(_) | Bad::Overrun(_) | Bad::OutOfPlace(_) => {
            if zeros_from(offset) {
                return true; // preallocated space, or space the write never filled
            }
            let ends_at_eof = match bad {
                Bad::Checksum | Bad::Undecodable(_) | Bad::OutOfPlace(_) => {
                    let len = u32::from_le_bytes(data[offset..offset + 4].try_into().expect("four bytes")) as usize;
                    zeros_from(offset + format.header_bytes() + len)
                }
                Bad::Overrun(_) => true,
                // A header page left unwritten inside preallocated space.
                Bad::ImpossibleLength(0) => true,
                Bad::ImpossibleLength(_) | Bad::ShortHeader => false,
            };
            ends_at_eof && remaining <= MAX_TAIL_SCAN_BYTES && !any_valid_record_after(data, offset + 1, format)
        }
    }
}

fn describe(bad: &Bad, remaining: usize, last: bool) -> String {
    let what = match bad {
        Bad::ShortHeader => "the segment ends inside a record header".to_string(),
        Bad::Overrun(len) => format!("the record claims {len} bytes but only {remaining} remain"),
        Bad::ImpossibleLength(len) => format!("impossible record length {len}"),
        Bad::Checksum => "checksum mismatch".to_string(),
        Bad::Undecodable(e) => format!("checksum matches but the batch does not decode: {e}"),
        Bad::OutOfPlace(_) => {
            "a whole record that does not follow the one before it (bytes cut out or copied in)".into()
        }
    };
    let why = if last {
        "valid data follows it, so this is not a torn tail"
    } else {
        "it is not in the newest segment, so it is not a torn tail"
    };
    format!("{what}; {why}; refusing to start rather than drop committed data (restore this node's data directory from a peer)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::{Bytes, Entry, Stamp};

    fn batch(tag: u64) -> WriteBatch {
        WriteBatch {
            tag,
            hard_state: Some(Bytes::from(vec![tag as u8; 3])),
            entries: vec![Entry::noop(tag, Stamp::new(1, 0))],
            ..Default::default()
        }
    }

    /// A linked segment numbered 7 holding `tags`.
    fn segment(tags: std::ops::RangeInclusive<u64>) -> Vec<u8> {
        let mut buf = SEGMENT_MAGIC.to_vec();
        let mut format = Format::new_segment(7);
        for tag in tags {
            encode(&batch(tag), &mut buf, &mut format);
        }
        buf
    }

    #[test]
    fn records_round_trip_in_both_formats() {
        let buf = segment(1..=3);
        let scanned = scan(&buf, 7, "seg", true).unwrap();
        assert_eq!(scanned.batches, vec![batch(1), batch(2), batch(3)]);
        assert_eq!(scanned.valid_len, buf.len());
        let mut old = Vec::new();
        for tag in 1..=3 {
            encode(&batch(tag), &mut old, &mut Format::Unlinked);
        }
        assert_eq!(scan(&old, 7, "seg", false).unwrap().batches, vec![batch(1), batch(2), batch(3)]);
        // Appending goes on from where the scan stopped.
        let mut format = scanned.format;
        let mut more = buf.clone();
        encode(&batch(4), &mut more, &mut format);
        assert_eq!(scan(&more, 7, "seg", false).unwrap().batches.len(), 4);
    }

    #[test]
    fn a_zeroed_tail_is_torn_but_zeroes_in_an_older_segment_are_corrupt() {
        let mut buf = segment(1..=1);
        let good = buf.len();
        buf.extend_from_slice(&[0; 100]);
        assert_eq!(scan(&buf, 7, "seg", true).unwrap().valid_len, good);
        assert!(matches!(scan(&buf, 7, "seg", false), Err(StorageError::Corrupt { .. })));
    }

    #[test]
    fn a_record_cut_out_or_copied_in_breaks_the_chain_even_at_the_end() {
        let whole = segment(1..=3);
        let second = SEGMENT_MAGIC.len() + (whole.len() - SEGMENT_MAGIC.len()) / 3;
        let mut cut = whole.clone();
        cut.drain(SEGMENT_MAGIC.len()..second); // the first record gone: the rest are valid but out of place
        let err = scan(&cut, 7, "seg", true).unwrap_err().to_string();
        assert!(err.contains("does not follow"), "{err}");
        let mut copied = whole.clone();
        copied.extend_from_slice(&whole[SEGMENT_MAGIC.len()..second]); // record 1 again, at the end
        assert!(scan(&copied, 7, "seg", true).unwrap_err().to_string().contains("does not follow"));
        // A last record whose link was never written (a torn write) is a tail: cut off.
        let mut torn = whole.clone();
        let link_at = second + 8;
        torn[link_at..link_at + 4].copy_from_slice(&[0; 4]);
        // Records 2 and 3 stay: record 2 is out of place with a valid record after it.
        assert!(scan(&torn, 7, "seg", true).is_err());
        let mut torn_last = segment(1..=2);
        let last_at = SEGMENT_MAGIC.len() + (torn_last.len() - SEGMENT_MAGIC.len()) / 2;
        torn_last[last_at + 8..last_at + 12].copy_from_slice(&[0; 4]);
        let scanned = scan(&torn_last, 7, "seg", true).unwrap();
        assert_eq!((scanned.batches.len(), scanned.valid_len), (1, last_at));
        // The same records in segment 8 are not where they were written either.
        assert!(scan(&whole, 8, "seg", false).is_err());
    }
}
