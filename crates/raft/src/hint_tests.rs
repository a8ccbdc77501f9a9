//! Unit tests for the link-down hint (`Raft::on_leader_link_down`), driving
//! one node directly.

use crate::node::State;
use crate::paper_tests::node_with;
use crate::{Append, Message, Raft, RaftConfig, ReadMode, VoteRequest};
use quorum_core::{Duration, Effect, Effects, Instant, NodeId, Protocol};

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn heartbeat(term: u64) -> Message {
    Message::Append(Append { term, prev_index: 0, prev_term: 0, entries: Vec::new(), commit: 0, round: 1 })
}

/// Node 2 of 3 in term 1, following node 1, last heard at 10 ms.
fn follower(config: RaftConfig) -> Raft {
    let mut r = node_with(2, 3, 1, &[], config);
    r.on_message(at(10), NodeId(1), heartbeat(1), &mut Effects::new());
    assert_eq!((r.state, r.leader), (State::Follower, Some(NodeId(1))));
    r
}

fn pre_votes_sent(out: &Effects<Message>) -> usize {
    out.as_slice().iter().filter(|e| matches!(e, Effect::Send { msg: Message::Vote(v), .. } if v.pre_vote)).count()
}

#[test]
fn a_broken_link_to_the_leader_forgets_it_and_brings_the_campaign_forward() {
    let mut r = follower(RaftConfig::default());
    assert!(r.next_timer().unwrap() >= at(160), "a full election timeout after the heartbeat");
    r.on_link_down(at(20), NodeId(1), &mut Effects::new());
    assert_eq!(r.leader, None);
    let deadline = r.next_timer().unwrap();
    assert!(deadline >= at(35) && deadline < at(70), "a tenth to a third of 150 ms: {deadline:?}");
    // A heartbeat sent before the link broke arrives late: it does not cancel the hint.
    r.on_message(at(21), NodeId(1), heartbeat(1), &mut Effects::new());
    assert_eq!((r.leader, r.next_timer().unwrap()), (None, deadline));
    // And the node grants pre-votes: it no longer hears a leader.
    let mut out = Effects::new();
    let req = VoteRequest { term: 2, last_index: 0, last_term: 0, pre_vote: true, transfer: false };
    r.on_message(at(22), NodeId(3), Message::Vote(req), &mut out);
    assert!(out.as_slice().iter().any(|e| matches!(e, Effect::Send { msg: Message::VoteReply(v), .. } if v.granted)));
    // The early campaign is a pre-vote: the term stays put.
    let mut out = Effects::new();
    r.on_timer(deadline, &mut out);
    assert_eq!((r.state, r.term), (State::PreCandidate, 1));
    assert_eq!(pre_votes_sent(&out), 2);
    // If the leader lives after all, its next heartbeat wins the node back.
    r.on_message(deadline, NodeId(1), heartbeat(1), &mut Effects::new());
    assert_eq!((r.state, r.leader, r.term), (State::Follower, Some(NodeId(1)), 1));
    assert!(r.next_timer().unwrap() >= deadline + Duration::from_millis(150));
}

#[test]
fn a_broken_link_to_another_follower_changes_nothing() {
    let mut r = follower(RaftConfig::default());
    let deadline = r.next_timer();
    r.on_link_down(at(20), NodeId(3), &mut Effects::new());
    assert_eq!((r.leader, r.next_timer()), (Some(NodeId(1)), deadline));
}

#[test]
fn without_pre_vote_the_hint_is_ignored() {
    let mut r = follower(RaftConfig::default().with(|c| c.pre_vote = false));
    let deadline = r.next_timer();
    r.on_link_down(at(20), NodeId(1), &mut Effects::new());
    assert_eq!((r.leader, r.next_timer()), (Some(NodeId(1)), deadline));
}

#[test]
fn with_lease_reads_the_early_campaign_waits_for_the_lease_on_votes() {
    let mut r = follower(RaftConfig::default().with(|c| c.read_mode = ReadMode::Lease));
    r.on_link_down(at(20), NodeId(1), &mut Effects::new());
    let deadline = r.next_timer().unwrap();
    assert!(deadline >= at(175) && deadline < at(210), "lease end (160 ms) plus the short delay: {deadline:?}");
    // Inside the lease a vote request is still ignored (thesis §6.4.1).
    let mut out = Effects::new();
    let req = VoteRequest { term: 2, last_index: 0, last_term: 0, pre_vote: false, transfer: false };
    r.on_message(at(100), NodeId(3), Message::Vote(req), &mut out);
    assert_eq!((r.term, r.vote), (1, None));
}

#[test]
fn with_lease_reads_an_append_acknowledged_after_the_hint_renews_the_lease_on_votes() {
    let mut r = follower(RaftConfig::default().with(|c| c.read_mode = ReadMode::Lease));
    r.on_link_down(at(20), NodeId(1), &mut Effects::new());
    // The leader lives: its heartbeat at 150 ms is answered, renewing its lease until 150 + 150 ms.
    let mut out = Effects::new();
    r.on_message(at(150), NodeId(1), heartbeat(1), &mut out);
    assert!(out.as_slice().iter().any(|e| matches!(e, Effect::SendDurable { msg: Message::AppendReply(_), .. })));
    assert!(r.next_timer().unwrap() >= at(300), "no campaign before the renewed lease ends");
    // A candidate's vote request inside that lease is ignored.
    let req = VoteRequest { term: 2, last_index: 0, last_term: 0, pre_vote: false, transfer: false };
    r.on_message(at(250), NodeId(3), Message::Vote(req.clone()), &mut Effects::new());
    assert_eq!((r.term, r.vote), (1, None));
    // After it, the vote is granted.
    r.on_message(at(301), NodeId(3), Message::Vote(req), &mut Effects::new());
    assert_eq!((r.term, r.vote), (2, Some(NodeId(3))));
}
