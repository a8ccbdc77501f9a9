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
use quorum_core::{check_single_change, Instant, Membership, NodeId, Payload, StepInvariant};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug)]
struct BallotVotes {
    value: Payload,
    voters: BTreeSet<NodeId>,
}

/// "At most one value is chosen per slot", checked on the acceptors' votes.
///
/// A slot's votes count only from the voters of the configuration that
/// governs it: the one chosen in the highest slot below it that holds a
/// membership (Multi-Paxos's changes), or the founding members `1..=n`. A
/// vote from a learner or a removed node never makes a value chosen. When a
/// configuration is chosen, the checker also checks that it changes at most
/// one voter of the one it replaces (so their majorities overlap), and judges
/// again the votes already cast in the slots it governs. A configuration
/// not made from the one in force where it is chosen is void
/// ([`Membership::follows`]), as it is for the protocol.
#[derive(Debug, Default)]
pub struct OneValuePerSlot {
    votes: BTreeMap<(u64, Ballot), BallotVotes>,
    chosen: HashMap<u64, (Ballot, Payload)>,
    /// Configurations seen chosen, by slot; `founding` before the first.
    configs: BTreeMap<u64, Membership>,
    founding: Option<Membership>,
    /// Per node: (boot id, votes already read).
    cursors: HashMap<NodeId, (u64, u64)>,
    /// Per node: the commit point already checked.
    committed: HashMap<NodeId, u64>,
    /// The checker began after some node had committed: shown a state
    /// mid-run (as the model checker shows each one to a fresh checker), it
    /// never saw the votes that chose those slots (forgotten once committed,
    /// or on a crashed node's disk), so it judges what was chosen but not
    /// what was committed.
    late: bool,
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

    /// Configurations seen chosen so far.
    pub fn chosen_configs(&self) -> usize {
        self.configs.len()
    }

    /// The configuration whose voters decide `slot`.
    fn governing(&self, slot: u64) -> &Membership {
        self.configs
            .range(..slot)
            .next_back()
            .map(|(_, m)| m)
            .or(self.founding.as_ref())
            .expect("the founding members are set before any vote is read")
    }

    /// The founding configuration, if not every node `1..=n` votes from the
    /// start (the first one given counts).
    pub fn founded(&mut self, founding: &Membership) {
        self.founding.get_or_insert_with(|| founding.clone());
    }

    /// Reads the new votes of node `id`.
    pub fn observe<P: crate::outbox::Stepped>(
        &mut self,
        id: NodeId,
        node: &P,
        cluster_size: usize,
    ) -> Result<(), String> {
        self.founding.get_or_insert_with(|| Membership {
            voters: (1..=cluster_size as u64).map(NodeId).collect(),
            ..Membership::default()
        });
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
            self.judge(vote.slot, vote.ballot)?;
        }
        Ok(())
    }

    /// A node commits only what is chosen: every slot up to its commit
    /// point has a value that a majority of its configuration's voters
    /// accepted in one ballot (their votes are durable before anyone
    /// hears of them, so the checker has read them already). A leader
    /// that counted a learner's vote, or a removed node's, fails here at
    /// once, before any other node could disagree with it.
    pub fn check_committed(&mut self, id: NodeId, committed: u64) -> Result<(), String> {
        let seen = self.committed.entry(id).or_insert(0);
        let from = if committed < *seen { committed } else { *seen }; // restarted with an older commit point
        *seen = committed;
        match (from + 1..=committed).find(|slot| !self.chosen.contains_key(slot)) {
            Some(_) if self.late => Ok(()),
            Some(slot) => Err(format!(
                "{id} committed slot {slot}, but no majority of the voters {:?} that decide it accepted one value there",
                self.governing(slot).voters
            )),
            None => Ok(()),
        }
    }

    /// Decides whether the votes in `slot` and `ballot` choose their value,
    /// and if they choose a configuration, judges again the slots it governs.
    fn judge(&mut self, slot: u64, ballot: Ballot) -> Result<(), String> {
        let entry = &self.votes[&(slot, ballot)];
        let governing = self.governing(slot);
        if !governing.is_quorum(&entry.voters) {
            return Ok(());
        }
        match self.chosen.get(&slot) {
            Some((chosen_in, value)) if *value != entry.value => Err(format!(
                "slot {slot}: two values chosen: {value:?} in {chosen_in:?} and {:?} in {ballot:?} (voters {:?} of {:?})",
                entry.value, entry.voters, governing.voters
            )),
            Some(_) => Ok(()),
            None => {
                let value = entry.value.clone();
                self.chosen.insert(slot, (ballot, value.clone()));
                let Payload::Membership(config) = value else { return Ok(()) };
                let governing = self.governing(slot);
                if !config.follows(governing) {
                    return Ok(()); // void: not made from the configuration in force here
                }
                // Started mid-run (the model checker shows each state to a
                // fresh checker), it may have missed a configuration chosen
                // in between, whose votes are forgotten: then the one this
                // follows is not known for sure, and no verdict is given.
                match check_single_change(governing, &config) {
                    Err(why) if !self.late => {
                        return Err(format!(
                            "slot {slot}: configuration {:?} chosen after {:?}: {why} (their majorities need not overlap)",
                            config.voters, governing.voters
                        ));
                    }
                    _ => {}
                }
                self.configs.insert(slot, config);
                let above: Vec<(u64, Ballot)> = self.votes.range((slot + 1, Ballot::ZERO)..).map(|(k, _)| *k).collect();
                for (s, b) in above {
                    self.judge(s, b)?;
                }
                Ok(())
            }
        }
    }
}

/// Reads every node's new votes, then checks what the stepped node committed.
impl<P: crate::outbox::Stepped + quorum_core::Protocol> StepInvariant<P> for OneValuePerSlot {
    const NAME: &'static str = "one value chosen per slot";

    fn founders(&mut self, voters: &[NodeId]) {
        self.founded(&Membership { voters: voters.to_vec(), ..Membership::default() });
    }

    fn check_stepped(&mut self, _now: Instant, node: &P, nodes: &[Option<&P>]) -> Result<(), String> {
        // Every node starts with the founding configuration (epoch 0), so
        // the first one to step shows it, if the protocol has one.
        if let Some(founding) = node.membership().filter(|m| m.epoch == 0) {
            self.founded(founding);
        }
        // Every node's new votes, not only the stepped one's: a driver need
        // not check after the step that made a vote durable (the model
        // checker's disk syncs), and the commit below must see that vote.
        for (i, other) in nodes.iter().enumerate() {
            let id = NodeId(i as u64 + 1); // drivers index node n at n - 1
            if other.is_some_and(|other| !self.cursors.contains_key(&id) && other.committed() > 0) {
                self.late = true;
            }
        }
        for (i, other) in nodes.iter().enumerate() {
            let id = NodeId(i as u64 + 1);
            if let Some(other) = other {
                self.observe(id, *other, nodes.len())?;
            }
        }
        self.check_committed(node.status().id, node.committed())
    }
}
