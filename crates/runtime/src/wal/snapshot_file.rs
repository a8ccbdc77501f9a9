//! The snapshot file: written to a temporary name, synced, then renamed over
//! the old one, so a crash leaves either the old snapshot or the new one whole.

use super::{io_error, replace_file};
use quorum_core::{Snapshot, StorageError};
use std::fs;
use std::path::Path;

const FILE: &str = "snapshot";

/// Writes `snapshot` durably, replacing the previous one.
pub fn write(dir: &Path, snapshot: &Snapshot) -> Result<(), StorageError> {
    let payload = postcard::to_allocvec(snapshot).expect("encoding a Snapshot cannot fail");
    let len = u32::try_from(payload.len()).map_err(|_| StorageError::Io {
        context: "snapshot over 4 GiB".into(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&payload);
    let mut bytes = Vec::with_capacity(payload.len() + 8);
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&hasher.finalize().to_le_bytes());
    bytes.extend_from_slice(&payload);
    replace_file(dir, FILE, &bytes)
}

/// Reads the snapshot, if one was ever written. A damaged one is an error:
/// the log entries it replaced are gone, so there is nothing to fall back on.
pub fn read(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    let path = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e, "reading", &path)),
    };
    let corrupt =
        |detail: String| StorageError::Corrupt { location: format!("{} byte offset 0", path.display()), detail };
    if bytes.len() < 8 {
        return Err(corrupt(format!("the file is {} bytes, shorter than its header", bytes.len())));
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("four bytes")) as usize;
    if bytes.len() != 8 + len {
        return Err(corrupt(format!("header says {len} bytes, file holds {}", bytes.len() - 8)));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..4]);
    hasher.update(&bytes[8..]);
    if hasher.finalize() != u32::from_le_bytes(bytes[4..8].try_into().expect("four bytes")) {
        return Err(corrupt("checksum mismatch".into()));
    }
    postcard::from_bytes(&bytes[8..]).map(Some).map_err(|e| corrupt(format!("does not decode: {e}")))
}
