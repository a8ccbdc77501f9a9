//! The state machine this example replicates: a lock service whose grants
//! carry fencing tokens (Kleppmann, "How to do distributed locking", 2016).
//!
//! A lock is granted for a lease. A lease alone cannot make a lock safe: a
//! holder that pauses (a GC pause, a swapped-out process, a slow network)
//! may wake after its lease ran out and another client took the lock, and
//! still believe it holds it. So every grant carries a **fencing token**, one
//! more than the lock's previous grant, and the resource the lock protects
//! refuses a write whose token is older than the newest it has seen
//! ([`FencedStorage`]).
//!
//! **Determinism.** Every replica applies the same commands in the same order
//! and must reach the same state, so `apply` never reads a clock. Time comes
//! in the commands: each `Acquire` carries the client's `now_ms`, and the
//! machine's clock is the largest time any command has carried (so it never
//! moves back, whatever the clients' clocks do). A lease expires by that clock.

use bytes::Bytes;
use quorum::core::{ClientId, Command, SnapshotError, StateMachine};
use quorum_runtime::Service;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a client asks of the lock service. `Holder` is a query; the rest are commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockRequest {
    /// Take `lock` for `lease_ms` if it is free, its lease has run out by
    /// `now_ms`, or `owner` already holds it (a renewal keeps the token).
    Acquire {
        /// The lock's name.
        lock: String,
        /// Who asks.
        owner: String,
        /// The client's clock when it asked, in milliseconds.
        now_ms: u64,
        /// How long the lease lasts.
        lease_ms: u64,
    },
    /// Give `lock` back; only the grant with this token can.
    Release {
        /// The lock's name.
        lock: String,
        /// The token of the grant being released.
        token: u64,
    },
    /// Who holds `lock` (changes nothing).
    Holder {
        /// The lock's name.
        lock: String,
    },
}

impl LockRequest {
    /// The request as command or query bytes.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a LockRequest cannot fail"))
    }
}

/// One grant of a lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// Who holds the lock.
    pub owner: String,
    /// The fencing token: one more than the lock's previous grant.
    pub token: u64,
    /// The lease runs out when the service's clock reaches this.
    pub expires_ms: u64,
}

/// The lock service's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockReply {
    /// The lock is yours, with this grant.
    Granted(Grant),
    /// Someone else holds the lock until its lease runs out.
    Busy(Grant),
    /// The lock was released.
    Released,
    /// The token is not the current grant's: nothing changed.
    NotHolder,
    /// The current grant, if any (its lease may have run out since).
    Holder(Option<Grant>),
    /// A retry of a command older than the client's latest: its answer is gone.
    Stale,
    /// The bytes were not a request.
    Invalid(String),
}

impl LockReply {
    /// The reply as response bytes.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a LockReply cannot fail"))
    }

    /// Decodes response bytes.
    pub fn decode(data: &[u8]) -> Result<LockReply, postcard::Error> {
        postcard::from_bytes(data)
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} with token {}, lease until {} ms", self.owner, self.token, self.expires_ms)
    }
}

impl std::fmt::Display for LockReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockReply::Granted(grant) => write!(f, "granted to {grant}"),
            LockReply::Busy(grant) => write!(f, "busy, held by {grant}"),
            LockReply::Released => write!(f, "released"),
            LockReply::NotHolder => write!(f, "refused, that token is not the current grant's"),
            LockReply::Holder(Some(grant)) => write!(f, "held by {grant}"),
            LockReply::Holder(None) => write!(f, "free"),
            LockReply::Stale => write!(f, "stale retry"),
            LockReply::Invalid(why) => write!(f, "invalid request: {why}"),
        }
    }
}

/// One lock: the last token handed out and the current grant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Lock {
    last_token: u64,
    grant: Option<Grant>,
}

/// The lock table and its clock: what requests act on. It is also the
/// sequential model the simulator checks histories against (`sim.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Locks {
    locks: BTreeMap<String, Lock>,
    /// The largest time any command carried.
    clock_ms: u64,
}

impl Locks {
    /// Carries out one request and answers it.
    pub fn execute(&mut self, request: &LockRequest) -> LockReply {
        match request {
            LockRequest::Acquire { lock, owner, now_ms, lease_ms } => self.acquire(lock, owner, *now_ms, *lease_ms),
            LockRequest::Release { lock, token } => self.release(lock, *token),
            LockRequest::Holder { lock } => self.holder(lock),
        }
    }

    fn acquire(&mut self, lock: &str, owner: &str, now_ms: u64, lease_ms: u64) -> LockReply {
        self.clock_ms = self.clock_ms.max(now_ms);
        let expires_ms = self.clock_ms + lease_ms;
        let state = self.locks.entry(lock.to_string()).or_default();
        match &mut state.grant {
            Some(grant) if grant.owner == owner && grant.expires_ms > self.clock_ms => {
                grant.expires_ms = expires_ms; // a renewal: same grant, same token
                LockReply::Granted(grant.clone())
            }
            Some(grant) if grant.expires_ms > self.clock_ms => LockReply::Busy(grant.clone()),
            _ => {
                state.last_token += 1; // the fencing token only ever grows
                let grant = Grant { owner: owner.to_string(), token: state.last_token, expires_ms };
                state.grant = Some(grant.clone());
                LockReply::Granted(grant)
            }
        }
    }

    fn release(&mut self, lock: &str, token: u64) -> LockReply {
        match self.locks.get_mut(lock) {
            Some(state) if state.grant.as_ref().is_some_and(|g| g.token == token) => {
                state.grant = None;
                LockReply::Released
            }
            _ => LockReply::NotHolder,
        }
    }

    fn holder(&self, lock: &str) -> LockReply {
        LockReply::Holder(self.locks.get(lock).and_then(|l| l.grant.clone()))
    }
}

/// The replicated lock service: the lock table, applying each
/// `(client, seq)` at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockService {
    table: Locks,
    /// The latest command of each client and its answer, for retries.
    sessions: BTreeMap<ClientId, (u64, Bytes)>,
    applied_index: u64,
}

impl StateMachine for LockService {
    fn apply(&mut self, index: u64, cmd: &Command) -> Bytes {
        assert!(index > self.applied_index, "apply out of order: {index} after {}", self.applied_index);
        self.applied_index = index;
        if let Some(cached) = self.cached_response(cmd.client, cmd.seq) {
            return cached; // a retry: answered, not applied twice
        }
        // A query ordered through the log (protocols without ReadIndex) changes nothing.
        let reply = match postcard::from_bytes::<LockRequest>(&cmd.data) {
            Ok(request) => self.table.execute(&request),
            Err(e) => LockReply::Invalid(e.to_string()),
        };
        let response = reply.encode();
        self.sessions.insert(cmd.client, (cmd.seq, response.clone()));
        response
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding a snapshot cannot fail"))
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        *self = postcard::from_bytes(data).map_err(|e| SnapshotError(e.to_string()))?;
        Ok(())
    }
}

impl Service for LockService {
    fn query(&self, query: &[u8]) -> Bytes {
        match postcard::from_bytes(query) {
            Ok(LockRequest::Holder { lock }) => self.table.holder(&lock),
            Ok(other) => LockReply::Invalid(format!("not a query: {other:?}")),
            Err(e) => LockReply::Invalid(e.to_string()),
        }
        .encode()
    }

    fn cached_response(&self, client: ClientId, seq: u64) -> Option<Bytes> {
        let (last_seq, response) = self.sessions.get(&client)?;
        match seq.cmp(last_seq) {
            std::cmp::Ordering::Equal => Some(response.clone()),
            std::cmp::Ordering::Less => Some(LockReply::Stale.encode()),
            std::cmp::Ordering::Greater => None,
        }
    }

    fn item_count(&self) -> usize {
        self.table.locks.values().filter(|l| l.grant.is_some()).count()
    }
}

/// Planted defects for the simulator's tests (`tests/lock_service_sim.rs`),
/// which show its checks catching a broken lock service. Test builds only.
#[cfg(test)]
#[allow(dead_code)] // tests/lock_service.rs includes this file too, and needs neither
impl LockService {
    /// Drops the current grant of `lock`, as if its lease had run out.
    pub fn forget_grant(&mut self, lock: &str) {
        if let Some(state) = self.table.locks.get_mut(lock) {
            state.grant = None;
        }
    }

    /// Forgets the last token handed out for `lock`, so the next grant reuses it.
    pub fn rewind_token(&mut self, lock: &str) {
        if let Some(state) = self.table.locks.get_mut(lock) {
            state.last_token = state.last_token.saturating_sub(1);
        }
    }
}

/// Why [`FencedStorage`] refused a write.
#[derive(Debug, PartialEq, Eq)]
pub struct Fenced {
    /// The token the write carried.
    pub token: u64,
    /// The newest token the storage has seen.
    pub newest: u64,
}

impl std::fmt::Display for Fenced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rejected: token {} is older than token {}, the newest seen", self.token, self.newest)
    }
}

/// The resource the lock protects: a storage service that checks fencing
/// tokens. It is not replicated here; what matters is the check.
#[derive(Debug, Default)]
pub struct FencedStorage {
    newest_token: u64,
    /// What was written, with the token of each write.
    pub writes: Vec<(u64, String)>,
}

impl FencedStorage {
    /// Accepts `data` unless `token` is older than a token already seen.
    pub fn write(&mut self, token: u64, data: &str) -> Result<(), Fenced> {
        if token < self.newest_token {
            return Err(Fenced { token, newest: self.newest_token });
        }
        self.newest_token = token;
        self.writes.push((token, data.to_string()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(machine: &mut LockService, index: u64, client: u64, request: LockRequest) -> LockReply {
        LockReply::decode(&machine.apply(index, &Command::new(ClientId(client), index, request.encode()))).unwrap()
    }

    fn acquire(owner: &str, now_ms: u64) -> LockRequest {
        LockRequest::Acquire { lock: "l".into(), owner: owner.into(), now_ms, lease_ms: 100 }
    }

    #[test]
    fn a_lease_excludes_others_until_it_runs_out_and_each_grant_has_a_newer_token() {
        let mut m = LockService::default();
        let a = Grant { owner: "a".into(), token: 1, expires_ms: 100 };
        assert_eq!(apply(&mut m, 1, 1, acquire("a", 0)), LockReply::Granted(a.clone()));
        assert_eq!(apply(&mut m, 2, 2, acquire("b", 50)), LockReply::Busy(a));
        let b = Grant { owner: "b".into(), token: 2, expires_ms: 200 };
        assert_eq!(apply(&mut m, 3, 2, acquire("b", 100)), LockReply::Granted(b.clone()));
        // A late command with an older time does not move the clock back.
        assert_eq!(apply(&mut m, 4, 1, acquire("a", 10)), LockReply::Busy(b));
        assert_eq!(apply(&mut m, 5, 1, LockRequest::Release { lock: "l".into(), token: 1 }), LockReply::NotHolder);
    }

    #[test]
    fn fenced_storage_refuses_a_token_older_than_the_newest_it_saw() {
        let mut storage = FencedStorage::default();
        assert_eq!(storage.write(1, "x"), Ok(()));
        assert_eq!(storage.write(2, "y"), Ok(()));
        assert_eq!(storage.write(1, "late"), Err(Fenced { token: 1, newest: 2 }));
        assert_eq!(storage.writes.len(), 2);
    }
}
