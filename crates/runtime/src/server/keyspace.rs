//! Commands over the whole keyspace: `SCAN`, `KEYS`, `FLUSHDB` / `FLUSHALL`.
//! A scan page is a read like `GET` ([`KvOp::Scan`], linearizable where the
//! protocol reads linearizably); a flush is one log entry ([`KvOp::Clear`]).

use super::{parse_i64, Session};
use crate::reply::Reply;
use bytes::Bytes;
use quorum_core::{KeyKind, KvOp};

impl Session {
    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]`: a page of keys
    /// and the cursor to go on from (`0`: done). Keys present for the whole
    /// scan are returned once each.
    pub(super) async fn scan(&mut self, args: &[Bytes]) -> Reply {
        let cursor = match std::str::from_utf8(&args[1]).ok().and_then(|c| c.parse::<u64>().ok()) {
            Some(cursor) => cursor,
            None => return Reply::Error("ERR invalid cursor".into()),
        };
        // `kind`: `None` any kind; `Some(None)` a kind no key holds (lists...).
        let (mut count, mut pattern, mut kind) = (10u32, None, None);
        let mut options = args[2..].chunks(2);
        for option in options.by_ref() {
            let [name, value] = option else { return Reply::Error("ERR syntax error".into()) };
            match name.to_ascii_uppercase().as_slice() {
                b"MATCH" => pattern = Some(value.clone()),
                b"COUNT" => match parse_i64(value) {
                    Some(n) if n >= 1 => count = n.min(i64::from(u32::MAX)) as u32,
                    _ => return Reply::Error("ERR value is out of range, must be positive".into()),
                },
                b"TYPE" => {
                    kind = Some(match value.to_ascii_lowercase().as_slice() {
                        b"string" => Some(KeyKind::String),
                        b"hash" => Some(KeyKind::Hash),
                        _ => None,
                    })
                }
                _ => return Reply::Error("ERR syntax error".into()),
            }
        }
        match self.run_op(KvOp::Scan { cursor, count, pattern, kind: kind.flatten() }).await {
            Reply::Array(mut page) if kind == Some(None) && page.len() == 2 => {
                page[1] = Reply::Array(Vec::new());
                Reply::Array(page)
            }
            other => other,
        }
    }

    /// `KEYS pattern`: every matching key, in one read (as in Redis, a long
    /// answer on a large store; `SCAN` pages it).
    pub(super) async fn keys(&mut self, pattern: &Bytes) -> Reply {
        match self.run_op(KvOp::Scan { cursor: 0, count: u32::MAX, pattern: Some(pattern.clone()), kind: None }).await {
            Reply::Array(mut page) if page.len() == 2 => page.pop().unwrap_or(Reply::Array(Vec::new())),
            other => other,
        }
    }

    /// `FLUSHDB [ASYNC | SYNC]` (and `FLUSHALL`: there is one database).
    pub(super) async fn flush(&mut self, args: &[Bytes]) -> Reply {
        match args.get(1).map(|m| m.to_ascii_uppercase()) {
            None => {}
            Some(mode) if args.len() == 2 && (mode == b"ASYNC" || mode == b"SYNC") => {}
            Some(_) => return Reply::Error("ERR syntax error".into()),
        }
        self.run_op(KvOp::Clear).await
    }
}
