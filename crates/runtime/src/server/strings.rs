//! String commands that touch several keys at one instant, or read and
//! rewrite part of a value: `MSET`, `MSETNX`, `GETDEL`, `RENAME`,
//! `GETRANGE`, `SETRANGE`, `INCRBYFLOAT`. The multi-key ones are one
//! [`KvOp::Txn`] log entry each: every key changes at the same index, or none.

use super::{ops, parse_i64, Session};
use crate::reply::Reply;
use bytes::Bytes;
use quorum_core::{KvOp, KvResult, Ttl};

/// The longest value `SETRANGE` may build (Redis's limit; a value must also
/// fit in one replicated command, which `run_op` checks before proposing).
pub(super) const MAX_STRING_LEN: usize = 512 << 20;

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
        // As `SET` does, each key loses any deadline it had.
        let ttls = writes.iter().map(|(k, _)| (k.clone(), Ttl::Persist)).collect();
        match self.run_op(KvOp::Txn { checks, writes, ttls, now: 0 }).await {
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
            let checks = vec![(key.clone(), Some(value.clone()))];
            let op = KvOp::Txn { checks, writes: vec![(key.clone(), None)], ttls: Vec::new(), now: 0 };
            match self.checked(op, give_up).await {
                Ok(true) => return Reply::Bulk(value),
                Ok(false) => {}
                Err(error) => return error,
            }
        }
    }

    /// `RENAME from to` (`nx`: `RENAMENX`, only if `to` does not exist):
    /// `to` takes `from`'s value and deadline and `from` goes, at one index.
    pub(super) async fn rename(&mut self, from: &Bytes, to: &Bytes, nx: bool) -> Reply {
        let give_up = tokio::time::Instant::now() + self.config.retry_for;
        let done = if nx { Reply::Integer(1) } else { Reply::ok() };
        loop {
            let value = match self.read(from).await {
                Ok(Some(value)) => value,
                Ok(None) => return Reply::Error("ERR no such key".into()),
                Err(error) => return error,
            };
            if from == to {
                // As Redis: nothing changes.
                return if nx { Reply::Integer(0) } else { Reply::ok() };
            }
            let mut checks = vec![(from.clone(), Some(value.clone()))];
            if nx {
                match self.run_kv(KvOp::Deadline { key: to.clone() }).await {
                    Ok(KvResult::Deadline { exists: true, .. }) => return Reply::Integer(0),
                    Ok(_) => checks.push((to.clone(), None)),
                    Err(error) => return error,
                }
            }
            let writes = vec![(from.clone(), None), (to.clone(), Some(value))];
            let ttls = vec![(to.clone(), Ttl::From(from.clone()))];
            match self.checked(KvOp::Txn { checks, writes, ttls, now: 0 }, give_up).await {
                Ok(true) => return done,
                Ok(false) => {}
                Err(error) => return error,
            }
        }
    }

    /// `GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]`: the value,
    /// and the deadline changed at one index, checked against the value read.
    pub(super) async fn getex(&mut self, args: &[Bytes]) -> Reply {
        let ttl = match args.get(2).map(|o| o.to_ascii_uppercase()).as_deref() {
            None if args.len() == 2 => None,
            Some(b"PERSIST") if args.len() == 3 => Some(Ttl::Persist),
            Some(unit @ (b"EX" | b"PX" | b"EXAT" | b"PXAT")) if args.len() == 4 => {
                let Some(n) = parse_i64(&args[3]) else { return Reply::Error(super::NOT_AN_INTEGER.into()) };
                match ops::expire_ttl(unit, n) {
                    Some(ttl) if n > 0 => Some(ttl),
                    _ => return Reply::Error("ERR invalid expire time in 'getex' command".into()),
                }
            }
            _ => return Reply::Error("ERR syntax error".into()),
        };
        let give_up = tokio::time::Instant::now() + self.config.retry_for;
        loop {
            let value = match self.read(&args[1]).await {
                Ok(Some(value)) => value,
                Ok(None) => return Reply::Null,
                Err(error) => return error,
            };
            let Some(ttl) = ttl.clone() else { return Reply::Bulk(value) };
            let key = args[1].clone();
            let checks = vec![(key.clone(), Some(value.clone()))];
            let op = KvOp::Txn { checks, writes: vec![], ttls: vec![(key, ttl)], now: crate::node::unix_millis() };
            match self.checked(op, give_up).await {
                Ok(true) => return Reply::Bulk(value),
                Ok(false) => {}
                Err(error) => return error,
            }
        }
    }

    /// Proposes a transaction checked against values just read: `Ok(true)`
    /// if it took, `Ok(false)` if another client changed a key first (read
    /// again), the error to answer otherwise or once `give_up` has passed.
    pub(super) async fn checked(&mut self, op: KvOp, give_up: tokio::time::Instant) -> Result<bool, Reply> {
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
            Ok(value) => Reply::Bulk(ops::substring(&value.unwrap_or_default(), start, end)),
            Err(error) => error,
        }
    }

    /// `SETRANGE key offset value`: overwrite from `offset`, padding with
    /// zero bytes; the new length.
    pub(super) async fn setrange(&mut self, key: &Bytes, offset: &Bytes, patch: &Bytes) -> Reply {
        let offset = match ops::setrange_offset(offset, patch.len(), MAX_STRING_LEN) {
            Ok(offset) => offset,
            Err(error) => return error,
        };
        self.update(key, |current| Ok(ops::setrange(current, offset, patch))).await
    }

    /// `INCRBYFLOAT key increment` (see `ops::incr_float`).
    pub(super) async fn incr_by_float(&mut self, key: &Bytes, by: &Bytes) -> Reply {
        self.update(key, |current| ops::incr_float(current, by)).await
    }
}
