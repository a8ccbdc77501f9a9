//! What the read-modify-write commands compute from a key's value: pure
//! functions of the value read, shared by the commands run alone (a
//! compare-and-set from the value read, `Session::update`) and inside
//! `MULTI` / `EXEC` (on the values the transaction read).

use super::{old_or_null, Step, NOT_AN_INTEGER};
use crate::reply::Reply;
use bytes::Bytes;
use quorum_core::Ttl;

const NOT_A_FLOAT: &str = "ERR value is not a valid float";

/// `SET`'s options that change what it does.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SetOptions {
    /// Only if the key holds no value.
    pub nx: bool,
    /// Only if the key holds a value.
    pub xx: bool,
    /// Answer the old value.
    pub get: bool,
    /// `KEEPTTL`: the key keeps its deadline.
    pub keep_ttl: bool,
    /// `EX | PX` (milliseconds from the leader's clock, `true`) or `EXAT |
    /// PXAT` (milliseconds since the Unix epoch, `false`).
    pub expire: Option<(u64, bool)>,
}

impl SetOptions {
    /// What the write does to the key's deadline: `None` keeps it.
    pub fn ttl(&self) -> Option<Ttl> {
        match (self.keep_ttl, self.expire) {
            (true, _) => None,
            (false, Some((ms, true))) => Some(Ttl::In(ms)),
            (false, Some((at, false))) => Some(Ttl::At(at)),
            (false, None) => Some(Ttl::Persist),
        }
    }
}

/// Parses `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms |
/// KEEPTTL]`'s options (`args` whole).
pub(super) fn set_options(args: &[Bytes]) -> Result<SetOptions, Reply> {
    let syntax = || Reply::Error("ERR syntax error".into());
    let mut o = SetOptions::default();
    let mut expiry_given = false;
    let mut i = 3;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        match option.as_slice() {
            b"NX" => o.nx = true,
            b"XX" => o.xx = true,
            b"GET" => o.get = true,
            b"KEEPTTL" if !expiry_given => {
                o.keep_ttl = true;
                expiry_given = true;
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !expiry_given => {
                let value = args.get(i + 1).ok_or_else(syntax)?;
                let n = super::parse_i64(value).ok_or_else(|| Reply::Error(NOT_AN_INTEGER.into()))?;
                let (unit, relative) = time_unit(&option);
                let ms = millis(n, unit).filter(|_| n > 0);
                let ms = ms.ok_or_else(|| Reply::Error("ERR invalid expire time in 'set' command".into()))?;
                o.expire = Some((ms, relative));
                expiry_given = true;
                i += 1;
            }
            _ => return Err(syntax()),
        }
        i += 1;
    }
    if o.nx && o.xx {
        return Err(syntax());
    }
    Ok(o)
}

/// `n` seconds (`unit` 1000) or milliseconds (`unit` 1) in milliseconds
/// (0 for a time before 0); `None` past what Redis accepts.
fn millis(n: i64, unit: i64) -> Option<u64> {
    let ms = i128::from(n) * i128::from(unit);
    (ms <= i128::from(i64::MAX)).then(|| ms.max(0) as u64)
}

/// The unit of a time named by `word` (upper case: `EX`, `PXAT`, `EXPIRE`,
/// `PEXPIREAT`, `SETEX`...): milliseconds if it starts with `P`, else
/// seconds; an absolute time (since the Unix epoch) if it ends with `AT`,
/// else one relative to the leader's clock.
fn time_unit(word: &[u8]) -> (i64, bool) {
    (if word.starts_with(b"P") { 1 } else { 1000 }, !word.ends_with(b"AT"))
}

/// The deadline `n` names in the unit of `word` (see `time_unit`); `None`
/// past what Redis accepts. A relative time of 0 or less is a deadline
/// already past (the key goes at once).
pub(super) fn expire_ttl(word: &[u8], n: i64) -> Option<Ttl> {
    let (unit, relative) = time_unit(word);
    let ms = millis(n, unit)?;
    Some(match relative {
        true if ms > 0 => Ttl::In(ms),
        true => Ttl::At(0),
        false => Ttl::At(ms),
    })
}

/// `SETEX key seconds value` and `PSETEX key milliseconds value`'s
/// options: those of `SET` with `EX` or `PX`.
pub(super) fn setex_options(name: &str, time: &[u8]) -> Result<SetOptions, Reply> {
    let n = super::parse_i64(time).ok_or_else(|| Reply::Error(NOT_AN_INTEGER.into()))?;
    match expire_ttl(name.as_bytes(), n) {
        Some(Ttl::In(ms)) if n > 0 => Ok(SetOptions { expire: Some((ms, true)), ..Default::default() }),
        _ => Err(Reply::Error(format!("ERR invalid expire time in '{}' command", name.to_ascii_lowercase()))),
    }
}

/// `SET key value` with options, on the value read.
pub(super) fn set(current: Option<&Bytes>, value: &Bytes, o: SetOptions) -> Step {
    let set = current.map_or(!o.xx, |_| !o.nx);
    if set {
        let answer = if o.get { current.cloned().map_or(Reply::Null, Reply::Bulk) } else { Reply::ok() };
        Step::Write(value.clone(), answer)
    } else {
        Step::Answer(old_or_null(o.get, current))
    }
}

/// `INCRBY` and its kin.
pub(super) fn incr(current: Option<&Bytes>, by: i64) -> Result<Step, Reply> {
    let old = current.map_or(Some(0), |v| super::parse_i64(v)).ok_or_else(|| Reply::Error(NOT_AN_INTEGER.into()))?;
    let new = old.checked_add(by).ok_or_else(|| Reply::Error("ERR increment or decrement would overflow".into()))?;
    Ok(Step::Write(Bytes::from(new.to_string()), Reply::Integer(new)))
}

/// `APPEND`: the joined value; answers the new length.
pub(super) fn append(current: Option<&Bytes>, suffix: &Bytes) -> Step {
    let mut joined = current.map_or_else(Vec::new, |v| v.to_vec());
    joined.extend_from_slice(suffix);
    let len = joined.len() as i64;
    Step::Write(Bytes::from(joined), Reply::Integer(len))
}

/// `GETSET`: the new value; answers the old one.
pub(super) fn getset(current: Option<&Bytes>, value: &Bytes) -> Step {
    Step::Write(value.clone(), old_or_null(true, current))
}

/// `SETRANGE`: overwrite from `offset`, padding with zero bytes; answers the new length.
pub(super) fn setrange(current: Option<&Bytes>, offset: usize, patch: &Bytes) -> Step {
    let mut value = current.map_or_else(Vec::new, |v| v.to_vec());
    if patch.is_empty() {
        return Step::Answer(Reply::Integer(value.len() as i64)); // Redis writes nothing
    }
    let end = offset + patch.len();
    if value.len() < end {
        value.resize(end, 0);
    }
    value[offset..end].copy_from_slice(patch);
    let len = value.len() as i64;
    Step::Write(Bytes::from(value), Reply::Integer(len))
}

/// `SETRANGE`'s offset, checked.
pub(super) fn setrange_offset(offset: &[u8], patch_len: usize, max_len: usize) -> Result<usize, Reply> {
    let offset = match super::parse_i64(offset) {
        Some(o) if o >= 0 => o as usize,
        _ => return Err(Reply::Error("ERR offset is out of range".into())),
    };
    if offset.saturating_add(patch_len) > max_len {
        return Err(Reply::Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)".into()));
    }
    Ok(offset)
}

/// `INCRBYFLOAT`: the sum as a 64-bit float (Redis uses an 80-bit long
/// double, so the last digits of a long fraction may differ), written
/// without an exponent or trailing zeros; answers it.
pub(super) fn incr_float(current: Option<&Bytes>, by: &[u8]) -> Result<Step, Reply> {
    let by = parse_f64(by).ok_or_else(|| Reply::Error(NOT_A_FLOAT.into()))?;
    let old = match current {
        None => 0.0,
        Some(v) => parse_f64(v).ok_or_else(|| Reply::Error(NOT_A_FLOAT.into()))?,
    };
    let new = old + by;
    if !new.is_finite() {
        return Err(Reply::Error("ERR increment would produce NaN or Infinity".into()));
    }
    let text = Bytes::from(format_float(new));
    Ok(Step::Write(text.clone(), Reply::Bulk(text)))
}

/// Redis's `GETRANGE` arithmetic: inclusive, negative from the end, clamped.
pub(super) fn substring(value: &[u8], start: i64, end: i64) -> Bytes {
    let len = value.len() as i64;
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (clamp(start), clamp(end).min(len - 1));
    if len == 0 || start > end {
        return Bytes::new();
    }
    Bytes::copy_from_slice(&value[start as usize..=end as usize])
}

/// A finite float as Redis reads one (no NaN, no infinity, no spaces).
fn parse_f64(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Plain decimal notation, shortest form that reads back the same: `10.5`, `3`, `0.0001`.
fn format_float(f: f64) -> String {
    let text = format!("{f}");
    if text == "-0" {
        "0".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_clamps_as_redis_does() {
        let v = b"This is a string";
        assert_eq!(&substring(v, 0, 3)[..], b"This");
        assert_eq!(&substring(v, -3, -1)[..], b"ing");
        assert_eq!(&substring(v, 0, -1)[..], &v[..]);
        assert_eq!(&substring(v, 10, 100)[..], b"string");
        assert_eq!(&substring(v, 5, 3)[..], b"");
        assert_eq!(&substring(b"", 0, -1)[..], b"");
        assert_eq!(&substring(v, -100, 2)[..], b"Thi");
    }

    #[test]
    fn floats_read_and_print_as_redis_clients_expect() {
        assert_eq!(parse_f64(b"10.5"), Some(10.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"inf"), None);
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(format_float(10.5 + 0.1), "10.6");
        assert_eq!(format_float(5000.0 + 200.0), "5200");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(1e-5), "0.00001");
    }
}
