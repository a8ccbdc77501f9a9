//! Membership changes and leadership transfer in Multi-Paxos, driven through
//! the shared operator calls (`Protocol::change_membership`,
//! `Protocol::transfer_to`) on the in-memory cluster, which checks the
//! protocol's invariants (one value per slot, counted by the voters of the
//! configuration that decides each slot) after every input.

use quorum_core::{Duration, Effect, Effects, Init, Instant, MembershipChange, NodeId, Protocol, Role, Stored};
use quorum_multipaxos::{Message, MultiPaxos, MultiPaxosConfig, PlantedBug};
use quorum_paxos::Ballot;

type Cluster = quorum_sim::testkit::Cluster<MultiPaxos>;

fn settled(n: u64, voters: &[u64], seed: u64) -> (Cluster, NodeId) {
    let mut c = Cluster::with_voters(n, voters, MultiPaxosConfig::default(), seed);
    let leader = c.elected(Duration::from_secs(3));
    c.settle();
    (c, leader)
}

#[test]
fn a_learner_catches_up_before_it_is_promoted_then_its_vote_counts() {
    let (mut c, leader) = settled(4, &[1, 2, 3], 1);
    for i in 0..40 {
        c.propose(leader, vec![i]).unwrap();
    }
    c.settle();
    assert_eq!(c.applied_index(NodeId(4)), 0, "outside the configuration it hears nothing");
    c.isolate(NodeId(4));
    let slot = c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
    c.settle();
    assert!(c.applied_index(leader) >= slot);
    let refused = c.change_membership(leader, MembershipChange::Promote(NodeId(4))).unwrap_err();
    assert!(refused.contains("has not caught up"), "{refused}");
    c.heal();
    c.run_for(Duration::from_millis(200));
    assert_eq!(c.node(NodeId(4)).unwrap().status().role, Role::Learner);
    assert_eq!(c.applied_index(NodeId(4)), c.applied_index(leader), "the learner caught up");
    let slot = c.change_membership(leader, MembershipChange::Promote(NodeId(4))).unwrap();
    c.run_for(Duration::from_millis(100));
    for id in c.ids() {
        assert_eq!(c.voters(id), vec![1, 2, 3, 4], "{id} has the new configuration in force");
        assert!(c.applied_index(id) >= slot);
    }
    // Four voters: a majority is three. With two followers down nothing is
    // chosen; with the new voter back, its vote makes the third.
    let others: Vec<NodeId> = [1, 2, 3].map(NodeId).into_iter().filter(|n| *n != leader).collect();
    c.crash(others[0]);
    c.crash(NodeId(4));
    let before = c.applied_index(leader);
    c.propose(leader, b"needs three".to_vec()).unwrap();
    c.run_for(Duration::from_millis(30));
    assert_eq!(c.applied_index(leader), before, "two of four voters are no majority");
    c.restart(NodeId(4));
    c.run_for(Duration::from_millis(300));
    assert!(c.applied_index(leader) > before, "the promoted node's vote counts");
    c.assert_clean();
}

#[test]
fn a_change_that_cannot_be_carried_out_safely_is_refused_and_nothing_changes() {
    let (mut c, leader) = settled(5, &[1, 2, 3], 2);
    let follower = c.ids().into_iter().find(|n| *n != leader && n.0 <= 3).unwrap();
    let before = c.node(leader).unwrap().membership().unwrap().clone();
    let refused = |c: &mut Cluster, id, ch| c.change_membership(id, ch).unwrap_err();
    assert!(refused(&mut c, follower, MembershipChange::learner(NodeId(4))).contains("not the leader"));
    assert!(refused(&mut c, leader, MembershipChange::learner(NodeId(2))).contains("a member already"));
    assert!(refused(&mut c, leader, MembershipChange::Promote(NodeId(2))).contains("a voter already"));
    assert!(refused(&mut c, leader, MembershipChange::Remove(NodeId(9))).contains("not a member"));
    let bad = MembershipChange::AddLearner { node: NodeId(4), address: Some(String::new()) };
    assert!(refused(&mut c, leader, bad).contains("peer address"));
    assert!(refused(&mut c, leader, MembershipChange::Promote(NodeId(5))).contains("has not caught up"));
    assert_eq!(c.node(leader).unwrap().membership().unwrap(), &before, "refusals change nothing");
    // One change at a time: the second waits for the first to commit.
    c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
    assert!(refused(&mut c, leader, MembershipChange::learner(NodeId(5))).contains("not committed yet"));
    c.settle();
    c.change_membership(leader, MembershipChange::learner(NodeId(5))).unwrap();
    c.settle();
    // Down to one voter, and never to none.
    for node in [1, 2, 3].map(NodeId).into_iter().filter(|n| *n != leader) {
        c.change_membership(leader, MembershipChange::Remove(node)).unwrap();
        c.settle();
    }
    assert_eq!(c.voters(leader), vec![leader.0]);
    assert!(refused(&mut c, leader, MembershipChange::Remove(leader)).contains("keep at least one voter"));
    let before = c.applied_index(leader);
    c.propose(leader, b"alone".to_vec()).unwrap();
    c.settle();
    assert!(c.applied_index(leader) > before, "a lone voter is its own majority");
    c.assert_clean();
}

#[test]
fn a_leader_that_removes_itself_hands_over_without_an_election_timeout() {
    let (mut c, leader) = settled(3, &[1, 2, 3], 3);
    let slot = c.change_membership(leader, MembershipChange::Remove(leader)).unwrap();
    c.settle(); // no timer fires: the handover goes by TakeOver
    let new = c.leader().expect("a remaining voter took over at once");
    assert_ne!(new, leader);
    assert!(c.applied_index(new) >= slot);
    assert!(!c.voters(new).contains(&leader.0));
    assert_eq!(c.node(leader).unwrap().status().role, Role::Learner, "out of the configuration, it only listens");
    c.run_for(Duration::from_secs(2));
    assert_eq!(c.leader(), Some(new), "the removed node never campaigns");
    c.propose(new, b"after".to_vec()).unwrap();
    c.settle();
    assert!(c.applied_index(new) > slot);
    c.assert_clean();
}

#[test]
fn leadership_transfer_hands_over_without_waiting_for_a_timeout() {
    let (mut c, leader) = settled(5, &[1, 2, 3, 4, 5], 4);
    c.run_for(Duration::from_millis(50)); // a heartbeat tells the followers who leads
    let target = c.ids().into_iter().find(|i| *i != leader).unwrap();
    let refused = c.act(leader, |p, now, out| p.transfer_to(now, NodeId(9), out)).unwrap_err();
    assert!(refused.contains("not a voter"), "{refused}");
    c.act(leader, |p, now, out| p.transfer_to(now, target, out)).unwrap();
    c.settle();
    assert_eq!(c.leader(), Some(target));
    c.propose(target, b"x".to_vec()).unwrap();
    c.run_for(Duration::from_millis(50));
    assert_eq!(c.leader(), Some(target));
    assert!(c.applied_index(target) >= 1);
    assert_eq!(c.applied_index(leader), c.applied_index(target));
    c.assert_clean();
}

#[test]
fn a_leader_about_to_stop_hands_off_to_a_voter() {
    let (mut c, leader) = settled(3, &[1, 2, 3], 7);
    c.run_for(Duration::from_millis(50));
    assert!(c.act(leader, |p, now, out| p.hand_off(now, out)));
    c.settle();
    let new = c.leader().expect("a voter took over without a timeout");
    assert_ne!(new, leader);
    assert_ne!(c.node(leader).unwrap().status().role, Role::Leader, "the old leader stepped down");
    c.assert_clean();
}

#[test]
fn a_node_joining_with_empty_storage_is_silent_until_the_configuration_adds_it() {
    let init = Init {
        id: NodeId(4),
        members: vec![NodeId(1), NodeId(2), NodeId(3)],
        config: MultiPaxosConfig::default(),
        stored: Stored::default(),
        seed: 1,
        now: Instant::ZERO,
    };
    let mut joiner = MultiPaxos::new(init).unwrap();
    assert_eq!(joiner.status().role, Role::Learner);
    let mut out = Effects::new();
    let ballot = Ballot::new(7, NodeId(2));
    joiner.on_message(Instant::ZERO, NodeId(2), Message::Prepare { ballot, from: 1 }, &mut out);
    let accept = Message::Accept { ballot, entries: vec![(1, quorum_core::Payload::Noop)], commit: 0 };
    joiner.on_message(Instant::ZERO, NodeId(2), accept, &mut out);
    let answered = out.as_slice().iter().any(|e| match e {
        Effect::Send { msg, .. } | Effect::SendDurable { msg, .. } => {
            matches!(msg, Message::Promise { .. } | Message::Accepted { .. } | Message::Nack { .. })
        }
        _ => false,
    });
    assert!(!answered, "its empty promise or vote would stand in for votes it never held: {:?}", out.as_slice());
    // It never campaigns either.
    joiner.on_timer(Instant::ZERO + Duration::from_secs(5), &mut out);
    assert_ne!(joiner.status().role, Role::Candidate);
}

#[test]
fn the_configuration_survives_restarts_and_snapshots() {
    let (mut c, leader) = settled(4, &[1, 2, 3], 5);
    c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
    c.run_for(Duration::from_millis(100));
    c.change_membership(leader, MembershipChange::Promote(NodeId(4))).unwrap();
    c.run_for(Duration::from_millis(100));
    let follower = c.ids().into_iter().find(|n| *n != leader && n.0 <= 3).unwrap();
    c.change_membership(leader, MembershipChange::Remove(follower)).unwrap();
    c.run_for(Duration::from_millis(100));
    let expected = c.node(leader).unwrap().membership().unwrap().clone();
    // One node keeps the changes in its log, one in a snapshot.
    c.snapshot(NodeId(4));
    for id in c.ids() {
        c.crash(id);
    }
    for id in c.ids() {
        c.restart(id);
    }
    // A restarted node may hold the last change only as an accepted vote
    // (the commit point is stored when a write goes anyway): the next
    // leader's Phase 1 settles it, following the chain of configurations.
    let leader = c.elected(Duration::from_secs(3));
    assert_ne!(leader, follower, "the removed node does not lead");
    c.propose(leader, b"after".to_vec()).unwrap();
    c.run_for(Duration::from_millis(100));
    for id in c.ids().into_iter().filter(|n| *n != follower) {
        assert_eq!(c.node(id).unwrap().membership().unwrap(), &expected, "{id} after a restart");
    }
    c.assert_clean();
}

/// A leader that counts a learner's vote commits what no majority of voters
/// chose; the checker fails it at that commit (which check fired is asserted).
#[test]
fn the_checker_catches_a_leader_that_counts_a_learners_vote() {
    let run = |planted: Option<PlantedBug>| {
        let config = MultiPaxosConfig::default().with(|c| c.planted = planted);
        let mut c = Cluster::with_voters(4, &[1, 2, 3], config, 6);
        let leader = c.elected(Duration::from_secs(3));
        c.run_for(Duration::from_millis(50));
        c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
        c.run_for(Duration::from_millis(100));
        assert_eq!(c.applied_index(NodeId(4)), c.applied_index(leader), "the learner caught up");
        let before = c.applied_index(leader);
        // The other voters hear nothing from the leader: only the learner votes with it.
        for other in [1, 2, 3].map(NodeId).into_iter().filter(|n| *n != leader) {
            c.cut_one_way(leader, other);
        }
        c.propose(leader, b"one voter and a learner".to_vec()).unwrap();
        c.run_for(Duration::from_millis(30));
        (c.applied_index(leader) > before, c.violations().to_vec())
    };
    let (committed, violations) = run(None);
    assert!(!committed && violations.is_empty(), "{violations:?}");
    let (committed, violations) = run(Some(PlantedBug::NonVotersCount));
    assert!(committed, "the planted leader commits with the learner's vote");
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("one value chosen per slot") && v.contains("but no majority of the voters")),
        "{violations:?}"
    );
}

/// Under load the leader's commit point moves on by more than the window
/// while a probe travels to a learner and back, so judging the learner's
/// answer against the leader's commit point at the time of the retry
/// refused a learner that kept pace (`quorum bench --mode real --fault
/// reconfigure` waited 4-7 s for a lull). The answer is judged against what
/// the leader had committed when it sent the probe.
#[test]
fn a_learner_that_keeps_pace_under_load_is_promoted_at_the_next_try() {
    let (mut c, leader) = settled(4, &[1, 2, 3], 3);
    c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
    c.settle();
    let mut next = 0u32;
    let mut tries = 0;
    loop {
        tries += 1;
        let before = c.applied_index(leader);
        for _ in 0..25 {
            for _ in 0..20 {
                next += 1;
                let _ = c.propose(leader, next.to_be_bytes().to_vec());
            }
            c.run_for(Duration::from_millis(1));
        }
        let moved = c.applied_index(leader) - before;
        assert!(moved > 128, "the load must move the commit point past the window: {moved} slots");
        match c.change_membership(leader, MembershipChange::Promote(NodeId(4))) {
            Ok(_) => break,
            Err(why) => assert!(why.contains("has not caught up"), "{why}"),
        }
        assert!(tries < 10, "still refused after {tries} tries under load");
    }
    assert!(tries <= 2, "promoted at try {tries}: the first probe's answer should do");
    c.settle();
    assert_eq!(c.voters(leader), vec![1, 2, 3, 4]);
    c.assert_clean();
}

/// `quorum sim -p multipaxos --churn --nodes 4 --seed 740`: a leader of four
/// voters, one of them down, had its own removal chosen and handed over, but
/// no message carrying the new commit point reached the others. Its
/// successor had the removal only as accepted, so it still needed three of
/// the four old voters; the removed node, out of the configuration, gave no
/// promise, and nothing more was ever chosen. A node outside the
/// configuration now tells a preparer that lags it what was chosen.
#[test]
fn a_leader_that_removed_itself_tells_a_lagging_successor_what_was_chosen() {
    let (mut c, leader) = settled(4, &[1, 2, 3, 4], 5);
    c.run_for(Duration::from_millis(50));
    let down = c.ids().into_iter().find(|n| *n != leader).unwrap();
    c.crash(down);
    let slot = c.change_membership(leader, MembershipChange::Remove(leader)).unwrap();
    // Every message that would carry the commit point past the removal is lost.
    c.set_drop_filter(move |from, _, msg| {
        from == leader
            && match msg {
                Message::Accept { commit, .. } | Message::Heartbeat { commit, .. } => *commit >= slot,
                _ => false,
            }
    });
    c.run_for(Duration::from_millis(50));
    assert!(c.applied_index(leader) >= slot, "the old leader saw its removal chosen");
    assert_eq!(c.node(leader).unwrap().status().role, Role::Learner);
    let others: Vec<NodeId> = c.ids().into_iter().filter(|n| *n != leader && *n != down).collect();
    let elected = c.run_until(Duration::from_secs(3), |c| c.leader().is_some_and(|l| others.contains(&l)));
    assert!(elected, "the two remaining live voters of three never elected a leader");
    let new = c.leader().unwrap();
    assert!(c.applied_index(new) >= slot);
    c.propose(new, b"after".to_vec()).unwrap();
    c.run_for(Duration::from_millis(100));
    assert!(c.applied_index(new) > slot, "nothing was chosen after the removal");
    c.assert_clean();
}

/// The handover itself carries the commit point: the voters that stay learn
/// the removal chosen from the leader that removed itself, without waiting
/// for an election to tell them.
#[test]
fn a_leader_that_removes_itself_tells_every_voter_its_commit_point() {
    let (mut c, leader) = settled(3, &[1, 2, 3], 6);
    c.run_for(Duration::from_millis(50));
    let slot = c.change_membership(leader, MembershipChange::Remove(leader)).unwrap();
    // No election may tell them: every Prepare is lost.
    c.set_drop_filter(|_, _, msg| matches!(msg, Message::Prepare { .. }));
    c.run_for(Duration::from_millis(30));
    assert!(c.applied_index(leader) >= slot);
    for id in c.ids().into_iter().filter(|n| *n != leader) {
        assert!(c.applied_index(id) >= slot, "{id} did not learn the removal chosen");
    }
    c.assert_clean();
}

/// Two nodes: node 2, the sole voter, adds node 1 as a learner, which then
/// misses one slot and every catch-up answer; node 2 promotes it and removes
/// itself, both chosen with node 1's vote. Node 1 is left the sole voter,
/// still behind the slot that promoted it and so a learner in its own eyes,
/// with the losses still on. Returns the cluster, node 1 and the removal's slot.
fn a_learner_handed_the_cluster_behind_its_promotion() -> (Cluster, NodeId, u64) {
    let (mut c, leader) = settled(2, &[2], 12);
    assert_eq!(leader, NodeId(2));
    let learner = NodeId(1);
    c.change_membership(leader, MembershipChange::learner(learner)).unwrap();
    c.propose(leader, b"first".to_vec()).unwrap();
    let caught_up = c.run_until(Duration::from_secs(1), |c| {
        c.applied_index(learner) > 0 && c.applied_index(learner) == c.applied_index(leader)
    });
    assert!(caught_up, "the learner caught up");
    // The learner misses the next slot and every catch-up answer.
    let hole = c.applied_index(leader) + 1;
    c.set_drop_filter(move |from, to, msg| {
        from == NodeId(2)
            && to == NodeId(1)
            && match msg {
                Message::Accept { entries, .. } => entries.iter().any(|(slot, _)| *slot == hole),
                Message::Decided { .. } | Message::SnapshotChunk(_) => true,
                _ => false,
            }
    });
    for i in 0..3 {
        c.propose(leader, vec![i]).unwrap();
        c.run_for(Duration::from_millis(5));
    }
    c.run_for(Duration::from_millis(50));
    assert_eq!(c.applied_index(learner), hole - 1, "the learner is stuck behind the hole");
    let promoted = c.change_membership(leader, MembershipChange::Promote(learner)).unwrap();
    c.run_for(Duration::from_millis(50));
    let removed = c.change_membership(leader, MembershipChange::Remove(leader)).unwrap();
    c.run_for(Duration::from_millis(100));
    assert!(c.applied_index(leader) >= removed, "the removal was chosen with the learner's vote");
    assert!(c.applied_index(learner) < promoted, "the new sole voter does not know it votes");
    (c, learner, removed)
}

/// Seed 255 of `quorum sim -p multipaxos --churn --nodes 2 --profile
/// tiny-caps`: the learner above. Its catch-up answers were lost, and with
/// no leader left to speak it never asked again. A node that knows a commit
/// point past its own asks again on its timer.
#[test]
fn a_learner_handed_the_cluster_mid_catch_up_asks_again_on_its_own() {
    let (mut c, learner, removed) = a_learner_handed_the_cluster_behind_its_promotion();
    c.clear_drop_filter();
    let led = c.run_until(Duration::from_secs(3), |c| c.leader() == Some(learner));
    assert!(led, "the sole voter never caught up to lead: applied {}", c.applied_index(learner));
    assert!(c.applied_index(learner) >= removed);
    c.assert_clean();
}

/// The same learner restarts before it asks again: the commit point the old
/// leader reported is gone with its memory, no leader is left to speak, and
/// only a voter campaigns. Seed 31150 of `quorum sim -p multipaxos --churn
/// --nodes 2 --profile drift --seed-start 30000` (`convergence`: 51 applied
/// against 82). A learner that no leader has spoken to asks a member for
/// what was chosen past its commit point, one member per timer.
#[test]
fn a_learner_handed_the_cluster_that_restarts_before_it_knows_asks_a_member() {
    let (mut c, learner, removed) = a_learner_handed_the_cluster_behind_its_promotion();
    c.crash(learner);
    c.restart(learner);
    c.clear_drop_filter();
    let led = c.run_until(Duration::from_secs(3), |c| c.leader() == Some(learner));
    assert!(led, "the sole voter never learned it votes: applied {}", c.applied_index(learner));
    assert!(c.applied_index(learner) >= removed);
    c.assert_clean();
}
