//! # quorum-multipaxos: Multi-Paxos with a stable leader
//!
//! Basic Paxos pays two round trips per command. Multi-Paxos ("Paxos Made
//! Simple" §3; "Paxos Made Moderately Complex") runs Phase 1 once, for every
//! slot at once, and then only Phase 2 while the leader lasts.
//!
//! **Leader election (Phase 1, `election.rs`).** A node that hears nothing from
//! a leader for a randomized election timeout picks a ballot `(round, node)`
//! above every round it has seen and sends `Prepare(b, from)`, where `from` is
//! its first uncommitted slot. An acceptor promises `b` for *every* slot and
//! reports what it knows from `from` on: values it knows are chosen, and the
//! `(ballot, value)` it accepted in each other slot. With promises from a
//! majority the candidate leads: for each uncommitted slot up to the highest
//! reported it proposes the value of the highest-ballot proposal reported
//! (P2c), or a no-op if none was, so holes left by the old leader are filled.
//!
//! **Link-down hint (`hint.rs`).** A follower told that its connection to the
//! leader broke (`on_link_down`: a killed process's sockets close at once)
//! forgets the leader and, after a short randomized delay, asks its peers
//! whether they lost it too (`Suspect`, Raft's PreVote for Paxos: it writes
//! and promises nothing). With a majority agreeing it starts Phase 1 at once;
//! a node that leads or still hears the leader says no, so a spurious reset
//! cannot depose a live leader. A frozen leader is still found by the timeout.
//!
//! **Steady state (Phase 2, `leader.rs`, `replica.rs`).** The leader assigns a
//! client command the next slot and sends `Accept(b, entries, commit)`: up to a
//! window of slots are in flight at once (pipelining), many slots ride in one
//! message (batching), and the leader's commit point rides along. Acceptors
//! accept unless they promised a higher ballot and answer once the accept is
//! durable; a majority of answers makes a slot chosen, and the leader commits
//! in slot order: one round trip. Heartbeats carry the commit point when there
//! is nothing to send and keep followers from starting elections; a leader
//! refused with a higher ballot steps down, and so does one that no majority
//! answered within an election timeout (CheckQuorum). At most `max_queued`
//! commands wait for a slot; more are answered `Busy`. Non-leaders answer `propose` with
//! `NotLeader { leader_hint }`. Reads go through the log, or, with
//! `read_lease` on, are served by a leader holding a lease (`read.rs`).
//!
//! **Replicas that fall behind (`catchup.rs`, `snapshot.rs`).** A follower
//! commits a slot the leader reports committed when it accepted that slot in
//! the leader's own ballot (the leader proposes one value per slot per ballot);
//! otherwise it asks for the chosen values. A node whose driver snapshotted its
//! state machine drops the log below the snapshot; a replica asking for slots
//! below it receives the snapshot, streamed in bounded pieces it pulls one at
//! a time (`SnapshotChunk`, `SnapshotPull`), and then the rest.
//!
//! **Why it is safe.** Every slot is a Basic Paxos instance, and the acceptor is
//! Basic Paxos's ([`quorum_paxos::Acceptor`]): a promise for all slots is a
//! promise for each, so the Synod argument holds slot by slot. Promises and
//! accepts are durable before any answer leaves; a candidate's own promise is
//! durable before its Prepares leave, so no ballot is reused after a crash. A
//! leader that learns of a decision in a higher ballot steps down, so the commit
//! point it reports only covers slots it proposed, or learned, at or below its
//! own ballot — which is what lets followers trust their own accepted value.
//! The simulator checks [`quorum_paxos::OneValuePerSlot`] on the acceptors' votes.
//!
//! **Membership changes (`membership.rs`).** A configuration is a value in
//! the log, in force once its slot commits; the leader proposes nothing past
//! it until then, Phase 1 follows the chain of configurations its promises
//! report, and a node that joins with an empty disk stays silent until it
//! has caught up.
//!
//! **Storage.** Hard state: the promised ballot, the commit point and whether
//! the node is still joining. Entries:
//! each slot's accepted `(ballot, value)` (overwritten with the chosen value
//! once committed). Snapshots: `WriteBatch::snapshot`, which drops the entries
//! it covers. A restart resumes committing after the snapshot.
//!
//! ```
//! use quorum_core::{ClientId, Command, Duration, NodeId, Protocol};
//! use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig};
//! use quorum_sim::{Sim, SimConfig};
//!
//! let mut cfg = SimConfig::new(3, 1);
//! cfg.clients.count = 0;
//! let mut sim = Sim::<MultiPaxos>::new(cfg, MultiPaxosConfig::default());
//! assert!(sim.run_until(Duration::from_secs(1), |s| s.leader().is_some()));
//! let leader = sim.leader().unwrap();
//! let follower = NodeId(leader.0 % 3 + 1);
//! sim.run_for(Duration::from_millis(50)); // a heartbeat tells the follower who leads
//! let cmd = Command::new(ClientId(1), 1, &b"x"[..]);
//! assert_eq!(sim.propose(follower, cmd.clone()).unwrap_err().leader_hint(), Some(leader));
//! sim.propose(leader, cmd).unwrap();
//! assert!(sim.run_until(Duration::from_secs(1), |s| (1..=3).all(|n| s.applied_index(NodeId(n)) == 1)));
//! ```
#![deny(missing_docs)]

mod catchup;
mod config;
mod election;
mod hint;
#[cfg(test)]
mod hint_tests;
mod invariants;
mod leader;
mod membership;
mod message;
mod read;
mod replica;
#[cfg(test)]
mod safety_tests;
mod snapshot;
#[cfg(test)]
mod test_helpers;
#[cfg(test)]
mod tests;

pub use config::{MultiPaxosConfig, PlantedBug, MAX_PLAUSIBLE_SLOT, MAX_SLOTS_ABOVE_COMMIT};
pub use invariants::{CheckQuorum, VotesMatchDecisions};
pub use message::{Message, SnapshotPiece};

use election::{Candidate, PromiseKnown, PromisePage};
use hint::Suspicion;
use leader::Leader;
use quorum_core::{
    Command, Configs, Duration, Effects, Init, InitError, Instant, Invariant, Membership, MembershipChange, NodeId,
    NotLeader, Payload, ProposeError, Protocol, ReadError, Rng, Role, Snapshot, SnapshotMeta, Status, WriteBatch,
};
use quorum_paxos::outbox::{acceptor_write, Outbox};
use quorum_paxos::{Acceptor, Ballot, Learner, OneValuePerSlot, Vote};
use serde::{Deserialize, Serialize};
use tracing::warn;

/// What Multi-Paxos keeps in the hard state.
#[derive(Clone, Debug, Hash, Default, PartialEq, Eq, Serialize, Deserialize)]
struct HardState {
    /// The ballot promised for every slot.
    promised: Ballot,
    /// Every slot up to here is committed and its stored entry holds the chosen value.
    committed: u64,
    /// The node joined a running cluster and has not yet caught up to where
    /// the cluster was when a leader first spoke to it (`membership.rs`).
    joining: bool,
}

/// What a node is doing.
#[derive(Clone, Debug, Hash)]
enum State {
    Follower,
    Candidate(Candidate),
    Leader(Box<Leader>),
}

/// One Multi-Paxos node.
#[derive(Clone, Debug, Hash)]
pub struct MultiPaxos {
    id: NodeId,
    /// The configurations committed here; the newest is in force (`membership.rs`).
    configs: Configs,
    config: MultiPaxosConfig,
    acceptor: Acceptor,
    learner: Learner,
    outbox: Outbox<Message>,
    rng: Rng,
    now: Instant,
    state: State,
    /// The leader this node follows (itself when leading) and its ballot.
    leader: Option<NodeId>,
    leader_ballot: Ballot,
    /// The highest ballot round seen anywhere.
    max_round: u64,
    /// A follower or candidate starts a new Phase 1 at this time.
    election_deadline: Instant,
    last_catch_up: Option<Instant>,
    /// When this node last heard from the leader it follows (or booted).
    last_leader_contact: Instant,
    /// The last heartbeat this node acknowledged for a lease: the ballot and
    /// when. The ack extends that leader's lease, so until an election timeout
    /// after it no other candidate may be promised (`read.rs`).
    lease_ack: Option<(Ballot, Instant)>,
    /// When we last promised another node's ballot: it may be taking over.
    last_promise_to_other: Option<Instant>,
    /// The link to the leader broke: asking whether it died (`hint.rs`).
    suspicion: Option<Suspicion>,
    /// The latest snapshot (own or installed), served to lagging replicas.
    snapshot: Option<Snapshot>,
    snapshot_to_write: Option<Snapshot>,
    /// A snapshot received this step, to hand to the driver.
    install: Option<Snapshot>,
    /// A peer's snapshot being received piece by piece (`catchup.rs`).
    incoming: Option<catchup::Incoming>,
    persisted_commit: u64,
    /// The highest commit point a leader announced, and in which ballot.
    heard_commit: Option<(Ballot, u64)>,
    /// Peer messages dropped because they broke the protocol's expectations.
    dropped_messages: u64,
    /// For a node that joined with an empty disk (not among the members it
    /// started with), until it has caught up: the commit point the first
    /// leader it heard reported, which it must reach before it takes part;
    /// `None` until a leader speaks. Zero for any other node. Stored as
    /// `HardState::joining`, so a restart keeps it waiting.
    join_floor: Option<u64>,
}

impl MultiPaxos {
    /// This node's acceptor (for checkers and tests).
    pub fn acceptor(&self) -> &Acceptor {
        &self.acceptor
    }

    /// This node's learner (for checkers and tests).
    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    /// The ballot this node leads with, if it is the leader.
    pub fn leading_ballot(&self) -> Option<Ballot> {
        match &self.state {
            State::Leader(leader) => Some(leader.ballot),
            _ => None,
        }
    }

    /// The latest snapshot this node holds.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Messages from peers dropped because they broke the protocol's
    /// expectations (a second value for a chosen slot, an absurd slot number,
    /// two values in one ballot): each is logged with a warning and counted.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped_messages
    }

    /// Counts and logs a peer message (or part of one) dropped as malformed.
    pub(crate) fn drop_message(&mut self, from: NodeId, why: &str) {
        self.dropped_messages += 1;
        warn!(node = self.id.0, %from, why, "dropped a malformed message");
    }

    /// The planted `AcceptOverwritesChosen`: Phase 2b without its guards.
    #[cfg(feature = "planted-bugs")]
    pub(crate) fn planted_accept_over_chosen(&mut self, slot: u64, ballot: Ballot, value: Payload) -> bool {
        self.acceptor.accept_over_anything(slot, ballot, value).is_ok()
    }

    #[cfg(not(feature = "planted-bugs"))]
    pub(crate) fn planted_accept_over_chosen(&mut self, _: u64, _: Ballot, _: Payload) -> bool {
        unreachable!("no bug is planted without the planted-bugs feature")
    }

    /// Test hook: plants a durable vote in this node's acceptor journal.
    #[doc(hidden)]
    pub fn plant_vote(&mut self, vote: Vote) {
        self.acceptor.plant_vote(vote);
    }

    /// The other members of the configuration in force, voters and learners.
    fn peers(&self) -> Vec<NodeId> {
        self.members().filter(|&m| m != self.id).collect()
    }

    /// Every member of the configuration in force, voters and learners.
    fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        let config = self.configs.current();
        config.voters.iter().chain(&config.learners).copied()
    }

    fn broadcast(&mut self, msg: Message, durable: bool) {
        for to in self.members().collect::<Vec<_>>() {
            if durable {
                self.outbox.send_durable(to, msg.clone());
            } else {
                self.outbox.send(to, msg.clone());
            }
        }
    }

    /// Runs one input to completion: local deliveries, one write, the sends, the commits.
    fn step(&mut self, now: Instant, out: &mut Effects<Message>, input: impl FnOnce(&mut Self)) {
        assert!(now >= self.now, "time went backwards");
        self.now = now;
        let span = tracing::debug_span!("multipaxos", node = self.id.0, ballot = ?self.leader_ballot);
        let _entered = span.enter();
        quorum_paxos::outbox::run_step(self, out, input);
    }

    fn handle(&mut self, from: NodeId, msg: Message) {
        if let Some(why) = msg.implausible() {
            self.drop_message(from, why);
            return;
        }
        match msg {
            Message::Prepare { ballot, from: first } => self.on_prepare(from, ballot, first),
            Message::Promise { ballot, first, last, chosen, accepted, snapshot_index, committed } => {
                let known = PromiseKnown { snapshot_index, committed };
                self.on_promise(from, ballot, PromisePage { first, last, chosen, accepted }, known)
            }
            Message::Accept { ballot, entries, commit } => self.on_accept(from, ballot, entries, commit),
            Message::Accepted { ballot, slots } => self.on_accepted(from, ballot, slots),
            Message::Nack { ballot, promised } => self.on_nack(ballot, promised),
            Message::Heartbeat { ballot, commit, sent_at } => self.on_heartbeat(from, ballot, commit, sent_at),
            Message::HeartbeatAck { ballot, sent_at, committed } => {
                self.on_heartbeat_ack(from, ballot, sent_at, committed)
            }
            Message::TakeOver { ballot } => self.on_take_over(from, ballot),
            Message::CatchUp { from: first } => self.on_catch_up(from, first),
            Message::Decided { chosen, more } => self.on_decided(from, chosen, more),
            Message::SnapshotChunk(piece) => self.on_snapshot_chunk(from, piece),
            Message::SnapshotPull { index, offset } => self.on_snapshot_pull(from, index, offset),
            Message::Suspect { ballot } => self.on_suspect(from, ballot),
            Message::SuspectReply { ballot, agree } => self.on_suspect_reply(from, ballot, agree),
        }
    }

    fn saw(&mut self, ballot: Ballot) {
        self.max_round = self.max_round.max(ballot.round);
    }

    /// Learner: `value` is chosen for `slot` in `ballot`.
    fn decide(&mut self, slot: u64, ballot: Ballot, value: Payload) {
        self.saw(ballot);
        if slot <= self.learner.committed() {
            return;
        }
        // P2b: a value chosen in a ballot at or below ours is the value we
        // proposed there. Another value was chosen in a ballot above ours,
        // whatever ballot the report names (a stamp can be older than the
        // ballot that chose the value: one written before issue 12's fix).
        let overruled = match &self.state {
            State::Leader(leader) => {
                leader.proposals.get(&slot).is_some_and(|p| p.value != value)
                    || self.acceptor.accepted(slot).is_some_and(|a| a.ballot == leader.ballot && a.value != value)
            }
            _ => false,
        } && !self.config.planted(PlantedBug::LearnKeepsOlderStamp);
        // Both keep the highest ballot the value is known chosen in, also
        // when the slot was known already (a restart recovers it from the stamp).
        self.learner.learn(slot, ballot, value.clone());
        self.acceptor.learn(slot, ballot, &value);
        // A decision in a higher ballot means a newer leader exists: our commit
        // point could otherwise cover a slot where followers hold our older value.
        if self.own_ballot().is_some_and(|own| ballot > own) {
            self.step_down(ballot.owner());
        } else if overruled {
            warn!(node = self.id.0, slot, ?ballot, "a value other than ours was chosen: a higher ballot exists");
            self.step_down(None);
        }
        if let State::Leader(leader) = &mut self.state {
            leader.proposals.remove(&slot);
        }
    }

    /// Learner: a peer reports `c` chosen. A report that contradicts what this
    /// node knows chosen is dropped (and counted): it is the peer's word
    /// against ours, not a fact about our own state. Returns false if dropped.
    fn decide_reported(&mut self, from: NodeId, c: quorum_paxos::Chosen) -> bool {
        if let Some(known) = self.learner.conflict(c.slot, &c.value) {
            warn!(node = self.id.0, slot = c.slot, ?known, reported = ?c.value, "a peer reports another value chosen");
            self.drop_message(from, "another value reported chosen for a slot known chosen");
            return false;
        }
        self.decide(c.slot, c.ballot, c.value);
        true
    }

    /// The ballot this node is leading or campaigning with.
    fn own_ballot(&self) -> Option<Ballot> {
        match &self.state {
            State::Follower => None,
            State::Candidate(c) => Some(c.ballot),
            State::Leader(l) => Some(l.ballot),
        }
    }

    fn random_election_deadline(&mut self) -> Instant {
        let timeout = self.config.election_timeout.as_nanos();
        self.now + Duration::from_nanos(self.rng.range(timeout, 2 * timeout))
    }
}

impl Protocol for MultiPaxos {
    type Message = Message;
    type Config = MultiPaxosConfig;
    const NAME: &'static str = "multipaxos";

    fn seed_snapshot(members: &[NodeId], index: u64, data: bytes::Bytes) -> Option<Snapshot> {
        let meta = SnapshotMeta { membership: Membership { voters: members.to_vec(), ..Membership::default() } };
        Some(Snapshot { meta: meta.encode(), ..Snapshot::seed(index, data) })
    }

    /// A node that is not among `init.members` starts as one joining a
    /// running cluster: silent until it has caught up to the configuration
    /// that adds it (`membership.rs`).
    fn new(init: Init<MultiPaxosConfig>) -> Result<Self, InitError> {
        let hard: HardState = init.stored.decode_hard_state()?;
        let joining = hard.joining || init.joins_empty();
        let base = init.stored.snapshot.as_ref().map_or(0, |s| s.index);
        let committed = hard.committed.max(base);
        let mut learner = Learner::starting_after(base);
        let (mut chosen, open): (Vec<_>, Vec<_>) =
            init.stored.entries.iter().cloned().partition(|e| e.index <= committed);
        chosen.sort_by_key(|e| e.index);
        let founding = Membership { voters: init.members.clone(), ..Membership::default() };
        let base_config = match init.stored.snapshot.as_ref().filter(|s| !s.meta.is_empty()) {
            Some(s) => {
                SnapshotMeta::decode(&s.meta).map_err(|e| InitError::corrupt("snapshot metadata", e))?.membership
            }
            None => founding,
        };
        let mut configs = Configs::new(base, base_config);
        for e in chosen.iter().filter(|e| e.index > base) {
            learner.learn(e.index, Ballot::from_stamp(e.stamp), e.payload.clone());
            if let Payload::Membership(m) = &e.payload {
                if !m.is_sane() {
                    let detail = format!("slot {} holds a membership that makes no sense: {m:?}", e.index);
                    return Err(InitError::corrupt("log", detail));
                }
                if m.follows(configs.current()) {
                    configs.push(e.index, m.clone());
                }
            }
        }
        #[allow(unused_mut)]
        let mut acceptor = Acceptor::recover(init.incarnation(), hard.promised, &[], &open);
        #[cfg(feature = "planted-bugs")]
        if init.config.planted == Some(PlantedBug::LearnKeepsOlderStamp) {
            acceptor.plant_keep_older_stamp();
        }
        let max_round = open.iter().map(|e| e.stamp.major).chain([hard.promised.round]).max().unwrap_or(0);
        let mut rng = Rng::new(init.seed);
        let timeout = init.config.election_timeout.as_nanos();
        let election_deadline = init.now + Duration::from_nanos(rng.range(timeout, 2 * timeout));
        Ok(MultiPaxos {
            id: init.id,
            configs,
            config: init.config,
            acceptor,
            learner,
            outbox: Outbox::new(init.id),
            rng,
            now: init.now,
            state: State::Follower,
            leader: None,
            leader_ballot: Ballot::ZERO,
            max_round,
            election_deadline,
            last_catch_up: None,
            // A restarted node may have heard from a leader just before it crashed.
            last_leader_contact: init.now,
            lease_ack: None,
            last_promise_to_other: None,
            suspicion: None,
            snapshot: init.stored.snapshot,
            snapshot_to_write: None,
            install: None,
            incoming: None,
            persisted_commit: hard.committed,
            heard_commit: None,
            dropped_messages: 0,
            join_floor: (!joining).then_some(0),
        })
    }

    fn on_message(&mut self, now: Instant, from: NodeId, msg: Message, out: &mut Effects<Message>) {
        self.step(now, out, |node| node.handle(from, msg));
    }

    fn on_timer(&mut self, now: Instant, out: &mut Effects<Message>) {
        self.step(now, out, |node| match node.state {
            State::Leader(_) => node.leader_tick(),
            // Learners and nodes outside the configuration never campaign.
            State::Follower if !node.is_voter() => node.stay_out(),
            // A follower asks before it campaigns (see hint.rs); a candidate
            // whose Phase 1 stalled has asked already and tries again.
            State::Follower if node.now >= node.election_deadline => node.suspect_after_timeout(),
            State::Candidate(_) if node.now >= node.election_deadline => node.start_election(),
            State::Follower | State::Candidate(_) => node.suspicion_tick(),
        });
    }

    fn next_timer(&self) -> Option<Instant> {
        if self.learner.has_ready() {
            return Some(self.now);
        }
        match &self.state {
            State::Leader(leader) => Some(leader.heartbeat_due),
            State::Follower | State::Candidate(_) => {
                Some(self.suspicion_due().map_or(self.election_deadline, |at| at.min(self.election_deadline)))
            }
        }
    }

    fn propose(&mut self, now: Instant, cmd: Command, out: &mut Effects<Message>) -> Result<(), ProposeError> {
        if !matches!(self.state, State::Leader(_)) {
            let leader_hint = self.leader.filter(|&l| l != self.id);
            return Err(NotLeader { leader_hint }.into());
        }
        let mut result = Ok(());
        self.step(now, out, |node| result = node.enqueue(Payload::Command(cmd)));
        result
    }

    fn read(&mut self, now: Instant, id: quorum_core::ReadId, out: &mut Effects<Message>) -> Result<(), ReadError> {
        self.lease_read(now, id, out)
    }

    fn on_persisted(&mut self, now: Instant, tag: u64, out: &mut Effects<Message>) {
        self.step(now, out, |node| {
            node.acceptor.persisted(tag);
            node.outbox.persisted(tag);
        });
    }

    /// Multi-Paxos needs no FIFO links, but a broken link to the leader is a
    /// hint that it died (`hint.rs`).
    fn on_link_down(&mut self, now: Instant, peer: NodeId, out: &mut Effects<Message>) {
        self.step(now, out, |node| node.on_leader_link_down(peer));
    }

    fn on_snapshot(&mut self, now: Instant, index: u64, data: quorum_core::Bytes, out: &mut Effects<Message>) {
        self.step(now, out, |node| node.take_snapshot(index, data));
    }

    fn transfer_to(&mut self, now: Instant, target: NodeId, out: &mut Effects<Message>) -> Result<(), String> {
        let mut result = Ok(());
        self.step(now, out, |node| result = node.transfer(target).map_err(|e| e.to_string()));
        result
    }

    fn change_membership(
        &mut self,
        now: Instant,
        change: MembershipChange,
        out: &mut Effects<Message>,
    ) -> Result<u64, String> {
        let mut result = Ok(0);
        self.step(now, out, |node| result = node.change(&change).map_err(|e| e.to_string()));
        result
    }

    fn membership(&self) -> Option<&Membership> {
        Some(self.configs.current())
    }

    fn membership_committed(&self) -> bool {
        MultiPaxos::membership_committed(self)
    }

    /// A leader about to stop hands leadership to the voter it heard last.
    fn hand_off(&mut self, now: Instant, out: &mut Effects<Message>) -> bool {
        let mut handed = false;
        self.step(now, out, |node| handed = node.hand_off_to_successor());
        handed
    }

    /// Phase 1b and Phase 2b: a promise and a vote must survive a crash.
    fn vouches_for_disk(msg: &Message) -> bool {
        matches!(msg, Message::Promise { .. } | Message::Accepted { .. })
    }

    fn status(&self) -> Status {
        let role = match self.state {
            State::Follower if !self.is_voter() => Role::Learner,
            State::Follower => Role::Follower,
            State::Candidate(_) => Role::Candidate,
            State::Leader(_) => Role::Leader,
        };
        let term = self.own_ballot().map_or(self.leader_ballot.round, |b| b.round);
        Status {
            id: self.id,
            role,
            term,
            leader: self.leader,
            commit_index: self.learner.committed(),
            leader_commit: match self.state {
                State::Leader(_) => Some(self.learner.committed()),
                _ => self.heard_commit.filter(|(b, _)| *b == self.leader_ballot).map(|(_, c)| c),
            },
            last_index: self.acceptor.last_slot().max(self.learner.highest_chosen()),
        }
    }

    fn invariants() -> Vec<Box<dyn Invariant<Self>>> {
        vec![Box::new(OneValuePerSlot::new()), Box::new(CheckQuorum), Box::new(VotesMatchDecisions)]
    }
}

impl quorum_paxos::outbox::Stepped for MultiPaxos {
    type Message = Message;
    quorum_paxos::stepped_accessors!();
    fn emit_ready(&mut self, out: &mut Effects<Message>) {
        if let Some(snapshot) = self.install.take() {
            out.install_snapshot(snapshot);
        }
        let committed = self.learner.commit_ready(out);
        if let Some(last) = committed.last() {
            self.acceptor.forget_upto(last.index);
        }
        for entry in committed {
            let Payload::Membership(next) = entry.payload else { continue };
            if next.follows(self.configs.current()) {
                let old = self.configs.current().clone();
                self.configs.push(entry.index, next);
                self.on_config_committed(&old);
            }
        }
    }
    /// The write this step needs, if any. The commit point only rides along
    /// with a write made anyway (votes, promises, a snapshot): it is a hint for
    /// recovery, not a promise to anyone, so it never costs an fsync of its
    /// own. A leader would otherwise sync twice per command (its vote, then the
    /// commit point), and the second sync would delay the next command's vote.
    /// A node restarted with an older commit point recovers the slots above it
    /// as accepted votes, which the next leader's Phase 1 (or a catch-up)
    /// settles; `Acceptor::learn` explains why a learned value is safe there.
    fn take_batch(&mut self) -> Option<WriteBatch> {
        let committed = self.learner.committed();
        let joining = self.joining();
        let has_snapshot = self.snapshot_to_write.is_some();
        let tag = self.outbox.next_tag();
        let mut batch =
            acceptor_write(&mut self.acceptor, tag, committed, &mut self.persisted_commit, has_snapshot, |a, c| {
                postcard::to_allocvec(&HardState { promised: a.promised_all(), committed: c, joining })
                    .expect("hard state encodes")
            })?;
        batch.snapshot = self.snapshot_to_write.take();
        Some(batch)
    }
}
