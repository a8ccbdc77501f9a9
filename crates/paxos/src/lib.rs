//! # quorum-paxos: Basic Paxos, one Synod instance per slot
//!
//! Lamport's single-decree Synod ("Paxos Made Simple", 2001), run as a
//! replicated log the way a textbook would: every slot of the log is an
//! independent instance, every node is proposer, acceptor and learner, and
//! every command pays for a full Phase 1 and Phase 2. There is no leader; this
//! crate is the baseline whose cost `quorum-multipaxos` removes.
//!
//! **The algorithm.** A proposer picks a ballot `(round, node)` above every
//! round it has seen and sends `Prepare(b)` for a slot (Phase 1a). An acceptor
//! that promised nothing higher promises `b` and returns the highest-ballot
//! proposal it accepted (1b); otherwise it answers `Nack` with its promise.
//! With promises from a majority, the proposer sends `Accept(b, v)` (2a),
//! where `v` is the value of the highest-ballot proposal among the promises, or
//! its own command if there was none. An acceptor accepts unless it promised
//! higher (2b). A value accepted by a majority in one ballot is chosen; the
//! proposer that sees the majority spreads it with `Decided`, and every node
//! commits decided slots strictly in slot order. A command whose slot was won
//! by another value is proposed again in a later slot.
//!
//! **Why only one value is chosen per slot.** Any two majorities share an
//! acceptor. Suppose `v` is chosen in ballot `b`. A proposer with a higher
//! ballot `b'` must first hear from a majority, and one of them accepted `v` in
//! `b` and, having promised `b'`, accepted nothing between `b` and `b'` except
//! proposals that (by induction) also carry `v`. So the highest-ballot proposal
//! it hears of carries `v`, and it proposes `v`. This needs acceptors never to
//! forget a promise or an acceptance: both are durable before the answer
//! leaves (`send_durable`), and a proposer's own promise for its ballot is
//! durable before its Prepares leave, so no ballot is reused after a crash.
//!
//! **Liveness.** Two proposers can preempt each other forever. After a
//! rejection a proposer waits a random time that doubles with each rejection
//! ([`PaxosConfig::backoff`]). Lost messages are covered by a phase timeout. A
//! slot left undecided by a crashed proposer would block every later commit, so
//! a node that sees later slots in use while its next slot stays unknown first
//! asks its peers for decided values (`CatchUp`) and then proposes a no-op
//! there, which Phase 1 turns into the chosen value if there was one.
//!
//! **Storage.** Each slot's accepted `(ballot, value)` is an entry
//! `{ index: slot, stamp: ballot, payload: value }`. The hard state holds the
//! per-slot promises of undecided slots and `chosen_upto`, the committed
//! prefix; a committed slot's entry is overwritten with the chosen value, so a
//! restarted node re-emits its committed prefix at once (the driver skips what
//! it already applied) and recovers its promises and votes. Basic Paxos keeps
//! the whole log: it does not compact.
//!
//! ```
//! use quorum_core::{ClientId, Command, Duration, NodeId};
//! use quorum_paxos::{Paxos, PaxosConfig};
//! use quorum_sim::{Sim, SimConfig};
//!
//! let mut cfg = SimConfig::new(3, 1);
//! cfg.clients.count = 0;
//! let mut sim = Sim::<Paxos>::new(cfg, PaxosConfig::default());
//! // Any node proposes; every node commits the value in slot 1.
//! sim.propose(NodeId(2), Command::new(ClientId(1), 1, &b"x"[..])).unwrap();
//! assert!(sim.run_until(Duration::from_secs(1), |s| (1..=3).all(|n| s.applied_index(NodeId(n)) == 1)));
//! assert!(sim.violations().is_empty());
//! ```
#![deny(missing_docs)]

mod acceptor;
mod ballot;
mod catchup;
mod config;
mod invariants;
mod learner;
#[cfg(test)]
mod malformed_tests;
mod message;
pub mod outbox;
mod proposer;
#[cfg(test)]
mod tests;

pub use acceptor::{Accepted, Acceptor, Vote, VoteJournal};
pub use ballot::Ballot;
pub use config::{PaxosConfig, PlantedBug};
pub use invariants::OneValuePerSlot;
pub use learner::{Learner, Tally};
pub use message::{Chosen, Message};

use outbox::Outbox;
use proposer::Proposer;
use quorum_core::{
    Command, Effects, Init, InitError, Instant, Invariant, NodeId, Payload, ProposeError, Protocol, Rng, Role, Status,
    WriteBatch,
};
use serde::{Deserialize, Serialize};
use tracing::{trace, warn};

/// What Basic Paxos keeps in the hard state.
#[derive(Clone, Debug, Hash, Default, PartialEq, Eq, Serialize, Deserialize)]
struct HardState {
    /// Promises of undecided slots.
    promises: Vec<(u64, Ballot)>,
    /// Every slot up to here is committed and its stored entry holds the chosen value.
    chosen_upto: u64,
}

/// One Basic Paxos node: proposer, acceptor and learner of every slot.
#[derive(Clone, Debug, Hash)]
pub struct Paxos {
    id: NodeId,
    members: Vec<NodeId>,
    config: PaxosConfig,
    acceptor: Acceptor,
    learner: Learner,
    proposer: Proposer,
    outbox: Outbox<Message>,
    rng: Rng,
    now: Instant,
    /// The highest ballot round seen anywhere (the status "term").
    max_round: u64,
    /// The highest slot seen in use by anyone.
    highest_slot_seen: u64,
    /// The commit point written to the hard state.
    persisted_commit: u64,
    /// Whether the next slot is unknown while later ones are in use (`catchup.rs`).
    stalled: Option<catchup::Stall>,
    last_catch_up: Instant,
    /// A node restarted from its disk asks its peers what was decided while
    /// it was down, again every `catch_up_after` until one answers: with no
    /// new traffic nothing else would tell it that it is behind. This is when
    /// the next such request is due (`None`: not needed).
    boot_catch_up: Option<Instant>,
    /// When the next periodic catch-up request is due.
    next_sync: Instant,
    /// Peer messages dropped as malformed.
    dropped_messages: u64,
}

impl Paxos {
    /// This node's acceptor (for checkers and tests).
    pub fn acceptor(&self) -> &Acceptor {
        &self.acceptor
    }

    /// Messages from peers dropped because they broke the protocol's
    /// expectations (another value for a decided slot, two values in one
    /// ballot, an absurd slot or round): each is logged and counted.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped_messages
    }

    fn drop_message(&mut self, from: NodeId, why: &str) {
        self.dropped_messages += 1;
        warn!(node = self.id.0, %from, why, "dropped a malformed message");
    }

    /// This node's learner (for checkers and tests).
    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    /// Commands waiting for a slot or being proposed here.
    pub fn pending_commands(&self) -> usize {
        self.proposer.queue.len()
            + self.proposer.instances.values().filter(|i| matches!(i.own, Payload::Command(_))).count()
    }

    /// The ballot this node is trying in `slot`, if it is proposing there.
    pub fn ballot_in(&self, slot: u64) -> Option<Ballot> {
        self.proposer.instances.get(&slot).map(|i| i.ballot)
    }

    /// Test hook: plants a durable vote in this node's acceptor journal.
    #[doc(hidden)]
    pub fn plant_vote(&mut self, vote: Vote) {
        self.acceptor.plant_vote(vote);
    }

    pub(crate) fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().copied().filter(move |&m| m != self.id)
    }

    /// Runs one input to completion: local deliveries, one write, the sends, the commits.
    fn step(&mut self, now: Instant, out: &mut Effects<Message>, input: impl FnOnce(&mut Self)) {
        assert!(now >= self.now, "time went backwards");
        self.now = now;
        let span = tracing::debug_span!("paxos", node = self.id.0, round = self.max_round);
        let _entered = span.enter();
        outbox::run_step(self, out, input);
        self.track_stall();
    }

    fn handle(&mut self, from: NodeId, msg: Message) {
        if let Some(why) = implausible(&msg) {
            self.drop_message(from, why);
            return;
        }
        match msg {
            Message::Prepare { slot, ballot } => self.on_prepare(from, slot, ballot),
            Message::Promise { slot, ballot, accepted } => self.on_promise(from, slot, ballot, accepted),
            Message::Accept { slot, ballot, value } => self.on_accept(from, slot, ballot, value),
            Message::Accepted { slot, ballot } => self.on_accepted(from, slot, ballot),
            Message::Nack { slot, ballot, promised } => self.on_nack(slot, ballot, promised),
            Message::Decided { chosen, more } => {
                trace!(node = self.id.0, %from, values = chosen.len(), more, "decided values from a peer");
                self.boot_catch_up = None;
                // A capped answer that taught us something: keep asking that
                // peer. A peer whose answer another one already covered is
                // not asked again, so one peer, not all, streams a long backlog.
                let first_unknown = self.learner.first_unknown();
                let taught = chosen.iter().any(|c| c.slot >= first_unknown && self.learner.chosen(c.slot).is_none());
                for c in chosen {
                    if self.learner.conflict(c.slot, &c.value).is_some() {
                        // The peer's word against what we know chosen: drop it.
                        self.drop_message(from, "a Decided with another value for a decided slot");
                        break;
                    }
                    self.decide(c.slot, c.ballot, c.value, false);
                }
                if more && taught {
                    self.outbox.send(from, Message::CatchUp { from: self.learner.first_unknown() });
                }
            }
            Message::CatchUp { from: first } => self.on_catch_up(from, first),
        }
    }

    /// Answers for a slot already decided here: the decision itself.
    fn answer_decided(&mut self, to: NodeId, slot: u64) -> bool {
        let Some((ballot, value)) = self.learner.chosen(slot) else { return false };
        let chosen = vec![Chosen { slot, ballot, value: value.clone() }];
        self.outbox.send(to, Message::Decided { chosen, more: false });
        true
    }

    /// Acceptor, Phase 1b.
    pub(crate) fn on_prepare(&mut self, from: NodeId, slot: u64, ballot: Ballot) {
        self.saw(slot, ballot);
        if self.answer_decided(from, slot) {
            return;
        }
        match self.acceptor.prepare_slot(slot, ballot) {
            Ok(accepted) => self.outbox.send_durable(from, Message::Promise { slot, ballot, accepted }),
            Err(promised) => self.outbox.send(from, Message::Nack { slot, ballot, promised }),
        }
    }

    /// Acceptor, Phase 2b.
    fn on_accept(&mut self, from: NodeId, slot: u64, ballot: Ballot, value: Payload) {
        self.saw(slot, ballot);
        if self.answer_decided(from, slot) {
            return;
        }
        match self.acceptor.accept(slot, ballot, value) {
            Ok(()) => self.outbox.send_durable(from, Message::Accepted { slot, ballot }),
            Err(promised) if promised > ballot => self.outbox.send(from, Message::Nack { slot, ballot, promised }),
            Err(_) => self.drop_message(from, "an Accept with a second value in one ballot"),
        }
    }

    fn saw(&mut self, slot: u64, ballot: Ballot) {
        self.highest_slot_seen = self.highest_slot_seen.max(slot);
        self.max_round = self.max_round.max(ballot.round);
    }

    /// Learner: `value` is chosen for `slot`. `spread` when this node counted the
    /// majority itself and must tell the others.
    fn decide(&mut self, slot: u64, ballot: Ballot, value: Payload, spread: bool) {
        self.highest_slot_seen = self.highest_slot_seen.max(slot);
        if !self.learner.learn(slot, ballot, value.clone()) {
            return;
        }
        if slot > self.learner.committed() {
            self.acceptor.learn(slot, ballot, &value);
        }
        if spread {
            let chosen = vec![Chosen { slot, ballot, value: value.clone() }];
            for to in self.peers().collect::<Vec<_>>() {
                self.outbox.send(to, Message::Decided { chosen: chosen.clone(), more: false });
            }
        }
        self.instance_decided(slot, &value);
    }
}

/// Slot numbers and ballot rounds at or above this come from a broken peer:
/// no cluster reaches them, and staying far from `u64::MAX` keeps every
/// `slot + 1` and `round + 1` in range.
pub const MAX_PLAUSIBLE_SLOT: u64 = 1 << 62;

/// Why `msg` cannot come from a correct peer, if it cannot.
fn implausible(msg: &Message) -> Option<&'static str> {
    let slot_ok = |slot: u64| slot < MAX_PLAUSIBLE_SLOT;
    let ballot_ok = |ballot: Ballot| ballot.round < MAX_PLAUSIBLE_SLOT;
    let ok = match msg {
        Message::Prepare { slot, ballot } | Message::Accepted { slot, ballot } => slot_ok(*slot) && ballot_ok(*ballot),
        Message::Promise { slot, ballot, accepted } => {
            slot_ok(*slot) && ballot_ok(*ballot) && accepted.as_ref().is_none_or(|a| ballot_ok(a.ballot))
        }
        Message::Accept { slot, ballot, .. } => slot_ok(*slot) && ballot_ok(*ballot),
        Message::Nack { slot, ballot, promised } => slot_ok(*slot) && ballot_ok(*ballot) && ballot_ok(*promised),
        Message::Decided { chosen, .. } => chosen.iter().all(|c| slot_ok(c.slot) && ballot_ok(c.ballot)),
        Message::CatchUp { from } => slot_ok(*from),
    };
    (!ok).then_some("a slot or ballot round beyond any a cluster reaches")
}

impl Protocol for Paxos {
    type Message = Message;
    type Config = PaxosConfig;
    const NAME: &'static str = "paxos";

    fn new(init: Init<PaxosConfig>) -> Result<Self, InitError> {
        let hard: HardState = init.member_hard_state()?;
        let acceptor = Acceptor::recover(init.incarnation(), Ballot::ZERO, &hard.promises, &init.stored.entries);
        let mut learner = Learner::new();
        for e in init.stored.entries.iter().take_while(|e| e.index <= hard.chosen_upto) {
            learner.learn(e.index, Ballot::from_stamp(e.stamp), e.payload.clone());
        }
        let max_round = init
            .stored
            .entries
            .iter()
            .map(|e| e.stamp.major)
            .chain(hard.promises.iter().map(|(_, b)| b.round))
            .max()
            .unwrap_or(0);
        let highest_slot_seen = init.stored.entries.last().map_or(0, |e| e.index).max(acceptor.last_slot());
        let next_sync = init.now + init.config.sync_every;
        Ok(Paxos {
            id: init.id,
            members: init.members,
            config: init.config,
            acceptor,
            learner,
            proposer: Proposer::default(),
            outbox: Outbox::new(init.id),
            rng: Rng::new(init.seed),
            now: init.now,
            max_round,
            highest_slot_seen,
            persisted_commit: hard.chosen_upto,
            stalled: None,
            last_catch_up: Instant::ZERO,
            // Every start asks, an empty one too: a node that lost its disk
            // has nothing stored to tell it that it is behind.
            boot_catch_up: Some(init.now),
            next_sync,
            dropped_messages: 0,
        })
    }

    fn on_message(&mut self, now: Instant, from: NodeId, msg: Message, out: &mut Effects<Message>) {
        self.step(now, out, |node| node.handle(from, msg));
    }

    fn on_timer(&mut self, now: Instant, out: &mut Effects<Message>) {
        self.step(now, out, |node| {
            node.catch_up_after_restart();
            node.sync_with_peers();
            node.proposer_timers();
            node.unblock();
        });
    }

    fn next_timer(&self) -> Option<Instant> {
        if self.learner.has_ready() {
            return Some(self.now);
        }
        [self.proposer_deadline(), self.unblock_deadline(), self.boot_catch_up, Some(self.next_sync)]
            .into_iter()
            .flatten()
            .min()
    }

    fn propose(&mut self, now: Instant, cmd: Command, out: &mut Effects<Message>) -> Result<(), ProposeError> {
        // Any node proposes: there is no leader in Basic Paxos.
        self.admit()?;
        self.step(now, out, |node| node.enqueue(cmd));
        Ok(())
    }

    fn on_persisted(&mut self, now: Instant, tag: u64, out: &mut Effects<Message>) {
        self.step(now, out, |node| {
            node.acceptor.persisted(tag);
            node.outbox.persisted(tag);
        });
    }

    /// Phase 1b and Phase 2b: a promise and a vote must survive a crash.
    fn vouches_for_disk(msg: &Message) -> bool {
        matches!(msg, Message::Promise { .. } | Message::Accepted { .. })
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: Role::Peer,
            term: self.max_round,
            leader: None,
            commit_index: self.learner.committed(),
            leader_commit: Some(self.learner.committed()),
            last_index: self.highest_slot_seen.max(self.learner.committed()),
        }
    }

    fn invariants() -> Vec<Box<dyn Invariant<Self>>> {
        vec![Box::new(OneValuePerSlot::new())]
    }
}

impl outbox::Stepped for Paxos {
    type Message = Message;
    crate::stepped_accessors!();
    fn emit_ready(&mut self, out: &mut Effects<Message>) {
        self.learner.commit_ready_forgetting(&mut self.acceptor, out);
    }
    fn take_batch(&mut self) -> Option<WriteBatch> {
        let committed = self.learner.committed();
        let commit_moved = committed != self.persisted_commit;
        let tag = self.outbox.next_tag();
        outbox::acceptor_write(&mut self.acceptor, tag, committed, &mut self.persisted_commit, commit_moved, |a, c| {
            let hs = HardState { promises: a.slot_promises(), chosen_upto: c };
            postcard::to_allocvec(&hs).expect("hard state encodes")
        })
    }
}
