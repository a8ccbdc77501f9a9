//! Backups: the state machine's image at an applied index, in a file that
//! says what it is and catches damage.
//!
//! `QUORUM BACKUP` takes one on any node after a linearizable read, so the
//! image holds every write acknowledged before the backup was asked for
//! (`quorum admin backup FILE` writes it); `quorum restore FILE --node ADDR`
//! loads it into a running cluster, any protocol, through its client port,
//! and `quorum restore FILE --data-dir D` seeds a new node's log with it as a
//! snapshot (`Protocol::seed_snapshot`).
//!
//! File: `QRMBKUP1 | applied index: u64 LE | image length: u64 LE | image | crc32 LE`,
//! the CRC over everything before it.

const MAGIC: &[u8; 8] = b"QRMBKUP1";

/// The bytes of a backup file holding `image`, taken at `applied_index`.
pub fn encode(applied_index: u64, image: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(image.len() + 28);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&applied_index.to_le_bytes());
    out.extend_from_slice(&(image.len() as u64).to_le_bytes());
    out.extend_from_slice(image);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The applied index and image of a backup file, or why it is not one.
pub fn decode(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    let body_len = bytes.len().checked_sub(4).ok_or("not a quorum backup: too short")?;
    if bytes.len() < 28 || &bytes[..8] != MAGIC {
        return Err("not a quorum backup (no QRMBKUP1 header)".into());
    }
    let (body, crc) = bytes.split_at(body_len);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().map_err(|_| "short checksum")?) {
        return Err("the backup is damaged: its checksum does not match".into());
    }
    let number = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("eight bytes"));
    let (index, len) = (number(8), number(16));
    if len != (body.len() - 24) as u64 {
        return Err(format!("the backup is damaged: it says {len} bytes of image, it holds {}", body.len() - 24));
    }
    Ok((index, &body[24..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_round_trips_and_damage_is_refused() {
        let file = encode(42, b"image bytes");
        assert_eq!(decode(&file).unwrap(), (42, &b"image bytes"[..]));
        for at in [0, 9, 20, 30, file.len() - 1] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            assert!(decode(&bad).is_err(), "a flip at {at} passed");
        }
        assert!(decode(&file[..file.len() - 1]).is_err());
        assert!(decode(b"").is_err());
    }
}
