//! String commands that touch several keys at one instant, or read and
//! rewrite part of a value: `MSET`, `MSETNX`, `GETDEL`, `RENAME`,
//! `GETRANGE`, `SETRANGE`, `INCRBYFLOAT`. The multi-key ones are one
//! [`KvOp::Txn`] log entry each: every key changes at the same index, or none.

use super::{parse_i64, Session, Step};
use crate::reply::Reply;
use bytes::Bytes;
use quorum_core::KvOp;

/// The longest value `SETRANGE` may build (Redis's limit; a value must also
/// fit in one replicated command, which `run_op` checks before proposing).
const MAX_STRING_LEN: usize = 512 << 20;

impl Session {
    /// `MSET k v [k v ...]` (`nx`: `MSETNX`, only if no key is set): one
    /// transaction, so a reader sees all the keys set or none.
    pub(super) async fn mset(&mut self, name: &str, pairs: &[Bytes], nx: bool) -> Reply {
        if pairs.is_empty() || pairs.len() % 2 != 0 {
            return Reply::Error(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()));
        }
        let writes: Vec<(Bytes, Option<Bytes>)> =
            pairs.chunks(2).map(|kv| (kv[0].clone(), Some(kv[1].clone()))).collect();
        let checks = if nx { writes.iter().map(|(k, _)| (k.clone(), None)).collect() } else { Vec::new() };
        match self.run_op(KvOp::Txn { checks, writes }).await {
            Reply::Integer(1) if !nx => Reply::ok(),
            other => other,
        }
    }

    /// `GETDEL key`: the value, the key deleted at the same index.
    pub(super) async fn getdel(&mut self, key: &Bytes) -> Reply {
        let give_up = tokio::time::Instant::now() + self.config.retry_for;
        loop {
            let value = match self.read(key).await {
                Ok(Some(value)) => value,
                Ok(None) => return Reply::Null,
                Err(error) => return error,
            };
            let op = KvOp::Txn { checks: vec![(key.clone(), Some(value.clone()))], writes: vec![(key.clone(), None)] };
            match self.checked(op, give_up).await {
                Ok(true) => return Reply::Bulk(value),
                Ok(false) => {}
                Err(error) => return error,
            }
        }
    }

    /// `RENAME from to`: `to` takes `from`'s value and `from` goes, at one index.
    pub(super) async fn rename(&mut self, from: &Bytes, to: &Bytes) -> Reply {
        let give_up = tokio::time::Instant::now() + self.config.retry_for;
        loop {
            let value = match self.read(from).await {
                Ok(Some(value)) => value,
                Ok(None) => return Reply::Error("ERR no such key".into()),
                Err(error) => return error,
            };
            if from == to {
                return Reply::ok(); // as Redis: nothing changes
            }
            let checks = vec![(from.clone(), Some(value.clone()))];
            let writes = vec![(from.clone(), None), (to.clone(), Some(value))];
            match self.checked(KvOp::Txn { checks, writes }, give_up).await {
                Ok(true) => return Reply::ok(),
                Ok(false) => {}
                Err(error) => return error,
            }
        }
    }

    /// Proposes a transaction checked against values just read: `Ok(true)`
    /// if it took, `Ok(false)` if another client changed a key first (read
    /// again), the error to answer otherwise or once `give_up` has passed.
    async fn checked(&mut self, op: KvOp, give_up: tokio::time::Instant) -> Result<bool, Reply> {
        match self.run_op(op).await {
            Reply::Integer(1) => Ok(true),
            Reply::Integer(_) if tokio::time::Instant::now() < give_up => Ok(false),
            Reply::Integer(_) => Err(Reply::Error("TRYAGAIN the keys kept changing under this command".into())),
            error => Err(error),
        }
    }

    /// `GETRANGE key start end`: the bytes from `start` to `end` inclusive,
    /// negative offsets counting from the end, as Redis clamps them.
    pub(super) async fn getrange(&mut self, key: &Bytes, start: &Bytes, end: &Bytes) -> Reply {
        let (Some(start), Some(end)) = (parse_i64(start), parse_i64(end)) else {
            return Reply::Error(super::NOT_AN_INTEGER.into());
        };
        match self.read(key).await {
            Ok(value) => Reply::Bulk(substring(&value.unwrap_or_default(), start, end)),
            Err(error) => error,
        }
    }

    /// `SETRANGE key offset value`: overwrite from `offset`, padding with
    /// zero bytes; the new length.
    pub(super) async fn setrange(&mut self, key: &Bytes, offset: &Bytes, patch: &Bytes) -> Reply {
        let offset = match parse_i64(offset) {
            Some(o) if o >= 0 => o as usize,
            _ => return Reply::Error("ERR offset is out of range".into()),
        };
        if offset.saturating_add(patch.len()) > MAX_STRING_LEN {
            return Reply::Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)".into());
        }
        let patch = patch.clone();
        self.update(key, move |current| {
            let mut value = current.map_or_else(Vec::new, |v| v.to_vec());
            if patch.is_empty() {
                return Ok(Step::Answer(Reply::Integer(value.len() as i64))); // Redis writes nothing
            }
            let end = offset + patch.len();
            if value.len() < end {
                value.resize(end, 0);
            }
            value[offset..end].copy_from_slice(&patch);
            let len = value.len() as i64;
            Ok(Step::Write(Bytes::from(value), Reply::Integer(len)))
        })
        .await
    }

    /// `INCRBYFLOAT key increment`: the sum as a 64-bit float (Redis uses
    /// an 80-bit long double, so the last digits of a long fraction may
    /// differ), written without an exponent or trailing zeros.
    pub(super) async fn incr_by_float(&mut self, key: &Bytes, by: &Bytes) -> Reply {
        const NOT_A_FLOAT: &str = "ERR value is not a valid float";
        let Some(by) = parse_f64(by) else { return Reply::Error(NOT_A_FLOAT.into()) };
        self.update(key, |current| {
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
        })
        .await
    }
}

/// Redis's `GETRANGE` arithmetic.
fn substring(value: &[u8], start: i64, end: i64) -> Bytes {
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
