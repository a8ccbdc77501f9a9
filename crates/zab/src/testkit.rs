//! Helpers for unit tests that drive one Zab node by hand (etcd's
//! `raft_paper_test` style): craft inputs, inspect the effects.

use crate::message::{Message, Notification, PeerState, Vote};
use crate::state::HardState;
use crate::{Zab, ZabConfig};
use quorum_core::{Effects, Entry, Init, Instant, NodeId, Protocol, Stamp, Stored, WriteBatch};

pub(crate) fn at(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

pub(crate) fn history(stamps: &[(u64, u64)]) -> Vec<Entry> {
    stamps.iter().enumerate().map(|(i, (e, c))| Entry::noop(i as u64 + 1, Stamp::new(*e, *c))).collect()
}

pub(crate) fn stored(accepted: (u64, u64), current_epoch: u64, stamps: &[(u64, u64)]) -> Stored {
    let hard = HardState { accepted_epoch: accepted.0, accepted_leader: accepted.1, current_epoch };
    Stored { hard_state: Some(hard.encode()), entries: history(stamps), snapshot: None }
}

/// Node `id` of a cluster of `n`, started at time 0 from `stored`.
pub(crate) fn node_from(id: u64, n: u64, stored: Stored) -> Zab {
    boot(id, n, stored, ZabConfig::default(), id, at(0))
}

/// Node `id` of a cluster of `n`, (re)started at `now` with `seed` and `config`.
pub(crate) fn boot(id: u64, n: u64, stored: Stored, config: ZabConfig, seed: u64, now: Instant) -> Zab {
    Zab::new(Init { id: NodeId(id), members: (1..=n).map(NodeId).collect(), config, stored, seed, now })
        .expect("a node starts")
}

/// The session of a follower's current attempt to follow its leader.
pub(crate) fn session_of(z: &Zab) -> u64 {
    match &z.state {
        crate::state::State::Following(f) => f.session,
        _ => panic!("not following"),
    }
}

pub(crate) fn node(id: u64, n: u64) -> Zab {
    node_from(id, n, Stored::default())
}

/// Messages sent, with whether they wait for durability.
pub(crate) fn sent(out: &Effects<Message>) -> Vec<(NodeId, Message, bool)> {
    out.sent()
}

pub(crate) fn writes(out: &Effects<Message>) -> Vec<WriteBatch> {
    out.writes().into_iter().cloned().collect()
}

pub(crate) fn commits(out: &Effects<Message>) -> Vec<u64> {
    out.commits()
}

pub(crate) fn vote_note(round: u64, state: PeerState, leader: u64) -> Message {
    Message::Notification(Notification {
        round,
        state,
        vote: Vote { leader: NodeId(leader), zxid: Stamp::ZERO, epoch: 0 },
    })
}

/// Reports every write issued so far as durable.
pub(crate) fn persist_all(z: &mut Zab, now: Instant, out: &mut Effects<Message>) {
    if z.writes.in_flight() {
        z.on_persisted(now, z.writes.last_issued(), out);
    }
}

/// Node 2 of 3 from `stored`, following node 1, having acked epoch `epoch`
/// (in sync, waiting for the leader's history).
pub(crate) fn follower_in_sync(stored: Stored, epoch: u64) -> Zab {
    let mut z = node_from(2, 3, stored);
    let mut out = Effects::new();
    z.on_message(at(1), NodeId(3), vote_note(1, PeerState::Following, 1), &mut out);
    z.on_message(at(1), NodeId(1), vote_note(1, PeerState::Leading, 1), &mut out);
    assert_eq!(z.peer_state(), PeerState::Following);
    z.on_message(at(2), NodeId(1), Message::NewEpoch { session: session_of(&z), epoch }, &mut out);
    persist_all(&mut z, at(2), &mut out);
    z
}

/// Node 2 of 3, following node 1 (the running leader of epoch 1), synced
/// with an empty history and up to date.
pub(crate) fn follower_in_broadcast() -> Zab {
    let mut z = follower_in_sync(Stored::default(), 1);
    let mut out = Effects::new();
    let diff = Message::Diff { epoch: 1, prev_index: 0, prev_zxid: Stamp::ZERO, entries: vec![] };
    z.on_message(at(3), NodeId(1), diff, &mut out);
    let nl = Message::NewLeader { epoch: 1, last_index: 0, last_zxid: Stamp::ZERO };
    z.on_message(at(3), NodeId(1), nl, &mut out);
    z.on_message(at(3), NodeId(1), Message::UpToDate { epoch: 1, commit: 0 }, &mut out);
    persist_all(&mut z, at(3), &mut out);
    z
}

/// Node 2's vote arrives and the election timer fires: `z` leads (in discovery).
pub(crate) fn win_election(z: &mut Zab, out: &mut Effects<Message>) {
    z.on_message(at(1), NodeId(2), vote_note(1, PeerState::Looking, 1), out);
    let finalize = z.election.finalize_at.expect("node 2's vote makes a quorum");
    z.on_timer(finalize, out);
}

/// `from` tells the leader it follows, in `session`, having accepted `accepted_epoch`.
pub(crate) fn follower_info(
    z: &mut Zab,
    now: Instant,
    from: u64,
    session: u64,
    accepted_epoch: u64,
    out: &mut Effects<Message>,
) {
    let info = Message::FollowerInfo { session, accepted_epoch, accepted_leader: 0 };
    z.on_message(now, NodeId(from), info, out);
}

/// Node 1 of 3, established leader of epoch 1 with node 2 active (node 3 silent).
pub(crate) fn established_leader() -> Zab {
    let mut z = node(1, 3);
    let mut out = Effects::new();
    z.on_message(at(1), NodeId(2), vote_note(1, PeerState::Looking, 1), &mut out);
    z.on_timer(at(100), &mut out);
    assert_eq!(z.peer_state(), PeerState::Leading);
    follower_info(&mut z, at(100), 2, 1, 0, &mut out);
    persist_all(&mut z, at(100), &mut out);
    let summary = crate::HistorySummary::of(&quorum_core::Log::default());
    z.on_message(at(101), NodeId(2), Message::AckEpoch { session: 1, epoch: 1, current_epoch: 0, summary }, &mut out);
    persist_all(&mut z, at(101), &mut out);
    z.on_message(at(102), NodeId(2), Message::AckNewLeader { session: 1, epoch: 1, index: 0 }, &mut out);
    assert_eq!(z.established_epoch(), Some(1));
    z
}
