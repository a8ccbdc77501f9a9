//! # quorum-raft: Raft as a sans-IO state machine
//!
//! Raft (Ongaro and Ousterhout, "In Search of an Understandable Consensus
//! Algorithm", 2014, and Ongaro's thesis, 2014) keeps a replicated log. Time
//! is divided into *terms*; each term has at most one leader, elected by a
//! majority of voters. The leader appends client commands to its log and
//! replicates them with AppendEntries; an entry is *committed* once stored on
//! a majority, and committed entries are applied in index order on every node.
//!
//! - **Election**: a follower that hears nothing
//!   for a randomized timeout (150–300 ms) first asks for *pre-votes* (would
//!   you vote for me?), then raises its term and asks for votes. A voter grants
//!   one vote per term, only to a candidate whose log is at least as
//!   up-to-date as its own (§5.4.1), and only after its term and vote are
//!   durable. With CheckQuorum, a leader that stops hearing from a majority
//!   steps down, and followers that hear from a leader ignore vote requests.
//! - **Link-down hint**: when the driver reports that the connection to the
//!   leader broke (`on_link_down`: a killed process's sockets close at once),
//!   a follower forgets the leader and campaigns after a short randomized
//!   delay (a tenth to a third of the minimum timeout) instead of a whole
//!   timeout. PreVote keeps a spurious reset from deposing a live leader: the
//!   followers that still hear it refuse. Taken only with PreVote on; with
//!   lease reads it waits out the lease on votes first.
//! - **Replication**: AppendEntries carries the index and term of the entry
//!   before the new ones; a follower refuses if it does not hold that entry,
//!   answering with the conflicting term and its first index, so the leader
//!   skips a whole term per round trip. The leader pipelines up to
//!   `max_inflight` batches per follower and commits the highest index held by
//!   a majority *if that entry is from its own term* (§5.4.2); each new leader
//!   appends a no-op so earlier entries commit with it.
//! - **Reads** use ReadIndex (or an optional clock-based lease, [`ReadMode`]):
//!   the leader confirms with a heartbeat round that it still leads, then
//!   answers `ReadReady { index }`; no log write.
//! - **Snapshots** replace a log prefix; a lagging follower receives one in chunks.
//! - **Membership** changes one voter at a time ([`Raft::propose_membership`],
//!   [`Raft::add_learner`], [`Raft::promote`], [`Raft::remove_node`]);
//!   learners catch up first; a leader may remove itself.
//! - **Leadership transfer** ([`Raft::transfer_leadership`]) catches the
//!   target up, then tells it to campaign at once (TimeoutNow).
//!
//! Source map: `election.rs` (terms, votes, PreVote, CheckQuorum),
//! `replication.rs` (AppendEntries, commit rule), `progress.rs` (per-follower
//! windows), `read.rs`, `snapshot.rs`, `membership.rs` (changes and transfer),
//! `node.rs` (state, durable writes, role switches) and `invariants.rs`.
//! Tests drive it through `quorum_sim::testkit` (`Cluster`, an in-memory
//! cluster, and `Net`, a hand-driven network) and the simulator.
//!
//! ## Why it is safe
//!
//! *One leader per term*: a leader needs votes from a majority, two majorities
//! share a node, and a node votes once per term (its vote is on disk before
//! the vote leaves). *Log matching*: a leader creates at most one entry per
//! index in its term and never changes it, and a follower accepts entries only
//! after its log matches the leader's just before them, so by induction two
//! logs with the same (index, term) agree on everything up to there.
//! *Leader completeness*: an entry is committed only once a majority stores
//! it and the leader counts only entries of its own term; any later leader
//! won votes from a majority, one of which holds the entry, and that voter
//! only votes for logs at least as up-to-date as its own, so the new leader
//! has the entry. *State machine safety* follows: every node applies the same
//! entry at each committed index. A single-server membership change keeps
//! old and new majorities overlapping, so these arguments survive it.
//!
//! The [`invariants`] module checks these properties on every simulated step.
//!
//! ## Durability
//!
//! Term, vote and log are written through `Effect::Persist` batches. Votes
//! and all follower answers leave with `send_durable`, after the writes
//! they depend on. A leader sends entries while its own write is in flight
//! but counts itself towards a majority only after `on_persisted`.
//!
//! ## Flow control
//!
//! When the leader's uncommitted entries exceed `max_uncommitted_bytes`, or a
//! leadership transfer is in progress, [`Raft::try_propose`] refuses with a
//! [`ProposeError`]. Through the `Protocol` trait an overloaded leader answers
//! `quorum_core::ProposeError::Busy` ("retry here, later"), and a transferring
//! one `NotLeader` naming the target.
//!
//! ## Choices and limitations
//!
//! - The commit index is not persisted: after a restart a node hands out
//!   `Effect::Commit` again from its snapshot index + 1, as soon as it learns
//!   (from a leader, or by winning) that entries are committed; the driver
//!   skips indexes it already applied.
//! - Membership changes are single-server only (no joint consensus). A
//!   configuration is in force as soon as it is in the log. The leader stops
//!   replicating to a removed node at once, so the node may never learn it was
//!   removed; it then only sends pre-votes, which every node hearing from the
//!   leader refuses. A node whose own removal it holds uncommitted may still
//!   campaign (see `Raft::can_campaign`), which avoids a deadlock.
//! - Log compaction folds exactly up to the driver's snapshot index; a slower
//!   follower then gets the snapshot. The leader keeps only its newest
//!   snapshot in memory and sends it stop-and-wait, one chunk per round trip.
//! - Lease reads need CheckQuorum and a bound on clock *rate* drift
//!   ([`ReadMode::Lease`]); after a TimeoutNow the leader serves none. A
//!   follower honours every lease its answers renew, also after a link-down hint.
//! - Reads waiting for a heartbeat round are bounded (`max_pending_reads`,
//!   then `ReadError::Busy`).
//! - A message no correct peer sends is dropped, logged and counted
//!   ([`Raft::malformed_dropped`], `validate.rs`), never a panic.
//! - Flow control counts only command bytes of the leader's own term.
#![deny(missing_docs)]

mod config;
mod election;
pub mod invariants;
mod membership;
mod message;
mod node;
mod progress;
mod read;
mod replication;
mod snapshot;
mod validate;

#[cfg(test)]
mod hint_tests;
#[cfg(test)]
mod paper_tests;

/// The effects one step of a handler appends to (its outbox).
pub(crate) type Out = Effects<Message>;

pub use config::{PlantedBug, RaftConfig, ReadMode};
pub use message::{Append, AppendReply, Message, Reject, SnapshotChunk, SnapshotReply, VoteReply, VoteRequest};
pub use node::Raft;
pub use progress::{PeerProgress, ReplicationMode};
pub use quorum_core::ChangeError;

use node::{HardState, LeaderState, State};
use quorum_core::{
    Command, Effects, Init, InitError, Instant, Invariant, Log, Membership, NodeId, NotLeader, Payload, Protocol,
    ReadError, ReadId, Rng, Role, Status,
};
use quorum_core::{Configs, SnapshotMeta};
use std::fmt;

/// Why a proposal was refused.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ProposeError {
    /// Not the leader; try the hinted node.
    NotLeader(Option<NodeId>),
    /// Too many uncommitted bytes: retry on this node shortly.
    Overloaded,
    /// Leadership is moving to this node.
    Transferring(NodeId),
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader(hint) => fmt::Display::fmt(&NotLeader { leader_hint: *hint }, f),
            ProposeError::Overloaded => write!(f, "the leader has too many uncommitted entries: retry shortly"),
            ProposeError::Transferring(to) => write!(f, "leadership is moving to {to}: send the request there"),
        }
    }
}

impl std::error::Error for ProposeError {}

impl Raft {
    /// Proposes a command; returns the index it will have if committed.
    pub fn try_propose(&mut self, now: Instant, cmd: Command, out: &mut Effects<Message>) -> Result<u64, ProposeError> {
        if self.state != State::Leader {
            return Err(ProposeError::NotLeader(self.leader));
        }
        if let Some((target, _)) = self.lead.transfer {
            return Err(ProposeError::Transferring(target));
        }
        let bytes = cmd.data.len() as u64 + 24;
        if self.lead.uncommitted_bytes > 0 && self.lead.uncommitted_bytes + bytes > self.config.max_uncommitted_bytes {
            return Err(ProposeError::Overloaded);
        }
        self.lead.uncommitted_bytes += bytes;
        let index = self.append_new(Payload::Command(cmd));
        self.broadcast_append(now, out);
        self.finish(now, out);
        Ok(index)
    }

    /// Each follower's replication progress (leader only; empty otherwise).
    pub fn progress(&self) -> Vec<PeerProgress> {
        if self.state != State::Leader {
            return Vec::new();
        }
        let voters = &self.configs.current().voters;
        self.lead
            .progress
            .iter()
            .map(|(id, p)| PeerProgress {
                id: *id,
                match_index: p.match_index,
                next_index: p.next_index,
                mode: p.mode,
                voter: voters.contains(id),
            })
            .collect()
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The log (entries above the snapshot).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The last index handed to the driver as committed.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    fn recover(init: &Init<RaftConfig>) -> Result<(HardState, Log, Configs, Option<quorum_core::Snapshot>), InitError> {
        let stored = &init.stored;
        let hard: HardState = stored.decode_hard_state()?;
        let initial = Membership { voters: init.members.clone(), ..Membership::default() };
        let (offset, stamp, base) = match &stored.snapshot {
            Some(s) => {
                let meta: SnapshotMeta =
                    SnapshotMeta::decode(&s.meta).map_err(|e| InitError::corrupt("snapshot metadata", e))?;
                (s.index, s.stamp, meta.membership)
            }
            None => (0, quorum_core::Stamp::ZERO, initial),
        };
        let log =
            Log::recover(offset, stamp, stored.entries.iter().cloned()).map_err(|e| InitError::corrupt("log", e))?;
        let mut configs = Configs::new(offset, base);
        for e in log.iter() {
            if let Payload::Membership(m) = &e.payload {
                if !m.is_sane() {
                    let detail = format!("entry {} holds a membership that makes no sense: {m:?}", e.index);
                    return Err(InitError::corrupt("log", detail));
                }
                configs.push(e.index, m.clone());
            }
        }
        Ok((hard, log, configs, stored.snapshot.clone()))
    }
}

impl Protocol for Raft {
    type Message = Message;
    type Config = RaftConfig;

    const NAME: &'static str = "raft";

    fn seed_snapshot(members: &[NodeId], index: u64, data: bytes::Bytes) -> Option<quorum_core::Snapshot> {
        let meta = SnapshotMeta { membership: Membership { voters: members.to_vec(), ..Membership::default() } };
        Some(quorum_core::Snapshot { meta: meta.encode(), ..quorum_core::Snapshot::seed(index, data) })
    }

    fn new(init: Init<RaftConfig>) -> Result<Self, InitError> {
        init.config.validate();
        let (hard, log, configs, snapshot) = Self::recover(&init)?;
        let joining = hard.joining || init.joins_empty();
        let offset = log.offset();
        let durable_index = log.last_index();
        let mut raft = Raft {
            id: init.id,
            config: init.config.clone(),
            rng: Rng::new(init.seed ^ init.id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ init.now.as_nanos()),
            incarnation: init.now,
            term: hard.term,
            vote: hard.vote,
            log,
            snapshot,
            state: State::Follower,
            leader: None,
            configs,
            commit: offset,
            applied: offset,
            votes: Default::default(),
            rejections: Default::default(),
            election_deadline: init.now,
            // As if a leader was just heard: a restarted node must not help
            // depose a leader whose lease it may have vouched for (read.rs).
            heard_leader_at: Some(init.now),
            suspected: None,
            malformed: 0,
            heard_commit: None,
            incoming: None,
            failed_reads: Vec::new(),
            pending: Default::default(),
            writes: Default::default(),
            durable_index,
            lead: LeaderState::default(),
            join_floor: (!joining).then_some(0),
            joining_on_disk: hard.joining,
        };
        raft.reset_election_timer(init.now);
        Ok(raft)
    }

    fn on_message(&mut self, now: Instant, from: NodeId, msg: Message, out: &mut Effects<Message>) {
        let _span = tracing::trace_span!("raft", node = self.id.0, term = self.term).entered();
        let trust_meta = self.config.planted(PlantedBug::TrustSnapshotMeta);
        if let Err(why) = validate::check_shape(&msg, trust_meta) {
            self.drop_malformed(from, &why);
            return;
        }
        if self.step_term(now, from, &msg, out) {
            match msg {
                Message::Vote(m) => self.on_vote_request(now, from, m, out),
                Message::VoteReply(m) => self.on_vote_reply(now, from, m, out),
                Message::Append(m) => self.on_append(now, from, m, out),
                Message::AppendReply(m) => self.on_append_reply(now, from, m, out),
                Message::Snapshot(m) => self.on_snapshot_chunk(now, from, m, out),
                Message::SnapshotReply(m) => self.on_snapshot_reply(now, from, m, out),
                Message::TimeoutNow { .. } => self.on_timeout_now(now, out),
            }
        }
        self.finish(now, out);
    }

    fn on_timer(&mut self, now: Instant, out: &mut Effects<Message>) {
        let _span = tracing::trace_span!("raft", node = self.id.0, term = self.term).entered();
        if self.state == State::Leader {
            if self.lead.transfer.is_some_and(|(_, deadline)| now >= deadline) {
                tracing::info!(node = self.id.0, "leadership transfer timed out");
                self.lead.transfer = None;
            }
            if self.config.check_quorum && now >= self.lead.check_quorum_deadline {
                self.check_quorum(now);
            }
            if self.state == State::Leader && now >= self.lead.heartbeat_deadline {
                self.on_heartbeat_timer(now, out);
            }
        } else if now >= self.election_deadline {
            self.on_election_timeout(now, out);
        }
        self.finish(now, out);
    }

    fn next_timer(&self) -> Option<Instant> {
        if self.state == State::Leader {
            let mut t = self.lead.heartbeat_deadline;
            if self.config.check_quorum {
                t = t.min(self.lead.check_quorum_deadline);
            }
            if let Some((_, deadline)) = self.lead.transfer {
                t = t.min(deadline);
            }
            Some(t)
        } else {
            Some(self.election_deadline)
        }
    }

    fn propose(
        &mut self,
        now: Instant,
        cmd: Command,
        out: &mut Effects<Message>,
    ) -> Result<(), quorum_core::ProposeError> {
        // An overloaded leader says busy ("retry here, later"); a transferring
        // one names its successor.
        match self.try_propose(now, cmd, out) {
            Ok(_) => Ok(()),
            Err(ProposeError::NotLeader(leader_hint)) => Err(NotLeader { leader_hint }.into()),
            Err(ProposeError::Overloaded) => {
                Err(quorum_core::ProposeError::Busy { limit: self.config.max_uncommitted_bytes })
            }
            Err(ProposeError::Transferring(to)) => Err(NotLeader { leader_hint: Some(to) }.into()),
        }
    }

    fn read(&mut self, now: Instant, id: ReadId, out: &mut Effects<Message>) -> Result<(), ReadError> {
        let result = self.start_read(now, id, out);
        self.finish(now, out);
        result
    }

    fn on_persisted(&mut self, now: Instant, tag: u64, out: &mut Effects<Message>) {
        if let Some(upto) = self.writes.persisted(tag).last() {
            self.durable_index = upto;
        }
        if self.state == State::Candidate {
            self.count_votes(now, out); // our own vote may count now
        }
        self.finish(now, out);
    }

    /// Raft needs no FIFO links, but a broken link to the leader is a hint
    /// that it died: see `on_leader_link_down` (election.rs).
    fn on_link_down(&mut self, now: Instant, peer: NodeId, out: &mut Effects<Message>) {
        let _span = tracing::trace_span!("raft", node = self.id.0, term = self.term).entered();
        self.on_leader_link_down(now, peer);
        self.finish(now, out);
    }

    fn transfer_to(&mut self, now: Instant, target: NodeId, out: &mut Effects<Message>) -> Result<(), String> {
        self.transfer_leadership(now, target, out).map_err(|e| e.to_string())
    }

    fn change_membership(
        &mut self,
        now: Instant,
        change: quorum_core::MembershipChange,
        out: &mut Effects<Message>,
    ) -> Result<u64, String> {
        self.change(now, &change, out).map_err(|e| e.to_string())
    }

    fn membership(&self) -> Option<&Membership> {
        Some(self.configs.current())
    }

    fn membership_committed(&self) -> bool {
        Raft::membership_committed(self)
    }

    /// A leader about to stop transfers leadership to the voter whose log
    /// matches its own furthest.
    fn hand_off(&mut self, now: Instant, out: &mut Effects<Message>) -> bool {
        let Some(successor) = self.best_successor() else { return false };
        self.transfer_leadership(now, successor, out).is_ok()
    }

    fn on_snapshot(&mut self, now: Instant, index: u64, data: bytes::Bytes, out: &mut Effects<Message>) {
        self.compact(index, data);
        self.finish(now, out);
    }

    /// A granted vote (§5.2: a vote must survive a crash, or the voter may
    /// vote twice in one term) and an append's success (the leader counts the
    /// entries as stored there).
    fn vouches_for_disk(msg: &Message) -> bool {
        match msg {
            Message::VoteReply(reply) => reply.granted && !reply.pre_vote,
            Message::AppendReply(reply) => reply.result.is_ok(),
            _ => false,
        }
    }

    fn status(&self) -> Status {
        let role = match self.state {
            State::Leader => Role::Leader,
            State::Candidate | State::PreCandidate => Role::Candidate,
            State::Follower if self.configs.current().learners.contains(&self.id) => Role::Learner,
            State::Follower => Role::Follower,
        };
        Status {
            id: self.id,
            role,
            term: self.term,
            leader: self.leader,
            commit_index: self.commit,
            leader_commit: match self.state {
                State::Leader => Some(self.commit),
                _ => self.heard_commit.filter(|(term, _)| *term == self.term).map(|(_, c)| c),
            },
            last_index: self.log.last_index(),
        }
    }

    fn invariants() -> Vec<Box<dyn Invariant<Self>>> {
        invariants::all()
    }
}
