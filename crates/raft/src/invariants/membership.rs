//! Invariants that only mean something once the configuration changes:
//! the quorum behind every commit is counted in the configuration in force,
//! and configurations change one voter at a time, one change at a time.

use crate::node::State;
use crate::Raft;
use quorum_core::check_single_change;
use quorum_core::{Instant, Invariant, Majority, NodeId};
use std::collections::HashMap;

/// What a check has already covered in each leadership, keyed by the
/// leader's (incarnation, term): a watermark per node that leads.
#[derive(Debug, Default)]
struct PerLeadership {
    seen: HashMap<NodeId, (Instant, u64, u64)>,
}

impl PerLeadership {
    /// The node that just stepped, if it leads; a node that stopped leading is forgotten.
    fn leader<'a>(&mut self, stepped: NodeId, nodes: &[Option<&'a Raft>]) -> Option<&'a Raft> {
        let node = quorum_core::node_of(stepped, nodes)?;
        if node.state != State::Leader {
            self.seen.remove(&node.id);
            return None;
        }
        Some(node)
    }

    /// Records `mark` for the leader's current leadership and returns the
    /// mark recorded earlier in the same leadership (`None`: first seen leading).
    fn advance(&mut self, leader: &Raft, mark: u64) -> Option<u64> {
        let key = (leader.incarnation, leader.term);
        match self.seen.insert(leader.id, (key.0, key.1, mark)) {
            Some((incarnation, term, before)) if (incarnation, term) == key => Some(before),
            _ => None,
        }
    }
}

/// §5.3 with §4.1: an index a leader marks committed is durably stored on a
/// majority of the voters of the configuration in force in the leader's log
/// (its newest, committed or not), the leader counting itself only if it
/// votes there. A learner or a removed node never makes up a quorum, and a
/// shrinking configuration needs a majority of the smaller set.
///
/// Checked on the leader whenever its commit index moves, against the other
/// nodes' logs: a live voter holds the entry if it has the same (index,
/// term) durably, or has compacted past it. A crashed voter's disk cannot be
/// inspected, so it counts as holding it: the check may miss, never cry wolf.
#[derive(Debug, Default)]
pub struct CommitQuorum {
    /// The commit index already checked, per leadership.
    checked: PerLeadership,
}

impl CommitQuorum {
    fn holds(node: &Raft, index: u64, term: u64) -> bool {
        node.log.offset() >= index
            || (node.durable_index >= index && node.log.stamp_at(index).is_some_and(|s| s.major == term))
    }
}

impl Invariant<Raft> for CommitQuorum {
    fn name(&self) -> &'static str {
        "raft: commit on a quorum of the configuration"
    }

    fn check(&mut self, _now: Instant, stepped: NodeId, nodes: &[Option<&Raft>]) -> Result<(), String> {
        let Some(leader) = self.checked.leader(stepped, nodes) else { return Ok(()) };
        let commit = leader.commit;
        let Some(from) = self.checked.advance(leader, commit) else {
            return Ok(()); // first seen leading: what it knew committed, it learned as a follower
        };
        if commit <= from || commit <= leader.log.offset() {
            return Ok(());
        }
        let term = leader.log.stamp_at(commit).expect("the commit index is in the log").major;
        let voters = &leader.configs.current().voters;
        let holders: Vec<NodeId> = voters
            .iter()
            .copied()
            .filter(|v| match nodes.get((v.0 as usize).wrapping_sub(1)) {
                Some(Some(node)) => Self::holds(node, commit, term),
                _ => true, // crashed: its disk may hold it
            })
            .collect();
        if !Majority::of(voters.len()).is_reached(holders.len()) {
            return Err(format!(
                "leader {} of term {} committed {commit} (term {term}) but only {holders:?} of the voters {voters:?} hold it",
                leader.id, leader.term
            ));
        }
        Ok(())
    }
}

/// Thesis §4.1: a leader appends a configuration entry only once the
/// previous configuration is committed and an entry of its own term is
/// committed (the fix to single-server changes posted to raft-dev in 2015),
/// and the new configuration differs from the previous one by at most one
/// voter and keeps one. Together these keep every two consecutive
/// configurations' majorities overlapping, which the Figure 3 arguments need.
///
/// Checked on the leader after each step in which a configuration entry of
/// its own term appeared. The commit index seen then is at least what it was
/// when the entry was appended, so the check may miss, never cry wolf.
#[derive(Debug, Default)]
pub struct SingleServerChanges {
    /// The index of the newest configuration already checked, per leadership.
    checked: PerLeadership,
}

impl Invariant<Raft> for SingleServerChanges {
    fn name(&self) -> &'static str {
        "raft: single-server membership changes"
    }

    fn check(&mut self, _now: Instant, stepped: NodeId, nodes: &[Option<&Raft>]) -> Result<(), String> {
        let Some(leader) = self.checked.leader(stepped, nodes) else { return Ok(()) };
        let newest = leader.configs.current_index();
        // First seen leading: configurations of its term come after its no-op.
        let seen = self.checked.advance(leader, newest).unwrap_or(leader.lead.term_start);
        let own = leader.log.stamp_at(newest).is_some_and(|s| s.major == leader.term);
        if newest <= seen || !own {
            return Ok(());
        }
        let (id, term, commit) = (leader.id, leader.term, leader.commit);
        if commit < leader.lead.term_start {
            return Err(format!(
                "leader {id} of term {term} appended configuration {newest} before committing its no-op"
            ));
        }
        let Some((previous_index, previous)) = leader.configs.previous_with_index() else {
            return Ok(()); // the previous one was compacted away: committed
        };
        if previous_index > commit {
            return Err(format!(
                "leader {id} of term {term} appended configuration {newest} while {previous_index} was uncommitted (commit {commit})"
            ));
        }
        if check_single_change(previous, leader.configs.current()).is_err() {
            return Err(format!(
                "leader {id} of term {term} changed more than one voter at {newest}: {:?} -> {:?}",
                previous.voters,
                leader.configs.current().voters
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper_tests::{config, make_leader, node};
    use quorum_core::{Entry, Membership, Payload, Protocol, Stamp};

    fn members(voters: &[u64], learners: &[u64]) -> Payload {
        let ids = |v: &[u64]| v.iter().map(|i| NodeId(*i)).collect();
        Payload::Membership(Membership { voters: ids(voters), learners: ids(learners), addresses: vec![], epoch: 0 })
    }

    /// Node `id` of nodes 1..=3 whose durable log holds `entries` as (term, payload).
    fn node_with_log(id: u64, term: u64, entries: &[(u64, Payload)]) -> Raft {
        let hard = crate::node::HardState { term, vote: None, joining: false };
        let stored = quorum_core::Stored {
            hard_state: Some(bytes::Bytes::from(postcard::to_allocvec(&hard).unwrap())),
            entries: entries
                .iter()
                .enumerate()
                .map(|(i, (t, p))| Entry { index: i as u64 + 1, stamp: Stamp::new(*t, 0), payload: p.clone() })
                .collect(),
            snapshot: None,
        };
        Raft::new(quorum_core::Init { stored, seed: 7, ..quorum_core::Init::first_start(NodeId(id), 3, config()) })
            .expect("a node starts")
    }

    use crate::invariants::tests::{check, fires};

    #[test]
    fn commit_quorum_catches_a_learner_counted_towards_the_majority() {
        // Voters {1, 2}, learner 3. Leader 1 (term 2) and the learner hold its no-op; voter 2 does not.
        let log = [(1, members(&[1, 2], &[3]))];
        let mut leader = node_with_log(1, 1, &log);
        make_leader(&mut leader);
        let learner = node_with_log(3, 2, &[log[0].clone(), (2, Payload::Noop)]);
        let mut nodes = vec![Some(leader), Some(node_with_log(2, 2, &log)), Some(learner)];
        let mut inv = CommitQuorum::default();
        assert!(check(&mut inv, 1, &nodes).is_ok());
        let leader = nodes[0].as_mut().unwrap();
        (leader.durable_index, leader.commit) = (2, 2); // planted: 2 of 3 nodes, but 1 of 2 voters
        let err = check(&mut inv, 1, &nodes).unwrap_err();
        assert!(err.contains("committed 2") && err.contains("only [n1] of the voters [n1, n2]"), "{err}");
        // With voter 2 holding it, the same commit is fine.
        nodes[1] = Some(node_with_log(2, 2, &[log[0].clone(), (2, Payload::Noop)]));
        let mut inv = CommitQuorum::default();
        let mut leader = nodes[0].take().unwrap();
        leader.commit = 1;
        nodes[0] = Some(leader);
        assert!(check(&mut inv, 1, &nodes).is_ok());
        nodes[0].as_mut().unwrap().commit = 2;
        assert!(check(&mut inv, 1, &nodes).is_ok());
    }

    #[test]
    fn commit_quorum_catches_a_removed_leader_counting_itself() {
        let mut leader = node(1, 3);
        make_leader(&mut leader); // term 1, no-op at 1
        let mut inv = CommitQuorum::default();
        let mut nodes = vec![Some(leader), Some(node(2, 3)), Some(node(3, 3))];
        assert!(check(&mut inv, 1, &nodes).is_ok());
        let leader = nodes[0].as_mut().unwrap();
        leader.append_new(members(&[2, 3], &[])); // it removes itself at 2
        leader.durable_index = 2;
        let held = [(1, Payload::Noop), (1, members(&[2, 3], &[]))];
        nodes[1] = Some(node_with_log(2, 1, &held));
        nodes[0].as_mut().unwrap().commit = 2; // planted: itself and 2 are 2 of 3, but 1 of the voters {2, 3}
        fires(&mut inv, 1, &nodes, "only [n2] of the voters [n2, n3]");
        nodes[2] = None; // a crashed voter's disk may hold it: no verdict
        assert!(check(&mut CommitQuorum::default(), 1, &nodes).is_ok());
    }

    #[test]
    fn single_server_changes_catch_a_second_change_before_the_first_commits() {
        let mut leader = node(1, 3);
        make_leader(&mut leader);
        leader.commit = 1; // its no-op committed
        let mut nodes = vec![Some(leader), None, None];
        let mut inv = SingleServerChanges::default();
        assert!(check(&mut inv, 1, &nodes).is_ok());
        nodes[0].as_mut().unwrap().append_new(members(&[1, 2], &[]));
        assert!(check(&mut inv, 1, &nodes).is_ok(), "one change after the no-op committed is fine");
        nodes[0].as_mut().unwrap().append_new(members(&[1], &[])); // planted: 2 is not committed
        fires(&mut inv, 1, &nodes, "while 2 was uncommitted");
    }

    #[test]
    fn single_server_changes_catch_two_voters_swapped_at_once() {
        let mut leader = node(1, 3);
        make_leader(&mut leader);
        leader.commit = 1;
        let mut nodes = vec![Some(leader), None, None];
        let mut inv = SingleServerChanges::default();
        assert!(check(&mut inv, 1, &nodes).is_ok());
        nodes[0].as_mut().unwrap().append_new(members(&[1, 4, 5], &[])); // planted: two out, two in
        fires(&mut inv, 1, &nodes, "more than one voter");
    }

    #[test]
    fn single_server_changes_catch_a_change_before_the_leaders_no_op_commits() {
        let mut leader = node(1, 3);
        make_leader(&mut leader);
        let mut nodes = vec![Some(leader), None, None];
        let mut inv = SingleServerChanges::default();
        assert!(check(&mut inv, 1, &nodes).is_ok());
        nodes[0].as_mut().unwrap().append_new(members(&[1, 2], &[])); // planted: the no-op is uncommitted
        fires(&mut inv, 1, &nodes, "before committing its no-op");
    }
}
