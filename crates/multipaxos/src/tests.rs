//! Tests that drive Multi-Paxos nodes directly on the hand-driven network.

use super::*;
use crate::test_helpers::{cmd, committed_values, elect, elected, leader_of, value};
use quorum_core::{Bytes, Effect, ReadError};
use quorum_sim::testkit::{Envelope, Net};

fn all_committed(n: u64) -> impl Fn(&Net<MultiPaxos>) -> bool {
    move |net| net.nodes.iter().flatten().all(|node| node.learner().committed() >= n)
}

#[test]
fn one_phase_1_elects_a_leader_and_non_leaders_redirect_to_it() {
    let (mut net, leader) = elected(MultiPaxosConfig::default(), 1);
    // Let a heartbeat reach everyone, then ask a follower.
    net.run_until(Duration::from_millis(50), |_| false);
    let follower = NodeId(leader.0 % 3 + 1);
    let err = net.propose(follower, cmd(1, 1)).unwrap_err();
    assert_eq!(err, NotLeader { leader_hint: Some(leader) }.into());
    assert_eq!(net.node(follower).unwrap().status().role, Role::Follower);
    assert_eq!(net.node(leader).unwrap().status().role, Role::Leader);
}

#[test]
fn steady_state_is_phase_2_only_one_round_trip() {
    let (mut net, leader) = elected(MultiPaxosConfig::default(), 2);
    assert!(net.run_until(Duration::from_millis(5), |net| net.in_flight.is_empty()));
    let before = net.delivered;
    net.propose(leader, cmd(1, 1)).unwrap();
    let kinds: Vec<&'static str> = net
        .in_flight
        .iter()
        .map(|e| match e.msg {
            Message::Accept { .. } => "accept",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["accept", "accept"], "no Prepare in steady state");
    // Deliver Accepts and Accepteds only: the leader commits after one round trip.
    while net.deliver_first(|e| matches!(e.msg, Message::Accept { .. } | Message::Accepted { .. })) {}
    assert_eq!(net.node(leader).unwrap().learner().committed(), 1);
    assert_eq!(net.delivered - before, 4);
    assert_eq!(committed_values(&net, leader), vec![value(1, 1)]);
}

#[test]
fn followers_learn_the_commit_point_from_the_next_accept_or_heartbeat() {
    let (mut net, leader) = elected(MultiPaxosConfig::default(), 3);
    net.propose(leader, cmd(1, 1)).unwrap();
    assert!(net.run_until(Duration::from_millis(100), all_committed(1)));
    for id in 1..=3 {
        assert_eq!(committed_values(&net, NodeId(id)), vec![value(1, 1)]);
    }
}

#[test]
fn pipelining_keeps_a_window_in_flight_and_batches_the_rest() {
    let config = MultiPaxosConfig::default().with(|c| c.window = 4);
    let (mut net, leader) = elected(config, 4);
    assert!(net.run_until(Duration::from_millis(5), |net| net.in_flight.is_empty()));
    for seq in 1..=20 {
        net.propose(leader, cmd(1, seq)).unwrap();
    }
    let accepts_to_2: Vec<usize> = net
        .in_flight
        .iter()
        .filter_map(|e| match &e.msg {
            Message::Accept { entries, .. } if e.to != leader => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(accepts_to_2, vec![1; 8], "4 slots in flight, sent one by one to each of 2 peers");
    // Answers arrive out of order (newest first); commits still leave in slot order.
    while let Some(pos) = net.in_flight.iter().rposition(|e| matches!(e.msg, Message::Accepted { .. })) {
        net.deliver_at(pos);
        if net.in_flight.iter().all(|e| !matches!(e.msg, Message::Accepted { .. })) {
            let _ = net.deliver_first(|e| matches!(e.msg, Message::Accept { .. }));
        }
    }
    assert!(net.run_until(Duration::from_secs(1), all_committed(20)));
    let expected: Vec<Payload> = (1..=20).map(|s| value(1, s)).collect();
    assert_eq!(committed_values(&net, leader), expected);
    assert!(net.delivered < 20 * 4 + 30, "queued commands left in batches ({} messages delivered)", net.delivered);
}

fn is_accept_from(env: &Envelope<Message>, from: NodeId) -> bool {
    env.from == from && matches!(env.msg, Message::Accept { .. })
}

#[test]
fn a_new_leader_fills_holes_with_noops_and_keeps_accepted_values() {
    let (mut net, old) = elected(MultiPaxosConfig::default(), 5);
    assert!(net.run_until(Duration::from_millis(5), |net| net.in_flight.is_empty()));
    // Slots 1..=3 proposed; the Accepts for slot 2 never leave the old leader.
    for seq in 1..=3 {
        net.propose(old, cmd(1, seq)).unwrap();
    }
    net.drop_where(|e| matches!(&e.msg, Message::Accept { entries, .. } if entries.iter().any(|(s, _)| *s == 2)));
    // Slots 1 and 3 reach one follower only, and nothing comes back.
    let follower = NodeId(old.0 % 3 + 1);
    while net.deliver_first(|e| is_accept_from(e, old) && e.to == follower) {}
    net.drop_where(|_| true);
    net.crash(old);
    let new = elect(&mut net);
    assert_ne!(new, old);
    assert!(net
        .run_until(Duration::from_secs(1), |net| { net.nodes.iter().flatten().all(|n| n.learner().committed() >= 3) }));
    assert_eq!(committed_values(&net, new), vec![value(1, 1), Payload::Noop, value(1, 3)]);
    net.assert_logs_agree();
}

#[test]
fn an_old_leaders_late_accepts_are_rejected_and_it_steps_down() {
    let (mut net, old) = elected(MultiPaxosConfig::default(), 6);
    assert!(net.run_until(Duration::from_millis(5), |net| net.in_flight.is_empty()));
    net.propose(old, cmd(1, 1)).unwrap();
    let late: Vec<Envelope<Message>> = net.in_flight.drain(..).collect();
    // Meanwhile another node takes over with a higher ballot.
    let other = NodeId(old.0 % 3 + 1);
    net.with_node(other, |node, now, out| node.step(now, out, MultiPaxos::start_election));
    while net.deliver_first(|e| e.to != old) {}
    assert!(net.node(other).unwrap().leading_ballot().is_some(), "the new leader is up");
    // The old leader's Accepts arrive late: refused with the new promise.
    let third = NodeId(6 - old.0 - other.0);
    for env in late.into_iter().filter(|e| e.to == third) {
        net.in_flight.push_back(env);
        net.deliver_at(net.in_flight.len() - 1);
    }
    let reply = net.in_flight.iter().find(|e| e.from == third && e.to == old).expect("an answer to the old leader");
    let new_ballot = net.node(other).unwrap().leading_ballot().unwrap();
    assert!(matches!(reply.msg, Message::Nack { promised, .. } if promised == new_ballot), "{reply:?}");
    let position = net.in_flight.iter().position(|e| e.from == third && e.to == old).unwrap();
    net.deliver_at(position);
    assert_eq!(net.node(old).unwrap().status().role, Role::Follower);
    assert_eq!(net.propose(old, cmd(1, 2)), Err(NotLeader { leader_hint: Some(other) }.into()));
}

#[test]
fn a_lagging_replica_catches_up_and_gets_a_snapshot_below_the_compaction_point() {
    let (mut net, leader) = elected(MultiPaxosConfig::default(), 7);
    let lagging = NodeId(leader.0 % 3 + 1);
    net.crash(lagging);
    for seq in 1..=30 {
        net.propose(leader, cmd(1, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(1), |net| net.node(leader).unwrap().learner().committed() >= 30));
    // The leader's driver snapshots at 20: slots 1..=20 leave its log.
    net.with_node(leader, |node, now, out| node.on_snapshot(now, 20, Bytes::from_static(b"state@20"), out));
    let snapshot = net.node(leader).unwrap().snapshot().cloned().unwrap();
    assert_eq!(snapshot.index, 20);
    net.restart(lagging);
    let mut installed = None;
    let done = net.run_until(Duration::from_secs(1), |net| net.node(lagging).unwrap().learner().committed() >= 30);
    assert!(done, "the lagging replica caught up");
    if let Some(s) = net.node(lagging).unwrap().snapshot() {
        installed = Some(s.index);
    }
    assert_eq!(installed, Some(20), "it installed the leader's snapshot");
    let tail: Vec<Payload> = committed_values(&net, lagging)[20..].to_vec();
    assert_eq!(tail, (21..=30).map(|s| value(1, s)).collect::<Vec<_>>());
}

/// Found by the `backlog` sweep (seed 227): with a small `catch_up_batch`,
/// a replica that missed hundreds of slots got one capped answer per
/// heartbeat, 4 slots every 20 ms, and was still behind when the run ended. A
/// capped answer now says `more`, and the replica asks again at once.
#[test]
fn a_replica_far_behind_pulls_capped_catch_up_answers_back_to_back() {
    let config = MultiPaxosConfig::default().with(|c| c.catch_up_batch = 4);
    let (mut net, leader) = elected(config, 7);
    let lagging = NodeId(leader.0 % 3 + 1);
    net.crash(lagging);
    for seq in 1..=200 {
        net.propose(leader, cmd(1, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(2), |net| net.node(leader).unwrap().learner().committed() >= 200));
    net.restart(lagging);
    let restarted = net.now;
    let caught_up = |net: &Net<MultiPaxos>| net.node(lagging).unwrap().learner().committed() >= 200;
    assert!(net.run_until(Duration::from_secs(2), caught_up), "the lagging replica caught up");
    // 50 answers of 4 slots: back to back they take a few round trips of
    // milliseconds each, one per heartbeat they took a second.
    let took = net.now - restarted;
    assert!(took < Duration::from_millis(200), "catching up 200 slots took {took:?}");
    assert_eq!(committed_values(&net, lagging), (1..=200).map(|s| value(1, s)).collect::<Vec<_>>());
}

#[test]
fn a_snapshot_is_persisted_and_a_restart_resumes_after_it() {
    let (mut net, leader) = elected(MultiPaxosConfig::default(), 8);
    for seq in 1..=10 {
        net.propose(leader, cmd(1, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(1), all_committed(10)));
    let node = NodeId(leader.0 % 3 + 1);
    let mut effects = Vec::new();
    net.with_node(node, |n, now, out| {
        n.on_snapshot(now, 6, Bytes::from_static(b"s"), out);
        effects = out.as_slice().iter().map(|e| matches!(e, Effect::Persist(b) if b.snapshot.is_some())).collect();
    });
    assert!(effects.contains(&true), "the snapshot is written");
    net.crash(node);
    net.restart(node);
    let restarted = net.node(node).unwrap();
    assert_eq!(restarted.snapshot().map(|s| s.index), Some(6));
    assert_eq!(restarted.learner().committed(), 6, "resumes after the snapshot; 7..=10 are re-emitted");
    assert!(net.run_until(Duration::from_millis(10), |net| net.node(node).unwrap().learner().committed() >= 10));
}

#[test]
fn the_checker_catches_two_values_chosen_in_one_slot() {
    let net: Net<MultiPaxos> = Net::new(3, MultiPaxosConfig::default(), 9);
    let mut nodes = net.nodes;
    let (b1, b2) = (Ballot::new(1, NodeId(1)), Ballot::new(2, NodeId(2)));
    let mut checker = OneValuePerSlot::new();
    nodes[0].as_mut().unwrap().plant_vote(Vote { slot: 3, ballot: b1, value: Payload::Noop });
    nodes[1].as_mut().unwrap().plant_vote(Vote { slot: 3, ballot: b1, value: Payload::Noop });
    nodes[2].as_mut().unwrap().plant_vote(Vote { slot: 3, ballot: b2, value: value(1, 1) });
    nodes[1].as_mut().unwrap().plant_vote(Vote { slot: 3, ballot: b2, value: value(1, 1) });
    let nodes: Vec<Option<&MultiPaxos>> = nodes.iter().map(Option::as_ref).collect();
    // Each check reads every node's new votes: the first already sees n1 and
    // n2 choose a no-op in b1, and n2 and n3 another value in b2.
    let err = Invariant::<MultiPaxos>::check(&mut checker, Instant::ZERO, NodeId(1), &nodes).unwrap_err();
    assert!(err.contains("two values chosen"), "{err}");
}

#[test]
fn the_checker_catches_a_chosen_configuration_that_changes_two_voters() {
    let net: Net<MultiPaxos> = Net::new(3, MultiPaxosConfig::default(), 9);
    let mut nodes = net.nodes;
    let b1 = Ballot::new(1, NodeId(1));
    // From voters {1, 2, 3}, epoch 0, straight to {1, 4, 5}: n2 and n3 out,
    // n4 and n5 in, in one step. n1 and n2 accept it, a majority of {1, 2, 3}.
    let jump = Membership { voters: vec![NodeId(1), NodeId(4), NodeId(5)], epoch: 1, ..Membership::default() };
    let mut checker = OneValuePerSlot::new();
    for node in &mut nodes[..2] {
        node.as_mut().unwrap().plant_vote(Vote { slot: 1, ballot: b1, value: Payload::Membership(jump.clone()) });
    }
    let nodes: Vec<Option<&MultiPaxos>> = nodes.iter().map(Option::as_ref).collect();
    let err = Invariant::<MultiPaxos>::check(&mut checker, Instant::ZERO, NodeId(1), &nodes).unwrap_err();
    assert!(err.contains("their majorities need not overlap"), "{err}");
}

#[test]
fn a_candidates_own_promise_is_written_before_its_prepares_leave() {
    let init = Init::first_start(NodeId(1), 3, MultiPaxosConfig::default());
    let mut node = MultiPaxos::new(init).expect("a node starts");
    let mut out = Effects::new();
    node.step(Instant::ZERO, &mut out, MultiPaxos::start_election);
    let effects = out.as_slice();
    let write = effects.iter().position(|e| matches!(e, Effect::Persist(_))).expect("a write");
    let prepares: Vec<usize> = effects
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Effect::SendDurable { msg: Message::Prepare { .. }, .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(prepares.len(), 2, "{effects:?}");
    assert!(prepares.iter().all(|&i| i > write), "a crash cannot make us reuse the ballot: {effects:?}");
}

fn lease_config() -> MultiPaxosConfig {
    MultiPaxosConfig::default().with(|c| c.read_lease = true)
}

#[test]
fn a_leader_serves_local_reads_only_while_a_majority_backs_its_lease() {
    let mut net: Net<MultiPaxos> = Net::new(3, lease_config(), 10);
    let leader = elect(&mut net);
    let read = |net: &mut Net<MultiPaxos>, id: NodeId| {
        let mut ready = None;
        let result = net.with_node(id, |node, now, out| {
            let r = node.read(now, 7, out);
            ready = out.as_slice().iter().find_map(|e| match e {
                Effect::ReadReady { id: 7, index } => Some(*index),
                _ => None,
            });
            r
        });
        (result.unwrap(), ready)
    };
    // Heartbeats are out but not yet acknowledged: no lease, read through the log.
    while net.deliver_at(0) {}
    net.fire_timers();
    assert!(net.in_flight.iter().any(|e| matches!(e.msg, Message::Heartbeat { .. })));
    assert_eq!(read(&mut net, leader).0, Err(ReadError::Unsupported));
    while net.deliver_first(|e| matches!(e.msg, Message::Heartbeat { .. } | Message::HeartbeatAck { .. })) {}
    net.propose(leader, cmd(1, 1)).unwrap();
    let (result, index) = read(&mut net, leader);
    assert_eq!(result, Ok(()));
    assert_eq!(index, Some(1), "the read waits for the write proposed before it");
    let follower = NodeId(leader.0 % 3 + 1);
    assert!(matches!(read(&mut net, follower).0, Err(ReadError::NotLeader(_))));
    // The lease runs out when the acknowledgements stop.
    net.drop_where(|_| true);
    net.now += Duration::from_millis(80);
    assert_eq!(read(&mut net, leader).0, Err(ReadError::Unsupported));
}

#[test]
fn with_leases_a_replica_that_heard_the_leader_refuses_other_candidates() {
    let mut net: Net<MultiPaxos> = Net::new(3, lease_config(), 11);
    let leader = elect(&mut net);
    while net.deliver_at(0) {}
    net.fire_timers();
    assert!(net.in_flight.iter().any(|e| matches!(e.msg, Message::Heartbeat { .. })));
    while net.deliver_at(0) {}
    let (a, b) = (NodeId(leader.0 % 3 + 1), NodeId((leader.0 + 1) % 3 + 1));
    let ballot = Ballot::new(1_000, a);
    net.with_node(b, |node, now, out| node.on_message(now, a, Message::Prepare { ballot, from: 1 }, out));
    assert!(net.in_flight.iter().all(|e| e.from != b), "no promise while the leader's lease may hold");
    // Without leases the same Prepare is promised at once.
    let mut plain: Net<MultiPaxos> = Net::new(3, MultiPaxosConfig::default(), 11);
    let leader = elect(&mut plain);
    let (a, b) = (NodeId(leader.0 % 3 + 1), NodeId((leader.0 + 1) % 3 + 1));
    plain.in_flight.clear();
    plain.with_node(b, |node, now, out| node.on_message(now, a, Message::Prepare { ballot, from: 1 }, out));
    assert!(plain.in_flight.iter().any(|e| e.from == b && matches!(e.msg, Message::Promise { .. })));
}

#[test]
fn a_candidate_behind_a_promisers_capped_report_catches_up_instead_of_leading() {
    let config = MultiPaxosConfig::default().with(|c| c.catch_up_batch = 8);
    let (mut net, leader) = elected(config, 12);
    let behind = NodeId(leader.0 % 3 + 1);
    let other = NodeId(6 - leader.0 - behind.0);
    net.crash(behind);
    for seq in 1..=30 {
        net.propose(leader, cmd(1, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(1), |net| net.node(other).unwrap().learner().committed() >= 30));
    // The leader dies; the node that missed everything comes back and campaigns first.
    net.crash(leader);
    net.restart(behind);
    net.with_node(behind, |node, now, out| node.step(now, out, MultiPaxos::start_election));
    assert!(net.node(behind).unwrap().status().role == Role::Candidate);
    while net.deliver_at(0) {}
    assert_ne!(net.node(behind).unwrap().status().role, Role::Leader, "a promise it cannot see through");
    net.restart(leader);
    assert!(net.run_until(Duration::from_secs(3), all_committed(30)));
    let expected: Vec<Payload> = (1..=30).map(|s| value(1, s)).collect();
    for id in 1..=3 {
        assert_eq!(committed_values(&net, NodeId(id))[..30], expected[..], "node {id}");
    }
}

#[test]
fn a_leader_writes_once_per_command_the_commit_point_rides_on_the_next_write() {
    let (mut net, leader) = elected(MultiPaxosConfig::default(), 7);
    assert!(net.run_until(Duration::from_millis(5), |net| net.in_flight.is_empty()));
    for seq in 1..=2 {
        net.propose(leader, cmd(1, seq)).unwrap();
        while net.deliver_first(|e| matches!(e.msg, Message::Accept { .. })) {}
        let position = net.in_flight.iter().position(|e| e.to == leader && matches!(e.msg, Message::Accepted { .. }));
        let answer = net.in_flight.remove(position.expect("a follower answered")).unwrap();
        let now = net.now;
        let mut out = Effects::new();
        let node = net.node_mut(leader).unwrap();
        node.on_message(now, answer.from, answer.msg, &mut out);
        assert_eq!(node.learner().committed(), seq, "chosen by the leader and one follower");
        let writes = out.as_slice().iter().filter(|e| matches!(e, Effect::Persist(_))).count();
        assert_eq!(writes, 0, "choosing a slot costs no write of its own: {:?}", out.as_slice());
        net.in_flight.clear();
    }
    // The commit point reached storage with the second command's vote.
    net.crash(leader);
    net.restart(leader);
    net.with_node(leader, |node, now, out| node.on_timer(now, out)); // a step commits what storage says is chosen
    assert_eq!(net.node(leader).unwrap().learner().committed(), 1);
}

/// Raft's PreVote for Multi-Paxos: a node that restarts and cannot hear the
/// leader yet (its peers' connections to it are still backing off) asks
/// before it campaigns, and the others, who hear a healthy leader, say no.
#[test]
fn a_restarted_node_that_cannot_hear_the_leader_does_not_depose_it() {
    let (mut net, leader) = elected(MultiPaxosConfig::default(), 11);
    let ballot = net.node(leader).unwrap().leading_ballot().unwrap();
    let away = NodeId(leader.0 % 3 + 1);
    net.crash(away);
    net.drop_where(|env| env.to == away);
    net.restart(away);
    // Several election timeouts in which nothing from the leader reaches it.
    let end = net.now + MultiPaxosConfig::default().election_timeout * 5;
    while net.now < end {
        net.drop_where(|env| env.from == leader && env.to == away);
        if !net.deliver_at(0) {
            net.fire_timers();
        }
        assert_eq!(net.node(away).unwrap().status().role, Role::Follower, "it never campaigns");
    }
    assert_eq!(net.node(leader).unwrap().leading_ballot(), Some(ballot), "the leader was never deposed");
    // Once the leader's heartbeats get through, it follows.
    assert!(net.run_until(Duration::from_secs(1), |net| net.node(away).unwrap().status().leader == Some(leader)));
    net.propose(leader, cmd(1, 1)).unwrap();
    assert!(net.run_until(Duration::from_secs(1), all_committed(1)));
}

/// Issue 12 item 4 on three nodes: the leader `l` is cut off from `c` while
/// `f`'s connection to it resets (a link-down hint while `l` lives). `f` keeps
/// acknowledging `l`'s heartbeats, each extending `l`'s lease. If `f` then
/// promised `c` before those acks ran out, `c` would lead and commit while
/// `l` still answers lease reads from its older state. Returns the first such
/// stale read seen, probing `l` after every step.
fn stale_lease_read(config: MultiPaxosConfig, seed: u64) -> Option<String> {
    let mut net: Net<MultiPaxos> = Net::new(3, config, seed);
    let l = elect(&mut net);
    net.run_until(Duration::from_millis(100), |_| false);
    let (f, c) = (NodeId(l.0 % 3 + 1), NodeId((l.0 + 1) % 3 + 1));
    net.with_node(f, |n, now, out| n.on_link_down(now, l, out));
    net.with_node(c, |n, now, out| n.on_link_down(now, l, out));
    let end = net.now + Duration::from_secs(1);
    let mut seq = 0;
    while net.now < end {
        net.drop_where(|e| (e.from == l && e.to == c) || (e.from == c && e.to == l));
        if !net.deliver_at(0) {
            net.fire_timers();
        }
        if net.node(c).unwrap().leading_ballot().is_some() && seq < 20 {
            seq += 1;
            let _ = net.propose(c, cmd(9, seq));
        }
        let read = net.with_node(l, |n, now, out| {
            n.read(now, 1, out).ok()?;
            out.as_slice().iter().find_map(|e| match e {
                Effect::ReadReady { index, .. } => Some(*index),
                _ => None,
            })
        });
        let newest = net.committed[(c.0 - 1) as usize].iter().rev().find(|e| matches!(e.payload, Payload::Command(_)));
        if let (Some(Some(index)), Some(write)) = (read, newest) {
            if write.index > index {
                return Some(format!(
                    "at {:?} {l} served a lease read at {index}; {c} committed {}",
                    net.now, write.index
                ));
            }
        }
    }
    None
}

#[test]
fn with_leases_a_leader_cut_off_from_one_follower_never_serves_a_stale_read() {
    for seed in 0..20 {
        assert_eq!(stale_lease_read(lease_config(), seed), None, "seed {seed}");
    }
}

#[test]
fn the_stale_lease_read_harness_catches_the_planted_twin() {
    let config = lease_config().with(|c| c.planted = Some(PlantedBug::LeaseIgnoresAcks));
    let caught: Vec<u64> = (0..20).filter(|&seed| stale_lease_read(config.clone(), seed).is_some()).collect();
    println!("planted LeaseIgnoresAcks: stale lease reads in seeds {caught:?} of 0..20");
    assert!(!caught.is_empty(), "the harness never saw a stale read with the planted bug");
}

/// Issue 12 item 7: a leader cut off from every peer keeps leading forever
/// and queues every command offered to it. With CheckQuorum it steps down
/// about one election timeout after it last heard a majority, and from then
/// on answers NotLeader instead of queuing.
#[test]
fn a_leader_cut_off_in_a_minority_steps_down_and_stops_queuing() {
    cut_off_leader(MultiPaxosConfig::default());
}

#[test]
fn the_cut_off_leader_test_catches_the_planted_twin() {
    let config = MultiPaxosConfig::default().with(|c| c.planted = Some(PlantedBug::NoCheckQuorum));
    let caught = quorum_sim::quietly(|| cut_off_leader(config)).is_none();
    assert!(caught, "a leader without CheckQuorum went unnoticed");
}

fn cut_off_leader(config: MultiPaxosConfig) {
    let (timeout, beat) = (config.election_timeout, config.heartbeat_interval);
    let (mut net, l) = elected(config, 12);
    net.run_until(Duration::from_millis(200), |_| false);
    assert_eq!(leader_of(&net), Some(l), "idle, the leader keeps leading (its heartbeats are answered)");
    let cut_at = net.now;
    let mut accepted = 0;
    let mut seq = 0;
    while net.now < cut_at + timeout * 5 {
        net.drop_where(|e| e.from == l || e.to == l);
        seq += 1;
        match net.propose(l, cmd(1, seq)) {
            Ok(()) => accepted += 1,
            Err(ProposeError::NotLeader(_)) => break,
            Err(e) => panic!("unexpected answer {e:?}"),
        }
        if !net.deliver_at(0) {
            net.fire_timers();
        }
    }
    let role = net.node(l).unwrap().status().role;
    assert_ne!(role, Role::Leader, "still leading {:?} after the cut, {accepted} commands queued", net.now - cut_at);
    assert!(net.now <= cut_at + timeout + beat * 2, "stepped down only {:?} after the cut", net.now - cut_at);
    assert!(matches!(net.propose(l, cmd(1, seq + 1)), Err(ProposeError::NotLeader(_))));
}

/// CheckQuorum runs on the heartbeat timer, and an Accept broadcast put the
/// next heartbeat off (the Accept carries the commit point). A cut-off leader
/// offered commands more often than it beats then never checked, and led on
/// for as long as the commands kept coming (found by the `check quorum`
/// invariant in 28 of 300 default sweep seeds, most after a pause).
#[test]
fn a_cut_off_leader_offered_commands_faster_than_it_beats_still_steps_down() {
    let config = MultiPaxosConfig::default();
    let (timeout, beat) = (config.election_timeout, config.heartbeat_interval);
    let (mut net, l) = elected(config, 12);
    net.run_until(Duration::from_millis(200), |_| false);
    let cut_at = net.now;
    let mut seq = 0;
    while net.now < cut_at + timeout * 5 && net.node(l).unwrap().status().role == Role::Leader {
        seq += 1;
        net.propose(l, cmd(1, seq)).expect("a leader takes the command");
        net.drop_where(|e| e.from == l || e.to == l);
        while net.deliver_at(0) {
            net.drop_where(|e| e.from == l || e.to == l);
        }
        net.now += Duration::from_nanos(beat.as_nanos() / 4);
        if net.next_timer().is_some_and(|t| t <= net.now) {
            net.fire_timers();
        }
    }
    assert_ne!(net.node(l).unwrap().status().role, Role::Leader, "still leading {:?} after the cut", net.now - cut_at);
    assert!(net.now <= cut_at + timeout + beat * 2, "stepped down only {:?} after the cut", net.now - cut_at);
}

fn queued(net: &Net<MultiPaxos>, id: NodeId) -> usize {
    match &net.node(id).unwrap().state {
        State::Leader(leader) => leader.queued(),
        _ => 0,
    }
}

#[test]
fn a_leader_that_cannot_commit_refuses_commands_past_its_queue_bound() {
    let config = MultiPaxosConfig::default().with(|c| {
        c.window = 2;
        c.max_queued = 4;
    });
    let (mut net, l) = elected(config, 13);
    net.run_until(Duration::from_millis(100), |_| false);
    net.drop_where(|_| true);
    let answers: Vec<Result<(), ProposeError>> = (1..=10).map(|seq| net.propose(l, cmd(1, seq))).collect();
    assert!(answers[..6].iter().all(Result::is_ok), "two in flight, four queued: {answers:?}");
    assert!(answers[6..].iter().all(|a| *a == Err(ProposeError::Busy { limit: 4 })), "{answers:?}");
    assert_eq!(queued(&net, l), 4);
    // The answers resume when the slots are chosen: the queue drains and the refused commands go in.
    assert!(net.run_until(Duration::from_millis(200), all_committed(6)));
    for seq in 7..=10 {
        net.propose(l, cmd(1, seq)).unwrap();
        assert!(queued(&net, l) <= 4);
    }
    assert!(net.run_until(Duration::from_millis(200), all_committed(10)));
    net.assert_logs_agree();
}

/// What a catch-up run saw: the largest catch-up message (snapshot piece or
/// `Decided`) and the number of snapshot pieces delivered.
#[derive(Debug, Hash, Default)]
struct CatchUpSeen {
    largest: usize,
    pieces: usize,
}

/// Delivers in order for `d`, dropping (as the runtime does, by closing the
/// link) every message whose encoding exceeds `frame` bytes; `hook` runs
/// before each delivery.
fn run_with_frame_limit(
    net: &mut Net<MultiPaxos>,
    d: Duration,
    frame: usize,
    done: impl Fn(&Net<MultiPaxos>) -> bool,
    mut hook: impl FnMut(&mut Net<MultiPaxos>, &CatchUpSeen),
) -> CatchUpSeen {
    let end = net.now + d;
    let mut seen = CatchUpSeen::default();
    while net.now < end && !done(net) {
        while let Some(env) = net.in_flight.front() {
            let size = postcard::to_allocvec(&env.msg).expect("messages encode").len();
            if size > frame {
                net.in_flight.pop_front();
                continue;
            }
            if matches!(env.msg, Message::SnapshotChunk(_) | Message::Decided { .. }) {
                seen.largest = seen.largest.max(size);
            }
            if matches!(env.msg, Message::SnapshotChunk(_)) {
                seen.pieces += 1;
            }
            hook(net, &seen);
            net.deliver_at(0);
        }
        if !net.fire_timers() {
            break;
        }
    }
    seen
}

/// Issue 12 item 6: a follower far behind a snapshot larger than the frame
/// limit. The snapshot used to go in one message, which the link refused
/// every time; it is streamed in pieces now. Returns what the run saw and the
/// data the follower installed.
fn snapshot_catch_up(
    config: MultiPaxosConfig,
    snapshot_bytes: usize,
    frame: usize,
    mut hook: impl FnMut(&mut Net<MultiPaxos>, NodeId, &CatchUpSeen),
) -> (CatchUpSeen, Snapshot) {
    let (mut net, leader) = elected(config, 14);
    let lagging = NodeId(leader.0 % 3 + 1);
    net.crash(lagging);
    for seq in 1..=40 {
        net.propose(leader, cmd(1, seq)).unwrap();
    }
    assert!(net.run_until(Duration::from_secs(1), |net| net.node(leader).unwrap().learner().committed() >= 40));
    let state = Bytes::from(test_state(snapshot_bytes));
    net.with_node(leader, |node, now, out| node.on_snapshot(now, 30, state, out));
    net.restart(lagging);
    let caught_up = |net: &Net<MultiPaxos>| net.node(lagging).unwrap().learner().committed() >= 40;
    let seen =
        run_with_frame_limit(&mut net, Duration::from_secs(5), frame, caught_up, |net, seen| hook(net, leader, seen));
    assert!(
        caught_up(&net),
        "the lagging replica never caught up (committed {})",
        net.node(lagging).unwrap().learner().committed()
    );
    let installed = net.node(lagging).unwrap().snapshot().expect("a snapshot was installed").clone();
    let from = installed.index as usize;
    let tail: Vec<Payload> = committed_values(&net, lagging)[from..].to_vec();
    assert_eq!(tail, (from as u64 + 1..=40).map(|s| value(1, s)).collect::<Vec<_>>());
    net.assert_logs_agree();
    (seen, installed)
}

fn test_state(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_follower_behind_a_snapshot_larger_than_a_frame_catches_up() {
    // 5 MiB of state, links that refuse frames over 2 MiB (the runtime's 16 MiB, scaled).
    let (seen, installed) = snapshot_catch_up(MultiPaxosConfig::default(), 5 << 20, 2 << 20, |_, _, _| {});
    assert_eq!((installed.index, &installed.data[..]), (30, &test_state(5 << 20)[..]), "the same state");
    assert!(seen.largest <= (1 << 20) + 64, "largest catch-up message {} bytes", seen.largest);
    assert_eq!(seen.pieces, 5);
}

fn tiny_chunks() -> MultiPaxosConfig {
    MultiPaxosConfig::default().with(|c| c.snapshot_chunk_bytes = 64)
}

#[test]
fn a_snapshot_of_many_tiny_pieces_arrives_whole_and_no_catch_up_message_exceeds_the_bound() {
    let (seen, installed) = snapshot_catch_up(tiny_chunks(), 10_000, 64 + 64, |_, _, _| {});
    assert_eq!((installed.index, &installed.data[..]), (30, &test_state(10_000)[..]), "the same state");
    assert!(seen.largest <= 64 + 40, "largest catch-up message {} bytes", seen.largest);
    assert!(seen.pieces >= 10_000 / 64, "{} pieces", seen.pieces);
}

#[test]
fn a_snapshot_replaced_mid_stream_is_started_over_and_the_new_one_installed() {
    let mut replaced = false;
    let (seen, installed) = snapshot_catch_up(tiny_chunks(), 10_000, 64 + 64, |net, leader, seen| {
        if !replaced && seen.pieces == 50 {
            replaced = true;
            net.with_node(leader, |n, now, out| n.on_snapshot(now, 35, Bytes::from_static(b"newer state"), out));
        }
    });
    assert!(replaced);
    assert_eq!((installed.index, &installed.data[..]), (35, &b"newer state"[..]));
    assert!(seen.pieces < 10_000 / 64 + 10, "the old snapshot was not streamed to the end: {} pieces", seen.pieces);
}

#[test]
fn a_snapshot_stream_cut_by_a_leader_change_starts_over_from_the_new_leader() {
    let mut step = 0;
    let (seen, installed) = snapshot_catch_up(tiny_chunks(), 10_000, 64 + 64, |net, leader, seen| {
        let other = NodeId((leader.0 + 1) % 3 + 1);
        if step == 0 && net.node(other).is_some_and(|n| n.learner().committed() >= 30) {
            step = 1;
            // The other follower compacted too, its own way: different bytes, same index.
            net.with_node(other, |n, now, out| n.on_snapshot(now, 30, Bytes::from(test_state(5_000)), out));
        } else if step == 1 && seen.pieces == 50 {
            step = 2;
            net.crash(leader);
        }
    });
    assert_eq!(step, 2);
    assert_eq!(
        (installed.index, &installed.data[..]),
        (30, &test_state(5_000)[..]),
        "the new leader's snapshot, whole"
    );
    assert!(seen.pieces >= 50 + 5_000 / 64, "{} pieces", seen.pieces);
}

#[test]
fn the_frame_limited_catch_up_catches_the_planted_twin() {
    let config = tiny_chunks().with(|c| c.planted = Some(PlantedBug::WholeSnapshot));
    let caught = quorum_sim::quietly(|| snapshot_catch_up(config, 10_000, 64 + 64, |_, _, _| {})).is_none();
    assert!(caught, "a snapshot sent whole went unnoticed");
}

/// Issue 13 (found by the tiny-caps sweep under a frame limit): a promise
/// carried every slot its acceptor accepted, however many bytes, so an
/// acceptor holding more than a frame of uncommitted values could never
/// promise (its link broke on every try). Promises now go in pages of at most
/// `snapshot_chunk_bytes` past their first slot, and the candidate asks for
/// the next page until each promise is whole: nothing accepted is lost. The
/// new leader's Accepts are cut by the same byte cap.
#[test]
fn a_promise_larger_than_a_message_goes_in_pages_and_loses_no_accepted_value() {
    let config = MultiPaxosConfig::default().with(|c| {
        c.snapshot_chunk_bytes = 64;
        c.window = 64;
        c.max_accepts_in_flight = 32; // all twenty sent before any is chosen
    });
    let (mut net, old) = elected(config, 21);
    net.run_until(Duration::from_millis(50), |_| false);
    for seq in 1..=20 {
        net.propose(old, cmd(1, seq)).unwrap();
    }
    // The followers accept all twenty slots; no Accepted gets back, so
    // nothing commits, and the leader dies.
    while net.deliver_first(|e| matches!(e.msg, Message::Accept { .. })) {}
    net.drop_where(|_| true);
    net.crash(old);
    let (mut largest, mut largest_accept, mut paged) = (0, 0, false);
    let end = net.now + Duration::from_secs(3);
    let all_twenty = |net: &Net<MultiPaxos>| {
        (1..=3).map(NodeId).any(|id| {
            let values = committed_values(net, id);
            values.iter().filter(|v| matches!(v, Payload::Command(_))).count() == 20
        })
    };
    while net.now < end && !all_twenty(&net) {
        for e in &net.in_flight {
            let size = postcard::to_allocvec(&e.msg).unwrap().len();
            match &e.msg {
                Message::Promise { last, .. } => {
                    largest = largest.max(size);
                    paged |= last.is_some();
                }
                Message::Accept { .. } => largest_accept = largest_accept.max(size),
                _ => {}
            }
        }
        if !net.deliver_at(0) && !net.fire_timers() {
            break;
        }
    }
    assert!(paged, "twenty accepted slots did not fit one 64-byte page");
    assert!(largest <= 64 + 100, "a promise of {largest} bytes: pages are cut at 64 bytes past the first value");
    // The new leader re-proposes the twenty in Accepts cut the same way.
    assert!(largest_accept <= 64 + 100, "an Accept of {largest_accept} bytes");
    let new = leader_of(&net).expect("a new leader");
    let commands: Vec<Payload> =
        committed_values(&net, new).into_iter().filter(|v| matches!(v, Payload::Command(_))).collect();
    assert_eq!(commands, (1..=20).map(|seq| value(1, seq)).collect::<Vec<_>>(), "every accepted value, in order");
}
