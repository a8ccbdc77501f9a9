//! Issue 12 item 8: messages from peers are input, not trusted state. A
//! message that decodes but breaks the protocol's expectations (wrong epoch,
//! a zxid gap, a PROPOSAL out of order, an ACK of something never proposed, a
//! sync that does not connect) is dropped, logged, counted, and the session
//! with that peer starts over; the node never panics. Corrupt stored state is
//! an `InitError`, not a panic.

use crate::message::{HistorySummary, Message, Notification, PeerState, Vote};
use crate::state::{HardState, State};
use crate::testkit::*;
use crate::Zab;
use quorum_core::{
    Bytes, ClientId, Command, Effects, Entry, Init, InitError, Log, NodeId, Payload, Protocol, Rng, Snapshot, Stamp,
    Stored,
};

fn entries(first: u64, stamps: &[(u64, u64)]) -> Vec<Entry> {
    stamps.iter().enumerate().map(|(i, (e, c))| Entry::noop(first + i as u64, Stamp::new(*e, *c))).collect()
}

/// Delivers `msgs` from node 1 to `z`; returns what it sent back.
fn feed(z: &mut Zab, msgs: Vec<Message>) -> Effects<Message> {
    let mut out = Effects::new();
    for m in msgs {
        z.on_message(at(5), NodeId(1), m, &mut out);
    }
    out
}

/// The follower dropped the leader's stream and starts over, having counted it.
fn assert_follower_reset(z: &Zab, history_len: u64) {
    assert_eq!(z.peer_state(), PeerState::Looking, "the follower starts over");
    assert_eq!(z.dropped_messages(), 1);
    assert_eq!(z.history().last_index(), history_len, "nothing of it was applied");
}

#[test]
fn a_diff_that_does_not_continue_the_history_is_dropped() {
    let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1)]), 2);
    let diff = Message::Diff { epoch: 2, prev_index: 5, prev_zxid: Stamp::new(1, 5), entries: entries(6, &[(1, 6)]) };
    feed(&mut z, vec![diff]);
    assert_follower_reset(&z, 1);
}

#[test]
fn a_trunc_to_a_point_we_do_not_hold_is_dropped() {
    let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1), (1, 2)]), 2);
    let trunc = Message::Trunc { epoch: 2, index: 1, zxid: Stamp::new(1, 9), entries: vec![] };
    feed(&mut z, vec![trunc]);
    assert_follower_reset(&z, 2);
}

#[test]
fn sync_entries_with_a_gap_or_going_back_in_zxid_are_dropped() {
    let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1)]), 2);
    let diff = Message::Diff { epoch: 2, prev_index: 1, prev_zxid: Stamp::new(1, 1), entries: entries(2, &[(1, 2)]) };
    let gap = Message::SyncEntries { epoch: 2, entries: entries(4, &[(1, 4)]) };
    feed(&mut z, vec![diff.clone(), gap]);
    assert_follower_reset(&z, 1);
    let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1)]), 2);
    let back = Message::SyncEntries { epoch: 2, entries: entries(3, &[(1, 1)]) };
    feed(&mut z, vec![diff, back]);
    assert_follower_reset(&z, 1);
}

#[test]
fn a_snapchunk_beyond_the_announced_size_is_dropped() {
    let mut z = follower_in_sync(stored((1, 1), 1, &[]), 2);
    let snapshot = Snapshot { index: 3, stamp: Stamp::new(1, 3), meta: Bytes::new(), data: Bytes::from_static(b"ab") };
    let snap = Message::Snap { epoch: 2, snapshot, size: 3, entries: vec![] };
    let chunk = Message::SnapChunk { epoch: 2, data: Bytes::from_static(b"cd") };
    feed(&mut z, vec![snap, chunk]);
    assert_follower_reset(&z, 0);
}

#[test]
fn a_newleader_that_does_not_match_the_sync_is_dropped() {
    let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1)]), 2);
    let diff = Message::Diff { epoch: 2, prev_index: 1, prev_zxid: Stamp::new(1, 1), entries: entries(2, &[(1, 2)]) };
    let nl = Message::NewLeader { epoch: 2, last_index: 7, last_zxid: Stamp::new(1, 7) };
    let out = feed(&mut z, vec![diff, nl]);
    assert_follower_reset(&z, 1);
    assert!(writes(&out).is_empty(), "nothing was written");
    assert_eq!(z.current_epoch(), 1);
}

#[test]
fn proposals_out_of_order_or_of_another_epoch_are_dropped() {
    let cases = [
        ("another epoch", entries(1, &[(2, 1)])),
        ("zxid going back", entries(1, &[(1, 2), (1, 1)])),
        ("index gap inside the batch", vec![entries(1, &[(1, 1)])[0].clone(), entries(3, &[(1, 2)])[0].clone()]),
    ];
    for (what, batch) in cases {
        let mut z = follower_in_broadcast();
        feed(&mut z, vec![Message::Proposal { epoch: 1, entries: batch }]);
        assert_eq!(z.peer_state(), PeerState::Looking, "{what}");
        assert_eq!((z.dropped_messages(), z.history().last_index()), (1, 0), "{what}");
    }
}

/// The leader dropped the learner's session and told it to rejoin.
fn assert_learner_reset(z: &Zab, out: &Effects<Message>, peer: u64) {
    assert_eq!(z.dropped_messages(), 1);
    assert!(sent(out).iter().any(|(to, m, _)| *to == NodeId(peer) && matches!(m, Message::Reset { .. })));
    let State::Leading(l) = &z.state else { panic!("still leading") };
    assert!(!l.learners.contains_key(&NodeId(peer)));
}

#[test]
fn an_ack_of_something_never_proposed_resets_the_learner_and_commits_nothing() {
    let mut z = established_leader();
    let mut out = Effects::new();
    z.propose(at(200), Command::new(ClientId(1), 1, Bytes::from_static(b"w")), &mut out).unwrap();
    persist_all(&mut z, at(200), &mut out);
    let mut out = Effects::new();
    z.on_message(at(201), NodeId(2), Message::Ack { epoch: 1, index: 99 }, &mut out);
    assert_learner_reset(&z, &out, 2);
    assert!(commits(&out).is_empty());
    assert_eq!(z.established_epoch(), Some(1), "a bad follower does not unseat the leader by itself");
}

#[test]
fn a_ping_answer_for_a_round_never_sent_confirms_no_read() {
    let mut z = established_leader();
    let mut out = Effects::new();
    z.read(at(200), 7, &mut out).unwrap();
    let mut out = Effects::new();
    z.on_message(at(201), NodeId(2), Message::PingAck { epoch: 1, round: 1_000 }, &mut out);
    assert_learner_reset(&z, &out, 2);
    assert!(!out.as_slice().iter().any(|e| matches!(e, quorum_core::Effect::ReadReady { .. })));
}

#[test]
fn an_ack_of_newleader_naming_another_index_resets_the_learner() {
    let mut z = established_leader();
    let mut out = Effects::new();
    follower_info(&mut z, at(201), 3, 5, 0, &mut out);
    let summary = HistorySummary::of(&Log::default());
    z.on_message(at(202), NodeId(3), Message::AckEpoch { session: 5, epoch: 1, current_epoch: 0, summary }, &mut out);
    let mut out = Effects::new();
    z.on_message(at(203), NodeId(3), Message::AckNewLeader { session: 5, epoch: 1, index: 40 }, &mut out);
    assert_learner_reset(&z, &out, 3);
}

#[test]
fn an_ackepoch_with_an_impossible_history_resets_the_learner() {
    let bad = [
        // A snapshot point beyond everything the leader holds, with no run.
        HistorySummary { base_index: 50, base_zxid: Stamp::new(1, 50), segments: vec![] },
        // A history that shares not even the empty prefix with ours.
        HistorySummary { base_index: 0, base_zxid: Stamp::new(3, 3), segments: vec![] },
        // Runs going backwards.
        HistorySummary {
            base_index: 0,
            base_zxid: Stamp::ZERO,
            segments: vec![(5, Stamp::new(1, 5)), (2, Stamp::new(2, 1))],
        },
    ];
    for summary in bad {
        let mut z = established_leader();
        let mut out = Effects::new();
        follower_info(&mut z, at(201), 3, 5, 0, &mut out);
        let mut out = Effects::new();
        let ack = Message::AckEpoch { session: 5, epoch: 1, current_epoch: 0, summary: summary.clone() };
        z.on_message(at(202), NodeId(3), ack, &mut out);
        let State::Leading(l) = &z.state else { panic!("{summary:?}: still leading") };
        // Either dropped as garbage, or (a snapshot we cannot check against) answered with our snapshot.
        if z.dropped_messages() == 1 {
            assert!(!l.learners.contains_key(&NodeId(3)), "{summary:?}");
        } else {
            panic!("{summary:?} was accepted: {:?}", sent(&out));
        }
    }
}

#[test]
fn epochs_at_the_end_of_the_epoch_space_are_refused() {
    let mut z = node(1, 3);
    let mut out = Effects::new();
    win_election(&mut z, &mut out);
    follower_info(&mut z, at(20), 2, 1, u64::MAX, &mut out);
    assert_eq!(z.dropped_messages(), 1);
    assert_eq!(z.accepted_epoch(), 0, "no epoch was proposed");
    // A follower that promised epoch 2 is offered the last epoch there is.
    let mut f = follower_in_sync(stored((1, 1), 1, &[]), 2);
    let mut out = Effects::new();
    f.become_looking(at(3), &mut out);
    f.on_message(at(4), NodeId(3), vote_note(9, PeerState::Following, 1), &mut out);
    f.on_message(at(4), NodeId(1), vote_note(9, PeerState::Leading, 1), &mut out);
    f.on_message(at(5), NodeId(1), Message::NewEpoch { session: session_of(&f), epoch: u64::MAX }, &mut out);
    assert_eq!((f.dropped_messages(), f.accepted_epoch()), (1, 2));
}

#[test]
fn a_peer_naming_a_leader_outside_the_ensemble_is_not_followed() {
    // Node 1's history may be behind the configuration that added node 99,
    // so it asks 99 itself; without 99's own word that it leads, it stays put.
    let mut z = node(1, 3);
    let mut out = Effects::new();
    let vote = Vote { leader: NodeId(99), zxid: Stamp::new(9, 9), epoch: 9 };
    for (from, state) in [(2, PeerState::Leading), (3, PeerState::Following), (2, PeerState::Established)] {
        let note = Notification { round: 1, state, vote };
        z.on_message(at(1), NodeId(from), Message::Notification(note), &mut out);
    }
    assert_eq!(z.peer_state(), PeerState::Looking);
    assert_eq!(z.election.vote.leader, NodeId(1));
    assert!(sent(&out).iter().any(|(to, m, _)| *to == NodeId(99) && matches!(m, Message::Notification(_))));
}

/// A random, decodable message with small fields, so that many of them land
/// close to what the receiver expects.
fn random_message(rng: &mut Rng) -> Message {
    let mut small = |hi: u64| rng.range(0, hi + 1);
    let (e, i) = (small(3), small(6));
    let stamp = Stamp::new(small(3), small(6));
    let _ = &mut small;
    let random_entries = |rng: &mut Rng| -> Vec<Entry> {
        let n = rng.range(0, 4);
        let first = rng.range(0, 7);
        (0..n)
            .map(|k| Entry {
                index: if rng.chance(0.8) { first + k } else { rng.range(0, 9) },
                stamp: Stamp::new(rng.range(0, 4), rng.range(0, 8)),
                payload: Payload::Noop,
            })
            .collect()
    };
    let summary = |rng: &mut Rng| HistorySummary {
        base_index: rng.range(0, 3),
        base_zxid: Stamp::new(rng.range(0, 2), rng.range(0, 3)),
        segments: (0..rng.range(0, 3))
            .map(|_| (rng.range(0, 7), Stamp::new(rng.range(0, 4), rng.range(0, 7))))
            .collect(),
    };
    match rng.range(0, 22) {
        0 => Message::Notification(Notification {
            round: rng.range(0, 4),
            state: [PeerState::Looking, PeerState::Following, PeerState::Leading][rng.index(3)],
            vote: Vote { leader: NodeId(rng.range(0, 5)), zxid: stamp, epoch: e },
        }),
        1 => Message::FollowerInfo { session: rng.range(0, 3), accepted_epoch: e, accepted_leader: rng.range(0, 4) },
        2 => Message::NewEpoch { session: rng.range(0, 3), epoch: e },
        3 => Message::AckEpoch {
            session: rng.range(0, 3),
            epoch: e,
            current_epoch: rng.range(0, 4),
            summary: summary(rng),
        },
        4 => Message::Diff { epoch: e, prev_index: i, prev_zxid: stamp, entries: random_entries(rng) },
        5 => Message::Trunc { epoch: e, index: i, zxid: stamp, entries: random_entries(rng) },
        6 => {
            let data = Bytes::from(vec![7u8; rng.range(0, 4) as usize]);
            let size = rng.range(0, 6);
            let snapshot = Snapshot { index: i, stamp, meta: Bytes::new(), data };
            Message::Snap { epoch: e, snapshot, size, entries: random_entries(rng) }
        }
        7 => Message::SnapChunk { epoch: e, data: Bytes::from(vec![1u8; rng.range(0, 4) as usize]) },
        8 => Message::SyncEntries { epoch: e, entries: random_entries(rng) },
        9 => Message::SyncAck { session: rng.range(0, 3), epoch: e, received: rng.range(0, 5) },
        10 => Message::NewLeader { epoch: e, last_index: i, last_zxid: stamp },
        11 => Message::AckNewLeader { session: rng.range(0, 3), epoch: e, index: i },
        12 => Message::UpToDate { epoch: e, commit: i },
        13 | 14 => Message::Proposal { epoch: e, entries: random_entries(rng) },
        15 => Message::Ack { epoch: e, index: i },
        16 => Message::Commit { epoch: e, index: i },
        17 => Message::Ping { epoch: e, round: rng.range(0, 4), commit: i },
        18 => Message::PingAck { epoch: e, round: rng.range(0, 4) },
        19 => Message::Reset { epoch: e },
        20 => Message::SyncRequest { epoch: e, read: rng.range(0, 4) },
        _ => Message::SyncReply { epoch: e, read: rng.range(0, 4), index: i },
    }
}

/// Feeds seeded random messages to nodes in every phase; returns the panics
/// (`(start, seed, step, message)`) and how many messages were dropped.
fn random_messages(config: crate::ZabConfig, seeds: u64) -> (Vec<(String, u64, u64, String)>, u64) {
    type Start = (&'static str, fn() -> Zab);
    let starts: Vec<Start> = vec![
        ("looking", || node_from(2, 3, stored((1, 1), 1, &[(1, 1), (1, 2)]))),
        ("follower in sync", || follower_in_sync(stored((1, 1), 1, &[(1, 1), (1, 2)]), 2)),
        ("follower in broadcast", follower_in_broadcast),
        ("established leader", || {
            let mut z = established_leader();
            let mut out = Effects::new();
            z.propose(at(200), Command::new(ClientId(1), 1, Bytes::from_static(b"w")), &mut out).unwrap();
            z
        }),
    ];
    let (mut panics, mut dropped) = (Vec::new(), 0);
    for (name, start) in starts {
        for seed in 0..seeds {
            let mut rng = Rng::new(seed);
            let mut z = start();
            z.config = config.clone();
            let mut out = Effects::new();
            for step in 0..30u64 {
                let from = NodeId(rng.range(1, 5));
                let msg = random_message(&mut rng);
                let now = at(10 + step);
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    z.on_message(now, from, msg.clone(), &mut out);
                    if rng.chance(0.3) {
                        persist_all(&mut z, now, &mut out);
                    }
                    z.on_timer(now, &mut out);
                }));
                if let Err(payload) = result {
                    let text = payload.downcast_ref::<String>().cloned().unwrap_or_default();
                    panics.push((name.to_string(), seed, step, text));
                    break;
                }
            }
            dropped += z.dropped_messages();
        }
    }
    (panics, dropped)
}

#[test]
fn random_decodable_messages_in_every_phase_never_panic() {
    let (panics, dropped) = random_messages(crate::ZabConfig::default(), 200);
    assert!(panics.is_empty(), "{panics:#?}");
    assert!(dropped > 100, "the random messages reach the checks: {dropped} dropped");
}

#[test]
fn planted_trust_in_proposals_is_caught_by_the_random_messages() {
    let config = crate::ZabConfig::default().with(|c| c.planted = Some(crate::PlantedBug::TrustProposals));
    let (panics, _) = random_messages(config, 200);
    let first = panics.first().expect("the planted bug went unnoticed");
    eprintln!("trusting proposals: {} of 800 runs panicked, first {first:?}", panics.len());
    // The log's own contiguity assertion is what fires.
    assert!(panics.iter().all(|p| p.3.contains("log append must be contiguous")), "{panics:#?}");
}

fn init(stored: Stored) -> Result<Zab, InitError> {
    Zab::new(Init { stored, now: at(0), ..Init::first_start(NodeId(1), 3, crate::ZabConfig::default()) })
}

#[test]
fn corrupt_stored_state_is_an_init_error_not_a_panic() {
    let corrupt = |s: Stored| match init(s) {
        Err(InitError::CorruptState { what, detail }) => format!("{what}: {detail}"),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("corrupt state accepted"),
    };
    // Hard state that does not decode.
    let garbage = Stored { hard_state: Some(Bytes::from_static(&[0xff, 0xff, 0xff])), ..Stored::default() };
    assert!(corrupt(garbage).starts_with("hard state"));
    // acceptedEpoch below currentEpoch.
    assert!(corrupt(stored((1, 1), 2, &[])).contains("below currentEpoch"));
    // A history with a gap.
    let mut gap = stored((1, 1), 1, &[(1, 1), (1, 2)]);
    gap.entries[1].index = 5;
    assert!(corrupt(gap).starts_with("history"));
    // A history whose zxids go back.
    assert!(corrupt(stored((1, 1), 1, &[(1, 2), (1, 1)])).starts_with("history"));
    // Proposals of an epoch this node never accepted.
    assert!(corrupt(stored((1, 1), 1, &[(1, 1), (4, 1)])).starts_with("history"));
    // Entries below a snapshot whose zxid is above theirs.
    let mut snap = stored((2, 1), 2, &[(1, 1), (1, 2), (1, 3)]);
    snap.snapshot = Some(Snapshot { index: 2, stamp: Stamp::new(2, 9), meta: Bytes::new(), data: Bytes::new() });
    assert!(corrupt(snap).starts_with("history"));
    // And a sound state still starts.
    let hard = HardState { accepted_epoch: 2, accepted_leader: 1, current_epoch: 2 };
    let sound = Stored { hard_state: Some(hard.encode()), ..stored((2, 1), 2, &[(1, 1), (2, 1)]) };
    assert!(init(sound).is_ok());
}
