//! Unit tests for the link-down hint (`hint.rs`), driving one node directly.

use super::*;
use quorum_core::Effect;
use quorum_sim::testkit::Net;

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn leader_ballot() -> Ballot {
    Ballot::new(1, NodeId(1))
}

fn heartbeat(ms: u64) -> Message {
    Message::Heartbeat { ballot: leader_ballot(), commit: 0, sent_at: at(ms) }
}

fn node(config: MultiPaxosConfig) -> MultiPaxos {
    let members = vec![NodeId(1), NodeId(2), NodeId(3)];
    MultiPaxos::new(Init { id: NodeId(2), members, config, stored: Default::default(), seed: 5, now: Instant::ZERO })
        .expect("a node starts")
}

/// Node 2 of 3, following node 1, last heard at 10 ms.
fn follower(config: MultiPaxosConfig) -> MultiPaxos {
    let mut n = node(config);
    n.on_message(at(10), NodeId(1), heartbeat(10), &mut Effects::new());
    assert_eq!(n.status().leader, Some(NodeId(1)));
    n
}

fn sent(out: &Effects<Message>) -> Vec<(NodeId, Message)> {
    out.sent().into_iter().map(|(to, msg, _)| (to, msg)).collect()
}

fn answer(n: &mut MultiPaxos, now: Instant) -> bool {
    let mut out = Effects::new();
    n.on_message(now, NodeId(3), Message::Suspect { ballot: leader_ballot() }, &mut out);
    match sent(&out).as_slice() {
        [(to, Message::SuspectReply { agree, .. })] if *to == NodeId(3) => *agree,
        other => panic!("one answer to the asker expected: {other:?}"),
    }
}

#[test]
fn a_broken_link_to_the_leader_asks_the_peers_early_then_starts_phase_1() {
    let mut n = follower(MultiPaxosConfig::default());
    assert!(n.next_timer().unwrap() >= at(110), "a full election timeout after the heartbeat");
    n.on_link_down(at(20), NodeId(1), &mut Effects::new());
    assert_eq!(n.status().leader, None);
    let due = n.next_timer().unwrap();
    assert!(due >= at(30) && due < at(54), "a tenth to a third of 100 ms: {due:?}");
    // A heartbeat sent before the link broke arrives late: it does not cancel the hint.
    n.on_message(at(21), NodeId(1), heartbeat(19), &mut Effects::new());
    assert_eq!((n.status().leader, n.next_timer().unwrap()), (None, due));
    // The question writes nothing and promises nothing.
    let mut out = Effects::new();
    n.on_timer(due, &mut out);
    assert!(out.as_slice().iter().all(|e| !matches!(e, Effect::Persist(_))));
    let asked: Vec<NodeId> =
        sent(&out).iter().filter(|(_, m)| matches!(m, Message::Suspect { .. })).map(|(to, _)| *to).collect();
    assert_eq!(asked, vec![NodeId(1), NodeId(3)]);
    assert_eq!(n.status().role, Role::Follower);
    // One agreement makes a majority with ourselves: Phase 1 at once.
    let mut out = Effects::new();
    let reply = Message::SuspectReply { ballot: leader_ballot(), agree: true };
    n.on_message(due, NodeId(3), reply, &mut out);
    assert_eq!(n.status().role, Role::Candidate);
    assert!(sent(&out).iter().any(|(_, m)| matches!(m, Message::Prepare { ballot, .. } if *ballot > leader_ballot())));
}

#[test]
fn a_live_leaders_heartbeat_after_the_question_cancels_it() {
    let mut n = follower(MultiPaxosConfig::default());
    n.on_link_down(at(20), NodeId(1), &mut Effects::new());
    let due = n.next_timer().unwrap();
    n.on_timer(due, &mut Effects::new());
    n.on_message(due, NodeId(1), heartbeat(due.as_nanos() / 1_000_000), &mut Effects::new());
    assert_eq!(n.status().leader, Some(NodeId(1)));
    let mut out = Effects::new();
    n.on_message(due, NodeId(3), Message::SuspectReply { ballot: leader_ballot(), agree: true }, &mut out);
    assert_eq!(n.status().role, Role::Follower);
    assert!(sent(&out).is_empty(), "no Phase 1 against a live leader");
}

#[test]
fn peers_agree_only_once_they_lost_the_leader_themselves() {
    let mut n = follower(MultiPaxosConfig::default());
    assert!(!answer(&mut n, at(20)), "it hears the leader");
    n.on_link_down(at(21), NodeId(1), &mut Effects::new());
    assert!(answer(&mut n, at(22)), "it lost the leader too");
    // Someone is already taking over: no second Phase 1.
    let ballot = Ballot::new(2, NodeId(3));
    n.on_message(at(23), NodeId(3), Message::Prepare { ballot, from: 1 }, &mut Effects::new());
    assert!(!answer(&mut n, at(24)), "it promised a higher ballot");
}

#[test]
fn the_leader_itself_never_agrees() {
    let mut net: Net<MultiPaxos> = Net::new(3, MultiPaxosConfig::default(), 4);
    let leading = |net: &Net<MultiPaxos>| net.nodes.iter().flatten().find_map(|n| n.leading_ballot());
    assert!(net.run_until(Duration::from_secs(2), |net| leading(net).is_some()));
    let ballot = leading(&net).unwrap();
    let leader = ballot.owner().unwrap();
    let asker = NodeId(leader.0 % 3 + 1);
    net.in_flight.clear();
    net.with_node(leader, |n, now, out| n.on_message(now, asker, Message::Suspect { ballot }, out));
    let replies: Vec<&Message> = net.in_flight.iter().map(|e| &e.msg).collect();
    assert_eq!(replies, vec![&Message::SuspectReply { ballot, agree: false }]);
}

#[test]
fn a_broken_link_to_another_follower_changes_nothing() {
    let mut n = follower(MultiPaxosConfig::default());
    let due = n.next_timer();
    n.on_link_down(at(20), NodeId(3), &mut Effects::new());
    assert_eq!((n.status().leader, n.next_timer()), (Some(NodeId(1)), due));
}

#[test]
fn with_leases_the_question_waits_for_the_lease_on_promises() {
    let mut n = follower(MultiPaxosConfig::default().with(|c| c.read_lease = true));
    n.on_link_down(at(20), NodeId(1), &mut Effects::new());
    let due = n.next_timer().unwrap();
    assert!(due >= at(120) && due < at(144), "lease end (110 ms) plus the short delay: {due:?}");
    // Until the lease ends it also tells others no.
    assert!(!answer(&mut n, at(100)));
    assert!(answer(&mut n, at(111)));
}

fn promised(out: &Effects<Message>) -> bool {
    sent(out).iter().any(|(_, m)| matches!(m, Message::Promise { .. }))
}

/// Issue 12 item 4: after a link-down hint the follower keeps acknowledging
/// the leader's heartbeats (each ack extends the leader's lease) but did not
/// count them as contact, so it promised another candidate while a lease it
/// had just backed was still running, and the old leader served stale reads.
#[test]
fn with_leases_a_suspecting_follower_honours_every_heartbeat_it_acknowledges() {
    let config = MultiPaxosConfig::default().with(|c| c.read_lease = true);
    let mut n = follower(config);
    n.on_link_down(at(20), NodeId(1), &mut Effects::new());
    // The leader lives (a connection reset): its heartbeat sent at 60 ms arrives and is acknowledged.
    let mut out = Effects::new();
    n.on_message(at(61), NodeId(1), heartbeat(60), &mut out);
    let acked = sent(&out).iter().any(|(to, m)| *to == NodeId(1) && matches!(m, Message::HeartbeatAck { .. }));
    if acked {
        // That ack lets the leader serve local reads until 60 + 75 ms = 135 ms,
        // so no other candidate may be promised before 61 + 100 ms.
        let ballot = Ballot::new(2, NodeId(3));
        let mut out = Effects::new();
        n.on_message(at(115), NodeId(3), Message::Prepare { ballot, from: 1 }, &mut out);
        assert!(!promised(&out), "promised another candidate at 115 ms after acknowledging the heartbeat of 60 ms");
        // Nor may it run Phase 1 itself before then.
        let mut t = 115;
        while t < 161 {
            let mut out = Effects::new();
            n.on_timer(at(t), &mut out);
            let reply = Message::SuspectReply { ballot: leader_ballot(), agree: true };
            n.on_message(at(t), NodeId(3), reply, &mut out);
            assert_eq!(n.status().role, Role::Follower, "campaigned at {t} ms while bound by its ack");
            t += 1;
        }
        let mut out = Effects::new();
        n.on_message(at(162), NodeId(3), Message::Prepare { ballot: Ballot::new(3, NodeId(3)), from: 1 }, &mut out);
        assert!(promised(&out), "once the acknowledged lease is over it promises");
    }
}
