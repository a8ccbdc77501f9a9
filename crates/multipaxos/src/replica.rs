//! The acceptor side of every node: answering Prepare, Accept and Heartbeat,
//! and committing what the leader reports committed.

use crate::{Message, MultiPaxos, SnapshotPiece, MAX_PLAUSIBLE_SLOT};
use quorum_core::batch::{encoded_len, Room};
use quorum_core::{Instant, NodeId, Payload};
use quorum_paxos::{Accepted, Ballot, Chosen};
use tracing::trace;

impl MultiPaxos {
    /// Phase 1b: promise `ballot` for every slot and report what we know from `first` on.
    pub(crate) fn on_prepare(&mut self, from: NodeId, ballot: Ballot, first: u64) {
        self.saw(ballot);
        if !self.takes_part() {
            // Not (or no longer) a member: its promise must not count
            // (`membership.rs`). But a candidate may count on it as a voter
            // this node has not caught up to: catch up from it. Or the
            // candidate lags this node, as when a leader that removed itself
            // saw its removal chosen and no one else did: then the old
            // voters, this one among them, still decide the candidate's
            // first slots, and only learning them chosen frees it.
            if first <= self.learner.committed() {
                self.on_catch_up(from, first);
            }
            self.request_catch_up(from);
            return;
        }
        if self.lease_blocks_promise(from, ballot) {
            return; // a leader may hold a lease on our promise: stay silent
        }
        // The acceptor forgets the votes of committed slots. Right after a
        // restart the commit point on disk is ahead of the learner's until
        // the first step hands the slots below it over: report the higher,
        // so that a candidate catches up on slots this promise cannot list
        // (found by `quorum check`; `safety_tests.rs`).
        let committed = self.learner.committed().max(self.persisted_commit);
        // Chosen values up to the cap, and every other slot's accepted
        // (ballot, value) past them: a slot this node knows chosen past the
        // cap is reported as the value its acceptor holds (the chosen one,
        // `Acceptor::learn`), so no chosen or accepted slot is left out. A
        // candidate whose own commit point is below `committed` and which
        // gets fewer chosen values than that catches up first (`on_promise`).
        let chosen = self.learner.chosen_from(first, self.config.catch_up_batch);
        let reported_upto = chosen.last().map_or(0, |c| c.slot);
        let omit_chosen_past_cap = self.config.planted(crate::PlantedBug::PromiseOmitsChosenPastCap);
        let learner = &self.learner;
        let (chosen, accepted, last) = match self.acceptor.prepare_all(ballot, first.max(committed + 1)) {
            Ok(accepted) => {
                let accepted = accepted.filter(|(slot, _)| {
                    let known = learner.chosen(*slot).is_some();
                    !known || (*slot > reported_upto && !omit_chosen_past_cap)
                });
                page(chosen, accepted, self.config.snapshot_chunk_bytes)
            }
            Err(promised) => return self.outbox.send(from, Message::Nack { ballot, promised }),
        };
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
        let promise = Message::Promise { ballot, first, last, chosen, accepted, snapshot_index, committed };
        self.outbox.send_durable(from, promise);
    }

    /// Phase 2b for a batch, then the piggybacked commit point.
    pub(crate) fn on_accept(&mut self, from: NodeId, ballot: Ballot, entries: Vec<(u64, Payload)>, commit: u64) {
        self.saw(ballot);
        if !self.takes_part() {
            // Joining (or out): no vote, but what the leader committed is worth fetching.
            self.follow(ballot);
            self.learn_commit(from, ballot, commit);
            return;
        }
        if let Err(promised) = self.acceptor.follow(ballot) {
            self.outbox.send(from, Message::Nack { ballot, promised });
            return;
        }
        self.follow(ballot);
        let committed = self.learner.committed();
        let mut slots = Vec::with_capacity(entries.len());
        let mut decided = Vec::new();
        let mut refused_by = None;
        let mut compacted = false;
        for (slot, value) in entries {
            if let Some((chosen_in, chosen)) = self.learner.chosen(slot) {
                if slot > committed && self.config.planted(crate::PlantedBug::AcceptOverwritesChosen) {
                    if self.planted_accept_over_chosen(slot, ballot, value) {
                        slots.push(slot);
                    }
                    continue;
                }
                // Known chosen here (committed or not): tell the leader the
                // decision rather than vote. A vote could replace the chosen
                // value this node stores (and applies after a restart) with a
                // stale one, and the decision may be in a ballot above this
                // leader's, which must then step down.
                decided.push(Chosen { slot, ballot: chosen_in, value: chosen.clone() });
                continue;
            }
            if slot <= committed {
                compacted = true; // committed here, and compacted into our snapshot
                continue;
            }
            // Paxos Made Simple §2.3 (2b): accept unless a higher ballot was
            // promised, here or implicitly by a value stored in a higher ballot.
            match self.acceptor.accept(slot, ballot, value) {
                Ok(()) => slots.push(slot),
                Err(promised) if promised > ballot => refused_by = Some(promised),
                Err(_) => self.drop_message(from, "an Accept with a second value in one ballot"),
            }
        }
        if let Some(promised) = refused_by {
            self.outbox.send(from, Message::Nack { ballot, promised });
        }
        if !slots.is_empty() {
            self.outbox.send_durable(from, Message::Accepted { ballot, slots });
        }
        if !decided.is_empty() {
            self.outbox.send(from, Message::Decided { chosen: decided, more: false });
        }
        if compacted {
            // The leader is behind us, past what we can report slot by slot:
            // a leader elected with an old commit point, re-proposing slots
            // the others have compacted, would otherwise wait for answers
            // that never come and never commit again. An empty `Decided`
            // with `more` asks it to catch up from us (`on_decided`).
            self.outbox.send(from, Message::Decided { chosen: Vec::new(), more: true });
        }
        self.learn_commit(from, ballot, commit);
    }

    /// The leader is alive and reports its commit point.
    pub(crate) fn on_heartbeat(&mut self, from: NodeId, ballot: Ballot, commit: u64, sent_at: Instant) {
        self.saw(ballot);
        if !self.takes_part() {
            self.follow(ballot);
            self.learn_commit(from, ballot, commit);
            return;
        }
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
        self.join_floor.get_or_insert(commit);
        let heard = self.heard_commit.filter(|(b, _)| *b == ballot).map_or(0, |(_, c)| c);
        self.heard_commit = Some((ballot, heard.max(commit)));
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

/// Cuts a promise to one page: its chosen and accepted slots in slot order
/// (the two lists hold different slots), at most `max_bytes` of them past the
/// first (one always goes, so every page moves the candidate on). Returns
/// what the page keeps and, if anything was left out, the last slot it covers.
/// The votes are read only as far as the page goes: an acceptor may hold tens
/// of thousands past its commit point (a leader cut off behind a hole, or a
/// forged Accept), and a promise is answered at every Prepare.
fn page<'a>(
    chosen: Vec<Chosen>,
    accepted: impl Iterator<Item = (u64, &'a Accepted)>,
    max_bytes: usize,
) -> (Vec<Chosen>, Vec<(u64, Accepted)>, Option<u64>) {
    let (mut chosen, mut accepted) = (chosen.into_iter().peekable(), accepted.peekable());
    let (mut page_chosen, mut page_accepted) = (Vec::new(), Vec::new());
    let (mut room, mut last) = (Room::new(usize::MAX, max_bytes), None);
    loop {
        let (slot, size, from_chosen) = match (chosen.peek(), accepted.peek()) {
            (None, None) => return (page_chosen, page_accepted, None),
            (Some(c), Some(&(next, _))) if c.slot < next => (c.slot, encoded_len(c), true),
            (Some(c), None) => (c.slot, encoded_len(c), true),
            (_, Some(entry)) => (entry.0, encoded_len(entry), false),
        };
        if !room.admits(size) {
            return (page_chosen, page_accepted, last);
        }
        last = Some(slot);
        if from_chosen {
            page_chosen.extend(chosen.next());
        } else {
            page_accepted.extend(accepted.next().map(|(slot, a)| (slot, a.clone())));
        }
    }
}

impl Message {
    /// Why this message cannot come from a correct peer, if it cannot: a slot
    /// number, index or ballot round so large that no cluster reaches it (and
    /// that would overflow `slot + 1` somewhere). Such a message is dropped.
    pub(crate) fn implausible(&self) -> Option<&'static str> {
        let slot_ok = |slot: u64| slot < MAX_PLAUSIBLE_SLOT;
        let ballot_ok = |ballot: Ballot| ballot.round < MAX_PLAUSIBLE_SLOT;
        // A configuration no leader could have made (no voter, someone
        // listed twice, a bad address) never enters the log.
        let value_ok = |value: &Payload| !matches!(value, Payload::Membership(m) if !m.is_sane());
        let ok = match self {
            Message::Prepare { ballot, from } => ballot_ok(*ballot) && slot_ok(*from),
            Message::Promise { ballot, first, last, chosen, accepted, snapshot_index, committed } => {
                ballot_ok(*ballot)
                    && slot_ok(*first)
                    && last.is_none_or(slot_ok)
                    && slot_ok(*snapshot_index)
                    && slot_ok(*committed)
                    && chosen.iter().all(|c| slot_ok(c.slot) && ballot_ok(c.ballot) && value_ok(&c.value))
                    && accepted.iter().all(|(slot, a)| slot_ok(*slot) && ballot_ok(a.ballot) && value_ok(&a.value))
            }
            Message::Accept { ballot, entries, commit } => {
                ballot_ok(*ballot)
                    && slot_ok(*commit)
                    && entries.iter().all(|(slot, value)| slot_ok(*slot) && value_ok(value))
            }
            Message::Accepted { ballot, slots } => ballot_ok(*ballot) && slots.iter().all(|s| slot_ok(*s)),
            Message::Nack { ballot, promised } => ballot_ok(*ballot) && ballot_ok(*promised),
            Message::Heartbeat { ballot, commit, .. } => ballot_ok(*ballot) && slot_ok(*commit),
            Message::HeartbeatAck { ballot, committed, .. } => ballot_ok(*ballot) && slot_ok(*committed),
            Message::Suspect { ballot } | Message::TakeOver { ballot } => ballot_ok(*ballot),
            Message::SuspectReply { ballot, .. } => ballot_ok(*ballot),
            Message::CatchUp { from } => slot_ok(*from),
            Message::Decided { chosen, .. } => {
                chosen.iter().all(|c| slot_ok(c.slot) && ballot_ok(c.ballot) && value_ok(&c.value))
            }
            Message::SnapshotChunk(SnapshotPiece { index, offset, total, data, .. }) => {
                slot_ok(*index) && slot_ok(*total) && offset <= total && data.len() as u64 <= total - offset
            }
            Message::SnapshotPull { index, offset } => slot_ok(*index) && slot_ok(*offset),
        };
        (!ok).then_some(
            "a slot, index or ballot round beyond any a cluster reaches, or a configuration that makes no sense",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::page;
    use quorum_core::Payload;
    use quorum_paxos::{Accepted, Ballot, Chosen};
    use std::cell::Cell;

    /// A promise page reads the votes only as far as it goes: seed 30001 of
    /// `quorum sim -p multipaxos --profile hostile` (a forged Accept left a
    /// vote at slot 32,693, and the next leaders filled the gap with no-ops)
    /// took 18 s of CPU collecting every vote at every Prepare, 0.2 s now.
    #[test]
    fn a_promise_page_reads_no_more_votes_than_it_keeps() {
        let ballot = Ballot::new(3, quorum_core::NodeId(1));
        let vote = Accepted { ballot, value: Payload::Noop };
        let chosen = vec![Chosen { slot: 2, ballot, value: Payload::Noop }];
        let read = Cell::new(0);
        let votes = (3..100_000u64).map(|slot| (slot, &vote)).inspect(|_| read.set(read.get() + 1));
        let (chosen, accepted, last) = page(chosen, votes, 64);
        assert_eq!(chosen.len(), 1);
        assert!(!accepted.is_empty() && accepted.len() < 20, "{} votes in a 64-byte page", accepted.len());
        assert_eq!(last, Some(2 + accepted.len() as u64), "the page covers slots 2 to its last vote");
        assert_eq!(read.get(), accepted.len() + 1, "one vote read past the page, to see it does not fit");
        // Everything fits: no `last`, and the two lists merged in slot order.
        let votes = [(1, &vote), (5, &vote)];
        let chosen = vec![Chosen { slot: 3, ballot, value: Payload::Noop }];
        let (chosen, accepted, last) = page(chosen, votes.into_iter(), 1 << 20);
        assert_eq!((chosen.len(), accepted.iter().map(|(s, _)| *s).collect::<Vec<_>>(), last), (1, vec![1, 5], None));
    }
}
