//! `quorum sim --churn`: a seeded operator that changes the membership of a
//! Raft, Multi-Paxos or Zab cluster and moves its leadership at random times
//! during each simulated run, through the protocols' shared operator calls
//! (`Protocol::change_membership`, `Protocol::transfer_to`).

use quorum_core::{Duration, MembershipChange, NodeId, Protocol, Rng};
use quorum_multipaxos::MultiPaxos;
use quorum_raft::Raft;
use quorum_sim::Sim;
use quorum_zab::Zab;
use std::any::Any;

/// Mean time between the operator's turns.
const MEAN_INTERVAL: Duration = Duration::from_millis(80);

/// Installs the churn operator if `P` supports it; returns whether it did.
pub fn install<P: Protocol>(sim: &mut Sim<P>) -> bool {
    let sim = sim as &mut dyn Any;
    if let Some(sim) = sim.downcast_mut::<Sim<Raft>>() {
        sim.set_operator(MEAN_INTERVAL, churn::<Raft>);
        return true;
    }
    if let Some(sim) = sim.downcast_mut::<Sim<MultiPaxos>>() {
        sim.set_operator(MEAN_INTERVAL, churn::<MultiPaxos>);
        return true;
    }
    if let Some(sim) = sim.downcast_mut::<Sim<Zab>>() {
        sim.set_operator(MEAN_INTERVAL, churn::<Zab>);
        return true;
    }
    false
}

/// One turn: bring a node that is out back (as a learner, then as a voter
/// once caught up), or with everyone voting remove one (the leader itself a
/// third of the time); 30% of turns transfer leadership instead, and 20% of
/// the others replace the disk of a node that no node counts as a voter (it comes back
/// empty and joins again, as `quorum node --join` does). At most one node is
/// out at a time.
fn churn<P: Protocol>(sim: &mut Sim<P>, rng: &mut Rng) {
    let Some(leader) = sim.leader() else { return };
    let node = sim.node(leader).expect("the leader is up");
    let conf = node.membership().expect("a churnable protocol has a membership").clone();
    // Only once the configuration is committed: in one still pending, or in
    // the one before, the node may vote yet, and it would forget its votes.
    let settled = node.membership_committed();
    // The operator acts on the nodes this cluster has: under `--profile
    // hostile` a corrupted message may have put one it has not into the
    // configuration (seed 1298 of Multi-Paxos: a learner n6 of 5 nodes).
    let members = sim.members();
    let learners: Vec<NodeId> = conf.learners.iter().copied().filter(|m| members.contains(m)).collect();
    let outside: Vec<NodeId> =
        members.iter().copied().filter(|m| !conf.voters.contains(m) && !conf.learners.contains(m)).collect();
    let others: Vec<NodeId> = conf.voters.iter().copied().filter(|v| *v != leader && members.contains(v)).collect();
    // A disk is replaced only where no node counts its owner as a voter: a
    // node whose log ends before the removal would count the wiped node's
    // fresh vote in the old configuration (seed 19 of `raft --churn
    // --profile counters --nodes 4`: two leaders in term 8). A node that is
    // down may be one, so it waits until every node is up.
    let counted = |id: NodeId| {
        members.iter().any(|&m| sim.node(m).is_none_or(|p| p.membership().is_none_or(|c| c.voters.contains(&id))))
    };
    let non_voters: Vec<NodeId> = learners.iter().chain(&outside).copied().filter(|&id| !counted(id)).collect();
    let change = |sim: &mut Sim<P>, change: MembershipChange| {
        sim.act(leader, &change.to_string(), |p, now, out| p.change_membership(now, change.clone(), out).map(drop));
    };
    if rng.chance(0.3) && !others.is_empty() {
        let to = others[rng.index(others.len())];
        sim.act(leader, &format!("transfer leadership to {to}"), |p, now, out| p.transfer_to(now, to, out));
    } else if rng.chance(0.2) && settled && !non_voters.is_empty() {
        let node = non_voters[rng.index(non_voters.len())];
        sim.wipe(node, conf.voters.clone());
        sim.restart(node);
    } else if let Some(&node) = learners.first() {
        change(sim, MembershipChange::Promote(node));
    } else if let Some(&node) = outside.first() {
        change(sim, MembershipChange::AddLearner { node, address: None });
    } else {
        let node = if rng.chance(1.0 / 3.0) || others.is_empty() { leader } else { others[rng.index(others.len())] };
        change(sim, MembershipChange::Remove(node));
    }
}
