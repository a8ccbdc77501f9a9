//! Membership changes and leadership transfer scripted in the simulator
//! (thesis §4 and §3.10) through `Sim::act`, under a live client workload:
//! the effects of each admin call go through the simulated disk and network,
//! and the run ends with every check, linearizability included.

use quorum_core::{Duration, NodeId, Protocol, Role};
use quorum_raft::{ChangeError, Raft, RaftConfig};
use quorum_sim::{Faults, Sim, SimConfig};

/// Three nodes with four closed-loop clients running, a leader that has
/// committed its first entry (before which it refuses membership changes),
/// and one of its followers.
fn cluster(seed: u64) -> (Sim<Raft>, NodeId, NodeId) {
    let mut cfg = SimConfig::new(3, seed).with_faults(Faults::None);
    cfg.duration = Duration::from_secs(5);
    let mut sim = Sim::<Raft>::new(cfg, RaftConfig::default());
    sim.start_workload();
    assert!(sim.run_until(Duration::from_secs(2), |s| s.leader().is_some()), "no leader");
    let leader = sim.leader().unwrap();
    sim.run_for(Duration::from_millis(50));
    assert_eq!(sim.leader(), Some(leader));
    let follower = sim.members().iter().copied().find(|m| *m != leader).unwrap();
    (sim, leader, follower)
}

fn voters(sim: &Sim<Raft>, id: NodeId) -> Vec<NodeId> {
    sim.node(id).unwrap().membership().voters.clone()
}

/// Lets the clients run a while longer, then every final check.
fn finish(mut sim: Sim<Raft>) {
    sim.run_for(Duration::from_millis(300));
    sim.run_finish().assert_clean(51);
}

#[test]
fn thesis_4_2_2_a_leader_removed_in_the_simulator_steps_down_and_the_rest_carry_on() {
    let (mut sim, old, _) = cluster(1);
    let index = sim.act(old, "remove the leader", |r, now, out| r.remove_node(now, old, out)).unwrap().unwrap();
    let moved = sim.run_until(Duration::from_secs(1), |s| s.leader().is_some_and(|l| l != old));
    assert!(moved, "no new leader after the old one removed itself");
    let new = sim.leader().unwrap();
    assert!(!voters(&sim, new).contains(&old));
    assert_ne!(sim.status(old).unwrap().role, Role::Leader, "the removed leader stepped down");
    let ops = sim.history().len();
    sim.run_for(Duration::from_millis(300));
    assert!(sim.applied_index(new) > index && sim.history().len() > ops, "the two remaining voters serve clients");
    finish(sim);
}

#[test]
fn thesis_4_2_1_a_node_removed_rejoins_as_a_learner_and_is_promoted_once_caught_up() {
    let (mut sim, leader, node) = cluster(2);
    sim.act(leader, "remove", |r, now, out| r.remove_node(now, node, out)).unwrap().unwrap();
    sim.run_for(Duration::from_millis(300)); // the others commit entries it never sees
    assert!(sim.applied_index(node) < sim.applied_index(leader));
    sim.act(leader, "add learner", |r, now, out| r.add_learner(now, node, out)).unwrap().unwrap();
    let behind = sim.applied_index(leader);
    // Caught up as the leader sees it: its match index reaches the commit index.
    let caught_up = sim.run_until(Duration::from_secs(1), |s| {
        let raft = s.node(leader).unwrap();
        let progress = raft.progress().into_iter().find(|p| p.id == node);
        s.status(node).unwrap().role == Role::Learner
            && progress.is_some_and(|p| !p.voter && p.match_index >= raft.status().commit_index)
    });
    assert!(caught_up, "the learner did not catch up");
    assert!(sim.applied_index(node) >= behind, "a learner applies what it receives");
    assert!(!voters(&sim, leader).contains(&node));
    let promoted = sim.act(leader, "promote", |r, now, out| r.promote(now, node, out)).unwrap();
    assert!(promoted.is_ok(), "{promoted:?}");
    assert!(sim.run_until(Duration::from_secs(1), |s| voters(s, node).contains(&node)));
    assert_eq!(voters(&sim, leader).len(), 3);
    finish(sim);
}

#[test]
fn thesis_3_10_leadership_transfer_in_the_simulator_completes_before_any_election_timeout() {
    let (mut sim, old, target) = cluster(3);
    sim.act(old, "transfer", |r, now, out| r.transfer_leadership(now, target, out)).unwrap().unwrap();
    // TimeoutNow: far sooner than the 150 ms minimum election timeout.
    let moved = sim.run_until(Duration::from_millis(50), |s| s.leader() == Some(target));
    assert!(moved, "the transfer did not complete within 50 ms");
    assert!(sim.run_until(Duration::from_millis(50), |s| s.status(old).unwrap().leader == Some(target)));
    finish(sim);
}

#[test]
fn acting_on_a_crashed_node_is_refused_and_changes_nothing() {
    let (mut sim, leader, _) = cluster(4);
    sim.crash(leader);
    assert!(sim.act(leader, "remove", |r, now, out| r.remove_node(now, leader, out)).is_none());
    sim.restart(leader);
    assert_eq!(voters(&sim, leader).len(), 3);
    finish(sim);
}

/// `nodes` nodes under 32 closed-loop clients for 3 s, with a leader that
/// has served them for 100 ms.
fn loaded(nodes: usize, seed: u64) -> (Sim<Raft>, NodeId) {
    let mut cfg = SimConfig::new(nodes, seed).with_faults(Faults::None);
    cfg.duration = Duration::from_secs(3);
    cfg.clients.count = 32;
    let mut sim = Sim::<Raft>::new(cfg, RaftConfig::default());
    sim.start_workload();
    assert!(sim.run_until(Duration::from_secs(2), |s| s.leader().is_some()), "no leader");
    sim.run_for(Duration::from_millis(100));
    let leader = sim.leader().unwrap();
    (sim, leader)
}

/// Under steady load a learner's match index trails the commit point by
/// what is in flight to it, and a learner on a slower link (a new machine
/// further away) trails it at every instant. Promotion judges whether it
/// keeps pace — everything up to the commit point sent to it, its answers
/// coming in — not whether it happens to match at the moment of asking: a
/// strict `match >= commit` refused this learner on every try.
#[test]
fn a_learner_on_a_slower_link_that_keeps_pace_under_load_is_promoted_at_once() {
    let (mut sim, leader) = loaded(3, 5);
    let node = sim.members().iter().copied().find(|m| *m != leader).unwrap();
    sim.act(leader, "remove", |r, now, out| r.remove_node(now, node, out)).unwrap().unwrap();
    sim.run_for(Duration::from_millis(200));
    sim.set_node_delay(node, Duration::from_millis(3));
    sim.act(leader, "add learner", |r, now, out| r.add_learner(now, node, out)).unwrap().unwrap();
    sim.run_for(Duration::from_millis(300)); // it catches up, then keeps pace
    let mut tries = 0;
    loop {
        tries += 1;
        let before = sim.applied_index(leader);
        sim.run_for(Duration::from_millis(20));
        assert!(sim.applied_index(leader) > before + 20, "the load keeps the commit point moving");
        match sim.act(leader, "promote", |r, now, out| r.promote(now, node, out)).unwrap() {
            Ok(_) => break,
            Err(why) => assert_eq!(why, ChangeError::NotCaughtUp(node)),
        }
        assert!(tries < 10, "still refused after {tries} tries: {:?}", sim.node(leader).unwrap().progress());
    }
    assert_eq!(tries, 1, "promoted at try {tries}");
    assert!(sim.run_until(Duration::from_secs(1), |s| voters(s, leader).contains(&node)));
    finish(sim);
}

/// Thesis §4.2.2 under load: a leader that removed itself hands over to
/// the voter whose log matches its own furthest. If that voter lacks entries
/// another voter holds, its campaign loses, and nobody leads until an
/// election timeout (150-300 ms): 7 of these 40 seeds did so when the
/// leader sent TimeoutNow at once. It brings the successor up to its last
/// entry first, taking no proposals meanwhile, then steps down.
#[test]
fn a_leader_that_removes_itself_under_load_hands_over_without_an_election_timeout() {
    let mut slowest = Duration::ZERO;
    for seed in 0..40 {
        let (mut sim, old) = loaded(4, seed);
        let start = sim.now();
        sim.act(old, "remove the leader", |r, now, out| r.remove_node(now, old, out)).unwrap().unwrap();
        let moved = sim.run_until(Duration::from_secs(1), |s| s.leader().is_some_and(|l| l != old));
        assert!(moved, "seed {seed}: no new leader");
        slowest = slowest.max(sim.now() - start);
        finish(sim);
    }
    // (`run_until` looks every 10 ms; an election timeout is at least 150.)
    assert!(slowest < Duration::from_millis(50), "the slowest hand-over took {slowest}");
}
