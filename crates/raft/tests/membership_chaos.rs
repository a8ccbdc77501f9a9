//! Membership changes, leadership transfers and snapshots under random
//! crashes, partitions, loss, duplication and reordering, over many seeds,
//! with Raft's invariants checked after every input.

use quorum_core::{Duration, Effects, Instant, NodeId, Protocol, Rng};
type Cluster = quorum_sim::testkit::Cluster<quorum_raft::Raft>;
use quorum_raft::{Message, Raft, RaftConfig};

/// An admin call at the current leader, if there is one; a refusal (busy,
/// not caught up, not a member) is part of the chaos.
fn at_leader<R>(c: &mut Cluster, call: impl FnOnce(&mut Raft, Instant, &mut Effects<Message>) -> R) {
    if let Some(leader) = c.leader() {
        let _ = c.act(leader, call);
    }
}

fn run(seed: u64) -> Cluster {
    let mut c = chaos(seed);
    // Faults stop: the cluster must then elect a leader and catch every voter up.
    c.heal();
    c.clear_chaos();
    for id in c.ids() {
        if c.node(id).is_none() {
            c.restart(id);
        }
    }
    let settled = c.run_until(Duration::from_secs(5), |c| {
        let Some(leader) = c.leader() else { return false };
        let node = c.node(leader).unwrap();
        let commit = node.status().commit_index;
        node.membership().voters.iter().all(|v| c.applied_index(*v) >= commit)
    });
    assert!(settled, "seed {seed}: no leader with caught-up voters 5 s after the faults stopped");
    c
}

fn chaos(seed: u64) -> Cluster {
    let mut c = Cluster::with_voters(5, &[1, 2, 3], RaftConfig::default(), seed);
    c.set_chaos(seed ^ 0xC4A05, 0.05, 0.05);
    let mut rng = Rng::new(seed);
    let mut payload = 0u8;
    for _ in 0..150 {
        c.run_for(Duration::from_millis(20));
        let node = NodeId(rng.range(1, 6));
        let up = c.node(node).is_some();
        match rng.range(0, 100) {
            0..=39 => {
                if let Some(leader) = c.leader() {
                    payload = payload.wrapping_add(1);
                    let _ = c.propose(leader, vec![payload]);
                }
            }
            40..=49 => at_leader(&mut c, |r, now, out| r.add_learner(now, node, out)),
            50..=57 => at_leader(&mut c, |r, now, out| r.promote(now, node, out)),
            58..=64 => at_leader(&mut c, |r, now, out| r.remove_node(now, node, out)),
            65..=68 => at_leader(&mut c, |r, now, out| r.transfer_leadership(now, node, out)),
            69..=76 if up => c.crash(node),
            69..=76 => c.restart(node),
            77..=82 => c.isolate(node),
            83..=90 => c.heal(),
            91..=95 if up => c.snapshot(node),
            _ => {}
        }
    }
    c
}

#[test]
fn membership_changes_under_chaos_keep_every_invariant() {
    let seeds = std::env::var("RAFT_CHAOS_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300u64);
    let mut changed = 0;
    for seed in 0..seeds {
        let c = run(seed);
        assert!(c.violations().is_empty(), "seed {seed}: {:?}", c.violations());
        let leader = c.leader().unwrap_or_else(|| panic!("seed {seed}: no leader after healing"));
        let membership = c.node(leader).unwrap().membership().clone();
        if membership.voters != [NodeId(1), NodeId(2), NodeId(3)] {
            changed += 1;
        }
    }
    assert!(changed > seeds / 4, "only {changed} of {seeds} runs changed the membership; the test shows little");
}
