//! A membership-churn operator for simulated Raft runs: at random times it
//! removes a voter (sometimes the leader itself), adds the removed node back
//! as a learner, promotes it once caught up, or transfers leadership to a
//! random follower. Every choice comes from the run's operator `Rng`, so a
//! seed replays exactly; the actions go through `Sim::act`, so their effects
//! are carried out and checked like any other step.

#![allow(dead_code)] // each test binary uses part of it

use quorum_core::{Duration, Instant, NodeId, Rng};
use quorum_raft::Raft;
use quorum_sim::Sim;
use std::sync::{Arc, Mutex};

/// The mean time between the operator's turns in a sweep (1 s of load: ~12 turns).
pub const MEAN_INTERVAL: Duration = Duration::from_millis(80);

/// One accepted request (the leader appended the change or started the transfer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// A voter's removal was proposed by `leader` in `term`; `node == leader` removes the leader itself.
    Removed { at: Instant, node: NodeId, leader: NodeId, term: u64 },
    /// The node was proposed as a learner.
    AddedLearner { at: Instant, node: NodeId },
    /// The learner was proposed as a voter (it had caught up).
    Promoted { at: Instant, node: NodeId },
    /// `from`, leader of `term`, started handing leadership to `to`.
    Transfer { at: Instant, from: NodeId, to: NodeId, term: u64 },
}

/// What an operator did, shared with the test that installed it.
pub type Record = Arc<Mutex<Vec<Done>>>;

/// Installs the churn operator on `sim`, recording accepted requests in `record`.
pub fn install(sim: &mut Sim<Raft>, record: Record) {
    sim.set_operator(MEAN_INTERVAL, move |sim: &mut Sim<Raft>, rng: &mut Rng| churn(sim, rng, &record));
}

/// One turn: with a node out of the configuration, bring it back (learner,
/// then voter); with everyone voting, remove one or move leadership. At most
/// one node is out at a time, so a quorum of the initial nodes always votes.
fn churn(sim: &mut Sim<Raft>, rng: &mut Rng, record: &Record) {
    let Some(leader) = sim.leader() else { return };
    let raft = sim.node(leader).expect("the leader is up");
    let (conf, term, now) = (raft.membership().clone(), raft.term(), sim.now());
    let outside: Vec<NodeId> =
        sim.members().iter().copied().filter(|m| !conf.voters.contains(m) && !conf.learners.contains(m)).collect();
    let others: Vec<NodeId> = conf.voters.iter().copied().filter(|v| *v != leader).collect();
    let transfer = rng.chance(0.3) && !others.is_empty();
    let done = if transfer {
        let to = others[rng.index(others.len())];
        let label = format!("transfer leadership to {to}");
        let ok = sim.act(leader, &label, |r, now, out| r.transfer_leadership(now, to, out));
        ok.is_some_and(|r| r.is_ok()).then_some(Done::Transfer { at: now, from: leader, to, term })
    } else if let Some(&node) = conf.learners.first() {
        let ok = sim.act(leader, &format!("promote {node}"), |r, now, out| r.promote(now, node, out));
        ok.is_some_and(|r| r.is_ok()).then_some(Done::Promoted { at: now, node })
    } else if let Some(&node) = outside.first() {
        let ok = sim.act(leader, &format!("add {node} as a learner"), |r, now, out| r.add_learner(now, node, out));
        ok.is_some_and(|r| r.is_ok()).then_some(Done::AddedLearner { at: now, node })
    } else {
        // Remove the leader itself a third of the time, else a random follower.
        let node = if rng.chance(1.0 / 3.0) || others.is_empty() { leader } else { others[rng.index(others.len())] };
        let ok = sim.act(leader, &format!("remove {node}"), |r, now, out| r.remove_node(now, node, out));
        ok.is_some_and(|r| r.is_ok()).then_some(Done::Removed { at: now, node, leader, term })
    };
    if let Some(done) = done {
        record.lock().expect("record lock").push(done);
    }
}

/// Counts over many runs.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Removals proposed, and how many of them removed the leader itself.
    pub removals: u64,
    pub leader_removals: u64,
    pub learners: u64,
    pub promotions: u64,
    pub transfers: u64,
}

impl Counts {
    pub fn of(record: &[Done]) -> Counts {
        let mut c = Counts::default();
        for d in record {
            match d {
                Done::Removed { node, leader, .. } => {
                    c.removals += 1;
                    c.leader_removals += u64::from(node == leader);
                }
                Done::AddedLearner { .. } => c.learners += 1,
                Done::Promoted { .. } => c.promotions += 1,
                Done::Transfer { .. } => c.transfers += 1,
            }
        }
        c
    }
}
