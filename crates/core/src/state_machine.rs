//! The replicated state machine, and the key-value store every test, example
//! and benchmark uses.

mod hashes;
#[cfg(test)]
mod kv_tests;
#[cfg(test)]
mod testing;

use crate::expiry::{Deadlines, ExpireIf, Ttl};
use crate::{ClientId, Command};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a protocol replicates: a deterministic machine fed committed commands in order.
pub trait StateMachine {
    /// Applies the command committed at `index`, returning the client's answer.
    /// A duplicate (client, seq) must not change the state again.
    fn apply(&mut self, index: u64, cmd: &Command) -> Bytes;

    /// The state as bytes, for a snapshot.
    fn snapshot(&self) -> Bytes;

    /// Replaces the state with a snapshot's bytes.
    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError>;
}

/// A state machine a node can serve to clients: the runtime's node driver and
/// the simulator's hosts are generic over it.
///
/// - A **command** (bytes) goes through the log; its answer is what
///   [`StateMachine::apply`] returns on the node the client talks to.
/// - A **query** (bytes) is answered by [`Service::query`] from the state once
///   it has applied the index the protocol confirmed as current (ReadIndex,
///   `sync`): linearizable, without a log entry. A protocol with no such read
///   path (Paxos, Multi-Paxos, Zab's log reads) orders the query through the
///   log instead: the query bytes then reach `apply` as a command, which must
///   answer them as `query` would and change nothing else than the session.
/// - A **retry** of a command already applied, same `(client, seq)`, is
///   answered with [`Service::cached_response`] and not proposed again.
///
/// `apply` must stay deterministic: every node applies the same commands in the
/// same order and must reach the same state, so it never reads a clock, a
/// random source or the environment. Time, when the machine needs it (leases),
/// travels inside the commands.
pub trait Service: StateMachine {
    /// Answers a read-only query from the state as it is now.
    fn query(&self, query: &[u8]) -> Bytes;

    /// The answer already given to `(client, seq)` if that command was applied.
    fn cached_response(&self, client: ClientId, seq: u64) -> Option<Bytes>;

    /// How many items (keys, locks...) the state holds, for status reports.
    fn item_count(&self) -> usize {
        0
    }

    /// A command the leader should propose now for the state's own upkeep,
    /// given its wall clock in milliseconds since the Unix epoch: the key-value
    /// store's deletion of keys past their deadline. Replicas never act on
    /// their own clocks; they apply what the leader proposed, so every one
    /// holds the same state at every index.
    fn housekeeping(&self, _now_unix_ms: u64) -> Option<Bytes> {
        None
    }

    /// The command as the leader proposes it, given its wall clock in
    /// milliseconds since the Unix epoch; `None`: as it is. The key-value
    /// store sets the `now` of the operations that carry time, so that time
    /// comes from the leader, whichever node took the command. A retry may
    /// be stamped again by a later leader; only one copy is applied.
    fn stamp(&self, _command: &[u8], _now_unix_ms: u64) -> Option<Bytes> {
        None
    }
}

impl Service for KvStore {
    /// A query is an encoded [`KvOp::Get`], answered with an encoded [`KvResult`].
    fn query(&self, query: &[u8]) -> Bytes {
        let result = match KvOp::decode(query) {
            Ok(op) if op.is_read() => self.read(op),
            Ok(op) => KvResult::Invalid(format!("not a read: {op:?}")),
            Err(e) => KvResult::Invalid(format!("undecodable query: {e}")),
        };
        result.encode()
    }

    fn cached_response(&self, client: ClientId, seq: u64) -> Option<Bytes> {
        KvStore::cached_response(self, client, seq)
    }

    fn item_count(&self) -> usize {
        self.len()
    }

    fn housekeeping(&self, now_unix_ms: u64) -> Option<Bytes> {
        let due = self.deadlines.earliest()? <= now_unix_ms;
        due.then(|| KvOp::Sweep { now: now_unix_ms }.encode())
    }

    fn stamp(&self, command: &[u8], now_unix_ms: u64) -> Option<Bytes> {
        // Only the operations that carry time are decoded: the first byte of
        // an encoded operation is its variant (postcard, fewer than 128).
        static TIMED: std::sync::OnceLock<[u8; 2]> = std::sync::OnceLock::new();
        let timed = TIMED.get_or_init(|| {
            let txn = KvOp::Txn { checks: vec![], writes: vec![], ttls: vec![], now: 0 };
            let expire = KvOp::Expire { key: Bytes::new(), at: Ttl::Persist, now: 0, when: ExpireIf::Always };
            [txn.encode()[0], expire.encode()[0]]
        });
        if !timed.contains(command.first()?) {
            return None;
        }
        match KvOp::decode(command).ok()? {
            KvOp::Txn { checks, writes, ttls, .. } => {
                Some(KvOp::Txn { checks, writes, ttls, now: now_unix_ms }.encode())
            }
            KvOp::Expire { key, at, when, .. } => Some(KvOp::Expire { key, at, now: now_unix_ms, when }.encode()),
            _ => None,
        }
    }
}

/// A snapshot could not be decoded.
#[derive(Debug, Hash, thiserror::Error)]
#[error("snapshot is not a valid key-value store image: {0}")]
pub struct SnapshotError(pub String);

/// An operation on the key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOp {
    /// Read a key.
    Get {
        /// The key.
        key: Bytes,
    },
    /// Set a key.
    Put {
        /// The key.
        key: Bytes,
        /// Its new value.
        value: Bytes,
    },
    /// Delete a key.
    Del {
        /// The key.
        key: Bytes,
    },
    /// Set `key` to `new` only if its value is `expected` (`None`: absent).
    Cas {
        /// The key.
        key: Bytes,
        /// The value the key must hold.
        expected: Option<Bytes>,
        /// The value to set.
        new: Bytes,
    },
    /// Several keys at one index: if every key in `checks` holds the value
    /// given (`None`: absent), apply every write (`None`: delete), then set
    /// the deadlines in `ttls` of the keys that then exist; else nothing.
    /// `MSET`, `MSETNX`, `RENAME`, `GETDEL` and `SET ... EX` are each one of
    /// these. A written key keeps its deadline unless `ttls` names it (as
    /// `INCR` and `APPEND` keep it in Redis); a deleted key loses it.
    Txn {
        /// Keys and the values they must hold.
        checks: Vec<(Bytes, Option<Bytes>)>,
        /// Keys and their new values, applied in order if the checks hold.
        writes: Vec<(Bytes, Option<Bytes>)>,
        /// Keys and their new deadlines; [`Ttl::From`] reads the deadline a
        /// key had before this transaction.
        ttls: Vec<(Bytes, Ttl)>,
        /// The clock [`Ttl::In`] counts from: the proposing leader's, in
        /// milliseconds since the Unix epoch ([`Service::stamp`]).
        now: u64,
    },
    /// Set or remove ([`Ttl::Persist`]) an existing key's deadline, if `when`
    /// allows it; a deadline at or before `now` deletes the key at once.
    /// Answered `Swapped(true)` if it changed something (Redis's 1).
    Expire {
        /// The key.
        key: Bytes,
        /// The deadline (`At`, or `In` from `now`), or `Persist`.
        at: Ttl,
        /// The proposing leader's clock, in milliseconds since the Unix epoch
        /// ([`Service::stamp`]).
        now: u64,
        /// `NX`, `XX`, `GT` or `LT`.
        when: ExpireIf,
    },
    /// Read a key's deadline (`TTL`): answered with [`KvResult::Deadline`].
    Deadline {
        /// The key.
        key: Bytes,
    },
    /// Delete the keys whose deadline is at or before `now`, at most
    /// [`MAX_SWEPT`] of them, earliest first: proposed by the leader when its
    /// clock passes the earliest deadline ([`Service::housekeeping`]).
    Sweep {
        /// The leader's clock, in milliseconds since the Unix epoch.
        now: u64,
    },
    /// Add `by` to the decimal integer `key` holds (absent: 0), keeping its
    /// deadline (`INCR`, `INCRBY`, `DECR`, `DECRBY`): answered with the new
    /// value, [`KvResult::Integer`], or why not.
    Incr {
        /// The key.
        key: Bytes,
        /// What to add.
        by: i64,
    },
    /// Set fields of the hash at `key` (`HSET`; `if_new`: `HSETNX`, only
    /// fields it lacks): answered with the [`KvResult::Count`] of fields added.
    HSet {
        /// The key.
        key: Bytes,
        /// Fields and their values.
        pairs: Vec<(Bytes, Bytes)>,
        /// Leave fields that exist as they are.
        if_new: bool,
    },
    /// Delete fields of a hash (`HDEL`); a hash left empty is deleted.
    /// Answered with the [`KvResult::Count`] of fields deleted.
    HDel {
        /// The key.
        key: Bytes,
        /// The fields.
        fields: Vec<Bytes>,
    },
    /// Add `by` to a field holding a decimal integer (`HINCRBY`): answered
    /// with its new value, [`KvResult::Integer`].
    HIncr {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
        /// What to add.
        by: i64,
    },
    /// Read fields of a hash (`None`: all of them): answered with
    /// [`KvResult::Fields`].
    HGet {
        /// The key.
        key: Bytes,
        /// The fields to read.
        fields: Option<Vec<Bytes>>,
    },

    /// A page of keys (Redis `SCAN`): keys are visited in the order of a
    /// fixed 64-bit hash of each ([`key_hash`]), and `cursor` is the hash to
    /// go on from (0: the start). Every key present for the whole scan is
    /// returned once, whatever is written meanwhile. Answered with
    /// [`KvResult::Keys`].
    Scan {
        /// Where the page starts (from the previous page's answer; 0 at first).
        cursor: u64,
        /// About how many keys to look at (all the keys of one hash go together).
        count: u32,
        /// Only keys matching this Redis glob pattern (`*`, `?`, `[a-z]`, `\`).
        pattern: Option<Bytes>,
        /// Only keys holding this kind of value.
        kind: Option<KeyKind>,
    },
    /// Delete every key (Redis `FLUSHDB`).
    Clear,
}

/// What a key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyKind {
    /// A string (`SET`).
    String,
    /// A hash (`HSET`).
    Hash,
}

/// The most keys one [`KvOp::Sweep`] deletes.
pub const MAX_SWEPT: usize = 10_000;

/// The key of a transaction that names none.
static NO_KEY: Bytes = Bytes::new();

impl KvOp {
    /// The key this operation touches: for a transaction, the first it
    /// writes (or checks). The simulator's workload issues single-key
    /// operations only, and its checkers judge keys one at a time.
    pub fn key(&self) -> &Bytes {
        match self {
            KvOp::Get { key }
            | KvOp::Put { key, .. }
            | KvOp::Del { key }
            | KvOp::Cas { key, .. }
            | KvOp::Expire { key, .. }
            | KvOp::Deadline { key }
            | KvOp::Incr { key, .. }
            | KvOp::HSet { key, .. }
            | KvOp::HDel { key, .. }
            | KvOp::HIncr { key, .. }
            | KvOp::HGet { key, .. } => key,
            KvOp::Txn { checks, writes, .. } => writes.first().or(checks.first()).map_or(&NO_KEY, |(k, _)| k),
            KvOp::Scan { .. } | KvOp::Clear | KvOp::Sweep { .. } => &NO_KEY,
        }
    }

    /// The bytes of keys and values the operation carries: about its
    /// encoded size, without encoding it.
    pub fn data_len(&self) -> usize {
        let opt = |v: &Option<Bytes>| v.as_ref().map_or(0, |v| v.len());
        match self {
            KvOp::Get { key } | KvOp::Del { key } | KvOp::Expire { key, .. } | KvOp::Deadline { key } => key.len(),
            KvOp::Put { key, value } => key.len() + value.len(),
            KvOp::Cas { key, expected, new } => key.len() + opt(expected) + new.len(),
            KvOp::Txn { checks, writes, ttls, .. } => {
                let from = |t: &Ttl| if let Ttl::From(k) = t { k.len() } else { 0 };
                let values: usize = checks.iter().chain(writes).map(|(k, v)| k.len() + opt(v)).sum();
                values + ttls.iter().map(|(k, t)| k.len() + from(t)).sum::<usize>()
            }
            KvOp::Scan { pattern, .. } => opt(pattern),
            KvOp::Clear | KvOp::Sweep { .. } => 0,
            KvOp::HSet { key, pairs, .. } => key.len() + pairs.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>(),
            KvOp::HDel { key, fields } => key.len() + fields.iter().map(Bytes::len).sum::<usize>(),
            KvOp::HIncr { key, field, .. } => key.len() + field.len(),
            KvOp::Incr { key, .. } => key.len(),
            KvOp::HGet { key, fields } => key.len() + fields.iter().flatten().map(Bytes::len).sum::<usize>(),
        }
    }

    /// True for the operations of a register, one key each (get, put, del,
    /// compare-and-set), which a key-by-key check can judge; false for a
    /// transaction, scan or clear (several keys) and for the deadlines
    /// (time, which a register has not).
    pub fn is_register_op(&self) -> bool {
        matches!(self, KvOp::Get { .. } | KvOp::Put { .. } | KvOp::Del { .. } | KvOp::Cas { .. })
    }

    /// True for a read that changes nothing.
    pub fn is_read(&self) -> bool {
        matches!(self, KvOp::Get { .. } | KvOp::Scan { .. } | KvOp::Deadline { .. } | KvOp::HGet { .. })
    }

    /// Encodes the operation as command bytes.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a KvOp cannot fail"))
    }

    /// Decodes command bytes.
    pub fn decode(data: &[u8]) -> Result<KvOp, postcard::Error> {
        postcard::from_bytes(data)
    }
}

/// The answer to a [`KvOp`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvResult {
    /// The value read (`None`: absent).
    Value(Option<Bytes>),
    /// A put was applied.
    Done,
    /// A delete was applied; true if the key existed.
    Deleted(bool),
    /// A compare-and-set: true if it took effect.
    Swapped(bool),
    /// The command could not be decoded.
    Invalid(String),
    /// The client already moved past this sequence number; its result is gone.
    Stale,
    /// A page of a scan: the keys, and the cursor to go on from (0: done).
    Keys {
        /// The next page's cursor; 0 when the scan is over.
        cursor: u64,
        /// The keys of this page that matched.
        keys: Vec<Bytes>,
    },
    /// A string command on a key holding another kind of value, or the reverse.
    WrongType,
    /// How many fields a hash command added or deleted.
    Count(u64),
    /// A value after `INCR` or `HINCRBY`.
    Integer(i64),
    /// Fields of a hash and their values ([`KvOp::HGet`]; `None`: no such field).
    Fields(Vec<(Bytes, Option<Bytes>)>),
    /// A key's deadline ([`KvOp::Deadline`]).
    Deadline {
        /// Whether the key holds a value.
        exists: bool,
        /// When it expires (milliseconds since the Unix epoch); `None`: never.
        at: Option<u64>,
    },
}

/// A decimal integer as Redis writes one: no spaces, no plus sign, no
/// leading zeros, within 64 bits.
pub(crate) fn parse_integer(text: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == text).then_some(n)
}

/// The hash that orders a scan: 64-bit FNV-1a of the key's bytes. Fixed
/// (not seeded), so every replica, and every page of one scan, agrees.
pub fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Whether `text` matches the Redis glob `pattern`: `*` any run, `?` any
/// byte, `[abc]`, `[^a]`, `[a-z]` classes, `\x` a literal `x`. Iterative,
/// with one backtracking point per `*`: time is at most the product of the
/// lengths, whatever the pattern.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
            continue;
        }
        if let Some(next) = match_one(pattern, p, text[t]) {
            p = next;
            t += 1;
            continue;
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|b| *b == b'*')
}

/// If the pattern element at `p` (not `*`) matches byte `c`, where the next one starts.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pattern.get(p)? {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b'[' => {
            let mut i = p + 1;
            let negate = pattern.get(i) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut hit = false;
            while i < pattern.len() && pattern[i] != b']' {
                if pattern[i] == b'\\' && i + 1 < pattern.len() {
                    hit |= pattern[i + 1] == c;
                    i += 2;
                } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
                    let (lo, hi) = (pattern[i].min(pattern[i + 2]), pattern[i].max(pattern[i + 2]));
                    hit |= (lo..=hi).contains(&c);
                    i += 3;
                } else {
                    hit |= pattern[i] == c;
                    i += 1;
                }
            }
            // An unclosed class matches as far as it went, as in Redis.
            (hit != negate).then_some((i + 1).min(pattern.len()))
        }
        literal => (literal == c).then_some(p + 1),
    }
}

impl KvResult {
    /// Encodes the result as response bytes.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a KvResult cannot fail"))
    }

    /// Decodes response bytes.
    pub fn decode(data: &[u8]) -> Result<KvResult, postcard::Error> {
        postcard::from_bytes(data)
    }
}

/// The last command applied for one client and its answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    seq: u64,
    response: Bytes,
}

/// A key-value store with GET, PUT, DEL and CAS that applies each (client, seq)
/// at most once: a duplicate of the client's latest command is answered with
/// the first result. Clients have one command outstanding at a time, so the
/// latest one is all that must be remembered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    /// The keys holding strings.
    data: BTreeMap<Bytes, Bytes>,
    /// The keys holding hashes (never empty ones; no key is in both maps).
    hashes: BTreeMap<Bytes, BTreeMap<Bytes, Bytes>>,
    /// The keys in scan order (see [`key_hash`]).
    by_hash: BTreeSet<(u64, Bytes)>,
    /// The keys that expire, and when.
    deadlines: Deadlines,
    sessions: HashMap<ClientId, Session>,
    applied_index: u64,
}

#[derive(Serialize, Deserialize)]
struct KvImage {
    data: Vec<(Bytes, Bytes)>,
    hashes: Vec<(Bytes, Vec<(Bytes, Bytes)>)>,
    deadlines: Vec<(Bytes, u64)>,
    sessions: Vec<(ClientId, Session)>,
    applied_index: u64,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a key directly (for reads served outside the log, once the store
    /// has applied the index the protocol named).
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.data.get(key)
    }

    /// Every key holding a string and its value, in key order (hashes:
    /// [`KvStore::hashes`]).
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.data.iter()
    }

    /// When `key` expires (milliseconds since the Unix epoch), if it does.
    pub fn deadline(&self, key: &[u8]) -> Option<u64> {
        self.deadlines.get(key)
    }

    /// How many keys have a deadline.
    pub fn expiring(&self) -> usize {
        self.deadlines.len()
    }

    /// The index of the last command applied.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len() + self.hashes.len()
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` holds a value of any kind.
    fn exists(&self, key: &[u8]) -> bool {
        self.data.contains_key(key) || self.hashes.contains_key(key)
    }

    /// Whether `key` holds the string `expected` (`None`: nothing at all).
    fn holds(&self, key: &[u8], expected: Option<&Bytes>) -> bool {
        !self.hashes.contains_key(key) && self.data.get(key) == expected
    }

    /// The recorded answer if `(client, seq)` was already applied.
    pub fn cached_response(&self, client: ClientId, seq: u64) -> Option<Bytes> {
        let session = self.sessions.get(&client)?;
        if seq == session.seq {
            Some(session.response.clone())
        } else if seq < session.seq {
            Some(KvResult::Stale.encode())
        } else {
            None
        }
    }

    /// Answers a read ([`KvOp::is_read`]), through the log or not.
    fn read(&self, op: KvOp) -> KvResult {
        match op {
            KvOp::Get { key } if self.hashes.contains_key(&key) => KvResult::WrongType,
            KvOp::Get { key } => KvResult::Value(self.data.get(&key).cloned()),
            KvOp::Scan { cursor, count, pattern, kind } => self.scan(cursor, count, pattern.as_deref(), kind),
            KvOp::Deadline { key } => self.deadline_of(&key),
            KvOp::HGet { key, fields } => self.hget(&key, fields.as_deref()),
            op => KvResult::Invalid(format!("not a read: {op:?}")),
        }
    }

    fn execute(&mut self, op: KvOp) -> KvResult {
        match op {
            op if op.is_read() => self.read(op),
            KvOp::Put { key, value } => {
                self.deadlines.clear(&key);
                self.insert(key, value);
                KvResult::Done
            }
            KvOp::Del { key } => KvResult::Deleted(self.remove(&key)),
            KvOp::Cas { key, expected, new } => {
                let swapped = self.holds(&key, expected.as_ref());
                if swapped {
                    self.insert(key, new);
                }
                KvResult::Swapped(swapped)
            }
            KvOp::Txn { checks, writes, ttls, now } => {
                let holds = checks.iter().all(|(key, expected)| self.holds(key, expected.as_ref()));
                if holds {
                    // `From` names a deadline as it was before the writes.
                    let ttls: Vec<(Bytes, Option<u64>)> =
                        ttls.into_iter().map(|(key, ttl)| (key, self.resolve(&ttl, now))).collect();
                    for (key, value) in writes {
                        match value {
                            Some(value) => self.insert(key, value),
                            None => drop(self.remove(&key)),
                        };
                    }
                    for (key, at) in ttls {
                        match at {
                            Some(at) if self.exists(&key) => self.deadlines.set(key, at),
                            _ => drop(self.deadlines.clear(&key)),
                        }
                    }
                }
                KvResult::Swapped(holds)
            }
            KvOp::Expire { key, at, now, when } => {
                if !self.exists(&key) {
                    return KvResult::Swapped(false);
                }
                if matches!(at, Ttl::From(_)) {
                    return KvResult::Invalid("EXPIRE takes a time, not another key's deadline".into());
                }
                let Some(at) = self.resolve(&at, now) else { return KvResult::Swapped(self.deadlines.clear(&key)) };
                if !when.allows(self.deadlines.get(&key), at) {
                    return KvResult::Swapped(false);
                }
                if at <= now {
                    self.remove(&key);
                } else {
                    self.deadlines.set(key, at);
                }
                KvResult::Swapped(true)
            }
            KvOp::Sweep { now } => {
                // Bounded, so that one entry never holds a node up for long;
                // the leader proposes another while keys are still due.
                let due = self.deadlines.due(now, MAX_SWEPT);
                for key in &due {
                    self.remove(key);
                }
                KvResult::Deleted(!due.is_empty())
            }
            KvOp::Incr { key, by } => self.incr(key, by),
            KvOp::HSet { key, pairs, if_new } => self.hset(key, pairs, if_new),
            KvOp::HDel { key, fields } => self.hdel(key, fields),
            KvOp::HIncr { key, field, by } => self.hincr(key, field, by),
            KvOp::Get { .. } | KvOp::Scan { .. } | KvOp::Deadline { .. } | KvOp::HGet { .. } => {
                unreachable!("reads are answered by `read` above")
            }
            KvOp::Clear => {
                self.data.clear();
                self.hashes.clear();
                self.by_hash.clear();
                self.deadlines.clear_all();
                KvResult::Done
            }
        }
    }

    /// The deadline `ttl` names, `now` being its operation's clock (`None`: never).
    fn resolve(&self, ttl: &Ttl, now: u64) -> Option<u64> {
        match ttl {
            Ttl::At(at) => Some(*at),
            Ttl::In(ms) => Some(now.saturating_add(*ms)),
            Ttl::Persist => None,
            Ttl::From(key) => self.deadlines.get(key),
        }
    }

    fn deadline_of(&self, key: &[u8]) -> KvResult {
        KvResult::Deadline { exists: self.exists(key), at: self.deadlines.get(key) }
    }

    /// Sets `key` to a string, replacing whatever it held.
    fn insert(&mut self, key: Bytes, value: Bytes) {
        let was_hash = self.hashes.remove(&key).is_some();
        if self.data.insert(key.clone(), value).is_none() && !was_hash {
            self.by_hash.insert((key_hash(&key), key));
        }
    }

    /// `INCRBY`: the new value, or why not (Redis's messages).
    fn incr(&mut self, key: Bytes, by: i64) -> KvResult {
        if self.hashes.contains_key(&key) {
            return KvResult::WrongType;
        }
        let Some(old) = self.data.get(&key).map_or(Some(0), |v| parse_integer(v)) else {
            return KvResult::Invalid("value is not an integer or out of range".into());
        };
        let Some(new) = old.checked_add(by) else {
            return KvResult::Invalid("increment or decrement would overflow".into());
        };
        self.insert(key, Bytes::from(new.to_string()));
        KvResult::Integer(new)
    }

    /// What `key` holds, if anything.
    fn kind_of(&self, key: &[u8]) -> Option<KeyKind> {
        match (self.data.contains_key(key), self.hashes.contains_key(key)) {
            (true, _) => Some(KeyKind::String),
            (false, true) => Some(KeyKind::Hash),
            (false, false) => None,
        }
    }

    /// Deletes `key`, whatever it holds; true if it was set.
    fn remove(&mut self, key: &Bytes) -> bool {
        let existed = self.data.remove(key).is_some() || self.hashes.remove(key).is_some();
        if existed {
            self.by_hash.remove(&(key_hash(key), key.clone()));
            self.deadlines.clear(key);
        }
        existed
    }

    /// One page of a scan (see [`KvOp::Scan`]).
    fn scan(&self, cursor: u64, count: u32, pattern: Option<&[u8]>, kind: Option<KeyKind>) -> KvResult {
        let mut keys = Vec::new();
        let mut last = None;
        for (seen, (hash, key)) in self.by_hash.range((cursor, Bytes::new())..).enumerate() {
            if seen as u64 >= u64::from(count.max(1)) && last != Some(*hash) {
                // The next page starts at this hash.
                return KvResult::Keys { cursor: *hash, keys };
            }
            last = Some(*hash);
            if pattern.is_none_or(|p| glob_match(p, key)) && kind.is_none_or(|k| self.kind_of(key) == Some(k)) {
                keys.push(key.clone());
            }
        }
        KvResult::Keys { cursor: 0, keys }
    }
}

impl StateMachine for KvStore {
    fn apply(&mut self, index: u64, cmd: &Command) -> Bytes {
        // No assertion on the order: drivers hand entries in order and check
        // it themselves, and after `restore` the index here is whatever the
        // snapshot's bytes said, which came from a peer.
        self.applied_index = index;
        if let Some(cached) = self.cached_response(cmd.client, cmd.seq) {
            return cached;
        }
        let result = match KvOp::decode(&cmd.data) {
            Ok(op) => self.execute(op),
            Err(e) => KvResult::Invalid(format!("undecodable command: {e}")),
        };
        let response = result.encode();
        self.sessions.insert(cmd.client, Session { seq: cmd.seq, response: response.clone() });
        response
    }

    fn snapshot(&self) -> Bytes {
        let mut sessions: Vec<_> = self.sessions.iter().map(|(c, s)| (*c, s.clone())).collect();
        sessions.sort_by_key(|(c, _)| *c);
        let image = KvImage {
            data: self.data.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            hashes: self
                .hashes
                .iter()
                .map(|(k, h)| (k.clone(), h.iter().map(|(f, v)| (f.clone(), v.clone())).collect()))
                .collect(),
            deadlines: self.deadlines.iter().map(|(k, at)| (k.clone(), *at)).collect(),
            sessions,
            applied_index: self.applied_index,
        };
        Bytes::from(postcard::to_allocvec(&image).expect("encoding a snapshot cannot fail"))
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        let image: KvImage = postcard::from_bytes(data).map_err(|e| SnapshotError(e.to_string()))?;
        self.data = image.data.into_iter().collect();
        // A snapshot comes from a peer: a key is a string or a hash, and a hash is never empty.
        let hashes = image.hashes.into_iter().filter(|(k, h)| !h.is_empty() && !self.data.contains_key(k));
        self.hashes = hashes.map(|(k, h)| (k, h.into_iter().collect())).collect();
        self.by_hash = self.data.keys().chain(self.hashes.keys()).map(|k| (key_hash(k), k.clone())).collect();
        self.deadlines = Deadlines::default();
        for (key, at) in image.deadlines {
            // A snapshot comes from a peer: a deadline of no key is dropped.
            if self.exists(&key) {
                self.deadlines.set(key, at);
            }
        }
        self.sessions = image.sessions.into_iter().collect();
        self.applied_index = image.applied_index;
        Ok(())
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    fn page(store: &KvStore, cursor: u64, count: u32, pattern: Option<&str>) -> (u64, Vec<Bytes>) {
        match store.scan(cursor, count, pattern.map(str::as_bytes), None) {
            KvResult::Keys { cursor, keys } => (cursor, keys),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_scan_returns_every_key_present_throughout_once_while_others_come_and_go() {
        let key = |i: u32| Bytes::from(format!("k{i}"));
        let mut store = KvStore::new();
        for i in 0..500 {
            store.insert(key(i), Bytes::from_static(b"v"));
        }
        let (mut cursor, mut seen, mut pages) = (0, Vec::new(), 0);
        loop {
            let (next, keys) = page(&store, cursor, 7, None);
            seen.extend(keys);
            pages += 1;
            // Meanwhile: keys 500.. arrive, keys 400..450 go.
            store.insert(key(500 + pages), Bytes::from_static(b"v"));
            if pages <= 50 {
                store.remove(&key(399 + pages));
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "a key was returned twice");
        for i in (0..400).chain(450..500) {
            assert!(seen.contains(&key(i)), "k{i} was present throughout and not returned");
        }
        assert!(pages > 60, "pages of about 7 keys: {pages}");
    }

    #[test]
    fn a_pattern_filters_a_page_and_a_clear_empties_the_store() {
        let mut store = KvStore::new();
        for k in ["user:1", "user:2", "order:1"] {
            store.insert(Bytes::from(k), Bytes::from_static(b"v"));
        }
        let (cursor, mut keys) = page(&store, 0, 100, Some("user:*"));
        keys.sort();
        assert_eq!((cursor, keys), (0, vec![Bytes::from("user:1"), Bytes::from("user:2")]));
        store.execute(KvOp::Clear);
        assert_eq!(page(&store, 0, 100, None), (0, vec![]));
        assert!(store.is_empty());
    }

    #[test]
    fn globs_match_as_in_redis() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m("*", "") && m("*", "anything") && m("h?llo", "hello") && m("h*llo", "heeello"));
        assert!(m("h[ae]llo", "hallo") && !m("h[ae]llo", "hillo") && m("h[^e]llo", "hallo") && !m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo") && !m("h[a-b]llo", "hcllo") && m("a\\*b", "a*b") && !m("a\\*b", "axb"));
        assert!(m("*:*:*", "a:b:c") && !m("*:*:*", "a:b") && m("k*", "k") && !m("k?", "k"));
        // A pattern made to backtrack: one backtracking point, so the product
        // of the lengths at most (an exponential matcher would not finish).
        let text = [&b"a".repeat(5000)[..], b"b"].concat();
        assert!(!glob_match(&b"*a".repeat(500), &text));
        assert!(glob_match(&[&b"*a".repeat(500)[..], b"*"].concat(), &text));
    }
}

#[cfg(test)]
mod txn_tests {
    use super::*;

    fn apply(store: &mut KvStore, seq: u64, op: KvOp) -> KvResult {
        let cmd = Command::new(ClientId(1), seq, op.encode());
        KvResult::decode(&store.apply(seq, &cmd)).unwrap()
    }

    #[test]
    fn a_transaction_writes_all_its_keys_when_its_checks_hold_and_none_otherwise() {
        let b = |s: &str| Bytes::from(s.to_string());
        let mut store = KvStore::new();
        apply(&mut store, 1, KvOp::Put { key: b("a"), value: b("1") });
        let txn = |expected: Option<&str>| KvOp::Txn {
            checks: vec![(b("a"), expected.map(b))],
            writes: vec![(b("a"), None), (b("z"), Some(b("1")))],
            ttls: vec![],
            now: 0,
        };
        assert_eq!(apply(&mut store, 2, txn(Some("2"))), KvResult::Swapped(false));
        assert_eq!((store.get(b"a").cloned(), store.get(b"z").cloned()), (Some(b("1")), None), "nothing written");
        assert_eq!(apply(&mut store, 3, txn(Some("1"))), KvResult::Swapped(true));
        assert_eq!((store.get(b"a").cloned(), store.get(b"z").cloned()), (None, Some(b("1"))), "a renamed to z");
        let none = KvOp::Txn { checks: vec![], writes: vec![], ttls: vec![], now: 0 };
        assert_eq!(none.key(), &Bytes::new());
        assert_eq!(apply(&mut store, 4, none), KvResult::Swapped(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(client: u64, seq: u64, op: KvOp) -> Command {
        Command::new(ClientId(client), seq, op.encode())
    }

    fn put(key: &str, value: &str) -> KvOp {
        KvOp::Put { key: Bytes::copy_from_slice(key.as_bytes()), value: Bytes::copy_from_slice(value.as_bytes()) }
    }

    fn result(bytes: Bytes) -> KvResult {
        KvResult::decode(&bytes).unwrap()
    }

    #[test]
    fn get_put_del_cas() {
        let mut kv = KvStore::new();
        let k = Bytes::from_static(b"k");
        assert_eq!(result(kv.apply(1, &cmd(1, 1, KvOp::Get { key: k.clone() }))), KvResult::Value(None));
        assert_eq!(result(kv.apply(2, &cmd(1, 2, put("k", "a")))), KvResult::Done);
        let cas = |expected: Option<&'static [u8]>, new: &'static [u8]| KvOp::Cas {
            key: Bytes::from_static(b"k"),
            expected: expected.map(Bytes::from_static),
            new: Bytes::from_static(new),
        };
        assert_eq!(result(kv.apply(3, &cmd(1, 3, cas(Some(b"x"), b"b")))), KvResult::Swapped(false));
        assert_eq!(result(kv.apply(4, &cmd(1, 4, cas(Some(b"a"), b"b")))), KvResult::Swapped(true));
        assert_eq!(kv.get(b"k"), Some(&Bytes::from_static(b"b")));
        assert_eq!(result(kv.apply(5, &cmd(1, 5, KvOp::Del { key: k.clone() }))), KvResult::Deleted(true));
        assert_eq!(result(kv.apply(6, &cmd(1, 6, KvOp::Del { key: k }))), KvResult::Deleted(false));
    }

    #[test]
    fn a_duplicate_is_applied_once_and_answered_with_the_first_result() {
        let mut kv = KvStore::new();
        let swap = KvOp::Cas { key: Bytes::from_static(b"k"), expected: None, new: Bytes::from_static(b"v") };
        assert_eq!(result(kv.apply(1, &cmd(7, 1, swap.clone()))), KvResult::Swapped(true));
        // The retry would fail if executed again; it must get the first answer.
        assert_eq!(result(kv.apply(2, &cmd(7, 1, swap))), KvResult::Swapped(true));
        kv.apply(3, &cmd(7, 2, put("k", "w")));
        assert_eq!(result(kv.apply(4, &cmd(7, 1, put("k", "old")))), KvResult::Stale);
        assert_eq!(kv.get(b"k"), Some(&Bytes::from_static(b"w")));
    }

    #[test]
    fn snapshot_and_restore_round_trip_including_sessions() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 1, put("a", "1")));
        kv.apply(2, &cmd(2, 1, put("b", "2")));
        let mut copy = KvStore::new();
        copy.restore(&kv.snapshot()).unwrap();
        assert_eq!(copy, kv);
        assert_eq!(result(copy.apply(3, &cmd(1, 1, put("a", "again")))), KvResult::Done);
        assert_eq!(copy.get(b"a"), Some(&Bytes::from_static(b"1")));
        assert!(KvStore::new().restore(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn garbage_commands_get_an_invalid_answer() {
        let mut kv = KvStore::new();
        let r = result(kv.apply(1, &Command::new(ClientId(1), 1, Bytes::from_static(b"\xff\xff\xff\xff\xff"))));
        assert!(matches!(r, KvResult::Invalid(_)), "{r:?}");
    }
}
