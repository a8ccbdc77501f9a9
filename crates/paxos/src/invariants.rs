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
/// A slot's votes in a ballot count only from the voters of the
/// configuration that governs the slot for that ballot: the one chosen in
/// the highest slot below it that holds a membership (Multi-Paxos's
/// changes) *in that ballot or an older one*, or the founding members
/// `1..=n`. A vote from a learner or a removed node never makes a value
/// chosen. When a configuration is chosen, the checker also checks that it
/// changes at most one voter of the one it replaces (so their majorities
/// overlap), and judges again the votes already cast in the slots it
/// governs, in ballots at or above the one that chose it. A configuration
/// not made from the one in force where it is chosen is void
/// ([`Membership::follows`]), as it is for the protocol.
///
/// Why "for that ballot": a leader proposes a slot under the configuration
/// it has in force, and before any change lands past that, it must have
/// committed it (Multi-Paxos's barrier) or found it in its Phase 1 (which
/// meets every configuration chosen in an older ballot). A configuration
/// chosen in a newer ballot, at a slot where this ballot's own value was
/// never chosen, was unknown to this ballot's leader, which counted its
/// votes by the configuration before. Judged by the newer one instead,
/// votes of an old ballot that no leader counted look like a second value
/// chosen (seed 40059 of `quorum sim -p multipaxos --churn --nodes 4`:
/// a learner's uncounted vote and the old leader's made a majority of the
/// voters a later leader's changes gave that slot), and a value an old
/// leader did choose can look unchosen.
#[derive(Debug, Default)]
pub struct OneValuePerSlot {
    votes: BTreeMap<(u64, Ballot), BallotVotes>,
    chosen: HashMap<u64, (Ballot, Payload)>,
    /// Configurations seen chosen, by slot (the oldest ballot seen choosing
    /// each is its entry in `chosen`); `founding` before the first.
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

/// Above every ballot: `governing` with it walks every configuration seen
/// chosen, whatever ballot chose it.
const ANY_BALLOT: Ballot = Ballot::new(u64::MAX, NodeId(u64::MAX));

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

    /// The configuration whose voters decide `slot` in `ballot`: the newest
    /// below it chosen in `ballot` or an older one. (Along the chain each is
    /// chosen in a ballot at or above its predecessor's: a leader needs the
    /// one in force to choose the next.)
    fn governing(&self, slot: u64, ballot: Ballot) -> &Membership {
        self.configs
            .range(..slot)
            .rev()
            .find(|(s, _)| self.chosen.get(s).is_some_and(|(chosen_in, _)| *chosen_in <= ballot))
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
                self.governing(slot, ANY_BALLOT).voters
            )),
            None => Ok(()),
        }
    }

    /// Decides whether the votes in `slot` and `ballot` choose their value,
    /// and if they choose a configuration, judges again the slots it governs.
    fn judge(&mut self, slot: u64, ballot: Ballot) -> Result<(), String> {
        let entry = &self.votes[&(slot, ballot)];
        let governing = self.governing(slot, ballot);
        if !governing.is_quorum(&entry.voters) {
            return Ok(());
        }
        match self.chosen.get(&slot) {
            Some((chosen_in, value)) if *value != entry.value => Err(format!(
                "slot {slot}: two values chosen: {value:?} in {chosen_in:?} and {:?} in {ballot:?} (voters {:?} of {:?})",
                entry.value, entry.voters, governing.voters
            )),
            Some((chosen_in, _)) if ballot < *chosen_in => {
                // The same value, chosen in an older ballot too: a
                // configuration governs from the oldest.
                let newer = *chosen_in;
                self.chosen.insert(slot, (ballot, entry.value.clone()));
                if self.configs.contains_key(&slot) {
                    self.judge_above(slot, ballot, Some(newer))
                } else {
                    Ok(())
                }
            }
            Some(_) => Ok(()),
            None => {
                let value = entry.value.clone();
                self.chosen.insert(slot, (ballot, value.clone()));
                let Payload::Membership(config) = value else { return Ok(()) };
                let governing = self.governing(slot, ballot);
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
                self.judge_above(slot, ballot, None)
            }
        }
    }

    /// Judges again the votes above `slot` in ballots from `from` (up to
    /// `below`, if given): a configuration chosen there now governs them.
    fn judge_above(&mut self, slot: u64, from: Ballot, below: Option<Ballot>) -> Result<(), String> {
        let above: Vec<(u64, Ballot)> = self
            .votes
            .range((slot + 1, Ballot::ZERO)..)
            .map(|(k, _)| *k)
            .filter(|(_, b)| *b >= from && below.is_none_or(|below| *b < below))
            .collect();
        for (s, b) in above {
            self.judge(s, b)?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Outbox, Stepped};
    use crate::{Acceptor, Vote};
    use quorum_core::{Effects, WriteBatch};

    /// Just an acceptor's journal, which is all the checker reads.
    struct Voter {
        acceptor: Acceptor,
        outbox: Outbox<()>,
    }

    impl Stepped for Voter {
        type Message = ();
        fn outbox(&mut self) -> &mut Outbox<()> {
            &mut self.outbox
        }
        fn acceptor(&self) -> &Acceptor {
            &self.acceptor
        }
        fn deliver_local(&mut self, _: ()) {}
        fn emit_ready(&mut self, _: &mut Effects<()>) {}
        fn take_batch(&mut self) -> Option<WriteBatch> {
            None
        }
        fn committed(&self) -> u64 {
            0
        }
    }

    /// Four acceptors, and a checker founded on `voters` (the rest learners).
    fn cluster(voters: &[u64]) -> (Vec<Voter>, OneValuePerSlot) {
        let nodes = (1..=4).map(|i| Voter { acceptor: Acceptor::new(), outbox: Outbox::new(NodeId(i)) }).collect();
        let mut checker = OneValuePerSlot::new();
        checker.founded(&Membership {
            voters: voters.iter().copied().map(NodeId).collect(),
            learners: (1..=4).filter(|i| !voters.contains(i)).map(NodeId).collect(),
            ..Membership::default()
        });
        (nodes, checker)
    }

    /// Node `id` votes for `value` in `slot` and `ballot`; the checker reads it.
    fn vote(
        nodes: &mut [Voter],
        checker: &mut OneValuePerSlot,
        id: u64,
        slot: u64,
        ballot: Ballot,
        value: Payload,
    ) -> Result<(), String> {
        let node = &mut nodes[id as usize - 1];
        node.acceptor.plant_vote(Vote { slot, ballot, value });
        checker.observe(NodeId(id), &*node, 4)
    }

    fn members(voters: &[u64], learners: &[u64], epoch: u64) -> Payload {
        Payload::Membership(Membership {
            voters: voters.iter().copied().map(NodeId).collect(),
            learners: learners.iter().copied().map(NodeId).collect(),
            epoch,
            ..Membership::default()
        })
    }

    fn value(n: u8) -> Payload {
        Payload::Command(quorum_core::Command::new(quorum_core::ClientId(1), u64::from(n), vec![n]))
    }

    /// Seed 40059 of `quorum sim -p multipaxos --churn --nodes 4` (and
    /// 30985 of its `counters` profile). Voters n1, n3, n4, learner n2. The
    /// leader of b3.1 proposes A in slot 5 (learners vote too, uncounted):
    /// n1 and n2 accept it, not a majority of the voters it counts. The next
    /// leader, b4.4, found nothing past slot 2 in its Phase 1 (n3, n4), so it
    /// puts two changes at slots 3 and 4 (promote n2, remove n3), and then
    /// B in slot 5, accepted by n2 and n4. Judged by the configuration that
    /// the log gives slot 5 in the end, n1 and n2 are a majority of its
    /// voters, so A looked chosen in b3.1 too; but no leader counted those
    /// votes so (b3.1's counted its own voters), and none could: a value
    /// counts in a ballot by the configuration that ballot's leader had.
    #[test]
    fn votes_cast_before_a_configuration_chosen_in_a_later_ballot_are_judged_by_the_one_before() {
        two_changes_then(|nodes, checker, old, new| {
            for voter in [2, 4] {
                vote(nodes, checker, voter, 5, new, value(2))?;
            }
            assert_eq!(checker.chosen_slots(), 3);
            // b3.1's votes still count by the configuration before: a
            // majority of n1, n3, n4 there does choose.
            for voter in [1, 3] {
                vote(nodes, checker, voter, 6, old, value(3))?;
            }
            assert_eq!(checker.chosen_slots(), 4);
            Ok(())
        })
        .unwrap();
    }

    /// The other side of the rule: a ballot at or above the one that chose
    /// a configuration is judged by it, and two values are caught either way.
    #[test]
    fn two_values_chosen_past_a_configuration_change_are_caught() {
        let caught = two_changes_then(|nodes, checker, _, new| {
            for voter in [2, 4] {
                vote(nodes, checker, voter, 6, new, value(2))?;
            }
            let newer = Ballot::new(5, NodeId(2));
            for voter in [1, 2] {
                vote(nodes, checker, voter, 6, newer, value(3))?;
            }
            Ok(())
        });
        let why = caught.expect_err("two values chosen in slot 6");
        assert!(why.starts_with("slot 6: two values chosen"), "{why}");
        let caught = two_changes_then(|nodes, checker, old, new| {
            for voter in [1, 3] {
                vote(nodes, checker, voter, 6, old, value(3))?;
            }
            for voter in [2, 4] {
                vote(nodes, checker, voter, 6, new, value(2))?;
            }
            Ok(())
        });
        let why = caught.expect_err("two values chosen in slot 6, by two configurations");
        assert!(why.starts_with("slot 6: two values chosen"), "{why}");
    }

    /// A configuration seen chosen in a newer ballot first and then in an
    /// older one governs from the older: the older ballot's leader had it
    /// in force when it proposed past it.
    #[test]
    fn a_configuration_also_chosen_in_an_older_ballot_governs_from_that_ballot() {
        let caught = two_changes_then(|nodes, checker, old, new| {
            for voter in [2, 4] {
                vote(nodes, checker, voter, 5, new, value(2))?;
            }
            // b3.1 had chosen both changes too (n1 and n3, then n1 to n3),
            // so its votes in slot 5 (n1, n2) choose there.
            let promote = members(&[1, 2, 3, 4], &[], 1);
            let remove = members(&[1, 2, 4], &[3], 2);
            for voter in [1, 3] {
                vote(nodes, checker, voter, 3, old, promote.clone())?;
            }
            for voter in [1, 2, 3] {
                vote(nodes, checker, voter, 4, old, remove.clone())?;
            }
            Ok(())
        });
        let why = caught.expect_err("two values chosen in slot 5");
        assert!(why.starts_with("slot 5: two values chosen"), "{why}");
    }

    /// Voters n1, n3, n4 and learner n2; n1 and n2 accept a value in slot 5
    /// in b3.1; b4.4 then chooses, at slots 3 and 4, n2's promotion and
    /// n3's removal; then `rest(nodes, checker, b3.1, b4.4)`.
    fn two_changes_then(
        rest: impl FnOnce(&mut [Voter], &mut OneValuePerSlot, Ballot, Ballot) -> Result<(), String>,
    ) -> Result<(), String> {
        let (mut nodes, mut checker) = cluster(&[1, 3, 4]);
        let (old, new) = (Ballot::new(3, NodeId(1)), Ballot::new(4, NodeId(4)));
        for voter in [1, 2] {
            vote(&mut nodes, &mut checker, voter, 5, old, value(1))?;
        }
        let promote = members(&[1, 2, 3, 4], &[], 1);
        let remove = members(&[1, 2, 4], &[3], 2);
        for voter in [3, 4] {
            vote(&mut nodes, &mut checker, voter, 3, new, promote.clone())?;
        }
        for voter in [2, 3, 4] {
            vote(&mut nodes, &mut checker, voter, 4, new, remove.clone())?;
        }
        assert_eq!(checker.chosen_configs(), 2);
        rest(&mut nodes, &mut checker, old, new)
    }
}
