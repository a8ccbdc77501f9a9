//! The lock service under the simulator: `cargo run --example lock_service -- --sim`.
//!
//! [`Workload`] tells quorum-sim how to drive this state machine (what a
//! client asks next, how requests and replies are encoded) and how to judge
//! what the clients saw. The simulator's own checks then hold it to the same
//! standard as the key-value store, with crashes, partitions, loss, pauses and
//! skewed clocks: every node applies the same requests at each index, every
//! snapshot and final state equals the committed log replayed, and a `Holder`
//! query answered outside the log says what the log's state says. On top,
//! [`check_history`](Workload::check_history) runs three checks of its own:
//!
//! - **linearizability**: some order of the requests that respects real time
//!   gives every client the reply it got, with the lock table itself
//!   ([`Locks`], without the sessions and log index the replicated service
//!   adds) as the model ([`quorum::sim::lincheck::check_model`]);
//! - **fencing tokens**: a grant that was answered before another was asked
//!   has the older token (equal only for a renewal by the same owner);
//! - **one holder**: a lock granted to someone else while an earlier grant's
//!   lease still ran (on the service's clock), and that grant was not
//!   released, has two holders at once.
//!
//! The model check alone cannot see a bug in the lock logic (the model would
//! share it); the last two can, and a planted one is caught in the tests.

use crate::lock::{Grant, LockReply, LockRequest, LockService, Locks};
use bytes::Bytes;
use quorum::sim::lincheck::{check_model, Model};
use quorum::sim::{OpContext, Operation, Outcome, Workload};
use std::collections::BTreeMap;

/// How long a lease lasts, in milliseconds of the service's clock.
pub const LEASE_MS: u64 = 40;

type History = [Operation<LockRequest, LockReply>];

impl Workload for LockService {
    type Op = LockRequest;
    type Output = LockReply;

    fn next_op(ctx: &mut OpContext<'_, LockRequest, LockReply>) -> LockRequest {
        let lock = format!("l{}", ctx.key);
        let owner = format!("c{}", ctx.client.0);
        let roll = ctx.rng.unit();
        if roll < 0.5 {
            let now_ms = ctx.now.as_nanos() / 1_000_000;
            LockRequest::Acquire { lock, owner, now_ms, lease_ms: LEASE_MS }
        } else if roll < 0.8 {
            // Release the grant this client last got for the lock, if any
            // (maybe long expired: the service must refuse a stale token).
            let token = last_token(ctx.history, &lock, &owner).unwrap_or(1);
            LockRequest::Release { lock, token }
        } else {
            LockRequest::Holder { lock }
        }
    }

    fn encode(op: &LockRequest) -> Bytes {
        op.encode()
    }

    fn decode(response: &[u8]) -> LockReply {
        LockReply::decode(response).unwrap_or_else(|e| LockReply::Invalid(e.to_string()))
    }

    fn is_read(op: &LockRequest) -> bool {
        matches!(op, LockRequest::Holder { .. })
    }

    fn check_history(history: &History) -> Vec<(String, String)> {
        let mut broken = Vec::new();
        // One partition: the service's clock is shared by every lock, so
        // requests on different locks do not commute.
        if let Err(e) = check_model(history, &Locks::default(), |_| ()) {
            broken.push(("linearizability".to_string(), e.detail));
        }
        broken.extend(check_tokens(history).map(|d| ("fencing token".to_string(), d)));
        broken.extend(check_one_holder(history).map(|d| ("one holder".to_string(), d)));
        broken
    }

    fn show_op(op: &LockRequest) -> String {
        show_request(op)
    }

    fn show_output(reply: &LockReply) -> String {
        reply.to_string()
    }
}

impl Model for Locks {
    type Op = LockRequest;
    type Output = LockReply;

    fn step(&mut self, op: &LockRequest) -> LockReply {
        self.execute(op)
    }

    fn is_read(op: &LockRequest) -> bool {
        <LockService as Workload>::is_read(op)
    }

    fn show_op(op: &LockRequest) -> String {
        show_request(op)
    }

    fn show_output(reply: &LockReply) -> String {
        reply.to_string()
    }
}

fn show_request(op: &LockRequest) -> String {
    match op {
        LockRequest::Acquire { lock, owner, now_ms, .. } => format!("acquire {lock} for {owner} at {now_ms} ms"),
        LockRequest::Release { lock, token } => format!("release {lock} token {token}"),
        LockRequest::Holder { lock } => format!("holder of {lock}"),
    }
}

/// The token of the latest grant `owner` was told it has on `lock`.
fn last_token(history: &History, lock: &str, owner: &str) -> Option<u64> {
    history.iter().rev().find_map(|o| match (&o.op, o.result()) {
        (LockRequest::Acquire { lock: l, .. }, Some(LockReply::Granted(g))) if l == lock && g.owner == owner => {
            Some(g.token)
        }
        _ => None,
    })
}

/// A grant a client was told of: the request's lock and time, and the grant.
struct Granted<'a> {
    op: &'a Operation<LockRequest, LockReply>,
    lock: &'a str,
    lease_ms: u64,
    grant: &'a Grant,
}

fn grants(history: &History) -> Vec<Granted<'_>> {
    history
        .iter()
        .filter_map(|op| match (&op.op, op.result()) {
            (LockRequest::Acquire { lock, lease_ms, .. }, Some(LockReply::Granted(grant))) => {
                Some(Granted { op, lock, lease_ms: *lease_ms, grant })
            }
            _ => None,
        })
        .collect()
}

/// Fencing tokens grow: a grant answered before another grant of the same
/// lock was asked for has a smaller token, or the same one for a renewal.
fn check_tokens(history: &History) -> Option<String> {
    let grants = grants(history);
    for a in &grants {
        let Some(done) = a.op.completed_at() else { continue };
        for b in grants.iter().filter(|b| b.lock == a.lock && b.op.invoked > done) {
            let renewal = b.grant.owner == a.grant.owner && b.grant.token == a.grant.token;
            if b.grant.token < a.grant.token || (b.grant.token == a.grant.token && !renewal) {
                return Some(format!(
                    "{} was granted {} (answered {done}), then {} asked at {} and was granted {}",
                    a.grant.owner, a.grant, b.grant.owner, b.op.invoked, b.grant
                ));
            }
        }
    }
    None
}

/// No two holders: a grant of a newer token to another owner happens, on the
/// service's clock, no earlier than the older grant's lease ends (its latest
/// renewal that anyone was told of), unless that grant was released.
fn check_one_holder(history: &History) -> Option<String> {
    let grants = grants(history);
    // For each (lock, token): the latest expiry a client was told of.
    let mut expiry: BTreeMap<(&str, u64), (u64, &Grant)> = BTreeMap::new();
    for g in &grants {
        let e = expiry.entry((g.lock, g.grant.token)).or_insert((0, g.grant));
        if g.grant.expires_ms >= e.0 {
            *e = (g.grant.expires_ms, g.grant);
        }
    }
    let released = |lock: &str, token: u64| {
        history.iter().any(|o| match (&o.op, &o.outcome) {
            (LockRequest::Release { lock: l, token: t }, Outcome::Unknown) => l == lock && *t == token,
            (LockRequest::Release { lock: l, token: t }, Outcome::Ok { result: LockReply::Released, .. }) => {
                l == lock && *t == token
            }
            _ => false,
        })
    };
    for b in &grants {
        let granted_at = b.grant.expires_ms.saturating_sub(b.lease_ms);
        for (&(lock, token), &(expires, a)) in expiry.range((b.lock, 0)..(b.lock, b.grant.token)) {
            debug_assert_eq!(lock, b.lock);
            if a.owner != b.grant.owner && granted_at < expires && !released(lock, token) {
                return Some(format!(
                    "{lock} was granted to {} at {granted_at} ms on the service's clock, while {} still held it (lease until {expires} ms, never released)",
                    b.grant.owner, a.owner
                ));
            }
        }
    }
    None
}

/// The simulated runs `--sim` makes: five Raft nodes serving the lock service
/// to five clients contending for two locks, with every fault the simulator
/// injects (crashes, torn writes, partitions, loss, duplication, reordering,
/// pauses) and clocks that drift.
pub fn config(seed: u64) -> quorum::sim::SimConfig {
    use quorum::sim::{Faults, SimConfig};
    let mut config = SimConfig::new(5, seed).with_faults(Faults::All);
    config.clients.count = 5;
    config.clients.keys = 2;
    config.snapshot_every = Some(50);
    config
}

/// Runs `seeds` and returns what they found.
pub fn sweep(seeds: std::ops::Range<u64>) -> quorum::sim::Summary {
    use quorum::raft::{Raft, RaftConfig};
    quorum::sim::check_workload_seeds::<Raft, LockService>(&config(0), &RaftConfig::default(), seeds, |_| {}, |_| {})
}
