//! The link-down hint: a killed leader's connections close at once, so its
//! followers can campaign after a short randomized delay instead of a whole
//! election timeout (150–300 ms). How fast that is, and that a frozen leader
//! is replaced only by the timeout, is in the workspace's
//! `tests/conformance.rs` for every protocol; here, what is Raft's own: the
//! hint is taken only with PreVote, and a spurious link-down (one connection
//! reset while the leader lives) must not depose a healthy leader, which
//! PreVote guarantees.

use quorum_core::{Duration, Effects, NodeId, Protocol, Role};
type Cluster = quorum_sim::testkit::Cluster<quorum_raft::Raft>;
use quorum_raft::{Message, Raft, RaftConfig};
use quorum_sim::testkit::{leader_recoveries, LeaderFault};
use std::cell::Cell;
use std::rc::Rc;

fn recoveries(nodes: usize, config: &RaftConfig, fault: LeaderFault) -> Vec<f64> {
    leader_recoveries::<Raft>(nodes, 50, config, fault)
}

#[test]
fn without_pre_vote_the_hint_is_not_taken() {
    let config = RaftConfig::default().with(|c| c.pre_vote = false);
    let times = recoveries(5, &config, LeaderFault::Crash);
    assert!(times.iter().all(|t| *t >= 100.0), "an early campaign without PreVote: {times:?}");
}

/// Counts pre-vote requests `from` sends, without dropping anything.
fn count_pre_votes(c: &mut Cluster, from: NodeId) -> Rc<Cell<u32>> {
    let count = Rc::new(Cell::new(0));
    let seen = count.clone();
    c.set_drop_filter(move |f, _, m| {
        if f == from && matches!(m, Message::Vote(v) if v.pre_vote) {
            seen.set(seen.get() + 1);
        }
        false
    });
    count
}

fn terms(c: &Cluster) -> Vec<u64> {
    c.ids().iter().map(|id| c.node(*id).unwrap().term()).collect()
}

#[test]
fn a_spurious_link_down_on_one_follower_does_not_depose_a_healthy_leader() {
    for (nodes, seed) in [(3, 1), (3, 2), (5, 3), (5, 4)] {
        let mut c = Cluster::new(nodes, RaftConfig::default(), seed);
        assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
        c.run_for(Duration::from_millis(300));
        let leader = c.leader().unwrap();
        let before = terms(&c);
        let follower = c.ids().into_iter().find(|id| *id != leader).unwrap();
        let pre_votes = count_pre_votes(&mut c, follower);
        // One connection resets; the leader is fine and its heartbeats keep coming.
        c.act(follower, |r, now, out: &mut Effects<Message>| r.on_link_down(now, leader, out));
        assert_eq!(c.node(follower).unwrap().status().leader, None, "the follower forgot the leader");
        // Hold the leader's heartbeats to the follower back for a while, as a
        // reconnect would: the follower campaigns early, and is refused.
        c.set_drop_filter({
            let seen = pre_votes.clone();
            move |f, t, m| {
                if f == follower && matches!(m, Message::Vote(v) if v.pre_vote) {
                    seen.set(seen.get() + 1);
                }
                f == leader && t == follower
            }
        });
        c.run_for(Duration::from_millis(60));
        assert!(pre_votes.get() > 0, "{nodes} nodes: the hint brought the follower's campaign forward");
        c.clear_drop_filter();
        c.run_for(Duration::from_secs(2));
        assert_eq!(c.leader(), Some(leader), "{nodes} nodes: the leader keeps leading");
        assert_eq!(terms(&c), before, "{nodes} nodes: no node raised its term");
        assert_eq!(c.node(follower).unwrap().status().leader, Some(leader), "the follower follows again");
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }
}

#[test]
fn a_link_down_from_a_follower_changes_nothing() {
    let mut c = Cluster::new(3, RaftConfig::default(), 5);
    assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
    c.run_for(Duration::from_millis(300));
    let leader = c.leader().unwrap();
    let mut others = c.ids().into_iter().filter(|id| *id != leader);
    let (a, b) = (others.next().unwrap(), others.next().unwrap());
    let deadline = c.node(a).unwrap().next_timer();
    c.act(a, |r, now, out: &mut Effects<Message>| r.on_link_down(now, b, out));
    assert_eq!(c.node(a).unwrap().next_timer(), deadline);
    assert_eq!(c.node(a).unwrap().status().leader, Some(leader));
    // And the leader hearing that a follower's link broke keeps leading.
    c.act(leader, |r, now, out: &mut Effects<Message>| r.on_link_down(now, a, out));
    assert_eq!(c.node(leader).unwrap().status().role, Role::Leader);
}
