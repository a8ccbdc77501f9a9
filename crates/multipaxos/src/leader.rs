//! Phase 2 at the leader: slots, the in-flight window, batches, commit, heartbeats.
//!
//! The leader gives each command the next slot and sends `Accept` for it at
//! once, with up to `window` slots in flight: acceptors may answer out of
//! order, and the learner still commits in slot order. Commands that arrive
//! while the window is full wait and leave together, in batches of up to
//! `max_batch` slots per message. The commit point rides on every Accept and
//! heartbeat. Unanswered Accepts are sent again on the heartbeat tick.
//!
//! **Bounded queue.** At most `max_queued` commands wait for a slot; beyond
//! that `propose` answers `ProposeError::Busy` (retryable), so a leader that
//! cannot commit does not absorb every retry.
//!
//! **CheckQuorum.** Every follower answers every heartbeat (`HeartbeatAck`)
//! and every Accept (`Accepted`). A leader that has not had an answer in its
//! own ballot from a majority (itself included) within an election timeout
//! steps down: it is cut off in a minority, cannot commit, and (with leases)
//! must stop serving local reads. Its clients then get `NotLeader` and go
//! elsewhere instead of queuing behind a partition.

use crate::read::Lease;
use crate::{Message, MultiPaxos, PlantedBug, State};
use quorum_core::{Duration, Instant, Membership, NodeId, Payload, ProposeError};
use quorum_paxos::{Ballot, Tally};
use std::collections::{BTreeMap, VecDeque};
use tracing::{info, trace};

/// One slot the leader has proposed and not yet seen chosen.
#[derive(Clone, Debug, Hash)]
pub(crate) struct Proposal {
    pub(crate) value: Payload,
    tally: Tally,
    sent_at: Instant,
}

/// The leader's Phase 2 state.
#[derive(Clone, Debug, Hash)]
pub(crate) struct Leader {
    pub(crate) ballot: Ballot,
    next_slot: u64,
    pub(crate) proposals: BTreeMap<u64, Proposal>,
    /// The first and last slot of each batch of new commands sent and not
    /// yet wholly chosen (`max_accepts_in_flight`).
    batches: VecDeque<(u64, u64)>,
    queue: VecDeque<Payload>,
    pub(crate) heartbeat_due: Instant,
    pub(crate) lease: Lease,
    /// When this leadership began.
    since: Instant,
    /// When each peer last answered in this ballot (CheckQuorum).
    heard: BTreeMap<NodeId, Instant>,
    /// Each peer's commit point, as its last heartbeat acknowledgement said,
    /// and when the heartbeat it answered left (whether a learner has caught
    /// up enough to vote; an old answer may predate a disk it lost since).
    pub(crate) commits: BTreeMap<NodeId, (u64, Instant)>,
    /// The last heartbeat sent to ask a learner to be promoted how far it
    /// is: to whom, when, and the commit point it carried. Its answer is
    /// judged against that point, not against ours when the operator asks
    /// again: under load ours moves on by more than the window in one round
    /// trip, and a learner keeping pace would never look caught up.
    pub(crate) probe: Option<(NodeId, Instant, u64)>,
    /// The slot of a configuration proposed and not yet committed: nothing
    /// past it is proposed before it is (`membership.rs`).
    pub(crate) barrier: Option<u64>,
    /// Values Phase 1 found past such a configuration, proposed once it commits.
    pub(crate) held: BTreeMap<u64, Payload>,
    /// The last slot Phase 1 re-proposed: a membership change waits until
    /// every one of them is committed (Raft's rule that a leader commits an
    /// entry of its own before it changes the configuration).
    pub(crate) takeover_upto: u64,
}

impl Leader {
    pub(crate) fn new(ballot: Ballot, next_slot: u64, now: Instant) -> Self {
        Leader {
            ballot,
            next_slot,
            proposals: BTreeMap::new(),
            batches: VecDeque::new(),
            queue: VecDeque::new(),
            heartbeat_due: now,
            lease: Lease::default(),
            since: now,
            heard: BTreeMap::new(),
            commits: BTreeMap::new(),
            probe: None,
            barrier: None,
            held: BTreeMap::new(),
            takeover_upto: 0,
        }
    }

    /// Commands waiting for a slot.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// `peer` answered in this ballot at `now` (CheckQuorum).
    pub(crate) fn heard_from(&mut self, peer: NodeId, now: Instant) {
        self.heard.insert(peer, now);
    }

    /// True if a majority of `config`'s voters (`me` included) answered
    /// within `timeout`, or this leadership is younger than that.
    pub(crate) fn has_quorum(&self, now: Instant, timeout: Duration, config: &Membership, me: NodeId) -> bool {
        if now < self.since + timeout {
            return true;
        }
        let recent = self.heard.iter().filter(|(_, &at)| now < at + timeout).map(|(node, _)| node);
        config.is_quorum(recent.chain([&me]))
    }

    /// True while a configuration this leader proposed (or found in Phase 1)
    /// is not committed: nothing is proposed past it, and no other change starts.
    pub(crate) fn change_in_flight(&self, committed: u64) -> bool {
        self.barrier.is_some_and(|slot| committed < slot) || !self.held.is_empty()
    }

    /// The next free slot, now taken.
    pub(crate) fn take_slot(&mut self) -> u64 {
        self.next_slot += 1;
        self.next_slot - 1
    }

    /// When each peer last answered in this ballot.
    pub(crate) fn heard_at(&self) -> impl Iterator<Item = (NodeId, Instant)> + '_ {
        self.heard.iter().map(|(n, at)| (*n, *at))
    }

    /// The last slot this leader has given a value (its own or re-proposed).
    pub(crate) fn last_proposed(&self) -> u64 {
        self.next_slot - 1
    }

    /// Proposes `value` in `slot`, to be chosen by a majority of `voters` voters.
    pub(crate) fn add_proposal(&mut self, slot: u64, value: Payload, voters: usize, now: Instant) {
        if matches!(value, Payload::Membership(_)) {
            self.barrier = Some(slot);
        }
        let proposal = Proposal { value, tally: Tally::new(self.ballot, voters), sent_at: now };
        let previous = self.proposals.insert(slot, proposal);
        assert!(previous.is_none(), "slot {slot} proposed twice in one ballot");
    }
}

impl MultiPaxos {
    /// A client command (or no-op) for the log: queued, then sent when the
    /// window allows; refused with `Busy` when `max_queued` commands wait already.
    pub(crate) fn enqueue(&mut self, value: Payload) -> Result<(), ProposeError> {
        let limit = self.config.max_queued;
        let State::Leader(leader) = &mut self.state else { unreachable!("only a leader enqueues") };
        if leader.queued() >= limit {
            return Err(ProposeError::Busy { limit: limit as u64 });
        }
        leader.queue.push_back(value);
        self.pump();
        Ok(())
    }

    /// Assigns slots to queued values while the window has room and fewer
    /// than `max_accepts_in_flight` batches are out, and sends them as one batch.
    pub(crate) fn pump(&mut self) {
        self.release_held();
        let size = self.config().voters.len();
        let (now, window, committed) = (self.now, self.config.window, self.learner.committed());
        let State::Leader(leader) = &mut self.state else { return };
        if leader.change_in_flight(committed) {
            return; // the slots past a configuration wait until it is in force
        }
        let proposals = &leader.proposals;
        leader.batches.retain(|&(first, last)| proposals.range(first..=last).next().is_some());
        if leader.batches.len() >= self.config.max_accepts_in_flight {
            return;
        }
        let mut fresh = Vec::new();
        while leader.proposals.len() < window {
            let Some(value) = leader.queue.pop_front() else { break };
            let slot = leader.take_slot();
            leader.add_proposal(slot, value.clone(), size, now);
            fresh.push((slot, value));
        }
        if let (Some(&(first, _)), Some(&(last, _))) = (fresh.first(), fresh.last()) {
            leader.batches.push_back((first, last));
            self.send_accepts(fresh, None);
        }
    }

    /// Once the configuration that held them back is in force, proposes the
    /// values Phase 1 found past it, up to the next configuration among them.
    fn release_held(&mut self) {
        let (committed, voters, now) = (self.learner.committed(), self.configs.current().voters.len(), self.now);
        let State::Leader(leader) = &mut self.state else { return };
        if leader.held.is_empty() || leader.barrier.is_some_and(|slot| committed < slot) {
            return;
        }
        let mut released = Vec::new();
        while let Some((slot, value)) = leader.held.pop_first() {
            if let Some((_, known)) = self.learner.chosen(slot) {
                // Learned chosen meanwhile: nothing to propose, but a
                // configuration still holds back what follows it.
                if matches!(known, Payload::Membership(_)) {
                    leader.barrier = Some(slot);
                    break;
                }
                continue;
            }
            if slot <= committed {
                continue;
            }
            let is_config = matches!(value, Payload::Membership(_));
            leader.add_proposal(slot, value.clone(), voters, now);
            released.push((slot, value));
            if is_config {
                break;
            }
        }
        self.send_accepts(released, None);
    }

    /// Sends Accepts for `entries` in batches, to `only` or to every member (ourselves included).
    pub(crate) fn send_accepts(&mut self, entries: Vec<(u64, Payload)>, only: Option<NodeId>) {
        let Some(ballot) = self.leading_ballot() else { return };
        let commit = self.learner.committed();
        let mut rest = &entries[..];
        while !rest.is_empty() {
            // At most `max_batch` values, and `snapshot_chunk_bytes` of them past the first.
            let sizes = rest.iter().map(quorum_core::batch::encoded_len);
            let (chunk, tail) = rest.split_at(quorum_core::batch::fitting(
                sizes,
                self.config.max_batch.max(1),
                self.config.snapshot_chunk_bytes,
            ));
            rest = tail;
            let msg = Message::Accept { ballot, entries: chunk.to_vec(), commit };
            match only {
                Some(to) => self.outbox.send(to, msg),
                None => self.broadcast(msg, false),
            }
        }
        if only.is_none() && !self.config.read_lease {
            let timeout = self.config.election_timeout;
            let config = self.configs.current();
            if let State::Leader(leader) = &mut self.state {
                // Every peer just heard the commit point: the next heartbeat
                // can wait. Not past CheckQuorum, which runs on the same
                // timer: without a majority heard, the tick stays due.
                if leader.has_quorum(self.now, timeout, config, self.id) {
                    leader.heartbeat_due = self.now + self.config.heartbeat_interval;
                }
            }
        }
    }

    /// Phase 2b arrived: count it; a majority in our ballot means chosen.
    pub(crate) fn on_accepted(&mut self, from: NodeId, ballot: Ballot, slots: Vec<u64>) {
        self.saw(ballot);
        let now = self.now;
        let State::Leader(leader) = &mut self.state else { return };
        if leader.ballot != ballot {
            return;
        }
        // Our own vote says nothing about who hears us (CheckQuorum counts
        // us once already: in three nodes, a cut-off leader that kept
        // proposing counted itself twice, a majority, and led on).
        if from != self.id {
            leader.heard_from(from, now);
        }
        // A learner's (or a removed node's) vote is stored but never counts:
        // every slot in flight is decided by the configuration in force.
        let counts = self.configs.current().voters.contains(&from) || self.config.planted(PlantedBug::NonVotersCount);
        if !counts {
            return;
        }
        let mut chosen = Vec::new();
        for slot in slots {
            let Some(proposal) = leader.proposals.get_mut(&slot) else { continue };
            if proposal.tally.add(ballot, from) {
                let proposal = leader.proposals.remove(&slot).expect("just found");
                chosen.push((slot, proposal.value));
            }
        }
        for (slot, value) in chosen {
            trace!(node = self.id.0, slot, ?ballot, "chosen");
            self.decide(slot, ballot, value);
        }
        self.pump();
    }

    /// A refusal: a higher ballot exists, so our candidacy or leadership is over.
    pub(crate) fn on_nack(&mut self, ballot: Ballot, promised: Ballot) {
        self.saw(promised);
        if self.own_ballot() == Some(ballot) && promised > ballot {
            self.step_down(promised.owner());
        }
    }

    /// The leader's timer: heartbeats with the commit point, and retransmission.
    pub(crate) fn leader_tick(&mut self) {
        let (now, retransmit_after) = (self.now, self.config.retransmit_after);
        let peers = self.peers();
        let commit = self.learner.committed();
        let timeout = self.config.election_timeout;
        let check_quorum = !self.config.planted(PlantedBug::NoCheckQuorum);
        let config = self.configs.current();
        let State::Leader(leader) = &mut self.state else { return };
        if now < leader.heartbeat_due {
            return;
        }
        if check_quorum && !leader.has_quorum(now, timeout, config, self.id) {
            // CheckQuorum: cut off in a minority. Stop leading (and serving
            // lease reads); the queued commands' clients retry elsewhere.
            info!(node = self.id.0, ballot = ?leader.ballot, "no majority answered within an election timeout: stepping down");
            self.step_down(None);
            return;
        }
        leader.heartbeat_due = now + self.config.heartbeat_interval;
        let ballot = leader.ballot;
        let mut resend: BTreeMap<NodeId, Vec<(u64, Payload)>> = BTreeMap::new();
        for (&slot, proposal) in leader.proposals.iter_mut() {
            if proposal.sent_at + retransmit_after > now {
                continue;
            }
            proposal.sent_at = now;
            for &peer in peers.iter().filter(|p| !proposal.tally.voters().contains(p)) {
                resend.entry(peer).or_default().push((slot, proposal.value.clone()));
            }
        }
        let lease = self.config.read_lease;
        if lease {
            self.lease_round_started();
        }
        for peer in peers {
            let resent = resend.remove(&peer);
            let has_resend = resent.is_some();
            if let Some(entries) = resent {
                self.send_accepts(entries, Some(peer));
            }
            // With leases, every round needs heartbeats to collect acknowledgements.
            if lease || !has_resend {
                self.outbox.send(peer, Message::Heartbeat { ballot, commit, sent_at: now });
            }
        }
    }
}
