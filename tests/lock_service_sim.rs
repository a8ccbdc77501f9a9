//! The lock service example's state machine under the simulator
//! (`cargo run --example lock_service -- --sim`): clean runs pass every
//! check, and each of the workload's checks catches a planted defect, the
//! test naming which check fired.

#[path = "../examples/lock_service/lock.rs"]
mod lock;
#[path = "../examples/lock_service/sim.rs"]
mod sim;

use bytes::Bytes;
use lock::{LockReply, LockRequest, LockService};
use quorum::core::{ClientId, Command, Service, SnapshotError, StateMachine};
use quorum::raft::{Raft, RaftConfig};
use quorum::sim::baseline::{PlantedBug, PrimaryBackup, PrimaryBackupConfig};
use quorum::sim::{check_workload_seeds, OpContext, Operation, Summary, Workload};

/// Every check that fired in a sweep, with how many seeds it fired in.
fn fired(summary: &Summary) -> Vec<(String, usize)> {
    let mut checks: Vec<(String, usize)> = Vec::new();
    for failure in &summary.failures {
        let mut seen: Vec<&str> = failure.violations.iter().map(|v| v.check.as_str()).collect();
        seen.dedup();
        for check in seen {
            match checks.iter_mut().find(|(c, _)| c == check) {
                Some((_, n)) => *n += 1,
                None => checks.push((check.to_string(), 1)),
            }
        }
    }
    checks
}

#[test]
fn the_lock_service_on_raft_passes_every_check_under_faults() {
    let summary = sim::sweep(0..16);
    println!("{summary}");
    summary.assert_clean();
    assert!(summary.ops_ok > 16 * 300, "too little load to mean anything: {summary}");
}

#[test]
fn linearizability_catches_stale_reads_of_the_holder() {
    let protocol = PrimaryBackupConfig { bug: Some(PlantedBug::StaleLocalRead), ..Default::default() };
    let mut base = sim::config(0);
    base.clients.reads = quorum::sim::ReadPath::Protocol;
    let summary = check_workload_seeds::<PrimaryBackup, LockService>(&base, &protocol, 0..64, |_| {}, |_| {});
    let checks = fired(&summary);
    println!("{checks:?}");
    // Measured: 7 of the 64 seeds (a stale read must overlap a lease change;
    // 4 of the first 24 before half the crashes became machine crashes, 1 after).
    assert!(checks.iter().any(|(c, n)| c == "linearizability" && *n >= 2), "{summary}");
    assert!(checks.iter().all(|(c, _)| c == "linearizability"), "only the model check can see it: {checks:?}");
}

/// A lock service with a planted defect, otherwise the real one.
#[derive(Clone, Default)]
struct Broken<const BUG: u8>(LockService);

/// Grants a lock whose lease still runs: two holders at once.
const DOUBLE_GRANT: u8 = 1;
/// A fresh grant reuses the previous grant's token.
const TOKEN_REUSE: u8 = 2;

impl<const BUG: u8> StateMachine for Broken<BUG> {
    fn apply(&mut self, index: u64, cmd: &Command) -> Bytes {
        if let Ok(LockRequest::Acquire { lock, .. }) = postcard::from_bytes(&cmd.data) {
            if self.0.cached_response(cmd.client, cmd.seq).is_none() {
                self.0.forget_grant(&lock);
                if BUG == TOKEN_REUSE {
                    self.0.rewind_token(&lock);
                }
            }
        }
        self.0.apply(index, cmd)
    }
    fn snapshot(&self) -> Bytes {
        self.0.snapshot()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        self.0.restore(data)
    }
}

impl<const BUG: u8> Service for Broken<BUG> {
    fn query(&self, query: &[u8]) -> Bytes {
        self.0.query(query)
    }
    fn cached_response(&self, client: ClientId, seq: u64) -> Option<Bytes> {
        self.0.cached_response(client, seq)
    }
}

impl<const BUG: u8> Workload for Broken<BUG> {
    type Op = LockRequest;
    type Output = LockReply;
    fn next_op(ctx: &mut OpContext<'_, LockRequest, LockReply>) -> LockRequest {
        LockService::next_op(ctx)
    }
    fn encode(op: &LockRequest) -> Bytes {
        LockService::encode(op)
    }
    fn decode(response: &[u8]) -> LockReply {
        LockService::decode(response)
    }
    fn is_read(op: &LockRequest) -> bool {
        LockService::is_read(op)
    }
    fn check_history(history: &[Operation<LockRequest, LockReply>]) -> Vec<(String, String)> {
        LockService::check_history(history)
    }
}

fn sweep_broken<const BUG: u8>() -> Vec<(String, usize)> {
    let summary =
        check_workload_seeds::<Raft, Broken<BUG>>(&sim::config(0), &RaftConfig::default(), 0..4, |_| {}, |_| {});
    let checks = fired(&summary);
    println!("{checks:?}\n{summary}");
    checks
}

#[test]
fn one_holder_catches_a_grant_while_a_lease_runs() {
    let checks = sweep_broken::<DOUBLE_GRANT>();
    assert!(checks.iter().any(|(c, n)| c == "one holder" && *n == 4), "{checks:?}");
    assert!(!checks.iter().any(|(c, _)| c == "fencing token"), "tokens still grow: {checks:?}");
}

#[test]
fn fencing_token_catches_a_reused_token() {
    let checks = sweep_broken::<TOKEN_REUSE>();
    assert!(checks.iter().any(|(c, n)| c == "fencing token" && *n == 4), "{checks:?}");
}
