//! The acceptor side of every node: answering Prepare, Accept and Heartbeat,
//! and committing what the leader reports committed.

use crate::{Message, MultiPaxos};
use quorum_core::{Instant, NodeId, Payload};
use quorum_paxos::{Ballot, Chosen};
use tracing::trace;

impl MultiPaxos {
    /// Phase 1b: promise `ballot` for every slot and report what we know from `first` on.
    pub(crate) fn on_prepare(&mut self, from: NodeId, ballot: Ballot, first: u64) {
        self.saw(ballot);
        if self.lease_blocks_promise(from, ballot) {
            return; // a leader may hold a lease on our promise: stay silent
        }
        let committed = self.learner.committed();
        match self.acceptor.prepare_all(ballot, first.max(committed + 1)) {
            Ok(accepted) => {
                let chosen = self.learner.chosen_from(first, self.config.catch_up_batch);
                let accepted = accepted.into_iter().filter(|(slot, _)| self.learner.chosen(*slot).is_none()).collect();
                let snapshot_index = self.snapshot.as_ref().map_or(0, |s| s.index);
                if self.own_ballot().is_some_and(|own| own < ballot) {
                    self.step_down(None);
                }
                if from != self.id {
                    // Give the candidate time to win before suspecting it in turn.
                    self.election_deadline = self.random_election_deadline();
                    // Someone else is taking over: no need for our own Phase 1.
                    self.suspicion = None;
                    self.last_promise_to_other = Some(self.now);
                }
                let promise = Message::Promise { ballot, chosen, accepted, snapshot_index, committed };
                self.outbox.send_durable(from, promise);
            }
            Err(promised) => self.outbox.send(from, Message::Nack { ballot, promised }),
        }
    }

    /// Phase 2b for a batch, then the piggybacked commit point.
    pub(crate) fn on_accept(&mut self, from: NodeId, ballot: Ballot, entries: Vec<(u64, Payload)>, commit: u64) {
        self.saw(ballot);
        if let Err(promised) = self.acceptor.follow(ballot) {
            self.outbox.send(from, Message::Nack { ballot, promised });
            return;
        }
        self.follow(ballot);
        let committed = self.learner.committed();
        let mut slots = Vec::with_capacity(entries.len());
        let mut decided = Vec::new();
        for (slot, value) in entries {
            if slot > committed {
                // Paxos Made Simple §2.3 (2b): accept unless a higher ballot was promised.
                self.acceptor.accept(slot, ballot, value).expect("the promise was raised to this ballot just above");
                slots.push(slot);
            } else if let Some((chosen_in, chosen)) = self.learner.chosen(slot) {
                // Already committed here: tell the leader the decision rather than
                // vote (it may have been chosen in a ballot above this leader's).
                decided.push(Chosen { slot, ballot: chosen_in, value: chosen.clone() });
            }
        }
        if !slots.is_empty() {
            self.outbox.send_durable(from, Message::Accepted { ballot, slots });
        }
        if !decided.is_empty() {
            self.outbox.send(from, Message::Decided { chosen: decided });
        }
        self.learn_commit(from, ballot, commit);
    }

    /// The leader is alive and reports its commit point.
    pub(crate) fn on_heartbeat(&mut self, from: NodeId, ballot: Ballot, commit: u64, sent_at: Instant) {
        self.saw(ballot);
        if let Err(promised) = self.acceptor.follow(ballot) {
            self.outbox.send(from, Message::Nack { ballot, promised });
            return;
        }
        self.follow(ballot);
        self.ack_lease(from, ballot, sent_at);
        self.learn_commit(from, ballot, commit);
    }

    /// Commits the slots up to `commit` whose value we accepted in the leader's
    /// own ballot: the leader proposes one value per slot per ballot, and it
    /// only reports slots chosen at or below its ballot, so that is the chosen
    /// value. Anything else is fetched from the leader.
    fn learn_commit(&mut self, leader: NodeId, ballot: Ballot, commit: u64) {
        let mut slot = self.learner.committed() + 1;
        while slot <= commit {
            if self.learner.chosen(slot).is_none() {
                let Some(accepted) = self.acceptor.accepted(slot).filter(|a| a.ballot == ballot) else {
                    trace!(node = self.id.0, slot, commit, "missing a committed slot: asking the leader");
                    self.request_catch_up(leader);
                    return;
                };
                let value = accepted.value.clone();
                self.decide(slot, ballot, value);
            }
            slot += 1;
        }
    }
}
