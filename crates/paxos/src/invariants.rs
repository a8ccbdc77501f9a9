//! The safety property of Paxos, checked from outside: at most one value is
//! ever chosen per slot.
//!
//! "Chosen" is defined on acceptor state, not on what learners believe: a
//! value is chosen in a slot once a majority of acceptors have (durably)
//! accepted it in the same ballot. The checker reads every durable vote each
//! acceptor casts, across the whole run and across crashes, keeps every
//! `(slot, ballot) -> value, voters` it has seen, and fails the moment a second
//! value reaches a majority in some slot, or one ballot carries two values.

use crate::Ballot;
use quorum_core::{Instant, Majority, NodeId, Payload, StepInvariant};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug)]
struct BallotVotes {
    value: Payload,
    voters: BTreeSet<NodeId>,
}

/// "At most one value is chosen per slot", checked on the acceptors' votes.
#[derive(Debug, Default)]
pub struct OneValuePerSlot {
    votes: HashMap<(u64, Ballot), BallotVotes>,
    chosen: HashMap<u64, (Ballot, Payload)>,
    /// Per node: (boot id, votes already read).
    cursors: HashMap<NodeId, (u64, u64)>,
}

impl OneValuePerSlot {
    /// A checker that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Slots seen chosen so far.
    pub fn chosen_slots(&self) -> usize {
        self.chosen.len()
    }

    /// Reads the new votes of node `id`.
    pub fn observe<P: crate::outbox::Stepped>(
        &mut self,
        id: NodeId,
        node: &P,
        cluster_size: usize,
    ) -> Result<(), String> {
        let journal = node.acceptor().journal();
        let cursor = self.cursors.entry(id).or_insert((node.acceptor().boot_id(), 0));
        if cursor.0 != node.acceptor().boot_id() || cursor.1 > journal.total() {
            *cursor = (node.acceptor().boot_id(), 0);
        }
        let from = cursor.1;
        cursor.1 = journal.total();
        for vote in journal.since(from) {
            let entry = self
                .votes
                .entry((vote.slot, vote.ballot))
                .or_insert_with(|| BallotVotes { value: vote.value.clone(), voters: BTreeSet::new() });
            if entry.value != vote.value {
                return Err(format!(
                    "slot {}: ballot {:?} carried two values: {:?} and {:?} ({id} voted for the second)",
                    vote.slot, vote.ballot, entry.value, vote.value
                ));
            }
            entry.voters.insert(id);
            if !Majority::of(cluster_size).is_reached(entry.voters.len()) {
                continue;
            }
            match self.chosen.get(&vote.slot) {
                Some((ballot, value)) if *value != vote.value => {
                    return Err(format!(
                        "slot {}: two values chosen: {value:?} in {ballot:?} and {:?} in {:?} (voters {:?})",
                        vote.slot, vote.value, vote.ballot, entry.voters
                    ));
                }
                Some(_) => {}
                None => {
                    self.chosen.insert(vote.slot, (vote.ballot, vote.value.clone()));
                }
            }
        }
        Ok(())
    }
}

/// Only the node that stepped can have cast new votes.
impl<P: crate::outbox::Stepped + quorum_core::Protocol> StepInvariant<P> for OneValuePerSlot {
    const NAME: &'static str = "one value chosen per slot";

    fn check_stepped(&mut self, _now: Instant, node: &P, nodes: &[Option<&P>]) -> Result<(), String> {
        self.observe(node.status().id, node, nodes.len())
    }
}
