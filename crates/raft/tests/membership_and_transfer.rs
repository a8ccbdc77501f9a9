//! Membership changes (thesis §4) and leadership transfer (thesis §3.10),
//! driven through the crate's in-memory cluster, which checks Raft's
//! invariants after every input.

use quorum_core::{Duration, NodeId, Protocol, Role};
type Cluster = quorum_sim::testkit::Cluster<quorum_raft::Raft>;
use quorum_raft::{ChangeError, ProposeError, RaftConfig};

/// Proposes through Raft's own entry point, which tells the index taken.
fn propose(c: &mut Cluster, id: NodeId, data: Vec<u8>) -> Result<u64, ProposeError> {
    let cmd = c.command(data);
    c.act(id, |r, now, out| r.try_propose(now, cmd, out))
}

/// `n` nodes, an elected leader, every message delivered: the cluster and
/// its leader.
fn settled(n: u64, seed: u64) -> (Cluster, NodeId) {
    let mut c = Cluster::new(n, RaftConfig::default(), seed);
    let leader = c.elected(Duration::from_secs(3));
    c.settle();
    (c, leader)
}

fn voters(c: &Cluster, id: NodeId) -> Vec<u64> {
    c.node(id).unwrap().membership().voters.iter().map(|v| v.0).collect()
}

#[test]
fn thesis_4_2_1_a_learner_catches_up_before_it_is_promoted_to_voter() {
    let mut c = Cluster::with_voters(4, &[1, 2, 3], RaftConfig::default(), 1);
    let leader = c.elected(Duration::from_secs(3));
    for i in 0..30 {
        c.propose(leader, vec![i]).unwrap();
    }
    c.settle();
    assert_eq!(c.node(NodeId(4)).unwrap().status().role, Role::Follower);
    assert_eq!(c.applied_index(NodeId(4)), 0, "outside the configuration it receives nothing");
    c.isolate(NodeId(4));
    c.act(leader, |r, now, out| r.add_learner(now, NodeId(4), out)).unwrap();
    c.settle();
    let err = c.act(leader, |r, now, out| r.promote(now, NodeId(4), out)).unwrap_err();
    assert_eq!(err, ChangeError::NotCaughtUp(NodeId(4)));
    c.heal();
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.node(NodeId(4)).unwrap().status().role, Role::Learner);
    let progress = c.node(leader).unwrap().progress();
    let learner = progress.iter().find(|p| p.id == NodeId(4)).expect("the leader tracks its learner");
    assert!(!learner.voter);
    assert_eq!(learner.match_index, c.node(leader).unwrap().log().last_index());
    assert_eq!(progress.iter().filter(|p| p.voter).count(), 2, "{progress:?}");
    let index = c.act(leader, |r, now, out| r.promote(now, NodeId(4), out)).unwrap();
    c.run_for(Duration::from_millis(100));
    for id in c.ids() {
        assert_eq!(voters(&c, id), vec![1, 2, 3, 4], "{id} sees the new configuration");
        assert!(c.applied_index(id) >= index);
    }
    // With four voters, two nodes down stops progress; one does not.
    let other = c.ids().into_iter().find(|i| *i != leader && *i != NodeId(4)).unwrap();
    c.crash(other);
    c.propose(leader, b"after".to_vec()).unwrap();
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.applied_index(NodeId(4)), c.applied_index(leader));
    c.assert_clean();
}

#[test]
fn thesis_4_1_one_change_at_a_time_and_one_voter_per_change() {
    let mut c = Cluster::with_voters(5, &[1, 2, 3], RaftConfig::default(), 2);
    let leader = c.elected(Duration::from_secs(3));
    c.settle();
    let mut two_at_once = c.node(leader).unwrap().membership().clone();
    two_at_once.voters.extend([NodeId(4), NodeId(5)]);
    let err = c.act(leader, |r, now, out| r.propose_membership(now, two_at_once, out)).unwrap_err();
    assert_eq!(err, ChangeError::NotSingleChange);
    // Hold the followers' acks back so the first change cannot commit.
    let followers: Vec<NodeId> = c.ids().into_iter().filter(|i| *i != leader).collect();
    for f in &followers {
        c.cut_one_way(*f, leader);
    }
    c.act(leader, |r, now, out| r.add_learner(now, NodeId(4), out)).unwrap();
    let err = c.act(leader, |r, now, out| r.add_learner(now, NodeId(5), out)).unwrap_err();
    assert_eq!(err, ChangeError::Busy);
    c.heal();
    c.settle();
    c.act(leader, |r, now, out| r.add_learner(now, NodeId(5), out)).unwrap();
    c.assert_clean();
}

#[test]
fn thesis_4_2_removing_a_follower_shrinks_the_majority() {
    let (mut c, leader) = settled(3, 3);
    let victim = c.ids().into_iter().find(|i| *i != leader).unwrap();
    c.act(leader, |r, now, out| r.remove_node(now, victim, out)).unwrap();
    c.settle();
    c.crash(victim);
    // Two voters left: the leader and one follower make a majority.
    let index = propose(&mut c, leader, b"x".to_vec()).unwrap();
    c.settle();
    assert!(c.applied_index(leader) >= index);
    assert_eq!(voters(&c, leader).len(), 2);
    c.assert_clean();
}

#[test]
fn thesis_4_2_2_the_leader_removes_itself_then_steps_down_and_hands_over() {
    let (mut c, leader) = settled(3, 4);
    let term = c.node(leader).unwrap().term();
    c.act(leader, |r, now, out| r.remove_node(now, leader, out)).unwrap();
    c.settle(); // no timer fires: the handover happens through TimeoutNow
    let new = c.leader().expect("a remaining voter took over at once");
    assert_ne!(new, leader);
    assert!(c.node(new).unwrap().term() > term);
    assert_ne!(c.node(leader).unwrap().status().role, Role::Leader);
    assert!(!voters(&c, new).contains(&leader.0));
    // The removed node never campaigns again, and the rest carry on.
    c.run_for(Duration::from_secs(2));
    assert_eq!(c.leader(), Some(new));
    let index = propose(&mut c, new, b"y".to_vec()).unwrap();
    c.settle();
    assert!(c.applied_index(new) >= index);
    c.assert_clean();
}

#[test]
fn thesis_3_10_leadership_transfer_hands_over_without_waiting_for_a_timeout() {
    let (mut c, leader) = settled(5, 5);
    let target = c.ids().into_iter().find(|i| *i != leader).unwrap();
    // Let the target fall behind first: the leader must catch it up before TimeoutNow.
    c.cut_one_way(leader, target);
    for i in 0..10 {
        c.propose(leader, vec![i]).unwrap();
    }
    c.settle();
    c.act(leader, |r, now, out| r.transfer_leadership(now, target, out)).unwrap();
    assert_eq!(propose(&mut c, leader, b"z".to_vec()), Err(ProposeError::Transferring(target)));
    c.settle();
    assert_eq!(c.leader(), Some(leader), "no TimeoutNow to a target that lacks entries");
    c.heal();
    // Heartbeats find the stalled pipeline, repair the target, then TimeoutNow goes.
    c.run_for(Duration::from_millis(250));
    assert_eq!(c.leader(), Some(target));
    assert_eq!(c.applied_index(target), c.applied_index(leader));
    c.assert_clean();
}

#[test]
fn thesis_6_4_read_index_through_the_cluster() {
    let mut c = Cluster::new(3, RaftConfig::default(), 6);
    let leader = c.elected(Duration::from_secs(3));
    let index = propose(&mut c, leader, b"w".to_vec()).unwrap();
    // A read that arrives before the write commits may be served before it...
    c.read(leader, 1).unwrap();
    c.settle();
    assert_eq!(c.reads(leader), &[(1, Ok(index - 1))]);
    // ...one that arrives after must see it.
    c.read(leader, 2).unwrap();
    c.settle();
    assert_eq!(c.reads(leader)[1], (2, Ok(index)));
    let follower = c.ids().into_iter().find(|i| *i != leader).unwrap();
    let err = c.read(follower, 3).unwrap_err();
    assert_eq!(err.to_string(), format!("not the leader: send this request to {leader}"));
    c.assert_clean();
}

#[test]
fn a_learner_added_with_its_address_carries_it_in_the_log_and_bad_changes_are_refused() {
    let mut c = Cluster::with_voters(4, &[1, 2, 3], RaftConfig::default(), 3);
    let leader = c.elected(Duration::from_secs(3));
    c.settle();
    let too_long = "1".repeat(quorum_core::MAX_ADDRESS_LEN + 1);
    let refused =
        |c: &mut Cluster, address: &str| c.act(leader, |r, now, out| r.add_learner_at(now, NodeId(4), address, out));
    assert_eq!(refused(&mut c, &too_long), Err(ChangeError::BadAddress(NodeId(4))));
    assert_eq!(refused(&mut c, "bad\naddress"), Err(ChangeError::BadAddress(NodeId(4))));
    assert_eq!(refused(&mut c, ""), Err(ChangeError::BadAddress(NodeId(4))));
    let other = if leader == NodeId(1) { NodeId(2) } else { NodeId(1) };
    let again = c.act(leader, |r, now, out| r.add_learner_at(now, other, "127.0.0.1:1", out));
    assert_eq!(again, Err(ChangeError::AlreadyMember(other)));
    assert_eq!(c.act(leader, |r, now, out| r.promote(now, other, out)), Err(ChangeError::AlreadyVoter(other)));
    assert_eq!(c.act(leader, |r, now, out| r.remove_node(now, NodeId(9), out)), Err(ChangeError::NotMember(NodeId(9))));
    c.act(leader, |r, now, out| r.add_learner_at(now, NodeId(4), "127.0.0.1:7004", out)).unwrap();
    c.settle();
    c.run_for(Duration::from_millis(100));
    for id in 1..=4 {
        let m = c.node(NodeId(id)).unwrap().membership().clone();
        assert_eq!(m.learners, vec![NodeId(4)], "node {id}");
        assert_eq!(m.address_of(NodeId(4)), Some("127.0.0.1:7004"), "node {id} learned the address from the log");
    }
    // Removing the learner takes its address out too.
    c.act(leader, |r, now, out| r.remove_node(now, NodeId(4), out)).unwrap();
    c.settle();
    assert!(c.node(leader).unwrap().membership().addresses.is_empty());
    c.assert_clean();
}
