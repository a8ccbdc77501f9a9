//! Membership changes in Zab, driven through the shared operator call
//! (`Protocol::change_membership`) on the in-memory cluster, which checks the
//! protocol's invariants (among them `zab: commit on a quorum of the
//! configuration`) after every input.

use quorum_core::{Duration, MembershipChange, NodeId, Protocol, Role};
use quorum_zab::{Message, PlantedBug, Zab, ZabConfig};

type Cluster = quorum_sim::testkit::Cluster<Zab>;

fn settled(n: u64, voters: &[u64], seed: u64) -> (Cluster, NodeId) {
    settled_with(n, voters, ZabConfig::default(), seed)
}

fn settled_with(n: u64, voters: &[u64], config: ZabConfig, seed: u64) -> (Cluster, NodeId) {
    let mut c = Cluster::with_voters(n, voters, config, seed);
    let leader = c.elected(Duration::from_secs(5));
    c.run_for(Duration::from_millis(50));
    (c, leader)
}

#[test]
fn a_learner_catches_up_before_it_is_promoted_then_its_ack_counts() {
    let (mut c, leader) = settled(4, &[1, 2, 3], 1);
    for i in 0..40u8 {
        c.propose(leader, vec![i]).unwrap();
    }
    c.run_for(Duration::from_millis(50));
    assert_eq!(c.applied_index(NodeId(4)), 0, "outside the configuration it is not taken in");
    c.isolate(NodeId(4));
    let index = c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
    c.run_for(Duration::from_millis(50));
    assert!(c.applied_index(leader) >= index);
    let refused = c.change_membership(leader, MembershipChange::Promote(NodeId(4))).unwrap_err();
    assert!(refused.contains("has not caught up"), "{refused}");
    c.heal();
    assert!(
        c.run_until(Duration::from_secs(3), |c| c.applied_index(NodeId(4)) == c.applied_index(leader)),
        "the learner caught up"
    );
    assert_eq!(c.node(NodeId(4)).unwrap().status().role, Role::Learner);
    let index = c.change_membership(leader, MembershipChange::Promote(NodeId(4))).unwrap();
    c.run_for(Duration::from_millis(100));
    for id in c.ids() {
        assert_eq!(c.voters(id), vec![1, 2, 3, 4], "{id} has the new configuration in force");
        assert!(c.applied_index(id) >= index);
    }
    assert_eq!(c.node(NodeId(4)).unwrap().status().role, Role::Follower);
    // Four voters: a majority is three. With one other follower cut off,
    // the new voter's ack makes the third.
    let other = [1, 2, 3].map(NodeId).into_iter().find(|n| *n != leader).unwrap();
    c.cut_one_way(leader, other);
    let before = c.applied_index(leader);
    c.propose(leader, b"needs three".to_vec()).unwrap();
    c.run_for(Duration::from_millis(30));
    assert!(c.applied_index(leader) > before, "the promoted node's ack counts");
    c.assert_clean();
}

#[test]
fn a_change_that_cannot_be_carried_out_safely_is_refused_and_nothing_changes() {
    let (mut c, leader) = settled(4, &[1, 2, 3], 2);
    let follower = c.ids().into_iter().find(|n| *n != leader && n.0 <= 3).unwrap();
    let refused = c.change_membership(follower, MembershipChange::learner(NodeId(4))).unwrap_err();
    assert!(refused.contains("not the leader"), "{refused}");
    let refused = c.change_membership(leader, MembershipChange::learner(NodeId(2))).unwrap_err();
    assert!(refused.contains("is a member already"), "{refused}");
    let refused = c.change_membership(leader, MembershipChange::Remove(NodeId(9))).unwrap_err();
    assert!(refused.contains("not a member"), "{refused}");
    let refused = c.change_membership(leader, MembershipChange::Promote(NodeId(4))).unwrap_err();
    assert!(refused.contains("has not caught up"), "{refused}");
    // One change at a time: the second waits for the first to commit.
    c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
    let refused = c.change_membership(leader, MembershipChange::Remove(NodeId(4))).unwrap_err();
    assert!(refused.contains("not committed yet"), "{refused}");
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.leader(), Some(leader));
    // Down to one voter, and never to none.
    for node in [1, 2, 3].map(NodeId).into_iter().filter(|n| *n != leader) {
        assert!(
            c.run_until(Duration::from_secs(2), |c| {
                c.node(leader).is_some_and(|z| z.membership_committed() && z.established_epoch().is_some())
            }),
            "the previous change commits"
        );
        c.change_membership(leader, MembershipChange::Remove(node)).unwrap();
        c.run_for(Duration::from_millis(50));
    }
    assert_eq!(c.voters(leader), vec![leader.0]);
    let refused = c.change_membership(leader, MembershipChange::Remove(leader)).unwrap_err();
    assert!(refused.contains("keep at least one voter"), "{refused}");
    let before = c.applied_index(leader);
    c.propose(leader, b"alone".to_vec()).unwrap();
    c.run_for(Duration::from_millis(50));
    assert!(c.applied_index(leader) > before, "a lone voter is its own majority");
    c.assert_clean();
}

#[test]
fn a_leader_that_removes_itself_hands_over_without_waiting_for_sync_limit() {
    let (mut c, leader) = settled(3, &[1, 2, 3], 3);
    let index = c.change_membership(leader, MembershipChange::Remove(leader)).unwrap();
    let start = c.now();
    // RESET sends the followers to LOOKING at once: a new leader within the
    // election's finalize wait, far less than the sync limit they would
    // otherwise wait out for a silent leader.
    let limit = ZabConfig::default().sync_limit();
    assert!(
        c.run_until(limit, |c| c.leader().is_some_and(|l| l != leader)),
        "a remaining voter took over within the sync limit"
    );
    let new = c.leader().unwrap();
    let took = c.now().saturating_since(start);
    assert!(took.as_nanos() < limit.as_nanos() / 2, "took {took:?}");
    assert!(c.applied_index(new) >= index);
    assert!(!c.voters(new).contains(&leader.0));
    c.run_for(Duration::from_secs(2));
    assert_eq!(c.leader(), Some(new), "the removed node never leads again");
    assert_ne!(c.node(leader).unwrap().status().role, Role::Leader);
    c.propose(new, b"after".to_vec()).unwrap();
    c.run_for(Duration::from_millis(50));
    assert!(c.applied_index(new) > index);
    c.assert_clean();
}

#[test]
fn a_node_that_joins_with_empty_storage_follows_once_added() {
    // Node 4 boots knowing only the voters (as `quorum node --join` does),
    // is not taken in until the leader adds it, then catches up as a learner.
    let (mut c, leader) = settled(4, &[1, 2, 3], 4);
    for i in 0..20u8 {
        c.propose(leader, vec![i]).unwrap();
    }
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.applied_index(NodeId(4)), 0);
    assert_eq!(c.node(NodeId(4)).unwrap().status().role, Role::Learner, "it does not vote");
    let index = c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
    assert!(c.run_until(Duration::from_secs(3), |c| c.applied_index(NodeId(4)) >= index), "the joiner caught up");
    assert_eq!(c.node(NodeId(4)).unwrap().status().leader, Some(leader));
    c.assert_clean();
}

#[test]
fn the_configuration_survives_restarts_and_snapshots() {
    let (mut c, leader) = settled(4, &[1, 2, 3], 5);
    let index = c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
    assert!(c.run_until(Duration::from_secs(3), |c| c.applied_index(NodeId(4)) >= index));
    c.change_membership(leader, MembershipChange::Promote(NodeId(4))).unwrap();
    c.run_for(Duration::from_millis(100));
    let follower = c.ids().into_iter().find(|n| *n != leader && n.0 <= 3).unwrap();
    c.change_membership(leader, MembershipChange::Remove(follower)).unwrap();
    c.run_for(Duration::from_millis(100));
    let expected: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|n| *n != follower.0).collect();
    assert_eq!(c.voters(leader), expected);
    // A snapshot folds the configuration entries away: the metadata keeps them.
    for id in c.ids() {
        c.snapshot(id);
    }
    for id in c.ids() {
        c.crash(id);
    }
    for id in c.ids() {
        c.restart(id);
    }
    let leader = c.elected(Duration::from_secs(5));
    assert_eq!(c.voters(leader), expected, "recovered from the snapshot");
    c.propose(leader, b"after restart".to_vec()).unwrap();
    c.run_for(Duration::from_millis(100));
    for id in expected.iter().map(|n| NodeId(*n)) {
        assert_eq!(c.voters(id), expected);
        assert_eq!(c.applied_index(id), c.applied_index(leader));
    }
    c.assert_clean();
}

/// The planted leader counts a learner's ack as if it voted: with the other
/// voters cut off, it commits on itself and the learner, which no majority of
/// the voters holds. The checker fails it at that commit (which check fired
/// is asserted).
#[test]
fn the_checker_catches_a_leader_that_counts_a_learners_ack() {
    let run = |planted: Option<PlantedBug>| {
        let config = ZabConfig::default().with(|c| c.planted = planted);
        let (mut c, leader) = settled_with(4, &[1, 2, 3], config, 6);
        let index = c.change_membership(leader, MembershipChange::learner(NodeId(4))).unwrap();
        assert!(c.run_until(Duration::from_secs(3), |c| c.applied_index(NodeId(4)) >= index));
        let before = c.applied_index(leader);
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
    assert!(committed, "the planted leader commits with the learner's ack");
    assert!(violations.iter().any(|v| v.starts_with("zab: commit on a quorum of the configuration")), "{violations:?}");
}

#[test]
fn leadership_transfer_hands_over_without_waiting_for_a_timeout() {
    let (mut c, leader) = settled(5, &[1, 2, 3, 4, 5], 4);
    let target = c.ids().into_iter().find(|i| *i != leader).unwrap();
    let refused = c.act(leader, |p, now, out| p.transfer_to(now, NodeId(9), out)).unwrap_err();
    assert!(refused.contains("not a voter"), "{refused}");
    for i in 0..10u8 {
        c.propose(leader, vec![i]).unwrap();
    }
    let start = c.now();
    c.act(leader, |p, now, out| p.transfer_to(now, target, out)).unwrap();
    let refused = c.propose(leader, b"during".to_vec()).unwrap_err();
    assert!(format!("{refused:?}").contains(&format!("{target:?}")), "a client is sent to the target: {refused:?}");
    let limit = ZabConfig::default().sync_limit();
    assert!(c.run_until(limit, |c| c.leader() == Some(target)), "the target leads: {:?}", c.leader());
    let took = c.now().saturating_since(start);
    assert!(took.as_nanos() < limit.as_nanos() / 2, "took {took:?}");
    let before = c.applied_index(target);
    c.propose(target, b"x".to_vec()).unwrap();
    c.run_for(Duration::from_millis(50));
    assert_eq!(c.leader(), Some(target));
    assert!(c.applied_index(target) > before);
    assert_eq!(c.applied_index(leader), c.applied_index(target), "the old leader follows");
    c.assert_clean();
}

#[test]
fn a_leader_about_to_stop_hands_off_to_a_voter() {
    let (mut c, leader) = settled(3, &[1, 2, 3], 7);
    assert!(c.act(leader, |p, now, out| p.hand_off(now, out)));
    let limit = ZabConfig::default().sync_limit();
    assert!(c.run_until(limit, |c| c.leader().is_some_and(|l| l != leader)), "a voter took over");
    assert_ne!(c.node(leader).unwrap().status().role, Role::Leader, "the old leader stepped down");
    c.assert_clean();
}

/// ZooKeeper's rule: a new configuration commits with the old quorum and the
/// new one both. Removing node `gone` from four voters, the leader and one
/// follower are a majority of the three left, not of the four before.
#[test]
fn a_removal_commits_only_once_a_majority_of_the_old_voters_holds_it_too() {
    let (mut c, leader) = settled(4, &[1, 2, 3, 4], 8);
    let others: Vec<NodeId> = c.ids().into_iter().filter(|n| *n != leader).collect();
    let (gone, cut, kept) = (others[0], others[1], others[2]);
    c.cut_one_way(leader, gone);
    c.cut_one_way(leader, cut);
    let index = c.change_membership(leader, MembershipChange::Remove(gone)).unwrap();
    c.run_for(Duration::from_millis(30));
    assert!(c.applied_index(leader) < index, "the leader and {kept} are two of the four voters before the change");
    c.heal();
    c.propose(leader, b"after".to_vec()).unwrap(); // the cut follower sees the gap and syncs again
    assert!(c.run_until(Duration::from_secs(2), |c| c.applied_index(leader) > index), "committed once {cut} is back");
    let mut expected = [leader, cut, kept].map(|n| n.0).to_vec();
    expected.sort_unstable();
    assert_eq!(c.voters(leader), expected);
    c.assert_clean();
}

/// Seed 86 of `quorum sim -p zab --nodes 2 --churn`: the leader of two voters
/// proposed its own removal while the other was down, lost its quorum and
/// stopped leading. The other came back without the removal in its history,
/// so it needed the old leader's ACKEPOCH, and gave up at it (the old leader
/// was ahead: ZooKeeper's `waitForEpochAck`); the old leader, whose newest
/// configuration left it out, would not stand. No leader, for good. A node
/// that voted in the configuration before an uncommitted newest one may
/// still lead, to bring that history to the others.
#[test]
fn a_leader_whose_own_removal_is_pending_when_it_loses_its_quorum_can_lead_again() {
    let (mut c, leader) = settled(2, &[1, 2], 9);
    let other = c.ids().into_iter().find(|n| *n != leader).unwrap();
    c.crash(other);
    let index = c.change_membership(leader, MembershipChange::Remove(leader)).unwrap();
    c.run_for(Duration::from_secs(1));
    assert_ne!(c.node(leader).unwrap().status().role, Role::Leader, "without a quorum it stopped leading");
    c.restart(other);
    let done = c.run_until(Duration::from_secs(5), |c| {
        c.leader() == Some(other) && c.applied_index(other) >= index && c.voters(other) == vec![other.0]
    });
    let state = |id: NodeId| (c.node(id).unwrap().status().role, c.applied_index(id), c.voters(id));
    assert!(
        done,
        "the removal never committed and no one leads: {:?} ({leader} {:?}, {other} {:?})",
        c.leader(),
        state(leader),
        state(other)
    );
    c.assert_clean();
}

/// Seed 3 of `quorum sim -p zab --nodes 2 --churn`: the leader of two voters
/// proposed the other's removal while a partition cut it off. The removal
/// needs an ack from a majority of the voters before it too, so the other
/// node's; but when it came back, the leader turned its FOLLOWERINFO away,
/// since its newest configuration no longer lists it, and waited for that
/// ack for good. A node of the configuration before an uncommitted newest
/// one may follow.
#[test]
fn a_voter_whose_removal_is_pending_may_follow_so_the_removal_commits() {
    let (mut c, leader) = settled(2, &[1, 2], 10);
    let other = c.ids().into_iter().find(|n| *n != leader).unwrap();
    c.isolate(other);
    let index = c.change_membership(leader, MembershipChange::Remove(other)).unwrap();
    c.run_for(Duration::from_millis(300));
    assert!(c.applied_index(leader) < index, "without the old voters' majority the removal waits");
    c.heal();
    let done = c.run_until(Duration::from_secs(5), |c| c.applied_index(leader) >= index);
    assert!(done, "the removal never committed: {} < {index}", c.applied_index(leader));
    assert_eq!(c.leader(), Some(leader));
    c.assert_clean();
}

/// Seed 75 of `quorum sim -p zab --churn --nodes 2 --profile crash-storm`:
/// a follower acked its own removal and never heard it committed. In its
/// history the removal is pending, so it may stand (`may_lead`); but it
/// counted its own vote towards the newest configuration, which leaves it
/// out, elected itself alone, and did so again every initLimit, never
/// waiting for the established leader's answer (lost here). Its vote now
/// counts only where it votes.
#[test]
fn a_node_whose_removal_is_pending_in_its_history_does_not_elect_itself_alone() {
    let (mut c, leader) = settled(2, &[1, 2], 11);
    let other = c.ids().into_iter().find(|n| *n != leader).unwrap();
    c.set_drop_filter(move |from, to, msg| {
        from == leader
            && to == other
            && matches!(
                msg,
                Message::Commit { .. } | Message::Ping { .. } | Message::Reset { .. } | Message::Notification(_)
            )
    });
    let index = c.change_membership(leader, MembershipChange::Remove(other)).unwrap();
    assert!(c.run_until(Duration::from_secs(1), |c| c.applied_index(leader) >= index), "the removal commits");
    assert!(c.applied_index(other) < index, "the removed node never heard it committed");
    // Outside its configuration, LOOKING shows as a learner: a candidate is
    // a node leading an epoch it has not established.
    let led = c.run_until(Duration::from_secs(2), |c| {
        matches!(c.node(other).unwrap().status().role, Role::Candidate | Role::Leader)
    });
    assert!(!led, "the removed node elected itself alone");
    assert_eq!(c.leader(), Some(leader));
    c.assert_clean();
}

/// A learner's disk is replaced (as `quorum sim --churn`'s operator does)
/// and it is promoted before its leader hears from the new, empty process:
/// what the old process acknowledged must not count in the configuration
/// that makes it a voter. Seed 30873 of `quorum sim -p zab --churn --nodes 4
/// --profile crash-storm --seed-start 30000`: n1 acknowledged index 21 as a
/// learner, was wiped, was promoted 2 ms later, and the leader committed 20
/// and 21 with n1's old acknowledgment as the third of four voters (`zab:
/// commit on a quorum of the configuration`). Raft has the same rule
/// (`a_wiped_learner_promoted_before_its_leader_hears_from_it_counts_only_what_it_holds`).
#[test]
fn a_wiped_learner_promoted_before_its_leader_hears_from_it_counts_only_what_it_holds() {
    for seed in 1..=3 {
        let (mut c, leader) = settled(4, &[1, 2, 3], seed);
        let learner = NodeId(4);
        let added = c.change_membership(leader, MembershipChange::learner(learner)).unwrap();
        assert!(
            c.run_until(Duration::from_secs(3), |c| c.applied_index(learner) >= added),
            "seed {seed}: the learner caught up"
        );
        let mut others = [1, 2, 3].map(NodeId).into_iter().filter(|n| *n != leader);
        let (cut, slow) = (others.next().unwrap(), others.next().unwrap());
        c.cut_one_way(leader, cut);
        c.cut_one_way(cut, leader);
        c.cut_one_way(slow, leader); // its acknowledgments wait
        let before = c.applied_index(leader);
        for i in 0..2u8 {
            c.propose(leader, vec![i]).unwrap();
        }
        c.run_for(Duration::from_millis(20));
        assert_eq!(c.applied_index(leader), before, "seed {seed}: the learner's acks do not commit");

        // The learner's disk is replaced; the leader does not hear from the new process yet.
        c.cut_one_way(learner, leader);
        c.wipe(learner);
        c.restart(learner);
        c.change_membership(leader, MembershipChange::Promote(learner))
            .expect("the old process's acknowledgment passes the caught-up check");
        // The slow voter's acknowledgments arrive: a majority of the old
        // voters, but only two of the four new ones hold the entries.
        c.heal();
        c.cut_one_way(leader, cut);
        c.cut_one_way(cut, leader);
        c.cut_one_way(learner, leader);
        c.run_for(Duration::from_millis(20));
        assert!(
            c.violations().is_empty(),
            "seed {seed}: the leader counted the wiped learner's old acknowledgment: {:?}",
            c.violations()
        );
        c.heal();
        assert!(
            c.run_until(Duration::from_secs(5), |c| c.ids().iter().all(|id| c.applied_index(*id) > before + 2)),
            "seed {seed}: once healed, the entries commit and every node applies them"
        );
        c.assert_clean();
    }
}
