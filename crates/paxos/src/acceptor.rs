//! The acceptor: the memory of Paxos.
//!
//! "Paxos Made Simple" §2.2–2.3: an acceptor answers a `Prepare(n)` with a
//! promise never to accept a proposal numbered below `n`, together with the
//! highest-numbered proposal it has accepted; and it accepts `Accept(n, v)`
//! unless it has promised a number above `n`. Everything Paxos guarantees
//! rests on an acceptor keeping these promises, so its state is durable before
//! it answers: the caller writes what [`Acceptor::flush`] returns and sends the
//! answer with `send_durable`.
//!
//! One acceptor serves every slot of the log. Basic Paxos promises slot by slot
//! ([`Acceptor::prepare_slot`]); Multi-Paxos promises once for every slot
//! ([`Acceptor::prepare_all`]). A slot's promise is the larger of the two.
//!
//! Durable layout (shared by both crates): each slot's accepted `(ballot, value)`
//! is an [`Entry`] `{ index: slot, stamp: ballot, payload: value }`; the
//! promises live in the crate's hard state (see [`Acceptor::promised_all`] and
//! [`Acceptor::slot_promises`]).

use crate::Ballot;
use quorum_core::{Entry, Payload};
use std::collections::{BTreeMap, VecDeque};

/// A proposal an acceptor has accepted: the ballot and its value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    /// The ballot the value was accepted in.
    pub ballot: Ballot,
    /// The value.
    pub value: Payload,
}

/// One durable vote: an acceptor accepted `value` in `ballot` for `slot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The slot.
    pub slot: u64,
    /// The ballot voted for.
    pub ballot: Ballot,
    /// The value accepted.
    pub value: Payload,
}

/// The acceptor's recent durable votes, for the simulator's
/// "one value chosen per slot" checker to read incrementally.
#[derive(Clone, Debug, Default)]
pub struct VoteJournal {
    total: u64,
    recent: VecDeque<Vote>,
}

impl VoteJournal {
    /// Votes kept; a checker reads after every step, so a step never overflows it.
    pub const CAPACITY: usize = 8192;

    /// How many votes were ever recorded by this incarnation.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The votes numbered `from` (0-based, this incarnation) onwards that are still kept.
    pub fn since(&self, from: u64) -> impl Iterator<Item = &Vote> {
        let first_kept = self.total - self.recent.len() as u64;
        let skip = from.saturating_sub(first_kept) as usize;
        self.recent.iter().skip(skip)
    }

    /// Records a vote that has become durable.
    pub fn record(&mut self, vote: Vote) {
        if self.recent.len() == Self::CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back(vote);
        self.total += 1;
    }
}

#[derive(Clone, Debug, Default)]
struct SlotState {
    promised: Ballot,
    accepted: Option<Accepted>,
}

/// The acceptor of every slot at one node.
#[derive(Clone, Debug, Default)]
pub struct Acceptor {
    promised_all: Ballot,
    slots: BTreeMap<u64, SlotState>,
    promise_dirty: bool,
    dirty_entries: BTreeMap<u64, Entry>,
    unflushed_votes: Vec<Vote>,
    unpersisted_votes: VecDeque<(u64, Vec<Vote>)>,
    journal: VoteJournal,
}

impl Acceptor {
    /// An acceptor that has promised nothing and accepted nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the acceptor from storage: the promise for every slot, the
    /// per-slot promises, and the accepted entries.
    pub fn recover(promised_all: Ballot, slot_promises: &[(u64, Ballot)], entries: &[Entry]) -> Self {
        let mut acceptor = Acceptor { promised_all, ..Default::default() };
        for &(slot, ballot) in slot_promises {
            acceptor.slots.entry(slot).or_default().promised = ballot;
        }
        for e in entries {
            let ballot = Ballot::from_stamp(e.stamp);
            let state = acceptor.slots.entry(e.index).or_default();
            state.accepted = Some(Accepted { ballot, value: e.payload.clone() });
        }
        acceptor
    }

    /// The promise that covers every slot (Multi-Paxos Phase 1).
    pub fn promised_all(&self) -> Ballot {
        self.promised_all
    }

    /// The ballot `slot` is promised to: no accept below it will be taken.
    pub fn promised(&self, slot: u64) -> Ballot {
        let own = self.slots.get(&slot).map_or(Ballot::ZERO, |s| s.promised);
        own.max(self.promised_all)
    }

    /// The per-slot promises above the promise for all slots, for the hard state.
    pub fn slot_promises(&self) -> Vec<(u64, Ballot)> {
        self.slots.iter().filter(|(_, s)| s.promised > self.promised_all).map(|(&slot, s)| (slot, s.promised)).collect()
    }

    /// What `slot` has accepted, if anything.
    pub fn accepted(&self, slot: u64) -> Option<&Accepted> {
        self.slots.get(&slot).and_then(|s| s.accepted.as_ref())
    }

    /// Every accepted slot at or above `from`, in slot order.
    pub fn accepted_from(&self, from: u64) -> impl Iterator<Item = (u64, &Accepted)> {
        self.slots.range(from..).filter_map(|(&slot, s)| s.accepted.as_ref().map(|a| (slot, a)))
    }

    /// The highest slot this acceptor holds any state for.
    pub fn last_slot(&self) -> u64 {
        self.slots.keys().next_back().copied().unwrap_or(0)
    }

    /// Phase 1b for one slot (Basic Paxos). Promises `ballot` if no higher
    /// ballot was promised, answering with the highest proposal accepted;
    /// otherwise returns the higher promise, for the proposer's Nack.
    pub fn prepare_slot(&mut self, slot: u64, ballot: Ballot) -> Result<Option<Accepted>, Ballot> {
        let promised = self.promised(slot);
        // Paxos Made Simple §2.3 (1a/1b): promise only a ballot at least as high as any promised.
        if ballot < promised {
            return Err(promised);
        }
        let state = self.slots.entry(slot).or_default();
        if ballot > state.promised {
            state.promised = ballot;
            self.promise_dirty = true;
        }
        Ok(state.accepted.clone())
    }

    /// Phase 1b for every slot at once (Multi-Paxos): promises `ballot` for all
    /// slots and answers with everything accepted at or above `from`.
    pub fn prepare_all(&mut self, ballot: Ballot, from: u64) -> Result<Vec<(u64, Accepted)>, Ballot> {
        if ballot < self.promised_all {
            return Err(self.promised_all);
        }
        if ballot > self.promised_all {
            self.promised_all = ballot;
            self.promise_dirty = true;
        }
        Ok(self.accepted_from(from).map(|(slot, a)| (slot, a.clone())).collect())
    }

    /// Raises the promise for every slot to `ballot` (a Multi-Paxos acceptor
    /// hearing from a leader); fails with the higher promise if there is one.
    pub fn follow(&mut self, ballot: Ballot) -> Result<(), Ballot> {
        if ballot < self.promised_all {
            return Err(self.promised_all);
        }
        if ballot > self.promised_all {
            self.promised_all = ballot;
            self.promise_dirty = true;
        }
        Ok(())
    }

    /// Phase 2b: accepts `value` in `ballot` for `slot` unless a higher ballot
    /// was promised (Paxos Made Simple §2.3 (2b)); returns that promise if so.
    pub fn accept(&mut self, slot: u64, ballot: Ballot, value: Payload) -> Result<(), Ballot> {
        let promised = self.promised(slot);
        if ballot < promised {
            return Err(promised);
        }
        let state = self.slots.entry(slot).or_default();
        if let Some(previous) = &state.accepted {
            // Proposal numbers are unique and one proposer sends one value per
            // ballot: a second value in the same ballot means a broken proposer.
            assert!(
                previous.ballot != ballot || previous.value == value,
                "slot {slot}: ballot {ballot:?} carried two values ({:?} then {value:?})",
                previous.value
            );
            if previous.ballot == ballot {
                return Ok(());
            }
        }
        if ballot > state.promised && ballot > self.promised_all {
            state.promised = ballot;
            self.promise_dirty = true;
        }
        state.accepted = Some(Accepted { ballot, value: value.clone() });
        self.dirty_entries.insert(slot, Entry { index: slot, stamp: ballot.stamp(), payload: value.clone() });
        self.unflushed_votes.push(Vote { slot, ballot, value });
        Ok(())
    }

    /// Records a value known to be chosen in `ballot` (learned, not voted for),
    /// so that storage holds the chosen value of every committed slot.
    /// Safe: every proposal in a ballot at or above the chosen one carries the
    /// chosen value (P2b), so reporting it can never steer a proposer wrong.
    pub fn learn(&mut self, slot: u64, ballot: Ballot, value: &Payload) {
        let state = self.slots.entry(slot).or_default();
        if let Some(previous) = &state.accepted {
            if previous.value == *value {
                return;
            }
            assert!(
                previous.ballot < ballot,
                "slot {slot}: accepted {:?} in {:?} at or above the ballot {ballot:?} that chose {value:?}",
                previous.value,
                previous.ballot
            );
        }
        state.accepted = Some(Accepted { ballot, value: value.clone() });
        self.dirty_entries.insert(slot, Entry { index: slot, stamp: ballot.stamp(), payload: value.clone() });
    }

    /// Drops in-memory state for slots at or below `slot` (committed and no
    /// longer needed by Phase 1). Storage keeps the entries.
    pub fn forget_upto(&mut self, slot: u64) {
        let had_promises = self.slots.range(..=slot).any(|(_, s)| s.promised > self.promised_all);
        self.slots = self.slots.split_off(&(slot + 1));
        if had_promises {
            self.promise_dirty = true;
        }
    }

    /// Takes what must be written: whether the promises changed, and the
    /// entries that changed. The votes among them count once write `tag` is durable.
    pub fn flush(&mut self, tag: u64) -> (bool, Vec<Entry>) {
        let promise_changed = std::mem::take(&mut self.promise_dirty);
        let entries: Vec<Entry> = std::mem::take(&mut self.dirty_entries).into_values().collect();
        let votes = std::mem::take(&mut self.unflushed_votes);
        if !votes.is_empty() {
            self.unpersisted_votes.push_back((tag, votes));
        }
        (promise_changed, entries)
    }

    /// True when [`Acceptor::flush`] has something to write.
    pub fn is_dirty(&self) -> bool {
        self.promise_dirty || !self.dirty_entries.is_empty()
    }

    /// Write `tag` (and every write before it) is durable: its votes now count.
    pub fn persisted(&mut self, tag: u64) {
        while self.unpersisted_votes.front().is_some_and(|(t, _)| *t <= tag) {
            let (_, votes) = self.unpersisted_votes.pop_front().expect("checked non-empty");
            for vote in votes {
                self.journal.record(vote);
            }
        }
    }

    /// The durable votes of this incarnation.
    pub fn journal(&self) -> &VoteJournal {
        &self.journal
    }

    /// Test hook: records a durable vote without running the protocol.
    #[doc(hidden)]
    pub fn plant_vote(&mut self, vote: Vote) {
        self.journal.record(vote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::NodeId;

    fn b(round: u64, node: u64) -> Ballot {
        Ballot::new(round, NodeId(node))
    }

    #[test]
    fn a_promise_rejects_lower_ballots_and_reports_the_highest_accepted() {
        let mut a = Acceptor::new();
        assert_eq!(a.prepare_slot(1, b(1, 1)), Ok(None));
        a.accept(1, b(1, 1), Payload::Noop).unwrap();
        assert_eq!(a.prepare_slot(1, b(2, 2)), Ok(Some(Accepted { ballot: b(1, 1), value: Payload::Noop })));
        assert_eq!(a.accept(1, b(1, 1), Payload::Noop), Err(b(2, 2)));
        assert_eq!(a.prepare_slot(1, b(1, 3)), Err(b(2, 2)));
        // Other slots are independent in Basic Paxos.
        assert_eq!(a.prepare_slot(2, b(1, 3)), Ok(None));
    }

    #[test]
    fn a_promise_for_all_slots_covers_slots_never_seen() {
        let mut a = Acceptor::new();
        a.accept(3, b(1, 1), Payload::Noop).unwrap();
        let reported = a.prepare_all(b(2, 2), 2).unwrap();
        assert_eq!(reported.len(), 1);
        assert_eq!(a.accept(9, b(1, 1), Payload::Noop), Err(b(2, 2)));
        assert_eq!(a.follow(b(1, 3)), Err(b(2, 2)));
        assert_eq!(a.follow(b(3, 1)), Ok(()));
    }

    #[test]
    fn votes_count_only_once_their_write_is_durable() {
        let mut a = Acceptor::new();
        a.accept(1, b(1, 1), Payload::Noop).unwrap();
        let (promise_changed, entries) = a.flush(7);
        assert!(promise_changed);
        assert_eq!(entries.len(), 1);
        assert_eq!(a.journal().total(), 0);
        a.persisted(6);
        assert_eq!(a.journal().total(), 0);
        a.persisted(7);
        assert_eq!(a.journal().since(0).count(), 1);
    }

    #[test]
    fn recovery_restores_promises_and_accepted_values() {
        let mut a = Acceptor::new();
        a.prepare_slot(4, b(5, 2)).unwrap();
        a.accept(2, b(1, 1), Payload::Noop).unwrap();
        let (_, entries) = a.flush(1);
        let r = Acceptor::recover(a.promised_all(), &a.slot_promises(), &entries);
        assert_eq!(r.promised(4), b(5, 2));
        assert_eq!(r.accepted(2).map(|x| x.ballot), Some(b(1, 1)));
        assert_eq!(r.promised(2), b(1, 1));
    }
}
