//! The proposer: runs Phase 1 and Phase 2 of one Synod instance per slot.
//!
//! Each client command gets a slot of its own and a full Synod run: Phase 1
//! (`Prepare`/`Promise`) with a fresh ballot, then Phase 2 (`Accept`/`Accepted`)
//! with the value-adoption rule of "Paxos Made Simple" §2.2 (P2c): propose the
//! value of the highest-ballot proposal any promiser reported, and only if
//! there is none, our own. If the slot ends up chosen with another value, the
//! command is proposed again in a later slot.
//!
//! Rejections carry the higher promise. Two proposers that keep preempting one
//! another can go on forever (the FLP livelock, "Paxos Made Simple" §2.4): after
//! a rejection a proposer waits a random, exponentially growing time before its
//! next ballot. `PaxosConfig::backoff = false` retries at once, to show the livelock.
//! The backoff starts from the time a Phase 1 takes here (a running average),
//! when that is longer than `backoff_base`: a rival needs at least that long
//! to get its value accepted, so waiting less only preempts it. With a 10 ms
//! fsync behind every promise and vote, a fixed 4 ms base had five proposers
//! preempting each other for most of each run. (Twice the Phase 1 time cut
//! collisions further, but left the slot of a crashed proposer unfilled for
//! longer: `quorum bench --fault leader-crash` recovered in 70 ms, not 10.)
//!
//! A phase that gets no majority within `retry_timeout` is tried again with a
//! higher ballot. If answers to the abandoned ballot arrive afterwards, the
//! phase was slow rather than lost (a 30 ms fsync makes a phase of two
//! writes longer than the 50 ms default), and the next phases get twice as
//! long, up to 16 times; each phase that finishes in time halves it again.

use crate::{message::Message, Accepted, Ballot, Paxos, Tally};
use quorum_core::{Command, Duration, Instant, Majority, NodeId, Payload, ProposeError};
use std::collections::{BTreeMap, VecDeque};
use tracing::{debug, trace};

/// Where one slot's run stands.
#[derive(Clone, Debug, Hash)]
pub(crate) enum Phase {
    /// Rejected: waiting until the deadline before trying a higher ballot.
    Backoff,
    /// Phase 1: promises gathered so far, with what each promiser had accepted.
    Preparing { promises: BTreeMap<NodeId, Option<Accepted>> },
    /// Phase 2: the value proposed in this ballot and who accepted it.
    Accepting { value: Payload, tally: Tally },
}

/// This node's attempt to get a value chosen in one slot.
#[derive(Clone, Debug, Hash)]
pub(crate) struct Instance {
    /// What this node wants in the slot: a client command, or a no-op to fill a hole.
    pub(crate) own: Payload,
    /// The ballot of the current attempt.
    pub(crate) ballot: Ballot,
    pub(crate) phase: Phase,
    /// When the current phase gives up (or the backoff ends).
    pub(crate) deadline: Instant,
    /// Rejections so far: the backoff doubles with each.
    pub(crate) rejections: u32,
    /// When the current Phase 1 started.
    pub(crate) prepared_at: Instant,
    /// The ballot of the last phase that ran out of time here: an answer
    /// in it that comes later shows the phase was slow, not lost.
    pub(crate) timed_out: Option<Ballot>,
}

/// Commands waiting for a slot, and the slots being fought for.
#[derive(Clone, Debug, Hash, Default)]
pub(crate) struct Proposer {
    pub(crate) queue: VecDeque<Command>,
    pub(crate) instances: BTreeMap<u64, Instance>,
    /// How long a Phase 1 of ours takes, on average (zero until one succeeded).
    pub(crate) phase1_time: Duration,
    /// Phases whose answers came after they ran out of time, less phases
    /// that finished in time: each doubles the time the next phase gets (at
    /// most 16 times `retry_timeout`), so a disk or network slower than the
    /// timeout still lets a phase finish. A phase no one answered (a crash,
    /// a partition) counts for nothing.
    pub(crate) slow_phases: u32,
}

/// `slow_phases` saturates here: phase timeouts grow to 16 times `retry_timeout`.
const MAX_SLOW_PHASES: u32 = 4;

/// How long a phase may take before it is tried again: `retry_timeout`,
/// doubled for each slow phase, and at least twice the Phase 1 time
/// measured here. Behind a 30 ms fsync a phase takes 60-140 ms (our
/// write, then a peer's, each maybe queued behind another): a shorter
/// timeout gives up on ballots that were about to win and raises the
/// next over every rival's, and three such proposers chose almost
/// nothing (134 operations in 200 seeds of the `crash-storm` profile
/// without faults).
fn phase_timeout(retry_timeout: Duration, slow_phases: u32, phase1_time: Duration) -> Duration {
    (retry_timeout * (1u64 << slow_phases.min(MAX_SLOW_PHASES))).max(phase1_time * 2)
}

impl Proposer {
    /// An answer in `ballot` for `slot` arrived: if that phase had run out of
    /// time here, it was slow, not lost, and the next phases get longer.
    fn note_late_answer(&mut self, slot: u64, ballot: Ballot) {
        let Some(instance) = self.instances.get_mut(&slot) else { return };
        if instance.timed_out == Some(ballot) {
            instance.timed_out = None;
            self.slow_phases = (self.slow_phases + 1).min(MAX_SLOW_PHASES);
        }
    }
}

impl Paxos {
    /// Refuses a new client command while `max_queued` wait for a slot
    /// (commands that lost their slot and go round again are not counted
    /// against new ones: they were admitted already).
    pub(crate) fn admit(&self) -> Result<(), ProposeError> {
        if self.proposer.queue.len() >= self.config.max_queued {
            return Err(ProposeError::Busy { limit: self.config.max_queued as u64 });
        }
        Ok(())
    }

    /// Queues a client command and starts instances while the window allows.
    pub(crate) fn enqueue(&mut self, cmd: Command) {
        self.proposer.queue.push_back(cmd);
        self.start_instances();
    }

    /// Gives queued commands fresh slots, up to `max_in_flight` at once.
    pub(crate) fn start_instances(&mut self) {
        while self.proposer.instances.len() < self.config.max_in_flight {
            let Some(cmd) = self.proposer.queue.pop_front() else { break };
            // A fresh slot above every slot seen in use, so that proposers on
            // different nodes rarely collide; holes left by dead proposers are
            // filled with no-ops by the hole timer.
            let slot = self.highest_slot_seen.max(self.learner.highest_chosen()) + 1;
            self.start_instance(slot, Payload::Command(cmd));
        }
    }

    /// Starts fighting for `slot` with `own` as the value we would like.
    pub(crate) fn start_instance(&mut self, slot: u64, own: Payload) {
        assert!(self.learner.chosen(slot).is_none(), "slot {slot} is already decided");
        assert!(!self.proposer.instances.contains_key(&slot), "slot {slot} already has an instance here");
        self.highest_slot_seen = self.highest_slot_seen.max(slot);
        let instance = Instance {
            own,
            ballot: Ballot::ZERO,
            phase: Phase::Backoff,
            deadline: self.now,
            rejections: 0,
            prepared_at: self.now,
            timed_out: None,
        };
        self.proposer.instances.insert(slot, instance);
        self.prepare(slot);
    }

    /// Phase 1a: a ballot above every round seen, sent to every acceptor.
    /// Our own acceptor promises it first and the Prepares leave only once that
    /// promise is durable, so after a crash we never reuse the ballot.
    fn prepare(&mut self, slot: u64) {
        let ballot = Ballot::next_above(self.max_round, self.id);
        self.max_round = ballot.round;
        let deadline =
            self.now + phase_timeout(self.config.retry_timeout, self.proposer.slow_phases, self.proposer.phase1_time);
        let instance = self.proposer.instances.get_mut(&slot).expect("prepare needs an instance");
        instance.ballot = ballot;
        instance.phase = Phase::Preparing { promises: BTreeMap::new() };
        instance.deadline = deadline;
        instance.prepared_at = self.now;
        debug!(node = self.id.0, slot, ?ballot, "phase 1a: prepare");
        // Our own acceptor first, in this step, so that its promise is in this
        // step's write and the Prepares below leave only once it is durable.
        self.on_prepare(self.id, slot, ballot);
        for to in self.peers().collect::<Vec<_>>() {
            self.outbox.send_durable(to, Message::Prepare { slot, ballot });
        }
    }

    /// Phase 1b arrived. With a majority of promises, pick the value (P2c) and start Phase 2.
    pub(crate) fn on_promise(&mut self, from: NodeId, slot: u64, ballot: Ballot, accepted: Option<Accepted>) {
        let quorum = Majority::of(self.members.len());
        self.proposer.note_late_answer(slot, ballot);
        let Some(instance) = self.proposer.instances.get_mut(&slot) else { return };
        let Phase::Preparing { promises } = &mut instance.phase else { return };
        if instance.ballot != ballot {
            return;
        }
        promises.insert(from, accepted);
        if from == self.id {
            // Our own promise comes back once it is durable, which is when
            // the Prepares left: the phase's clock starts now, not before
            // our own fsync.
            instance.deadline = self.now
                + phase_timeout(self.config.retry_timeout, self.proposer.slow_phases, self.proposer.phase1_time);
        }
        if !quorum.is_reached(promises.len()) {
            return;
        }
        self.proposer.slow_phases = self.proposer.slow_phases.saturating_sub(1); // finished in time
        let took = self.now.saturating_since(instance.prepared_at);
        let average = &mut self.proposer.phase1_time;
        *average = if *average == Duration::ZERO {
            took
        } else {
            Duration::from_nanos((average.as_nanos() * 3 + took.as_nanos()) / 4)
        };
        // P2c: the value of the highest-numbered proposal accepted by any promiser,
        // or, if none accepted anything, the value this proposer wants.
        let mut adopted = promises.values().flatten().max_by_key(|a| a.ballot).map(|a| a.value.clone());
        if self.config.planted(crate::PlantedBug::IgnorePromisedValues) {
            adopted = None;
        }
        let value = adopted.unwrap_or_else(|| instance.own.clone());
        trace!(node = self.id.0, slot, ?ballot, ?value, "phase 2a: accept");
        instance.phase = Phase::Accepting { value: value.clone(), tally: Tally::new(ballot, self.members.len()) };
        instance.deadline =
            self.now + phase_timeout(self.config.retry_timeout, self.proposer.slow_phases, self.proposer.phase1_time);
        for to in self.members.clone() {
            self.outbox.send(to, Message::Accept { slot, ballot, value: value.clone() });
        }
    }

    /// Phase 2b arrived. A majority in this ballot means the value is chosen.
    pub(crate) fn on_accepted(&mut self, from: NodeId, slot: u64, ballot: Ballot) {
        self.proposer.note_late_answer(slot, ballot);
        let Some(instance) = self.proposer.instances.get_mut(&slot) else { return };
        let Phase::Accepting { value, tally } = &mut instance.phase else { return };
        if instance.ballot != ballot || !tally.add(ballot, from) {
            return;
        }
        let value = value.clone();
        self.proposer.slow_phases = self.proposer.slow_phases.saturating_sub(1); // finished in time
        debug!(node = self.id.0, slot, ?ballot, ?value, "chosen");
        self.decide(slot, ballot, value, true);
    }

    /// A Prepare or Accept of ours was refused: back off, then try a higher ballot.
    pub(crate) fn on_nack(&mut self, slot: u64, ballot: Ballot, promised: Ballot) {
        self.max_round = self.max_round.max(promised.round);
        let Some(instance) = self.proposer.instances.get_mut(&slot) else { return };
        if instance.ballot != ballot || matches!(instance.phase, Phase::Backoff) {
            return;
        }
        instance.rejections += 1;
        if !self.config.backoff {
            // No backoff: straight back in with a higher ballot (livelock-prone).
            self.prepare(slot);
            return;
        }
        let exponent = instance.rejections.min(16);
        let base = self.config.backoff_base.max(self.proposer.phase1_time);
        let ceiling = (base * (1u64 << exponent)).min(self.config.backoff_max.max(base));
        let wait = Duration::from_nanos(self.rng.range(ceiling.as_nanos() / 4, ceiling.as_nanos() + 1));
        instance.phase = Phase::Backoff;
        instance.deadline = self.now + wait;
        trace!(node = self.id.0, slot, ?promised, ?wait, "rejected: backing off");
    }

    /// `slot` is decided: our instance there ends; a command that lost the slot goes round again.
    pub(crate) fn instance_decided(&mut self, slot: u64, value: &Payload) {
        let Some(instance) = self.proposer.instances.remove(&slot) else { return };
        if let Payload::Command(cmd) = instance.own {
            if *value != Payload::Command(cmd.clone()) {
                debug!(node = self.id.0, slot, "lost the slot: proposing again later");
                self.proposer.queue.push_front(cmd);
            }
        }
        self.start_instances();
    }

    /// Restarts every instance whose phase timed out or whose backoff ended.
    pub(crate) fn proposer_timers(&mut self) {
        let due: Vec<u64> =
            self.proposer.instances.iter().filter(|(_, i)| i.deadline <= self.now).map(|(&slot, _)| slot).collect();
        for slot in due {
            let instance = self.proposer.instances.get_mut(&slot).expect("due slots have instances");
            if !matches!(instance.phase, Phase::Backoff) {
                instance.timed_out = Some(instance.ballot);
            }
            self.prepare(slot);
        }
    }

    /// The earliest proposer deadline.
    pub(crate) fn proposer_deadline(&self) -> Option<Instant> {
        self.proposer.instances.values().map(|i| i.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Paxos, PaxosConfig};
    use quorum_core::{ClientId, Command, Duration, NodeId, ProposeError};
    use quorum_sim::testkit::Net;

    fn cmd(seq: u64) -> Command {
        Command::new(ClientId(1), seq, format!("c{seq}").into_bytes())
    }

    #[test]
    fn the_queue_is_bounded_and_refuses_with_busy() {
        let config = PaxosConfig::default().with(|c| {
            c.max_in_flight = 2;
            c.max_queued = 3;
        });
        let mut net: Net<Paxos> = Net::new(3, config, 1);
        // Nothing is delivered: two commands are fought for, three wait.
        for seq in 1..=5 {
            net.propose(NodeId(1), cmd(seq)).unwrap();
        }
        assert_eq!(net.propose(NodeId(1), cmd(6)), Err(ProposeError::Busy { limit: 3 }));
        // Once the slots are decided, the queue drains and commands are taken again.
        assert!(net.run_until(Duration::from_secs(2), |net| net.nodes[0].as_ref().unwrap().learner().committed() >= 5));
        net.propose(NodeId(1), cmd(7)).unwrap();
    }
}
