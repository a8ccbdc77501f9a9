//! Keys that expire, kept so that every replica agrees at every index.
//!
//! A deadline is a time in milliseconds since the Unix epoch. A relative
//! time to live ([`Ttl::In`]) is resolved against the `now` its operation
//! carries, which the leader sets from its own clock as it proposes the
//! operation ([`Service::stamp`](crate::Service::stamp)): time comes from the
//! leader. No replica deletes a key on its own clock: the leader, when its
//! clock passes the earliest deadline, proposes a
//! [`KvOp::Sweep`](crate::KvOp::Sweep) carrying that clock reading, and every
//! replica deletes the same keys at the same index.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a write does to a key's time to live (the `ttls` of a
/// [`KvOp::Txn`](crate::KvOp::Txn)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ttl {
    /// Expire at this time (milliseconds since the Unix epoch).
    At(u64),
    /// Expire this many milliseconds after the operation's `now`: the
    /// clock of the leader that proposed it (`EX`, `PX`, `EXPIRE`).
    In(u64),
    /// Never expire (`SET` without `KEEPTTL`, `PERSIST`).
    Persist,
    /// Whatever deadline this key had before the transaction (`RENAME`).
    From(Bytes),
}

/// When an `EXPIRE` may set a deadline (Redis's `NX | XX | GT | LT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpireIf {
    /// Whatever the key's deadline.
    #[default]
    Always,
    /// Only if the key has none.
    NoDeadline,
    /// Only if the key has one.
    HasDeadline,
    /// Only if the new deadline is later (a key without one never expires, so never).
    Later,
    /// Only if the new deadline is earlier (a key without one: always).
    Earlier,
}

impl ExpireIf {
    /// Whether a key with deadline `current` may take `new`.
    pub fn allows(self, current: Option<u64>, new: u64) -> bool {
        match (self, current) {
            (ExpireIf::Always, _) => true,
            (ExpireIf::NoDeadline, current) => current.is_none(),
            (ExpireIf::HasDeadline, current) => current.is_some(),
            (ExpireIf::Later, current) => current.is_some_and(|c| new > c),
            (ExpireIf::Earlier, current) => current.is_none_or(|c| new < c),
        }
    }
}

/// The deadlines of the keys that have one, indexed both ways.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deadlines {
    by_key: BTreeMap<Bytes, u64>,
    by_time: BTreeSet<(u64, Bytes)>,
}

impl Deadlines {
    pub(crate) fn get(&self, key: &[u8]) -> Option<u64> {
        self.by_key.get(key).copied()
    }

    pub(crate) fn set(&mut self, key: Bytes, at: u64) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    /// Forgets `key`'s deadline; true if it had one.
    pub(crate) fn clear(&mut self, key: &Bytes) -> bool {
        match self.by_key.remove(key) {
            Some(old) => self.by_time.remove(&(old, key.clone())),
            None => false,
        }
    }

    pub(crate) fn clear_all(&mut self) {
        self.by_key.clear();
        self.by_time.clear();
    }

    /// The earliest deadline, if any key has one.
    pub(crate) fn earliest(&self) -> Option<u64> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The keys whose deadline is at or before `now`, earliest first, at
    /// most `limit` of them.
    pub(crate) fn due(&self, now: u64, limit: usize) -> Vec<Bytes> {
        self.by_time.iter().take_while(|(at, _)| *at <= now).take(limit).map(|(_, k)| k.clone()).collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Bytes, &u64)> {
        self.by_key.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}
