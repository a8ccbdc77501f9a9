//! Keys with a time to live: `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`
//! (with `NX | XX | GT | LT`), `PERSIST`, `TTL`, `PTTL`, `EXPIRETIME`,
//! `PEXPIRETIME`, `SETEX`, `PSETEX` (and `SET`'s `EX | PX | EXAT | PXAT |
//! KEEPTTL`, in `ops.rs`).
//!
//! Time comes from the leader: a relative time to live travels as such
//! (`Ttl::In`) and counts from the clock the leader stamps on the operation
//! as it proposes it (`Service::stamp`); `EXPIREAT` and `EXAT` are absolute.
//! Replicas never expire a key on their own clock: the leader proposes the
//! deletion of keys past their deadline by its clock (`node/upkeep.rs`), so a
//! key may still be read for up to one upkeep round (50 ms) and a commit
//! after its deadline. `TTL` counts from the clock of the node that answers
//! it.

use super::{ops, parse_i64, Session, NOT_AN_INTEGER};
use crate::node::unix_millis;
use crate::reply::Reply;
use bytes::Bytes;
use quorum_core::{ExpireIf, KvOp, KvResult, Ttl};

impl Session {
    /// `EXPIRE key seconds [NX | XX | GT | LT]` and its kin: 1 if the
    /// deadline was set (a time already past deletes the key), 0 if the key
    /// does not exist or the condition did not hold.
    pub(super) async fn expire(&mut self, name: &str, args: &[Bytes]) -> Reply {
        let when = match args.get(3).map(|o| o.to_ascii_uppercase()) {
            None => ExpireIf::Always,
            Some(o) if o == b"NX" => ExpireIf::NoDeadline,
            Some(o) if o == b"XX" => ExpireIf::HasDeadline,
            Some(o) if o == b"GT" => ExpireIf::Later,
            Some(o) if o == b"LT" => ExpireIf::Earlier,
            Some(o) => return Reply::Error(format!("ERR Unsupported option {}", String::from_utf8_lossy(&o))),
        };
        let Some(n) = parse_i64(&args[2]) else { return Reply::Error(NOT_AN_INTEGER.into()) };
        let Some(at) = ops::expire_ttl(name.as_bytes(), n) else {
            return Reply::Error(format!("ERR invalid expire time in '{}' command", name.to_ascii_lowercase()));
        };
        // `now` is this node's clock until the leader stamps its own.
        self.run_op(KvOp::Expire { key: args[1].clone(), at, now: unix_millis(), when }).await
    }

    /// `PERSIST key`: 1 if the key had a deadline and now has none.
    pub(super) async fn persist(&mut self, key: &Bytes) -> Reply {
        let op = KvOp::Expire { key: key.clone(), at: Ttl::Persist, now: unix_millis(), when: ExpireIf::Always };
        self.run_op(op).await
    }

    /// `TTL key` (seconds, rounded), `PTTL` (milliseconds), `EXPIRETIME`,
    /// `PEXPIRETIME` (the deadline itself): -2 if the key does not exist, -1
    /// if it has no deadline. A key past its deadline that the leader has
    /// not swept yet answers 0.
    pub(super) async fn ttl(&mut self, name: &str, key: &Bytes) -> Reply {
        let (exists, at) = match self.run_kv(KvOp::Deadline { key: key.clone() }).await {
            Ok(KvResult::Deadline { exists, at }) => (exists, at),
            Ok(other) => return Reply::Error(format!("ERR unexpected answer to a deadline read: {other:?}")),
            Err(error) => return error,
        };
        let Some(at) = at.filter(|_| exists) else { return Reply::Integer(if exists { -1 } else { -2 }) };
        let ms = match name {
            "TTL" | "PTTL" => at.saturating_sub(unix_millis()),
            _ => at,
        };
        let ms = ms.min(i64::MAX as u64) as i64;
        Reply::Integer(if name.starts_with('P') { ms } else { ms.saturating_add(500) / 1000 })
    }

    /// `SETEX key seconds value`, `PSETEX key milliseconds value`: `SET`
    /// with `EX` or `PX`.
    pub(super) async fn setex(&mut self, name: &str, args: &[Bytes]) -> Reply {
        match ops::setex_options(name, &args[2]) {
            Ok(options) => self.set_with(&args[1], &args[3], options).await,
            Err(error) => error,
        }
    }
}
