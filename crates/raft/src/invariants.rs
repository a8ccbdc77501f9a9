//! Raft's five safety properties (paper Figure 3) as simulator invariants.
//!
//! Each checker keeps what it needs across steps (and across crashes), looks
//! mostly at the node that just stepped, and costs amortised O(new entries):
//!
//! - [`ElectionSafety`]: at most one leader per term over the whole run.
//! - [`LeaderAppendOnly`]: a leader never overwrites or deletes its entries.
//! - [`LogMatching`]: two entries with the same index and term have the same
//!   payload and the same predecessor term (which, by induction, is the
//!   property: logs agree up to any shared (index, term)).
//! - [`LeaderCompleteness`]: an entry committed in a term is in the log of
//!   every leader of a later term.
//! - [`StateMachineSafety`]: no two nodes apply different entries at one index.
//!
//! These hold across membership changes as stated (one leader per term, over
//! every node that ever led). Two more check what makes them survive those
//! changes, in the `membership` module:
//!
//! - [`CommitQuorum`]: a leader's commit index is held by a majority of the
//!   voters of the configuration in force in its log (learners and removed
//!   nodes never count).
//! - [`SingleServerChanges`]: a leader appends a configuration only once the
//!   previous one and its own no-op are committed, changing one voter.
//!
//! And one about resources: [`BoundedQueues`], a leader holds no more reads
//! waiting for a heartbeat round than `max_pending_reads`.

use crate::node::State;
use crate::Raft;
use quorum_core::{Entry, Instant, Invariant, NodeId, Stamp, StepInvariant};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

mod membership;

pub use membership::{CommitQuorum, SingleServerChanges};

/// Every Raft invariant, fresh.
pub fn all() -> Vec<Box<dyn Invariant<Raft>>> {
    vec![
        Box::new(ElectionSafety::default()),
        Box::new(LeaderAppendOnly::default()),
        Box::new(LogMatching::default()),
        Box::new(LeaderCompleteness::default()),
        Box::new(StateMachineSafety::default()),
        Box::new(CommitQuorum::default()),
        Box::new(SingleServerChanges::default()),
        Box::new(BoundedQueues),
    ]
}

/// A leader's queue of reads waiting for a heartbeat round stays within
/// `max_pending_reads` (past it, reads are refused with `Busy`): a leader
/// that cannot finish a round must not take reads until memory runs out.
#[derive(Debug, Default)]
pub struct BoundedQueues;

impl StepInvariant<Raft> for BoundedQueues {
    const NAME: &'static str = "raft: bounded queues";

    fn check_stepped(&mut self, _now: Instant, node: &Raft, _nodes: &[Option<&Raft>]) -> Result<(), String> {
        let (waiting, limit) = (node.lead.reads.len(), node.config.max_pending_reads);
        if node.state == State::Leader && waiting > limit {
            return Err(format!(
                "{} holds {waiting} reads waiting for a round, over max_pending_reads {limit}",
                node.id
            ));
        }
        Ok(())
    }
}

fn payload_hash(e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    e.payload.hash(&mut h);
    h.finish()
}

/// Where to resume reading `node`'s log, given how far each node was read
/// (per incarnation): from there if it is the same incarnation, else from its
/// snapshot point (a restarted node may hold less than it did).
fn resume_from(read_upto: &HashMap<NodeId, (Instant, u64)>, node: &Raft) -> u64 {
    match read_upto.get(&node.id) {
        Some(&(incarnation, upto)) if incarnation == node.incarnation => upto,
        _ => node.log.offset(),
    }
}

/// Figure 3, election safety: at most one leader can be elected in a given term.
#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: HashMap<u64, NodeId>,
}

impl Invariant<Raft> for ElectionSafety {
    fn name(&self) -> &'static str {
        "raft: election safety"
    }

    fn check(&mut self, _now: Instant, _stepped: NodeId, nodes: &[Option<&Raft>]) -> Result<(), String> {
        for node in nodes.iter().flatten().filter(|n| n.state == State::Leader) {
            let first = *self.leaders.entry(node.term).or_insert(node.id);
            if first != node.id {
                return Err(format!("two leaders in term {}: {first} and {}", node.term, node.id));
            }
        }
        Ok(())
    }
}

/// Figure 3, leader append-only: a leader never overwrites or deletes entries in its log.
#[derive(Debug, Default)]
pub struct LeaderAppendOnly {
    /// Per node: (incarnation, term, last index, last stamp) while leader.
    seen: HashMap<NodeId, (Instant, u64, u64, Stamp)>,
}

impl StepInvariant<Raft> for LeaderAppendOnly {
    const NAME: &'static str = "raft: leader append-only";

    fn check_stepped(&mut self, _now: Instant, node: &Raft, _nodes: &[Option<&Raft>]) -> Result<(), String> {
        if node.state != State::Leader {
            self.seen.remove(&node.id);
            return Ok(());
        }
        let last = (node.log.last_index(), node.log.last_stamp());
        if let Some(&(inc, term, index, stamp)) = self.seen.get(&node.id) {
            if inc == node.incarnation && term == node.term {
                if last.0 < index {
                    return Err(format!("leader {} of term {term} shrank its log from {index} to {}", node.id, last.0));
                }
                if node.log.stamp_at(index).is_some_and(|s| s != stamp) {
                    return Err(format!("leader {} of term {term} overwrote its entry at {index}", node.id));
                }
            }
        }
        self.seen.insert(node.id, (node.incarnation, node.term, last.0, last.1));
        Ok(())
    }
}

/// Figure 3, log matching: if two logs contain an entry with the same index
/// and term, the logs are identical in all entries up through that index.
#[derive(Debug, Default)]
pub struct LogMatching {
    /// (index, term) -> (term of the entry before, payload hash), over all nodes and time.
    entries: HashMap<(u64, u64), (u64, u64)>,
    /// Per node: (incarnation, index verified up to, stamp there).
    verified: HashMap<NodeId, (Instant, u64, Stamp)>,
}

impl StepInvariant<Raft> for LogMatching {
    const NAME: &'static str = "raft: log matching";

    fn check_stepped(&mut self, _now: Instant, node: &Raft, _nodes: &[Option<&Raft>]) -> Result<(), String> {
        let log = &node.log;
        let mut from = log.offset();
        if let Some(&(inc, upto, stamp)) = self.verified.get(&node.id) {
            if inc == node.incarnation && log.stamp_at(upto) == Some(stamp) {
                from = upto; // nothing at or below was rewritten since
            }
        }
        for index in from + 1..=log.last_index() {
            let e = log.get(index).expect("held");
            let prev = log.stamp_at(index - 1).expect("contiguous").major;
            let here = (prev, payload_hash(e));
            let first = *self.entries.entry((index, e.stamp.major)).or_insert(here);
            if first != here {
                return Err(format!(
                    "{} holds entry {index} of term {} that differs from another log's (prev term {} vs {})",
                    node.id, e.stamp.major, prev, first.0
                ));
            }
        }
        self.verified.insert(node.id, (node.incarnation, log.last_index(), log.last_stamp()));
        Ok(())
    }
}

/// Figure 3, leader completeness: if an entry is committed in a given term,
/// it is present in the logs of the leaders of all higher terms.
#[derive(Debug, Default)]
pub struct LeaderCompleteness {
    /// index -> (entry term, the term in which its commitment was first seen).
    committed: BTreeMap<u64, (u64, u64)>,
    /// Per node: (incarnation, commit index already recorded).
    recorded: HashMap<NodeId, (Instant, u64)>,
    /// Leaders already checked against everything committed: (node, incarnation, term).
    checked_leaders: HashMap<NodeId, (Instant, u64)>,
}

impl LeaderCompleteness {
    fn leader_has(leader: &Raft, index: u64, term: u64) -> Result<(), String> {
        if index <= leader.log.offset() {
            return Ok(()); // folded into its snapshot: committed prefix
        }
        match leader.log.stamp_at(index) {
            Some(s) if s.major == term => Ok(()),
            other => Err(format!(
                "leader {} of term {} lacks committed entry {index} of term {term} (has {other:?})",
                leader.id, leader.term
            )),
        }
    }
}

impl StepInvariant<Raft> for LeaderCompleteness {
    const NAME: &'static str = "raft: leader completeness";

    fn check_stepped(&mut self, _now: Instant, node: &Raft, nodes: &[Option<&Raft>]) -> Result<(), String> {
        // Record what the stepped node newly knows committed.
        let start = resume_from(&self.recorded, node);
        let mut new = Vec::new();
        for index in start.max(node.log.offset()) + 1..=node.commit {
            let term = node.log.stamp_at(index).expect("committed entries are held").major;
            if let std::collections::btree_map::Entry::Vacant(v) = self.committed.entry(index) {
                v.insert((term, node.term));
                new.push(index);
            }
        }
        self.recorded.insert(node.id, (node.incarnation, node.commit));
        let leaders: Vec<&Raft> = nodes.iter().flatten().copied().filter(|n| n.state == State::Leader).collect();
        for leader in leaders {
            let key = (leader.incarnation, leader.term);
            if self.checked_leaders.get(&leader.id) != Some(&key) {
                // A leader seen for the first time: check everything committed before its term.
                for (&index, &(term, seen_in)) in &self.committed {
                    if seen_in < leader.term {
                        Self::leader_has(leader, index, term)?;
                    }
                }
                self.checked_leaders.insert(leader.id, key);
            } else {
                for &index in &new {
                    let (term, seen_in) = self.committed[&index];
                    if seen_in < leader.term {
                        Self::leader_has(leader, index, term)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Figure 3, state machine safety: if a server has applied a log entry at a
/// given index, no other server ever applies a different entry there.
#[derive(Debug, Default)]
pub struct StateMachineSafety {
    /// index -> (term, payload hash, node that applied it first).
    applied: HashMap<u64, (u64, u64, NodeId)>,
    /// Per node: (incarnation, applied index already checked).
    checked: HashMap<NodeId, (Instant, u64)>,
}

impl StepInvariant<Raft> for StateMachineSafety {
    const NAME: &'static str = "raft: state machine safety";

    fn check_stepped(&mut self, _now: Instant, node: &Raft, _nodes: &[Option<&Raft>]) -> Result<(), String> {
        let start = resume_from(&self.checked, node);
        for index in start.max(node.log.offset()) + 1..=node.applied {
            let e = node.log.get(index).expect("applied entries above the offset are held");
            let here = (e.stamp.major, payload_hash(e));
            let first = *self.applied.entry(index).or_insert((here.0, here.1, node.id));
            if (first.0, first.1) != here {
                return Err(format!(
                    "{} applied entry {index} of term {} but {} applied one of term {} there",
                    node.id, here.0, first.2, first.0
                ));
            }
        }
        self.checked.insert(node.id, (node.incarnation, node.applied));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper_tests::{config, make_leader, node, node_with};

    pub(crate) fn check(inv: &mut dyn Invariant<Raft>, stepped: u64, nodes: &[Option<Raft>]) -> Result<(), String> {
        let nodes: Vec<Option<&Raft>> = nodes.iter().map(Option::as_ref).collect();
        inv.check(Instant::ZERO, NodeId(stepped), &nodes)
    }

    /// `inv` fires when node `stepped` steps, saying `says`.
    #[track_caller]
    pub(crate) fn fires(inv: &mut dyn Invariant<Raft>, stepped: u64, nodes: &[Option<Raft>], says: &str) {
        let err = check(inv, stepped, nodes).unwrap_err();
        assert!(err.contains(says), "{err}");
    }

    #[test]
    fn election_safety_catches_two_leaders_in_one_term() {
        let mut a = node(1, 3);
        make_leader(&mut a);
        let mut inv = ElectionSafety::default();
        let mut nodes = vec![Some(a), Some(node(2, 3)), None];
        assert!(check(&mut inv, 1, &nodes).is_ok());
        let mut b = node(2, 3);
        make_leader(&mut b); // planted: a second leader of term 1
        nodes[1] = Some(b);
        fires(&mut inv, 2, &nodes, "two leaders in term 1");
    }

    #[test]
    fn leader_append_only_catches_a_leader_truncating_its_log() {
        let mut a = node_with(1, 3, 1, &[1, 1], config());
        make_leader(&mut a);
        let mut inv = LeaderAppendOnly::default();
        let mut nodes = vec![Some(a), None, None];
        assert!(check(&mut inv, 1, &nodes).is_ok());
        nodes[0].as_mut().unwrap().log.truncate_from(2); // planted: bypasses Raft::truncate's assertion
        fires(&mut inv, 1, &nodes, "shrank its log");
    }

    #[test]
    fn log_matching_catches_same_index_and_term_with_different_history() {
        let a = node_with(1, 3, 2, &[1, 2], config());
        let b = node_with(2, 3, 2, &[2, 2], config()); // planted: entry 2@2 preceded by 1@2, not 1@1
        let mut inv = LogMatching::default();
        let nodes = vec![Some(a), Some(b), None];
        assert!(check(&mut inv, 1, &nodes).is_ok());
        fires(&mut inv, 2, &nodes, "differs from another log");
    }

    #[test]
    fn leader_completeness_catches_a_leader_missing_a_committed_entry() {
        let mut a = node_with(1, 3, 1, &[1, 1], config());
        a.commit = 2; // planted: entry 2@1 committed
        let mut b = node_with(2, 3, 2, &[1], config());
        let mut inv = LeaderCompleteness::default();
        let mut nodes = vec![Some(a), None, None];
        assert!(check(&mut inv, 1, &nodes).is_ok());
        make_leader(&mut b); // a term-3 leader whose index 2 is its no-op, not 2@1
        nodes[1] = Some(b);
        fires(&mut inv, 2, &nodes, "lacks committed entry 2 of term 1");
    }

    #[test]
    fn state_machine_safety_catches_two_nodes_applying_different_entries() {
        let mut a = node_with(1, 3, 2, &[1, 1], config());
        let mut b = node_with(2, 3, 2, &[1, 2], config());
        (a.commit, a.applied, b.commit, b.applied) = (2, 2, 2, 2); // planted
        let mut inv = StateMachineSafety::default();
        let nodes = vec![Some(a), Some(b), None];
        assert!(check(&mut inv, 1, &nodes).is_ok());
        fires(&mut inv, 2, &nodes, "applied entry 2 of term 2");
    }

    #[test]
    fn a_healthy_cluster_passes_every_invariant() {
        let mut c = quorum_sim::testkit::Cluster::<crate::Raft>::new(3, RaftConfig::default(), 3);
        assert!(c.run_until(quorum_core::Duration::from_secs(2), |c| c.leader().is_some()));
        let leader = c.leader().unwrap();
        for i in 0..20 {
            c.propose(leader, vec![i]).unwrap();
        }
        c.run_for(quorum_core::Duration::from_millis(200));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }

    use crate::RaftConfig;
}
