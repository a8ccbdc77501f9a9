//! The record format of the write-ahead log, and the scan that recovers it.
//!
//! A record is `len: u32 LE | crc: u32 LE | payload`, where `payload` is a
//! postcard-encoded [`WriteBatch`] of `len` bytes and `crc` is the CRC32 of the
//! length bytes followed by the payload (so a damaged length is caught too).
//!
//! Recovery tells a *torn tail* (the last write was cut short by a crash: drop
//! it, it was never acknowledged) from *corruption* (a bad record with good
//! data after it: refuse to start, never drop committed data silently).

use quorum_core::{StorageError, WriteBatch};

/// Bytes before each record's payload.
pub const HEADER_BYTES: usize = 8;
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

/// Appends one record holding `batch` to `buf`.
pub fn encode(batch: &WriteBatch, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_BYTES]);
    let buf_after = postcard::to_extend(batch, std::mem::take(buf)).expect("encoding a WriteBatch cannot fail");
    *buf = buf_after;
    let len = u32::try_from(buf.len() - start - HEADER_BYTES).expect("a record over 4 GiB");
    let len_bytes = len.to_le_bytes();
    let crc = checksum(len_bytes, &buf[start + HEADER_BYTES..]);
    buf[start..start + 4].copy_from_slice(&len_bytes);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
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
}

/// Reads the record at `offset`: the batch and the offset after it.
fn read_at(data: &[u8], offset: usize) -> Result<(WriteBatch, usize), Bad> {
    let rest = &data[offset..];
    if rest.len() < HEADER_BYTES {
        return Err(Bad::ShortHeader);
    }
    let len_bytes: [u8; 4] = rest[..4].try_into().expect("four bytes");
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(Bad::ImpossibleLength(len));
    }
    if rest.len() < HEADER_BYTES + len {
        return Err(Bad::Overrun(len));
    }
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("four bytes"));
    let payload = &rest[HEADER_BYTES..HEADER_BYTES + len];
    if checksum(len_bytes, payload) != crc {
        return Err(Bad::Checksum);
    }
    let batch = postcard::from_bytes(payload).map_err(|e| Bad::Undecodable(e.to_string()))?;
    Ok((batch, offset + HEADER_BYTES + len))
}

/// True if some whole, valid record starts anywhere in `data[from..]`.
fn any_valid_record_after(data: &[u8], from: usize) -> bool {
    (from..data.len()).any(|offset| read_at(data, offset).is_ok())
}

/// What a segment's scan found.
#[derive(Debug)]
pub struct Scanned {
    /// Every whole record, in order.
    pub batches: Vec<WriteBatch>,
    /// Where the valid records end; bytes after this are a torn tail or
    /// preallocated zeros.
    pub valid_len: usize,
}

/// Reads every record of a segment. `last` says whether it is the newest
/// segment, the only one that may end in a torn tail.
pub fn scan(data: &[u8], file: &str, last: bool) -> Result<Scanned, StorageError> {
    let mut batches = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        match read_at(data, offset) {
            Ok((batch, next)) => {
                batches.push(batch);
                offset = next;
            }
            Err(bad) => {
                if last && is_torn_tail(data, offset, &bad) {
                    return Ok(Scanned { batches, valid_len: offset });
                }
                return Err(StorageError::Corrupt {
                    location: format!("{file} byte offset {offset}"),
                    detail: describe(&bad, data.len() - offset, last),
                });
            }
        }
    }
    Ok(Scanned { batches, valid_len: offset })
}

/// A bad record is a torn tail only if nothing valid follows it: the crash cut
/// the last write short. Anything else is damage to data once acknowledged.
///
/// The newest segment may end in preallocated zeros (see the `wal` module), so
/// "the end of the file" is where those zeros begin, and a write torn inside
/// them may have left any of its pages unwritten, the header's included.
fn is_torn_tail(data: &[u8], offset: usize, bad: &Bad) -> bool {
    let remaining = data.len() - offset;
    let zeros_from = |at: usize| data.get(at..).is_none_or(|rest| rest.iter().all(|b| *b == 0));
    match bad {
        Bad::ShortHeader => true,
        Bad::Checksum | Bad::Undecodable(_) | Bad::ImpossibleLength(_) | Bad::Overrun(_) => {
            if zeros_from(offset) {
                return true; // preallocated space, or space the write never filled
            }
            let ends_at_eof = match bad {
                Bad::Checksum | Bad::Undecodable(_) => {
                    let len = u32::from_le_bytes(data[offset..offset + 4].try_into().expect("four bytes")) as usize;
                    zeros_from(offset + HEADER_BYTES + len)
                }
                Bad::Overrun(_) => true,
                // A header page left unwritten inside preallocated space.
                Bad::ImpossibleLength(0) => true,
                Bad::ImpossibleLength(_) | Bad::ShortHeader => false,
            };
            ends_at_eof && remaining <= MAX_TAIL_SCAN_BYTES && !any_valid_record_after(data, offset + 1)
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

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        for tag in 1..=3 {
            encode(&batch(tag), &mut buf);
        }
        let scanned = scan(&buf, "seg", true).unwrap();
        assert_eq!(scanned.batches, vec![batch(1), batch(2), batch(3)]);
        assert_eq!(scanned.valid_len, buf.len());
    }

    #[test]
    fn a_zeroed_tail_is_torn_but_zeroes_in_an_older_segment_are_corrupt() {
        let mut buf = Vec::new();
        encode(&batch(1), &mut buf);
        let good = buf.len();
        buf.extend_from_slice(&[0; 100]);
        assert_eq!(scan(&buf, "seg", true).unwrap().valid_len, good);
        assert!(matches!(scan(&buf, "seg", false), Err(StorageError::Corrupt { .. })));
    }
}
