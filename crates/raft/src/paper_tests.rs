//! Unit tests that drive one `Raft` directly with crafted inputs, tied to the
//! paper's sections and figures (in the style of etcd's `raft_paper_test.go`).

use crate::node::{HardState, State};
use crate::{Append, AppendReply, Message, Raft, RaftConfig, ReadMode, VoteReply, VoteRequest};
use bytes::Bytes;
use quorum_core::{
    ClientId, Command, Duration, Effect, Effects, Entry, Init, Instant, NodeId, Payload, Protocol, Stamp, Stored,
};

pub(crate) fn config() -> RaftConfig {
    RaftConfig::default().with(|c| c.pre_vote = false)
}

pub(crate) fn entry(index: u64, term: u64) -> Entry {
    Entry::noop(index, Stamp::new(term, 0))
}

pub(crate) fn node_with(id: u64, n: u64, term: u64, terms: &[u64], config: RaftConfig) -> Raft {
    let hard = HardState { term, vote: None, joining: false };
    let stored = Stored {
        hard_state: Some(Bytes::from(postcard::to_allocvec(&hard).unwrap())),
        entries: terms.iter().enumerate().map(|(i, t)| entry(i as u64 + 1, *t)).collect(),
        snapshot: None,
    };
    Raft::new(Init { stored, seed: 42, ..Init::first_start(NodeId(id), n, config) }).expect("a node starts")
}

pub(crate) fn node(id: u64, n: u64) -> Raft {
    node_with(id, n, 0, &[], config())
}

fn sends(out: &Effects<Message>) -> Vec<(NodeId, Message, bool)> {
    out.sent()
}

fn persisted_tags(out: &Effects<Message>) -> Vec<u64> {
    out.writes().iter().map(|b| b.tag).collect()
}

fn commits(out: &Effects<Message>) -> Vec<u64> {
    out.commits()
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

/// Fires the election timer and feeds grants from every peer: the node leads.
pub(crate) fn make_leader(raft: &mut Raft) -> Effects<Message> {
    let mut out = Effects::new();
    let deadline = raft.next_timer().unwrap();
    raft.on_timer(deadline, &mut out);
    assert_eq!(raft.state, State::Candidate);
    // The vote requests leave once the term and vote are durable.
    raft.on_persisted(deadline, *persisted_tags(&out).last().unwrap(), &mut out);
    let peers: Vec<NodeId> = raft.configs.current().voters.iter().copied().filter(|v| *v != raft.id).collect();
    for p in peers {
        let reply = VoteReply { term: raft.term, granted: true, pre_vote: false };
        raft.on_message(deadline, p, Message::VoteReply(reply), &mut out);
    }
    assert_eq!(raft.state, State::Leader);
    out
}

fn ack(raft: &mut Raft, from: u64, index: u64) -> Effects<Message> {
    let mut out = Effects::new();
    let reply = AppendReply { term: raft.term, result: Ok(index), round: raft.lead.round };
    raft.on_message(at(400), NodeId(from), Message::AppendReply(reply), &mut out);
    out
}

#[test]
fn section_5_2_follower_times_out_and_asks_for_votes_only_once_its_vote_is_durable() {
    let mut r = node(1, 3);
    let mut out = Effects::new();
    let deadline = r.next_timer().unwrap();
    assert!(deadline >= at(150) && deadline < at(300), "randomized in [150, 300) ms: {deadline:?}");
    r.on_timer(deadline, &mut out);
    assert_eq!((r.term, r.vote, r.state), (1, Some(NodeId(1)), State::Candidate));
    let effects = out.as_slice();
    let persist = effects.iter().position(|e| matches!(e, Effect::Persist(b) if b.hard_state.is_some())).unwrap();
    let votes: Vec<usize> = effects
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Effect::SendDurable { msg: Message::Vote(v), .. } if v.term == 1 && !v.pre_vote))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(votes.len(), 2);
    assert!(votes.iter().all(|i| *i > persist), "vote requests leave after the term and vote are durable");
}

#[test]
fn section_9_6_a_pre_vote_campaign_leaves_the_term_alone() {
    let mut r = node_with(1, 3, 4, &[], RaftConfig::default());
    let mut out = Effects::new();
    r.on_timer(r.next_timer().unwrap(), &mut out);
    assert_eq!((r.term, r.state), (4, State::PreCandidate));
    let msgs = sends(&out);
    assert_eq!(msgs.len(), 2);
    assert!(msgs.iter().all(|(_, m, durable)| matches!(m, Message::Vote(v) if v.pre_vote && v.term == 5) && !durable));
    assert!(persisted_tags(&out).is_empty());
    // A majority of pre-votes starts the real campaign.
    let mut out = Effects::new();
    r.on_message(
        at(300),
        NodeId(2),
        Message::VoteReply(VoteReply { term: 5, granted: true, pre_vote: true }),
        &mut out,
    );
    assert_eq!((r.term, r.state), (5, State::Candidate));
}

#[test]
fn section_5_2_one_vote_per_term_first_come_first_served() {
    let mut r = node(1, 3);
    let req = |term| Message::Vote(VoteRequest { term, last_index: 0, last_term: 0, pre_vote: false, transfer: false });
    // CheckQuorum's lease makes a fresh node ignore votes for an election timeout.
    let mut out = Effects::new();
    r.on_message(at(200), NodeId(2), req(1), &mut out);
    assert_eq!(r.vote, Some(NodeId(2)));
    let granted = sends(&out);
    assert!(matches!(&granted[..], [(NodeId(2), Message::VoteReply(VoteReply { granted: true, .. }), true)]));
    let mut out = Effects::new();
    r.on_message(at(201), NodeId(3), req(1), &mut out);
    assert!(matches!(&sends(&out)[..], [(NodeId(3), Message::VoteReply(VoteReply { granted: false, .. }), true)]));
    assert_eq!(r.vote, Some(NodeId(2)));
}

#[test]
fn section_5_4_1_votes_go_only_to_candidates_with_logs_at_least_as_up_to_date() {
    let cases = [((2, 2), true), ((3, 2), true), ((1, 2), false), ((5, 1), false), ((3, 3), true)];
    for ((last_index, last_term), want) in cases {
        let mut r = node_with(1, 3, 2, &[1, 2], config());
        let mut out = Effects::new();
        let req = VoteRequest { term: 3, last_index, last_term, pre_vote: false, transfer: false };
        r.on_message(at(200), NodeId(2), Message::Vote(req), &mut out);
        let granted = matches!(&sends(&out)[..], [(_, Message::VoteReply(VoteReply { granted: true, .. }), _)]);
        assert_eq!(granted, want, "candidate last entry {last_index}@{last_term} vs ours 2@2");
    }
}

#[test]
fn section_5_2_majority_of_votes_makes_a_leader_that_appends_a_noop_and_sends_appends() {
    let mut r = node(1, 5);
    let mut out = Effects::new();
    r.on_timer(r.next_timer().unwrap(), &mut out);
    r.on_persisted(at(300), *persisted_tags(&out).last().unwrap(), &mut out);
    for p in [2, 3] {
        r.on_message(
            at(300),
            NodeId(p),
            Message::VoteReply(VoteReply { term: 1, granted: true, pre_vote: false }),
            &mut out,
        );
    }
    assert_eq!(r.state, State::Leader);
    assert_eq!(r.log.last_index(), 1);
    assert_eq!(r.log.get(1).unwrap().payload, Payload::Noop);
    let appends = sends(&out).into_iter().filter(|(_, m, _)| matches!(m, Message::Append(_))).count();
    assert_eq!(appends, 4);
}

#[test]
fn section_5_2_a_candidate_steps_down_on_an_append_from_the_leader_of_its_term() {
    let mut r = node(1, 3);
    let mut out = Effects::new();
    r.on_timer(r.next_timer().unwrap(), &mut out);
    let append = Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![entry(1, 1)], commit: 0, round: 1 };
    r.on_message(at(300), NodeId(2), Message::Append(append), &mut out);
    assert_eq!((r.state, r.leader, r.log.last_index()), (State::Follower, Some(NodeId(2)), 1));
}

#[test]
fn figure_8_old_term_entry_is_not_committed_by_counting_replicas() {
    // Node 1 holds 1@1, 2@2 and wins term 4; entry 2 (term 2) is on a majority
    // once node 2 acks it, but must not commit until an entry of term 4 does.
    let mut r = node_with(1, 3, 3, &[1, 2], config());
    let out = make_leader(&mut r);
    assert_eq!(r.term, 4);
    for tag in persisted_tags(&out) {
        r.on_persisted(at(300), tag, &mut Effects::new());
    }
    let out = ack(&mut r, 2, 2);
    assert_eq!(r.commit, 0, "§5.4.2: an entry of term 2 is not committed by counting");
    assert!(commits(&out).is_empty());
    let out = ack(&mut r, 2, 3);
    assert_eq!(r.commit, 3, "the term-4 no-op commits, and entry 2 with it");
    assert_eq!(commits(&out), vec![1, 2, 3]);
}

#[test]
fn thesis_10_2_1_the_leader_counts_itself_only_after_its_write_is_durable() {
    let mut r = node(1, 3);
    let out = make_leader(&mut r);
    let tags = persisted_tags(&out);
    let out = ack(&mut r, 2, 1);
    assert_eq!(r.commit, 0, "one follower plus an undurable leader is no majority of 3");
    assert!(commits(&out).is_empty());
    let mut out = Effects::new();
    r.on_persisted(at(400), *tags.last().unwrap(), &mut out);
    assert_eq!(r.commit, 1);
    assert_eq!(commits(&out), vec![1]);
}

#[test]
fn section_5_3_follower_rejects_with_the_conflicting_term_and_its_first_index() {
    let mut r = node_with(2, 3, 3, &[1, 2, 2, 2, 3], config());
    let mut out = Effects::new();
    let append = Append { term: 5, prev_index: 4, prev_term: 4, entries: vec![], commit: 0, round: 1 };
    r.on_message(at(10), NodeId(1), Message::Append(append), &mut out);
    match &sends(&out)[..] {
        [(NodeId(1), Message::AppendReply(AppendReply { result: Err(rej), .. }), true)] => {
            assert_eq!((rej.conflict_term, rej.conflict_index), (Some(2), 2));
        }
        other => panic!("expected one durable rejection, got {other:?}"),
    }
    // Too short: the hint is our last index + 1.
    let mut out = Effects::new();
    let append = Append { term: 5, prev_index: 9, prev_term: 4, entries: vec![], commit: 0, round: 1 };
    r.on_message(at(11), NodeId(1), Message::Append(append), &mut out);
    assert!(matches!(&sends(&out)[..], [(_, Message::AppendReply(AppendReply { result: Err(rej), .. }), _)]
        if rej.conflict_term.is_none() && rej.conflict_index == 6));
}

#[test]
fn section_5_3_conflicting_suffix_is_replaced_and_the_truncation_is_persisted() {
    let mut r = node_with(2, 3, 3, &[1, 1, 2, 2], config());
    let mut out = Effects::new();
    let append = Append { term: 3, prev_index: 2, prev_term: 1, entries: vec![entry(3, 3)], commit: 3, round: 1 };
    r.on_message(at(10), NodeId(1), Message::Append(append), &mut out);
    assert_eq!(r.log.last_index(), 3);
    assert_eq!(r.log.last_stamp(), Stamp::new(3, 0));
    let batch = out.as_slice().iter().find_map(|e| if let Effect::Persist(b) = e { Some(b.clone()) } else { None });
    let batch = batch.unwrap();
    assert_eq!(batch.truncate_from, Some(3));
    assert_eq!(batch.entries, vec![entry(3, 3)]);
    assert_eq!(commits(&out), vec![1, 2, 3]);
}

/// Exchanges messages between a leader and one follower until quiet.
fn converse(leader: &mut Raft, follower: &mut Raft, mut pending: Vec<(NodeId, NodeId, Message)>) -> usize {
    let mut rounds = 0;
    while !pending.is_empty() && rounds < 200 {
        rounds += 1;
        let mut next = Vec::new();
        for (from, to, msg) in pending {
            let mut out = Effects::new();
            if to == follower.id {
                follower.on_message(at(500), from, msg, &mut out);
            } else if to == leader.id {
                leader.on_message(at(500), from, msg, &mut out);
            } else {
                continue;
            }
            for tag in persisted_tags(&out) {
                let target = if to == leader.id { &mut *leader } else { &mut *follower };
                target.on_persisted(at(500), tag, &mut Effects::new());
            }
            next.extend(sends(&out).into_iter().map(|(dest, m, _)| (to, dest, m)));
        }
        pending = next;
    }
    rounds
}

#[test]
fn figure_7_the_leader_brings_every_follower_log_in_line_with_its_own() {
    let leader_terms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers: [&[u64]; 6] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        &[1, 1, 1, 4, 4, 4, 4],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for (case, terms) in followers.iter().enumerate() {
        let mut leader = node_with(1, 3, 7, &leader_terms, config());
        let out = make_leader(&mut leader);
        assert_eq!(leader.term, 8);
        for tag in persisted_tags(&out) {
            leader.on_persisted(at(300), tag, &mut Effects::new());
        }
        let mut follower = node_with(2, 3, 7, terms, config());
        let first: Vec<_> = sends(&out).into_iter().map(|(to, m, _)| (leader.id, to, m)).collect();
        let rounds = converse(&mut leader, &mut follower, first);
        let ours: Vec<Stamp> = leader.log.iter().map(|e| e.stamp).collect();
        let theirs: Vec<Stamp> = follower.log.iter().map(|e| e.stamp).collect();
        assert_eq!(ours, theirs, "figure 7 case ({})", (b'a' + case as u8) as char);
        assert_eq!(leader.commit, 11, "the term-8 no-op commits with the follower's ack");
        assert!(rounds <= 8, "case ({}) took {rounds} exchanges", (b'a' + case as u8) as char);
    }
}

#[test]
fn section_6_4_read_index_on_a_fresh_leader_waits_for_its_noop_and_a_heartbeat_quorum() {
    let mut r = node(1, 3);
    let out = make_leader(&mut r);
    for tag in persisted_tags(&out) {
        r.on_persisted(at(300), tag, &mut Effects::new());
    }
    let mut out = Effects::new();
    r.read(at(301), 7, &mut out).unwrap();
    assert!(!out.as_slice().iter().any(|e| matches!(e, Effect::ReadReady { .. })), "no commit of its term yet");
    let round = r.lead.round;
    // Node 2 acknowledges the no-op and the read's round: both conditions hold.
    let mut out = Effects::new();
    let reply = AppendReply { term: 1, result: Ok(1), round };
    r.on_message(at(302), NodeId(2), Message::AppendReply(reply), &mut out);
    let ready: Vec<_> = out
        .as_slice()
        .iter()
        .filter_map(|e| if let Effect::ReadReady { id, index } = e { Some((*id, *index)) } else { None })
        .collect();
    assert_eq!(ready, vec![(7, 1)]);
    // Followers refuse reads with a hint.
    let mut f = node(2, 3);
    let append = Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![], commit: 0, round: 1 };
    f.on_message(at(10), NodeId(1), Message::Append(append), &mut Effects::new());
    let err = f.read(at(11), 8, &mut Effects::new()).unwrap_err();
    assert_eq!(err, quorum_core::ReadError::NotLeader(quorum_core::NotLeader { leader_hint: Some(NodeId(1)) }));
}

#[test]
fn section_6_4_a_read_fails_when_leadership_is_lost() {
    let mut r = node(1, 3);
    let out = make_leader(&mut r);
    for tag in persisted_tags(&out) {
        r.on_persisted(at(300), tag, &mut Effects::new());
    }
    r.read(at(301), 9, &mut Effects::new()).unwrap();
    let mut out = Effects::new();
    let append = Append { term: 2, prev_index: 0, prev_term: 0, entries: vec![], commit: 0, round: 1 };
    r.on_message(at(302), NodeId(3), Message::Append(append), &mut out);
    assert!(out.as_slice().iter().any(|e| matches!(e, Effect::ReadFailed { id: 9, .. })));
}

#[test]
fn section_6_4_1_lease_reads_are_answered_at_once_inside_the_lease_only() {
    let cfg = RaftConfig::default().with(|c| {
        c.read_mode = ReadMode::Lease;
        c.pre_vote = false;
    });
    let mut r = node_with(1, 3, 0, &[], cfg);
    let out = make_leader(&mut r);
    for tag in persisted_tags(&out) {
        r.on_persisted(at(300), tag, &mut Effects::new());
    }
    let round = r.lead.round;
    let sent_at = r.lead.rounds.back().map(|(_, t)| *t);
    r.on_message(
        at(300),
        NodeId(2),
        Message::AppendReply(AppendReply { term: 1, result: Ok(1), round }),
        &mut Effects::new(),
    );
    assert!(r.own_term_committed());
    let mut out = Effects::new();
    r.read(at(310), 1, &mut out).unwrap();
    assert!(out.as_slice().iter().any(|e| matches!(e, Effect::ReadReady { id: 1, index: 1 })), "{sent_at:?}");
    // Long after the acknowledged round, the lease has run out: back to ReadIndex.
    let mut out = Effects::new();
    r.read(at(300 + 149), 2, &mut out).unwrap();
    assert!(!out.as_slice().iter().any(|e| matches!(e, Effect::ReadReady { id: 2, .. })));
}

#[test]
fn figure_2_commits_are_emitted_in_order_once_and_again_after_a_restart() {
    let mut r = node(2, 3);
    let mut out = Effects::new();
    let entries = vec![entry(1, 1), entry(2, 1), entry(3, 1)];
    let append = Append { term: 1, prev_index: 0, prev_term: 0, entries, commit: 2, round: 1 };
    r.on_message(at(10), NodeId(1), Message::Append(append.clone()), &mut out);
    assert_eq!(commits(&out), vec![1, 2]);
    let mut out = Effects::new();
    r.on_message(at(11), NodeId(1), Message::Append(Append { commit: 3, ..append }), &mut out);
    assert_eq!(commits(&out), vec![3], "a duplicate append commits only what is new");
    // Restart from what was written: term and log survive, commits come again once known.
    let mut storage = quorum_core::MemStorage::new();
    let mut all = Effects::new();
    let mut r2 = node(2, 3);
    let append =
        Append { term: 1, prev_index: 0, prev_term: 0, entries: vec![entry(1, 1), entry(2, 1)], commit: 0, round: 1 };
    r2.on_message(at(10), NodeId(1), Message::Append(append), &mut all);
    for e in all.drain() {
        if let Effect::Persist(b) = e {
            quorum_core::Storage::write(&mut storage, &[b]).unwrap();
        }
    }
    let stored = quorum_core::Storage::load(&storage).unwrap();
    let mut back = Raft::new(Init { stored, now: at(20), ..Init::first_start(NodeId(2), 3, config()) })
        .expect("a node restarts from what it stored");
    assert_eq!((back.term, back.log.last_index(), back.commit), (1, 2, 0));
    let mut out = Effects::new();
    let hb = Append { term: 1, prev_index: 2, prev_term: 1, entries: vec![], commit: 2, round: 2 };
    back.on_message(at(30), NodeId(1), Message::Append(hb), &mut out);
    assert_eq!(commits(&out), vec![1, 2]);
}

#[test]
fn flow_control_refuses_proposals_over_the_uncommitted_byte_budget() {
    let cfg = RaftConfig::default().with(|c| {
        c.max_uncommitted_bytes = 200;
        c.pre_vote = false;
    });
    let mut r = node_with(1, 3, 0, &[], cfg);
    make_leader(&mut r);
    let cmd = |seq| Command::new(ClientId(1), seq, vec![0u8; 60]);
    let mut accepted = 0;
    let mut refused = None;
    for seq in 0..10 {
        match r.try_propose(at(300), cmd(seq), &mut Effects::new()) {
            Ok(_) => accepted += 1,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(accepted, 2);
    assert_eq!(refused, Some(crate::ProposeError::Overloaded));
    let err = r.propose(at(300), cmd(99), &mut Effects::new()).unwrap_err();
    assert!(matches!(err, quorum_core::ProposeError::Busy { .. }), "through the trait: retry here, later: {err}");
}

#[test]
fn a_leader_steps_down_when_it_sees_a_higher_term() {
    let mut r = node(1, 3);
    make_leader(&mut r);
    let mut out = Effects::new();
    let reply = AppendReply { term: 9, result: Ok(0), round: 0 };
    r.on_message(at(400), NodeId(2), Message::AppendReply(reply), &mut out);
    assert_eq!((r.state, r.term, r.vote), (State::Follower, 9, None));
}

/// Figure 2: a follower converts to candidate when its election timeout
/// elapses "without receiving AppendEntries RPC from current leader or
/// granting vote to candidate". A vote request it refuses (the candidate's
/// log is behind) moves it to the newer term but must not restart its
/// timer: otherwise a candidate with a stale log that campaigns again and
/// again keeps the one voter it needs, which holds the longer log, from ever
/// campaigning (seen in the simulator: a two-voter configuration without
/// pre-vote stayed leaderless for four rounds in a row, 800 ms).
#[test]
fn a_refused_vote_request_of_a_newer_term_does_not_restart_the_election_timer() {
    // Without CheckQuorum (as in that sweep): no lease holds the vote back.
    let mut n = node_with(3, 3, 2, &[1, 2, 2], config().with(|c| c.check_quorum = false));
    let deadline = n.next_timer().unwrap();
    let mut out = Effects::new();
    let stale = VoteRequest { term: 3, last_index: 2, last_term: 2, pre_vote: false, transfer: false };
    let now = Instant::ZERO + Duration::from_millis(1);
    n.on_message(now, NodeId(1), Message::Vote(stale), &mut out);
    assert_eq!(n.term, 3, "the newer term is adopted");
    let refused = sends(&out).iter().any(|(_, m, _)| matches!(m, Message::VoteReply(r) if !r.granted));
    assert!(refused, "the candidate's log is behind: {:?}", sends(&out));
    assert_eq!(n.next_timer(), Some(deadline), "the election timer runs on");
    // A granted vote does restart it.
    let mut out = Effects::new();
    let fresh = VoteRequest { term: 4, last_index: 3, last_term: 2, pre_vote: false, transfer: false };
    n.on_message(now, NodeId(2), Message::Vote(fresh), &mut out);
    assert_ne!(n.next_timer(), Some(deadline), "granting a vote restarts the timer");
}

/// §5.2 with a single voter: its own vote wins, but only once the term and
/// the vote are durable. Seed 108 of `quorum sim -p raft --churn --nodes 2
/// --profile crash-storm`: a lone voter led term 2 at once, crashed before
/// the term was on disk, came back in term 1, and led term 2 a second time
/// with other entries at the same indexes (`raft: log matching`); a learner
/// sent the first term's entries would have had both under one (index, term).
#[test]
fn section_5_2_a_lone_voter_leads_only_once_its_own_vote_is_durable() {
    let mut r = node(1, 1);
    let mut out = Effects::new();
    let deadline = r.next_timer().unwrap();
    r.on_timer(deadline, &mut out);
    assert_eq!((r.term, r.vote), (1, Some(NodeId(1))));
    assert_eq!(r.state, State::Candidate, "its vote is not on disk yet");
    let tags = persisted_tags(&out);
    assert!(!tags.is_empty(), "the term and vote are written");
    let mut out = Effects::new();
    r.on_persisted(deadline, *tags.last().unwrap(), &mut out);
    assert_eq!(r.state, State::Leader, "durable, its own vote is a majority of one");
}

/// A node that joins with an empty disk replays the log from the start and
/// passes configurations that list an earlier incarnation of its id. Until
/// it has caught up to the commit point the first leader it heard reported,
/// it must not campaign on them. Seed 3192 of `quorum sim -p raft --churn
/// --nodes 2`: a rejoined node whose log ended where its old incarnation
/// was the sole voter elected itself alone during a partition and
/// overwrote committed entries (`raft: leader completeness`).
#[test]
fn a_node_that_joined_empty_does_not_campaign_on_its_earlier_incarnations_configuration() {
    use quorum_core::Membership;
    let init = Init { members: vec![NodeId(1)], seed: 7, ..Init::first_start(NodeId(2), 1, config()) };
    let mut r = Raft::new(init).expect("a node starts");
    let sole_voter = Membership { voters: vec![NodeId(2)], ..Membership::default() };
    let old = Entry { index: 1, stamp: Stamp::new(1, 0), payload: Payload::Membership(sole_voter) };
    let append = |entries: Vec<Entry>, prev: u64| Append {
        term: 1,
        prev_index: prev,
        prev_term: if prev == 0 { 0 } else { 1 },
        entries,
        commit: 3,
        round: 1,
    };
    let mut out = Effects::new();
    r.on_message(at(1), NodeId(1), Message::Append(append(vec![old], 0)), &mut out);
    assert!(r.is_voter(), "its log's configuration lists its id as the sole voter");
    assert!(r.joining(), "but it is behind the commit point the leader reported");
    let mut out = Effects::new();
    r.on_timer(at(1000), &mut out);
    assert_eq!((r.state, r.term), (State::Follower, 1), "it does not campaign on its old incarnation's vote");
    // Past the leader's commit point, a configuration that lists it is its own.
    let mut out = Effects::new();
    r.on_message(at(1001), NodeId(1), Message::Append(append(vec![entry(2, 1), entry(3, 1)], 1)), &mut out);
    assert!(!r.joining());
    let hard = out.writes().iter().filter_map(|b| b.hard_state.clone()).next_back().expect("the hard state is written");
    let hard: HardState = postcard::from_bytes(&hard).unwrap();
    assert!(!hard.joining, "so that a restart need not wait again");
    let mut out = Effects::new();
    r.on_timer(at(3000), &mut out);
    assert_ne!(r.state, State::Follower, "now it campaigns");
}

/// The same joining node, caught up by a snapshot rather than by entries,
/// must write down that it caught up too. Seed 31854 of `quorum sim -p raft
/// --churn --nodes 2 --profile counters --seed-start 30000`: a wiped
/// learner installed a snapshot past the leader's commit point, was promoted,
/// and became the sole voter when the leader removed itself; it then
/// restarted, read "joining" from its hard state and waited for a leader
/// that no longer existed (`convergence`: 400 applied against 555).
#[test]
fn a_node_that_joined_empty_and_caught_up_by_a_snapshot_writes_that_down() {
    use crate::message::SnapshotChunk;
    use quorum_core::{Membership, SnapshotMeta};
    let init = Init { members: vec![NodeId(1)], seed: 7, ..Init::first_start(NodeId(2), 1, config()) };
    let mut r = Raft::new(init).expect("a node starts");
    let heartbeat = Append { term: 1, prev_index: 0, prev_term: 0, entries: Vec::new(), commit: 3, round: 1 };
    let mut out = Effects::new();
    r.on_message(at(1), NodeId(1), Message::Append(heartbeat), &mut out);
    assert!(r.joining(), "behind the commit point the leader reported");
    let sole_voter = Membership { voters: vec![NodeId(2)], ..Membership::default() };
    let chunk = SnapshotChunk {
        term: 1,
        index: 5,
        index_term: 1,
        meta: SnapshotMeta { membership: sole_voter }.encode(),
        offset: 0,
        data: Bytes::from_static(b"state"),
        done: true,
        round: 2,
    };
    let mut out = Effects::new();
    r.on_message(at(2), NodeId(1), Message::Snapshot(chunk), &mut out);
    assert_eq!(r.commit, 5);
    assert!(!r.joining(), "past the commit point the leader reported");
    let hard = out.writes().iter().filter_map(|b| b.hard_state.clone()).next_back().expect("the hard state is written");
    let hard: HardState = postcard::from_bytes(&hard).unwrap();
    assert!(!hard.joining, "so that a restart need not wait for a leader again");
}
