//! `quorum sim --churn`: a seeded operator that changes Raft's membership and
//! moves its leadership at random times during each simulated run.

use quorum_core::{Duration, NodeId, Protocol, Rng};
use quorum_raft::Raft;
use quorum_sim::Sim;
use std::any::Any;

/// Protocols whose membership the operator knows how to change.
pub const PROTOCOLS: &[&str] = &["raft"];

/// Mean time between the operator's turns.
const MEAN_INTERVAL: Duration = Duration::from_millis(80);

/// Installs the churn operator if `P` supports it; returns whether it did.
pub fn install<P: Protocol>(sim: &mut Sim<P>) -> bool {
    match (sim as &mut dyn Any).downcast_mut::<Sim<Raft>>() {
        Some(sim) => {
            sim.set_operator(MEAN_INTERVAL, raft_churn);
            true
        }
        None => false,
    }
}

/// One turn: bring a node that is out back (as a learner, then as a voter
/// once caught up), or with everyone voting remove one (the leader itself a
/// third of the time); 30% of turns transfer leadership instead, and 20% of
/// the others replace the disk of a node that does not vote (it comes back
/// empty and joins again, as `quorum node --join` does). At most one node is
/// out at a time.
fn raft_churn(sim: &mut Sim<Raft>, rng: &mut Rng) {
    let Some(leader) = sim.leader() else { return };
    let conf = sim.node(leader).expect("the leader is up").membership().clone();
    let outside: Vec<NodeId> =
        sim.members().iter().copied().filter(|m| !conf.voters.contains(m) && !conf.learners.contains(m)).collect();
    let others: Vec<NodeId> = conf.voters.iter().copied().filter(|v| *v != leader).collect();
    // A refused request (busy, not caught up) is simply tried again on a later turn.
    let non_voters: Vec<NodeId> = conf.learners.iter().chain(&outside).copied().collect();
    // Only once the configuration is committed: in one still pending, or in
    // the one before, the node may vote yet, and it would forget its votes.
    let committed = sim.node(leader).is_some_and(|r| r.membership_committed());
    if rng.chance(0.3) && !others.is_empty() {
        let to = others[rng.index(others.len())];
        sim.act(leader, &format!("transfer leadership to {to}"), |r, now, out| r.transfer_leadership(now, to, out));
    } else if rng.chance(0.2) && committed && !non_voters.is_empty() {
        let node = non_voters[rng.index(non_voters.len())];
        sim.wipe(node, conf.voters.clone());
        sim.restart(node);
    } else if let Some(&node) = conf.learners.first() {
        sim.act(leader, &format!("promote {node}"), |r, now, out| r.promote(now, node, out).map(drop));
    } else if let Some(&node) = outside.first() {
        sim.act(leader, &format!("add {node} as a learner"), |r, now, out| r.add_learner(now, node, out).map(drop));
    } else {
        let node = if rng.chance(1.0 / 3.0) || others.is_empty() { leader } else { others[rng.index(others.len())] };
        sim.act(leader, &format!("remove {node}"), |r, now, out| r.remove_node(now, node, out).map(drop));
    }
}
