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

use crate::node::State;
use crate::Raft;
use quorum_core::{Entry, Instant, Invariant, NodeId, Stamp};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

/// Every Raft invariant, fresh.
pub fn all() -> Vec<Box<dyn Invariant<Raft>>> {
    vec![
        Box::new(ElectionSafety::default()),
        Box::new(LeaderAppendOnly::default()),
        Box::new(LogMatching::default()),
        Box::new(LeaderCompleteness::default()),
        Box::new(StateMachineSafety::default()),
    ]
}

fn payload_hash(e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    e.payload.hash(&mut h);
    h.finish()
}

fn stepped_node(stepped: NodeId, nodes: &[Option<Raft>]) -> Option<&Raft> {
    nodes.get((stepped.0 as usize).checked_sub(1)?)?.as_ref()
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

    fn check(&mut self, _now: Instant, _stepped: NodeId, nodes: &[Option<Raft>]) -> Result<(), String> {
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

impl Invariant<Raft> for LeaderAppendOnly {
    fn name(&self) -> &'static str {
        "raft: leader append-only"
    }

    fn check(&mut self, _now: Instant, stepped: NodeId, nodes: &[Option<Raft>]) -> Result<(), String> {
        let Some(node) = stepped_node(stepped, nodes) else { return Ok(()) };
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

impl Invariant<Raft> for LogMatching {
    fn name(&self) -> &'static str {
        "raft: log matching"
    }

    fn check(&mut self, _now: Instant, stepped: NodeId, nodes: &[Option<Raft>]) -> Result<(), String> {
        let Some(node) = stepped_node(stepped, nodes) else { return Ok(()) };
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

impl Invariant<Raft> for LeaderCompleteness {
    fn name(&self) -> &'static str {
        "raft: leader completeness"
    }

    fn check(&mut self, _now: Instant, stepped: NodeId, nodes: &[Option<Raft>]) -> Result<(), String> {
        let Some(node) = stepped_node(stepped, nodes) else { return Ok(()) };
        // Record what the stepped node newly knows committed.
        let start = match self.recorded.get(&node.id) {
            Some(&(inc, upto)) if inc == node.incarnation => upto,
            _ => node.log.offset(),
        };
        let mut new = Vec::new();
        for index in start.max(node.log.offset()) + 1..=node.commit {
            let term = node.log.stamp_at(index).expect("committed entries are held").major;
            if let std::collections::btree_map::Entry::Vacant(v) = self.committed.entry(index) {
                v.insert((term, node.term));
                new.push(index);
            }
        }
        self.recorded.insert(node.id, (node.incarnation, node.commit));
        let leaders: Vec<&Raft> = nodes.iter().flatten().filter(|n| n.state == State::Leader).collect();
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

impl Invariant<Raft> for StateMachineSafety {
    fn name(&self) -> &'static str {
        "raft: state machine safety"
    }

    fn check(&mut self, _now: Instant, stepped: NodeId, nodes: &[Option<Raft>]) -> Result<(), String> {
        let Some(node) = stepped_node(stepped, nodes) else { return Ok(()) };
        let start = match self.checked.get(&node.id) {
            Some(&(inc, upto)) if inc == node.incarnation => upto,
            _ => node.log.offset(),
        };
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
