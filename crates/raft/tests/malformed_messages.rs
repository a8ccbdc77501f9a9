//! Issue 12, item 8: a peer cannot crash a node. Messages that decode but
//! that no correct Raft node sends (indices and terms near `u64::MAX`,
//! entries that do not follow `prev_index`, snapshot metadata that does not
//! decode, membership that makes no sense, an answer past the leader's log,
//! a second leader in one term) are dropped, logged and counted
//! (`Raft::malformed_dropped`), never a panic, and the cluster keeps working.
//! A seeded fuzz test then throws many random messages at nodes in every role.

use bytes::Bytes;
use quorum_core::{
    ClientId, Command, Duration, Effects, Entry, Init, InitError, Instant, Membership, NodeId, Payload, Protocol,
    ReadId, Rng, Role, Stamp, Stored,
};
type Cluster = quorum_sim::testkit::Cluster<quorum_raft::Raft>;
use quorum_raft::{
    Append, AppendReply, Message, PlantedBug, Raft, RaftConfig, ReadMode, Reject, SnapshotChunk, SnapshotReply,
    VoteReply, VoteRequest,
};
use std::panic::{catch_unwind, AssertUnwindSafe};

const MAX: u64 = u64::MAX;

fn entry(index: u64, term: u64, payload: Payload) -> Entry {
    Entry { index, stamp: Stamp::new(term, 0), payload }
}

fn cmd(data: &str) -> Payload {
    Payload::Command(Command::new(ClientId(9), 1, data.as_bytes().to_vec()))
}

/// Where a malformed message goes, and from whom.
#[derive(Copy, Clone, Debug)]
enum To {
    /// From the leader to a follower.
    Follower,
    /// From a follower to the leader.
    Leader,
    /// From each follower to the leader (needs both, a quorum, to matter).
    LeaderFromBoth,
}

/// The cases: a name, where it goes, and the message given the leader's term
/// and last index.
#[allow(clippy::type_complexity)]
fn cases() -> Vec<(&'static str, To, Box<dyn Fn(u64, u64) -> Message>)> {
    let append = |term, prev_index, prev_term, entries| {
        Message::Append(Append { term, prev_index, prev_term, entries, commit: 0, round: 1 })
    };
    vec![
        ("append with prev_index u64::MAX", To::Follower, Box::new(move |t, _| append(t, MAX, t, vec![]))),
        (
            "append whose prev_index + 1 overflows",
            To::Follower,
            Box::new(move |t, _| append(t, MAX, t, vec![entry(0, t, cmd("x"))])),
        ),
        (
            "append whose entries do not follow prev_index",
            To::Follower,
            Box::new(move |t, last| append(t, last, t, vec![entry(last + 5, t, cmd("x"))])),
        ),
        (
            "append with an entry of a later term than the leader's",
            To::Follower,
            Box::new(move |t, last| append(t, last, t, vec![entry(last + 1, t + 7, cmd("x"))])),
        ),
        (
            "append with a membership of no voters",
            To::Follower,
            Box::new(move |t, last| {
                append(t, last, t, vec![entry(last + 1, t, Payload::Membership(Membership::default()))])
            }),
        ),
        ("append with term u64::MAX", To::Follower, Box::new(move |_, last| append(MAX, last, 1, vec![]))),
        (
            "vote request with term u64::MAX",
            To::Follower,
            Box::new(move |_, last| {
                Message::Vote(VoteRequest {
                    term: MAX,
                    last_index: last,
                    last_term: 1,
                    pre_vote: false,
                    transfer: true,
                })
            }),
        ),
        (
            "vote request whose last log term is above its term",
            To::Follower,
            Box::new(move |t, last| {
                Message::Vote(VoteRequest {
                    term: t + 1,
                    last_index: last + 10,
                    last_term: t + 50,
                    pre_vote: false,
                    transfer: true,
                })
            }),
        ),
        (
            "snapshot chunk with undecodable metadata",
            To::Follower,
            Box::new(move |t, last| {
                Message::Snapshot(SnapshotChunk {
                    term: t,
                    index: last + 10,
                    index_term: t,
                    meta: Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
                    offset: 0,
                    data: Bytes::from_static(b"state"),
                    done: true,
                    round: 1,
                })
            }),
        ),
        (
            "snapshot chunk at index u64::MAX",
            To::Follower,
            Box::new(move |t, _| {
                Message::Snapshot(SnapshotChunk {
                    term: t,
                    index: MAX,
                    index_term: t,
                    meta: Bytes::new(),
                    offset: 0,
                    data: Bytes::new(),
                    done: true,
                    round: 1,
                })
            }),
        ),
        (
            "append to the leader from a second leader of its term",
            To::Leader,
            Box::new(move |t, _| append(t, 0, 0, vec![])),
        ),
        (
            "append acknowledged past the leader's log",
            To::Leader,
            Box::new(move |t, _| Message::AppendReply(AppendReply { term: t, result: Ok(MAX), round: 1 })),
        ),
        (
            "append acknowledged one past the leader's log",
            To::Leader,
            Box::new(move |t, last| Message::AppendReply(AppendReply { term: t, result: Ok(last + 1), round: 1 })),
        ),
        (
            "rejection at prev_index u64::MAX",
            To::Leader,
            Box::new(move |t, _| {
                let reject = Reject { prev_index: MAX, conflict_term: Some(MAX), conflict_index: MAX };
                Message::AppendReply(AppendReply { term: t, result: Err(reject), round: 1 })
            }),
        ),
        (
            "snapshot installed at u64::MAX",
            To::Leader,
            Box::new(move |t, _| {
                Message::SnapshotReply(SnapshotReply { term: t, index: MAX, next_offset: MAX, done: true, round: 1 })
            }),
        ),
        (
            "acknowledgements of heartbeat round u64::MAX from a quorum",
            To::LeaderFromBoth,
            Box::new(move |t, last| Message::AppendReply(AppendReply { term: t, result: Ok(last), round: MAX })),
        ),
        (
            "vote reply with term u64::MAX",
            To::Leader,
            Box::new(move |_, _| Message::VoteReply(VoteReply { term: MAX, granted: true, pre_vote: true })),
        ),
    ]
}

fn lease_config() -> RaftConfig {
    RaftConfig::default().with(|c| c.read_mode = ReadMode::Lease)
}

/// A settled 3-node cluster with a few committed writes: (cluster, leader, followers).
fn cluster(config: RaftConfig, seed: u64) -> (Cluster, NodeId, Vec<NodeId>) {
    let mut c = Cluster::new(3, config, seed);
    assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
    let leader = c.leader().unwrap();
    for i in 0..3 {
        c.propose(leader, format!("w{i}").into_bytes()).unwrap();
    }
    c.settle();
    c.run_for(Duration::from_millis(100));
    let followers = c.ids().into_iter().filter(|id| *id != leader).collect();
    (c, leader, followers)
}

fn deliver(c: &mut Cluster, from: NodeId, to: NodeId, msg: Message) {
    c.act(to, |r, now, out: &mut Effects<Message>| r.on_message(now, from, msg, out));
}

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// Feeds one malformed message, then checks that the node counted it and
/// that the cluster still elects, commits and reads. Returns what went wrong.
fn run_case(config: RaftConfig, name: &str, to: To, make: &dyn Fn(u64, u64) -> Message) -> Option<String> {
    let (mut c, leader, followers) = cluster(config, 5);
    let term = c.node(leader).unwrap().term();
    let last = c.node(leader).unwrap().log().last_index();
    let msg = make(term, last);
    let targets: Vec<(NodeId, NodeId)> = match to {
        To::Follower => vec![(leader, followers[0])],
        To::Leader => vec![(followers[0], leader)],
        To::LeaderFromBoth => followers.iter().map(|f| (*f, leader)).collect(),
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut before = 0;
        for (from, to) in &targets {
            before += c.node(*to).unwrap().malformed_dropped();
            deliver(&mut c, *from, *to, msg.clone());
        }
        let after: u64 = targets.iter().map(|(_, to)| c.node(*to).unwrap().malformed_dropped()).sum();
        // The cluster still works: a read and a write through whoever leads.
        c.read(leader, 1 as ReadId).ok();
        c.run_for(Duration::from_millis(500));
        let Some(now_leader) = c.leader() else { return Err(format!("{name}: no leader afterwards")) };
        let cmd = c.command(b"after".to_vec());
        let index =
            c.act(now_leader, |r, now, out| r.try_propose(now, cmd, out)).map_err(|e| format!("{name}: {e}"))?;
        c.settle();
        c.run_for(Duration::from_millis(100));
        for id in c.ids() {
            if c.applied_index(id) < index {
                return Err(format!("{name}: n{} did not apply the write at {index}", id.0));
            }
            if c.node(id).unwrap().term() > 1000 {
                return Err(format!("{name}: n{} took term {}", id.0, c.node(id).unwrap().term()));
            }
        }
        if !c.violations().is_empty() {
            return Err(format!("{name}: {:?}", c.violations()));
        }
        if after < before + targets.len() as u64 {
            return Err(format!("{name}: not counted as malformed ({before} -> {after})"));
        }
        Ok(())
    }));
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(p) => Some(format!("{name}: PANIC: {}", panic_text(p))),
    }
}

#[test]
fn malformed_messages_are_dropped_and_counted_and_the_node_keeps_working() {
    let failures: Vec<String> = quorum_sim::quietly(|| {
        cases().iter().filter_map(|(name, to, make)| run_case(lease_config(), name, *to, make.as_ref())).collect()
    })
    .expect("run_case catches panics");
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases().len(), failures.join("\n"));
}

/// The planted twin: a follower that trusts the snapshot metadata it is sent
/// panics on the undecodable-metadata case, and this test sees it.
#[test]
fn the_malformed_message_test_catches_trusted_snapshot_metadata() {
    let config = lease_config().with(|c| c.planted = Some(PlantedBug::TrustSnapshotMeta));
    let cases = cases();
    let (name, to, make) = cases.iter().find(|(n, _, _)| n.contains("undecodable")).unwrap();
    let failure = quorum_sim::quietly(|| run_case(config, name, *to, make.as_ref())).unwrap();
    let failure = failure.expect("the planted bug went unnoticed");
    assert!(failure.contains("PANIC") && failure.contains("metadata"), "{failure}");
}

/// Random values biased towards the edges (0, 1, around the node's own
/// term and index, u64::MAX).
fn value(rng: &mut Rng, near: u64) -> u64 {
    match rng.index(7) {
        0 => 0,
        1 => 1,
        2 => near,
        3 => near.wrapping_add(1),
        4 => near.wrapping_sub(1),
        5 => MAX - rng.index(2) as u64,
        _ => rng.next_u64() >> rng.index(64),
    }
}

fn random_entries(rng: &mut Rng, term: u64, index: u64) -> Vec<Entry> {
    let n = rng.index(4);
    let start = if rng.chance(0.7) { index.wrapping_add(1) } else { value(rng, index) };
    (0..n as u64)
        .map(|i| {
            let payload = match rng.index(4) {
                0 => Payload::Noop,
                1 => Payload::Membership(Membership {
                    voters: (0..rng.index(4)).map(|_| NodeId(rng.index(5) as u64)).collect(),
                    learners: (0..rng.index(2)).map(|_| NodeId(rng.index(5) as u64)).collect(),
                    addresses: (0..rng.index(2))
                        .map(|_| (NodeId(rng.index(5) as u64), "x".repeat(rng.index(300))))
                        .collect(),
                    epoch: rng.index(3) as u64,
                }),
                _ => cmd("fuzz"),
            };
            let t = if rng.chance(0.7) { term } else { value(rng, term) };
            Entry { index: start.wrapping_add(i), stamp: Stamp::new(t, rng.index(2) as u64), payload }
        })
        .collect()
}

fn random_message(rng: &mut Rng, term: u64, index: u64) -> Message {
    let t = if rng.chance(0.6) { term.wrapping_add(rng.index(2) as u64) } else { value(rng, term) };
    let bytes = |rng: &mut Rng| -> Bytes {
        match rng.index(3) {
            0 => Bytes::new(),
            1 => Bytes::from((0..rng.index(12)).map(|_| rng.index(256) as u8).collect::<Vec<u8>>()),
            _ => Bytes::from_static(b"\x01\x01\x01\x00"),
        }
    };
    match rng.index(7) {
        0 => Message::Vote(VoteRequest {
            term: t,
            last_index: value(rng, index),
            last_term: value(rng, term),
            pre_vote: rng.chance(0.5),
            transfer: rng.chance(0.3),
        }),
        1 => Message::VoteReply(VoteReply { term: t, granted: rng.chance(0.5), pre_vote: rng.chance(0.5) }),
        2 => Message::Append(Append {
            term: t,
            prev_index: value(rng, index),
            prev_term: value(rng, term),
            entries: random_entries(rng, t, index),
            commit: value(rng, index),
            round: value(rng, 3),
        }),
        3 => Message::AppendReply(AppendReply {
            term: t,
            result: if rng.chance(0.5) {
                Ok(value(rng, index))
            } else {
                Err(Reject {
                    prev_index: value(rng, index),
                    conflict_term: rng.chance(0.5).then(|| value(rng, term)),
                    conflict_index: value(rng, index),
                })
            },
            round: value(rng, 3),
        }),
        4 => Message::Snapshot(SnapshotChunk {
            term: t,
            index: value(rng, index),
            index_term: value(rng, term),
            meta: bytes(rng),
            offset: if rng.chance(0.6) { 0 } else { value(rng, 4) },
            data: bytes(rng),
            done: rng.chance(0.6),
            round: value(rng, 3),
        }),
        5 => Message::SnapshotReply(SnapshotReply {
            term: t,
            index: value(rng, index),
            next_offset: value(rng, 4),
            done: rng.chance(0.5),
            round: value(rng, 3),
        }),
        _ => Message::TimeoutNow { term: t },
    }
}

/// Nodes in every role: a leader, a follower, a pre-candidate and a
/// candidate (cut off and campaigning), a learner; with ReadIndex and lease reads.
fn nodes_in_every_role(seed: u64) -> Vec<(String, Raft)> {
    let mut nodes = Vec::new();
    for (label, config) in [
        ("prevote+lease", lease_config()),
        (
            "no prevote/checkquorum",
            RaftConfig::default().with(|c| {
                c.pre_vote = false;
                c.check_quorum = false;
            }),
        ),
    ] {
        let (mut c, leader, followers) = cluster(config.clone(), seed);
        c.snapshot(leader);
        nodes.push((format!("{label} leader"), c.node(leader).unwrap().clone()));
        nodes.push((format!("{label} follower"), c.node(followers[0]).unwrap().clone()));
        c.isolate(followers[1]);
        c.run_for(Duration::from_millis(400));
        let campaigner = c.node(followers[1]).unwrap();
        assert_eq!(campaigner.status().role, Role::Candidate, "{label}: a cut-off node campaigns");
        nodes.push((format!("{label} campaigning"), campaigner.clone()));
        // A learner: a fourth node outside the initial voters, added as a learner.
        let mut c = Cluster::with_voters(4, &[1, 2, 3], config, seed);
        assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
        let leader = c.leader().unwrap();
        c.act(leader, |r, now, out: &mut Effects<Message>| r.add_learner(now, NodeId(4), out)).unwrap();
        c.run_for(Duration::from_millis(300));
        nodes.push((format!("{label} learner"), c.node(NodeId(4)).unwrap().clone()));
    }
    nodes
}

#[test]
fn random_messages_never_panic_a_node_in_any_role() {
    const MESSAGES: usize = 3000;
    let mut panics = Vec::new();
    let mut dropped = 0;
    let nodes: Vec<(u64, Vec<(String, Raft)>)> = (0..3).map(|seed| (seed, nodes_in_every_role(seed))).collect();
    let mut fuzz = || {
        for (seed, nodes) in &nodes {
            let seed = *seed;
            for (role, node) in nodes.iter().cloned() {
                let mut rng = Rng::new(seed * 7919 + role.len() as u64);
                let mut node = node;
                let mut now = Instant::ZERO + Duration::from_secs(5);
                for i in 0..MESSAGES {
                    let (term, index) = (node.term(), node.log().last_index());
                    let msg = random_message(&mut rng, term, index);
                    let from = NodeId(rng.index(5) as u64);
                    now += Duration::from_micros(rng.index(20_000) as u64);
                    let shown = format!("{msg:?}");
                    let step = catch_unwind(AssertUnwindSafe(|| {
                        let mut out = Effects::new();
                        node.on_message(now, from, msg, &mut out);
                        if i % 10 == 0 {
                            node.on_timer(now, &mut out);
                            node.read(now, i as ReadId, &mut out).ok();
                        }
                        if i % 7 == 0 {
                            node.on_persisted(now, u64::MAX, &mut out);
                        }
                    }));
                    if step.is_err() {
                        panics.push(format!("seed {seed}, {role}, message {i} from {from}: {shown}"));
                        break; // the node's state is undefined after a panic
                    }
                }
                dropped += node.malformed_dropped();
            }
        }
    };
    quorum_sim::quietly(&mut fuzz).expect("panics are caught per message");
    eprintln!("{dropped} random messages dropped as malformed");
    assert!(panics.is_empty(), "{} nodes panicked:\n{}", panics.len(), panics.join("\n"));
    assert!(dropped > 0);
}

fn init(stored: Stored) -> Init<RaftConfig> {
    Init { stored, ..Init::first_start(NodeId(1), 3, RaftConfig::default()) }
}

#[test]
fn corrupt_stored_state_is_an_init_error_not_a_panic() {
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let cases: Vec<(&str, Stored)> = vec![
        ("hard state", Stored { hard_state: Some(garbage.clone()), ..Stored::default() }),
        ("hard state", Stored { hard_state: Some(Bytes::new()), ..Stored::default() }),
        (
            "snapshot metadata",
            Stored {
                snapshot: Some(quorum_core::Snapshot {
                    index: 5,
                    stamp: Stamp::new(2, 0),
                    meta: garbage.clone(),
                    data: Bytes::new(),
                }),
                ..Stored::default()
            },
        ),
        ("log", Stored { entries: vec![entry(1, 1, Payload::Noop), entry(3, 1, Payload::Noop)], ..Stored::default() }),
        ("log", Stored { entries: vec![entry(1, 1, Payload::Membership(Membership::default()))], ..Stored::default() }),
    ];
    for (what, stored) in cases {
        let result = catch_unwind(AssertUnwindSafe(|| Raft::new(init(stored.clone()))));
        match result {
            Ok(Err(InitError::CorruptState { what: w, detail })) => {
                assert_eq!(w, what, "{detail}");
                eprintln!("{what}: {detail}");
            }
            Ok(Err(e)) => panic!("{what}: unexpected error {e}"),
            Ok(Ok(_)) => panic!("{what}: corrupt stored state accepted: {stored:?}"),
            Err(_) => panic!("{what}: Raft::new panicked on corrupt stored state"),
        }
    }
}

/// Issue 13: the generic hostile sweep (tiny caps, small frames, snapshots
/// every ten entries, three messages in a hundred corrupted in flight) finds the same
/// planted twin without being aimed at it: a forged snapshot's metadata
/// panics the follower that trusts it. The correct code drops what it cannot
/// trust and never panics.
fn hostile_sweep(planted: Option<PlantedBug>) -> quorum_sim::Summary {
    // `quorum sim --profile hostile`'s world: five nodes, every fault.
    let base =
        quorum_sim::SimConfig::new(5, 0).with_faults(quorum_sim::Faults::All).with_small_frames().with_corruption(0.03);
    let config = RaftConfig::default().with(|c| {
        c.max_entries_per_message = 2;
        c.max_bytes_per_message = 64;
        c.max_inflight = 1;
        c.snapshot_chunk_bytes = 64;
        c.planted = planted;
    });
    quorum_sim::testkit::sweep::<quorum_raft::Raft>(&base, &config, 0..300)
}

#[test]
fn the_hostile_sweep_never_panics_a_node() {
    hostile_sweep(None).assert_clean();
}

#[test]
fn the_hostile_sweep_catches_trusted_snapshot_metadata() {
    let summary = hostile_sweep(Some(PlantedBug::TrustSnapshotMeta));
    summary.assert_caught_by("planted TrustSnapshotMeta under corruption", &["panic"]);
    let details: Vec<&str> =
        summary.failures.iter().flat_map(|f| f.violations.iter().map(|v| v.detail.as_str())).collect();
    assert!(details.iter().all(|d| d.contains("snapshot metadata")), "{details:?}");
}
