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
use quorum_core::{Entry, Payload, WriteQueue};
use std::collections::{BTreeMap, VecDeque};
use tracing::warn;

/// A proposal an acceptor has accepted: the ballot and its value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    /// The ballot the value was accepted in.
    pub ballot: Ballot,
    /// The value.
    pub value: Payload,
}

/// One durable vote: an acceptor accepted `value` in `ballot` for `slot`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
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
#[derive(Clone, Debug, Hash, Default)]
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

#[derive(Clone, Debug, Hash, Default)]
struct SlotState {
    promised: Ballot,
    accepted: Option<Accepted>,
}

/// The acceptor of every slot at one node.
#[derive(Clone, Debug, Hash, Default)]
pub struct Acceptor {
    promised_all: Ballot,
    slots: BTreeMap<u64, SlotState>,
    promise_dirty: bool,
    dirty_entries: BTreeMap<u64, Entry>,
    unflushed_votes: Vec<Vote>,
    unpersisted_votes: WriteQueue<Vec<Vote>>,
    journal: VoteJournal,
    /// Which incarnation of the node this is (a checker reading the journal
    /// starts over when it changes).
    boot: u64,
    /// Planted bug: `learn` keeps the older stamp of an equal value.
    #[cfg(feature = "planted-bugs")]
    planted_keep_older_stamp: bool,
}

impl Acceptor {
    /// An acceptor that has promised nothing and accepted nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the acceptor from storage: the promise for every slot, the
    /// per-slot promises, and the accepted entries.
    /// `boot` names this incarnation (see [`Acceptor::boot_id`]).
    pub fn recover(boot: u64, promised_all: Ballot, slot_promises: &[(u64, Ballot)], entries: &[Entry]) -> Self {
        let mut acceptor = Acceptor { promised_all, boot, ..Default::default() };
        for &(slot, ballot) in slot_promises {
            acceptor.slots.entry(slot).or_default().promised = ballot;
        }
        for e in entries {
            let ballot = Ballot::from_stamp(e.stamp);
            let state = acceptor.slots.entry(e.index).or_default();
            state.accepted = Some(Accepted { ballot, value: e.payload.clone() });
            // Durable votes still, though cast by an earlier incarnation: an
            // Accept sent again in the same ballot is answered from them,
            // with no new write (a crash may also have kept a write whose
            // vote the journal of that incarnation never recorded).
            acceptor.journal.record(Vote { slot: e.index, ballot, value: e.payload.clone() });
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
    /// The votes are read as the caller goes (a promise may report only a
    /// page of them).
    pub fn prepare_all(
        &mut self,
        ballot: Ballot,
        from: u64,
    ) -> Result<impl Iterator<Item = (u64, &Accepted)> + '_, Ballot> {
        if ballot < self.promised_all {
            return Err(self.promised_all);
        }
        if ballot > self.promised_all {
            self.promised_all = ballot;
            self.promise_dirty = true;
        }
        Ok(self.accepted_from(from))
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
    ///
    /// A value this acceptor holds in a higher ballot (a value it learned was
    /// chosen, recorded by [`Acceptor::learn`]) counts as a promise of that
    /// ballot: an Accept below it is refused with that ballot, so a stale
    /// Accept never replaces a value known chosen. An Accept that carries a
    /// second value in a ballot this slot already holds another value for
    /// breaks Paxos's premise that one ballot carries one value; it comes from
    /// a peer, so it is refused (not a panic) with `Err(ballot)` itself: an
    /// `Err(p)` with `p == ballot` means "malformed", `p > ballot` "promised higher".
    pub fn accept(&mut self, slot: u64, ballot: Ballot, value: Payload) -> Result<(), Ballot> {
        let promised = self.promised(slot);
        if ballot < promised {
            return Err(promised);
        }
        if let Some(previous) = self.accepted(slot) {
            if ballot < previous.ballot {
                return Err(previous.ballot);
            }
            if previous.ballot == ballot {
                if previous.value == value {
                    return Ok(()); // a duplicate
                }
                warn!(slot, ?ballot, held = ?previous.value, offered = ?value, "two values in one ballot: refused");
                return Err(ballot);
            }
        }
        self.store_vote(slot, ballot, value);
        Ok(())
    }

    fn store_vote(&mut self, slot: u64, ballot: Ballot, value: Payload) {
        let state = self.slots.entry(slot).or_default();
        if ballot > state.promised && ballot > self.promised_all {
            state.promised = ballot;
            self.promise_dirty = true;
        }
        state.accepted = Some(Accepted { ballot, value: value.clone() });
        self.dirty_entries.insert(slot, Entry { index: slot, stamp: ballot.stamp(), payload: value.clone() });
        self.unflushed_votes.push(Vote { slot, ballot, value });
    }

    /// Test hook for planted bugs: Phase 2b without the checks that protect a
    /// value known chosen (the old behaviour of [`Acceptor::accept`]).
    #[cfg(feature = "planted-bugs")]
    #[doc(hidden)]
    pub fn accept_over_anything(&mut self, slot: u64, ballot: Ballot, value: Payload) -> Result<(), Ballot> {
        let promised = self.promised(slot);
        if ballot < promised {
            return Err(promised);
        }
        if self.accepted(slot).is_some_and(|a| a.ballot == ballot) {
            return Ok(());
        }
        self.store_vote(slot, ballot, value);
        Ok(())
    }

    /// Records a value known to be chosen in `ballot` (learned, not voted for),
    /// so that storage holds the chosen value of every committed slot.
    /// Safe: every proposal in a ballot at or above the chosen one carries the
    /// chosen value (P2b), so reporting it can never steer a proposer wrong.
    ///
    /// The slot keeps the highest ballot known for it: a value already held
    /// with the same value in a lower ballot is raised to `ballot` (a
    /// restarted node recovers the chosen ballot from the stamp, and a stamp
    /// below the real chosen ballot would let a leader of a ballot in between
    /// take the decision for one of its own). `ballot` comes from a peer and
    /// may be older than a vote held here for another value (a node that
    /// learned the value before this fix, with the stamp of its own older
    /// vote); that is not this node's inconsistency, so it is logged, and the
    /// chosen value is stored with the higher of the two ballots.
    pub fn learn(&mut self, slot: u64, ballot: Ballot, value: &Payload) {
        let keep_older = self.keeps_older_stamp();
        let state = self.slots.entry(slot).or_default();
        let ballot = match &state.accepted {
            Some(previous) if previous.value == *value && (previous.ballot >= ballot || keep_older) => return,
            Some(previous) if previous.value != *value && previous.ballot >= ballot => {
                warn!(slot, ?ballot, held = ?previous.ballot, "learned a value chosen in a ballot below a vote for another value");
                previous.ballot
            }
            _ => ballot,
        };
        state.accepted = Some(Accepted { ballot, value: value.clone() });
        self.dirty_entries.insert(slot, Entry { index: slot, stamp: ballot.stamp(), payload: value.clone() });
    }

    /// Test hook for planted bugs: `learn` keeps the older stamp of a value it
    /// already holds (the old behaviour), so a restarted node recovers a
    /// chosen ballot below the real one.
    #[cfg(feature = "planted-bugs")]
    #[doc(hidden)]
    pub fn plant_keep_older_stamp(&mut self) {
        self.planted_keep_older_stamp = true;
    }

    #[cfg(feature = "planted-bugs")]
    fn keeps_older_stamp(&self) -> bool {
        self.planted_keep_older_stamp
    }

    #[cfg(not(feature = "planted-bugs"))]
    fn keeps_older_stamp(&self) -> bool {
        false
    }

    /// Drops in-memory state for slots at or below `slot` (committed and no
    /// longer needed by Phase 1). Storage keeps the entries.
    pub fn forget_upto(&mut self, slot: u64) {
        let had_promises = self.slots.range(..=slot).any(|(_, s)| s.promised > self.promised_all);
        self.slots = match slot.checked_add(1) {
            Some(next) => self.slots.split_off(&next),
            None => BTreeMap::new(),
        };
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
            self.unpersisted_votes.hold(tag, votes);
        }
        (promise_changed, entries)
    }

    /// True when [`Acceptor::flush`] has something to write.
    pub fn is_dirty(&self) -> bool {
        self.promise_dirty || !self.dirty_entries.is_empty()
    }

    /// Write `tag` (and every write before it) is durable: its votes now count.
    pub fn persisted(&mut self, tag: u64) {
        for vote in self.unpersisted_votes.persisted(tag).flatten() {
            self.journal.record(vote);
        }
    }

    /// The incarnation this acceptor was recovered in: it changes at every
    /// restart, and with it the journal starts empty.
    pub fn boot_id(&self) -> u64 {
        self.boot
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
        assert_eq!(a.prepare_all(b(2, 2), 2).unwrap().count(), 1);
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
        let r = Acceptor::recover(0, a.promised_all(), &a.slot_promises(), &entries);
        assert_eq!(r.promised(4), b(5, 2));
        assert_eq!(r.accepted(2).map(|x| x.ballot), Some(b(1, 1)));
        assert_eq!(r.promised(2), b(1, 1));
    }

    #[test]
    fn a_value_learned_in_a_higher_ballot_refuses_lower_accepts_and_keeps_the_highest_ballot() {
        let mut a = Acceptor::new();
        let (x, y) =
            (Payload::Noop, Payload::Command(quorum_core::Command::new(quorum_core::ClientId(1), 1, &b"y"[..])));
        a.accept(1, b(1, 1), x.clone()).unwrap();
        // Learned chosen in b3: the stamp rises to the higher ballot.
        a.learn(1, b(3, 3), &x);
        assert_eq!(a.accepted(1).map(|v| v.ballot), Some(b(3, 3)));
        // An older report of the same value does not lower it.
        a.learn(1, b(1, 1), &x);
        assert_eq!(a.accepted(1).map(|v| v.ballot), Some(b(3, 3)));
        // A stale Accept below the learned ballot is refused with that ballot.
        assert_eq!(a.accept(1, b(2, 2), y.clone()), Err(b(3, 3)));
        assert_eq!(a.accepted(1).map(|v| v.value.clone()), Some(x.clone()));
        // A second value in one ballot is refused with the ballot itself.
        a.accept(2, b(4, 1), x.clone()).unwrap();
        assert_eq!(a.accept(2, b(4, 1), y.clone()), Err(b(4, 1)));
        assert_eq!(a.accept(2, b(4, 1), x.clone()), Ok(()), "a duplicate");
        // A report naming a ballot below a vote for another value: stored with the higher ballot.
        a.accept(3, b(5, 2), y).unwrap();
        a.learn(3, b(4, 1), &x);
        assert_eq!(a.accepted(3), Some(&Accepted { ballot: b(5, 2), value: x }));
    }
}
