//! The learner: finds out which values are chosen and hands them over in slot order.
//!
//! "Paxos Made Simple" §2.4: a value is chosen once a majority of acceptors
//! accepted it in one ballot. [`Tally`] counts the `Accepted` answers of one
//! ballot; a proposer that completes a tally has learned the value and spreads
//! it (`Decided`), so other learners need not count. [`Learner`] keeps what is
//! known chosen and emits `Effect::Commit` strictly in slot order, each slot
//! once per incarnation, holding back slots behind a hole until it is filled.

use crate::{message::Chosen, Ballot};
use quorum_core::{Effects, Entry, Majority, NodeId, Payload};
use std::collections::{BTreeMap, BTreeSet};

/// The acceptors that accepted one value in one ballot.
#[derive(Clone, Debug, Hash)]
pub struct Tally {
    ballot: Ballot,
    voters: BTreeSet<NodeId>,
    cluster_size: usize,
}

impl Tally {
    /// An empty count for `ballot` in a cluster of `cluster_size` acceptors.
    pub fn new(ballot: Ballot, cluster_size: usize) -> Self {
        Tally { ballot, voters: BTreeSet::new(), cluster_size }
    }

    /// Counts `voter` (once, however often its answer is duplicated); true
    /// once a majority accepted in this ballot.
    pub fn add(&mut self, ballot: Ballot, voter: NodeId) -> bool {
        assert_eq!(ballot, self.ballot, "votes of different ballots never add up");
        self.voters.insert(voter);
        self.is_majority()
    }

    /// True once a majority voted.
    pub fn is_majority(&self) -> bool {
        Majority::of(self.cluster_size).is_reached(self.voters.len())
    }

    /// Who voted so far.
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }
}

/// What one node knows is chosen, and how far it has handed it over.
#[derive(Clone, Debug, Hash)]
pub struct Learner {
    chosen: BTreeMap<u64, (Ballot, Payload)>,
    committed: u64,
    first_held: u64,
}

impl Default for Learner {
    /// A learner that knows nothing; the first slot is 1 (slot 0 is never
    /// chosen: a peer that reports it is not news).
    fn default() -> Self {
        Self::starting_after(0)
    }
}

impl Learner {
    /// A learner that knows nothing; the first slot is 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// A learner that will hand over nothing at or below `base` (a snapshot
    /// covers it) and resumes at `base + 1`.
    pub fn starting_after(base: u64) -> Self {
        Learner { chosen: BTreeMap::new(), committed: base, first_held: base + 1 }
    }

    /// Records that `value` was chosen for `slot` in `ballot`. Returns true if
    /// this is news. A slot already known keeps the highest ballot it was
    /// reported chosen in (see [`crate::Acceptor::learn`]). Two different values
    /// for one slot is the one thing Paxos exists to prevent, so it panics:
    /// a caller passing a value from a peer checks [`Learner::conflict`] first
    /// and drops the message instead.
    pub fn learn(&mut self, slot: u64, ballot: Ballot, value: Payload) -> bool {
        if slot <= self.committed && slot < self.first_held {
            return false;
        }
        if let Some((known_ballot, known)) = self.chosen.get_mut(&slot) {
            assert_eq!(*known, value, "slot {slot}: two different values chosen");
            *known_ballot = (*known_ballot).max(ballot);
            return false;
        }
        assert!(slot > self.committed, "slot {slot} committed without being learned");
        self.chosen.insert(slot, (ballot, value));
        true
    }

    /// The value known chosen for `slot`, if it differs from `value`: a peer
    /// that reports `value` chosen there is wrong (or this node is).
    pub fn conflict(&self, slot: u64, value: &Payload) -> Option<&Payload> {
        self.chosen.get(&slot).map(|(_, known)| known).filter(|known| *known != value)
    }

    /// The value chosen for `slot`, if known here.
    pub fn chosen(&self, slot: u64) -> Option<(Ballot, &Payload)> {
        self.chosen.get(&slot).map(|(b, v)| (*b, v))
    }

    /// The values known chosen from slot `from` on, in slot order.
    pub fn chosen_above(&self, from: u64) -> impl Iterator<Item = (u64, (Ballot, &Payload))> {
        self.chosen.range(from..).map(|(slot, (ballot, value))| (*slot, (*ballot, value)))
    }

    /// The highest slot handed over: every slot up to it is chosen and known.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// The highest slot known chosen (there may be holes below it).
    pub fn highest_chosen(&self) -> u64 {
        self.chosen.keys().next_back().copied().unwrap_or(0).max(self.committed)
    }

    /// The first slot above the commit point not known chosen: where a
    /// catch-up request starts (values known but not yet handed over are not
    /// asked for again).
    pub fn first_unknown(&self) -> u64 {
        let mut next = self.committed + 1;
        for &slot in self.chosen.range(next..).map(|(slot, _)| slot) {
            if slot != next {
                break;
            }
            next += 1;
        }
        next
    }

    /// True when the next slot is known and can be handed over.
    pub fn has_ready(&self) -> bool {
        self.chosen.contains_key(&(self.committed + 1))
    }

    /// Emits every slot that is now contiguous with the committed prefix, in
    /// order; returns the entries emitted.
    pub fn commit_ready<M>(&mut self, out: &mut Effects<M>) -> Vec<Entry> {
        let mut emitted = Vec::new();
        while let Some((ballot, value)) = self.chosen.get(&(self.committed + 1)) {
            self.committed += 1;
            let entry = Entry { index: self.committed, stamp: ballot.stamp(), payload: value.clone() };
            out.commit(entry.clone());
            emitted.push(entry);
        }
        emitted
    }

    /// [`Learner::commit_ready`], then lets `acceptor` forget its votes up to
    /// the last slot emitted: a committed slot needs no vote kept (a peer
    /// that asks learns the value from the learner).
    pub fn commit_ready_forgetting<M>(&mut self, acceptor: &mut crate::Acceptor, out: &mut Effects<M>) {
        if let Some(last) = self.commit_ready(out).last() {
            tracing::trace!(upto = last.index, "committed");
            acceptor.forget_upto(last.index);
        }
    }

    /// Up to `max` chosen values from `from` on that this learner still holds.
    pub fn chosen_from(&self, from: u64, max: usize) -> Vec<Chosen> {
        self.chosen
            .range(from..)
            .take(max)
            .map(|(&slot, (ballot, value))| Chosen { slot, ballot: *ballot, value: value.clone() })
            .collect()
    }

    /// Like [`Learner::chosen_from`], and also at most `max_bytes` of encoded
    /// values, so that a catch-up answer fits a peer frame. One value always
    /// goes: it fitted the Accept that carried it.
    pub fn chosen_within(&self, from: u64, max: usize, max_bytes: usize) -> Vec<Chosen> {
        let mut chosen = self.chosen_from(from, max);
        let keep = quorum_core::batch::fitting(chosen.iter().map(quorum_core::batch::encoded_len), max, max_bytes);
        chosen.truncate(keep);
        chosen
    }

    /// Forgets values at or below `slot` (they are in a snapshot). Only
    /// committed slots may be forgotten.
    pub fn forget_upto(&mut self, slot: u64) {
        assert!(slot <= self.committed, "cannot forget slot {slot} above the commit point {}", self.committed);
        self.chosen = split_above(&mut self.chosen, slot);
        self.first_held = self.first_held.max(slot.saturating_add(1));
    }

    /// Jumps the committed prefix to `index` (a snapshot was installed).
    pub fn skip_to(&mut self, index: u64) {
        assert!(index >= self.committed, "commit point never moves back");
        self.committed = index;
        self.first_held = index.saturating_add(1);
        self.chosen = split_above(&mut self.chosen, index);
    }
}

/// The entries of `map` above `slot` (none when `slot` is the largest key there can be).
fn split_above<V>(map: &mut BTreeMap<u64, V>, slot: u64) -> BTreeMap<u64, V> {
    match slot.checked_add(1) {
        Some(next) => map.split_off(&next),
        None => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_leave_in_slot_order_and_wait_for_holes() {
        let mut learner = Learner::new();
        let mut out: Effects<()> = Effects::new();
        let b = Ballot::new(1, NodeId(1));
        learner.learn(2, b, Payload::Noop);
        assert!(learner.commit_ready(&mut out).is_empty());
        learner.learn(1, b, Payload::Noop);
        let emitted = learner.commit_ready(&mut out);
        assert_eq!(emitted.iter().map(|e| e.index).collect::<Vec<_>>(), vec![1, 2]);
        assert!(!learner.learn(2, b, Payload::Noop), "a duplicate is not news");
        assert!(learner.commit_ready(&mut out).is_empty());
    }

    #[test]
    fn slot_zero_from_a_peer_is_not_news_and_does_not_trip_an_assertion() {
        // Found by the hostile profile (a corrupted message named slot 0):
        // a fresh learner held "from slot 0" and panicked on it.
        let mut learner = Learner::new();
        assert!(!learner.learn(0, Ballot::new(1, NodeId(1)), Payload::Noop));
        assert_eq!(learner.committed(), 0);
    }

    #[test]
    fn a_tally_needs_a_majority_of_distinct_voters() {
        let b = Ballot::new(1, NodeId(1));
        let mut tally = Tally::new(b, 5);
        assert!(!tally.add(b, NodeId(1)));
        assert!(!tally.add(b, NodeId(1)));
        assert!(!tally.add(b, NodeId(2)));
        assert!(tally.add(b, NodeId(3)));
    }

    #[test]
    #[should_panic(expected = "two different values chosen")]
    fn learning_two_values_for_one_slot_panics() {
        let mut learner = Learner::new();
        let b = Ballot::new(1, NodeId(1));
        learner.learn(1, b, Payload::Noop);
        let cmd = quorum_core::Command::new(quorum_core::ClientId(1), 1, &b"x"[..]);
        learner.learn(1, b, Payload::Command(cmd));
    }
}
