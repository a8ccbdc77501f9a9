//! Membership: the configurations in the log, and single-server changes
//! (Raft thesis §4.1 and §4.2).
//!
//! A configuration takes effect as soon as its entry is in a node's log,
//! committed or not; a truncated entry takes its configuration with it.
//! Changes add or remove one voter at a time, so the old and new majorities
//! always overlap, and a leader starts a change only after the previous one
//! committed and after it committed an entry of its own term (the fix to the
//! single-server algorithm described on raft-dev in 2015).

use crate::message::Message;
use crate::node::State;
use crate::Out;
use crate::Raft;
use quorum_core::{Instant, Majority, Membership, NodeId, Payload};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Raft's metadata kept in a snapshot.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotMeta {
    /// The membership in force at the snapshot's index.
    pub membership: Membership,
}

/// Why a membership change or leadership transfer was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum ChangeError {
    /// Only the leader changes membership; it may be this node.
    NotLeader(Option<NodeId>),
    /// A previous change, or the leader's first entry, is not committed yet: retry shortly.
    Busy,
    /// The new configuration changes more than one voter, or leaves none.
    NotSingleChange,
    /// The node to promote has not caught up with the leader yet: add it as a learner first.
    NotCaughtUp(NodeId),
    /// The node is not a voter of the current configuration.
    UnknownNode(NodeId),
    /// The node to remove is neither a voter nor a learner.
    NotMember(NodeId),
    /// The node to add is a member already (a voter, or a learner).
    AlreadyMember(NodeId),
    /// The node to promote is a voter already.
    AlreadyVoter(NodeId),
    /// The peer address given for a new node is empty, too long or not printable.
    BadAddress(NodeId),
}

impl fmt::Display for ChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeError::NotLeader(Some(l)) => write!(f, "not the leader: ask {l}"),
            ChangeError::NotLeader(None) => write!(f, "not the leader, and no leader is known: retry shortly"),
            ChangeError::Busy => write!(f, "a membership change or the leader's first entry is not committed yet"),
            ChangeError::NotSingleChange => write!(f, "change one voter at a time, and keep at least one voter"),
            ChangeError::NotCaughtUp(n) => write!(f, "{n} has not caught up yet: add it as a learner and wait"),
            ChangeError::UnknownNode(n) => write!(f, "{n} is not a voter in the current configuration"),
            ChangeError::NotMember(n) => write!(f, "{n} is not a member of the current configuration"),
            ChangeError::AlreadyMember(n) => write!(f, "{n} is a member already"),
            ChangeError::AlreadyVoter(n) => write!(f, "{n} is a voter already"),
            ChangeError::BadAddress(n) => write!(
                f,
                "the peer address for {n} must be 1 to {} printable characters (host:port)",
                quorum_core::MAX_ADDRESS_LEN
            ),
        }
    }
}

impl std::error::Error for ChangeError {}

/// The configurations in the log, newest last. The first is the one in force
/// at the compaction point (or the initial one).
#[derive(Clone, Debug, Hash)]
pub(crate) struct Configs {
    history: Vec<(u64, Membership)>,
}

impl Configs {
    /// Starts with `base` in force at `index`.
    pub fn new(index: u64, base: Membership) -> Self {
        Configs { history: vec![(index, base)] }
    }

    /// The configuration in force now (the newest in the log).
    pub fn current(&self) -> &Membership {
        &self.history.last().expect("there is always a configuration").1
    }

    /// The index of the newest configuration entry.
    pub fn current_index(&self) -> u64 {
        self.history.last().expect("there is always a configuration").0
    }

    /// The configuration before the newest one, if the log still holds both.
    pub fn previous(&self) -> Option<&Membership> {
        self.history.len().checked_sub(2).map(|i| &self.history[i].1)
    }

    /// The configuration before the newest one, with its index, if the log still holds both.
    pub fn previous_with_index(&self) -> Option<(u64, &Membership)> {
        self.history.len().checked_sub(2).map(|i| (self.history[i].0, &self.history[i].1))
    }

    /// The configuration in force at `index`.
    pub fn at(&self, index: u64) -> &Membership {
        let pos = self.history.iter().rposition(|(i, _)| *i <= index).unwrap_or(0);
        &self.history[pos].1
    }

    /// A configuration entry was appended at `index`.
    pub fn push(&mut self, index: u64, membership: Membership) {
        assert!(index > self.current_index(), "configurations are appended in index order");
        self.history.push((index, membership));
    }

    /// The log was truncated from `index`: configurations stored there go with it.
    pub fn truncate_from(&mut self, index: u64) {
        while self.history.len() > 1 && self.history.last().is_some_and(|(i, _)| *i >= index) {
            self.history.pop();
        }
        assert!(self.history[0].0 < index, "cannot truncate the base configuration");
    }

    /// The log was compacted up to `index`: forget configurations superseded before it.
    pub fn compact(&mut self, index: u64) {
        let keep_from = self.history.iter().rposition(|(i, _)| *i <= index).unwrap_or(0);
        self.history.drain(..keep_from);
    }
}

/// True if `id` votes in `m`.
pub(crate) fn is_voter(m: &Membership, id: NodeId) -> bool {
    m.voters.contains(&id)
}

/// The largest value that a majority of `m`'s voters have reached, given each voter's value.
pub(crate) fn quorum_value(m: &Membership, mut value_of: impl FnMut(NodeId) -> u64) -> u64 {
    Majority::of(m.voters.len()).reached_by_quorum(m.voters.iter().map(|v| value_of(*v)))
}

/// Checks that `new` differs from `old` by at most one voter and keeps one.
pub(crate) fn check_single_change(old: &Membership, new: &Membership) -> Result<(), ChangeError> {
    if new.voters.is_empty() {
        return Err(ChangeError::NotSingleChange);
    }
    let added = new.voters.iter().filter(|v| !old.voters.contains(v)).count();
    let removed = old.voters.iter().filter(|v| !new.voters.contains(v)).count();
    if added + removed > 1 || new.learners.iter().any(|l| new.voters.contains(l)) {
        return Err(ChangeError::NotSingleChange);
    }
    Ok(())
}

impl Raft {
    /// Proposes a new configuration: add or remove one voter, or change
    /// learners (§4.1: single-server changes). A node promoted to voter
    /// must have caught up: its match index must reach the leader's commit
    /// index. Returns the index of the configuration entry.
    pub fn propose_membership(&mut self, now: Instant, new: Membership, out: &mut Out) -> Result<u64, ChangeError> {
        if self.state != State::Leader {
            return Err(ChangeError::NotLeader(self.leader));
        }
        // One change at a time, and only after this leader committed its no-op.
        if self.configs.current_index() > self.commit || self.commit < self.lead.term_start {
            return Err(ChangeError::Busy);
        }
        let old = self.configs.current().clone();
        check_single_change(&old, &new)?;
        for v in new.voters.iter().filter(|v| !old.voters.contains(v) && **v != self.id) {
            let caught_up = self.lead.progress.get(v).is_some_and(|p| p.match_index >= self.commit);
            if !caught_up {
                return Err(ChangeError::NotCaughtUp(*v));
            }
        }
        let promoted: Vec<NodeId> =
            new.voters.iter().copied().filter(|v| !old.voters.contains(v) && *v != self.id).collect();
        let index = self.append_new(Payload::Membership(new));
        self.sync_progress(now);
        tracing::info!(node = self.id.0, term = self.term, index, "membership change proposed");
        // The round `broadcast_round` starts next is the first a new voter's answers count from.
        let round = self.lead.round + 1;
        for v in &promoted {
            if let Some(pr) = self.lead.progress.get_mut(v) {
                pr.count_from_round(round, now);
            }
        }
        self.broadcast_round(now, out);
        self.finish(now, out);
        Ok(index)
    }

    /// Adds `node` as a learner: it receives the log but does not vote.
    pub fn add_learner(&mut self, now: Instant, node: NodeId, out: &mut Out) -> Result<u64, ChangeError> {
        if self.configs.current().contains(node) {
            return Err(ChangeError::AlreadyMember(node));
        }
        let new = self.configs.current().with_learner(node);
        self.propose_membership(now, new, out)
    }

    /// Adds `node` as a learner that listens for peers at `address`; the
    /// address goes into the configuration entry, so every member learns it
    /// from the log (see [`Membership::addresses`]).
    pub fn add_learner_at(
        &mut self,
        now: Instant,
        node: NodeId,
        address: &str,
        out: &mut Out,
    ) -> Result<u64, ChangeError> {
        let current = self.configs.current();
        if current.contains(node) {
            return Err(ChangeError::AlreadyMember(node));
        }
        let new = current.with_learner(node).with_address(node, address);
        if !new.is_sane() {
            return Err(ChangeError::BadAddress(node));
        }
        self.propose_membership(now, new, out)
    }

    /// Promotes a caught-up learner (or adds a caught-up node) to voter.
    pub fn promote(&mut self, now: Instant, node: NodeId, out: &mut Out) -> Result<u64, ChangeError> {
        if self.configs.current().voters.contains(&node) {
            return Err(ChangeError::AlreadyVoter(node));
        }
        let new = self.configs.current().with_voter(node);
        self.propose_membership(now, new, out)
    }

    /// Removes a voter or learner; the leader itself may be removed, and
    /// steps down once the change commits.
    pub fn remove_node(&mut self, now: Instant, node: NodeId, out: &mut Out) -> Result<u64, ChangeError> {
        let new = self.configs.current().without(node).ok_or(ChangeError::NotMember(node))?;
        self.propose_membership(now, new, out)
    }

    /// The configuration in force (the newest in this node's log).
    pub fn membership(&self) -> &Membership {
        self.configs.current()
    }

    /// True if this node knows the configuration in force to be committed:
    /// no other can take over from it.
    pub fn membership_committed(&self) -> bool {
        self.configs.current_index() <= self.commit
    }

    /// A leader whose own removal committed steps down (thesis §4.2.2),
    /// first handing leadership to the most up-to-date voter.
    pub(crate) fn maybe_step_down_removed(&mut self, now: Instant, out: &mut Out) {
        if self.state != State::Leader || is_voter(self.configs.current(), self.id) {
            return;
        }
        if self.commit < self.configs.current_index() {
            return; // §4.2.2: it manages the cluster until the change commits
        }
        if let Some(to) = self.best_successor() {
            self.lead.lease_revoked = true;
            out.send(to, Message::TimeoutNow { term: self.term });
        }
        tracing::info!(node = self.id.0, term = self.term, "removed from the configuration: stepping down");
        self.become_follower(now, self.term, None);
    }

    /// The leader's pick to lead after it: the other voter whose log matches
    /// its own furthest (`None` if not leader or alone).
    pub(crate) fn best_successor(&self) -> Option<NodeId> {
        if self.state != State::Leader {
            return None;
        }
        self.lead
            .progress
            .iter()
            .filter(|(id, _)| **id != self.id && self.configs.current().voters.contains(id))
            .max_by_key(|(_, p)| p.match_index)
            .map(|(id, _)| *id)
    }

    /// Leadership transfer (thesis §3.10): stop taking proposals, bring
    /// `target` up to date, then tell it to campaign at once (TimeoutNow).
    /// Gives up after an election timeout.
    pub fn transfer_leadership(&mut self, now: Instant, target: NodeId, out: &mut Out) -> Result<(), ChangeError> {
        if self.state != State::Leader {
            return Err(ChangeError::NotLeader(self.leader));
        }
        if target == self.id {
            return Ok(());
        }
        if !is_voter(self.configs.current(), target) {
            return Err(ChangeError::UnknownNode(target));
        }
        let deadline = now + self.config.election_timeout_max;
        self.lead.transfer = Some((target, deadline));
        tracing::info!(node = self.id.0, term = self.term, %target, "leadership transfer");
        self.maybe_send_timeout_now(target, out);
        self.replicate_to(now, target, out);
        self.finish(now, out);
        Ok(())
    }

    /// Sends TimeoutNow once the transfer target has the whole log.
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId, out: &mut Out) {
        let Some((target, _)) = self.lead.transfer else { return };
        let caught_up = self.lead.progress.get(&peer).is_some_and(|p| p.match_index == self.log.last_index());
        if target == peer && caught_up {
            self.lead.lease_revoked = true;
            out.send(target, Message::TimeoutNow { term: self.term });
        }
    }

    /// TimeoutNow from our leader: campaign now, past any lease.
    pub(crate) fn on_timeout_now(&mut self, now: Instant, out: &mut Out) {
        if self.state == State::Leader || !self.can_campaign() {
            return;
        }
        self.become_candidate(now, true, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(voters: &[u64]) -> Membership {
        Membership { voters: voters.iter().map(|v| NodeId(*v)).collect(), ..Membership::default() }
    }

    #[test]
    fn quorum_value_is_the_majority_th_largest() {
        let conf = m(&[1, 2, 3, 4, 5]);
        let values = [10, 9, 3, 2, 7];
        assert_eq!(quorum_value(&conf, |n| values[(n.0 - 1) as usize]), 7);
        assert_eq!(quorum_value(&m(&[1]), |_| 4), 4);
    }

    #[test]
    fn configurations_follow_truncation_and_compaction() {
        let mut c = Configs::new(0, m(&[1, 2, 3]));
        c.push(5, m(&[1, 2, 3, 4]));
        c.push(9, m(&[1, 2, 4]));
        assert_eq!(c.at(7), &m(&[1, 2, 3, 4]));
        c.truncate_from(9);
        assert_eq!(c.current(), &m(&[1, 2, 3, 4]));
        c.compact(6);
        assert_eq!(c.at(0), &m(&[1, 2, 3, 4]));
        assert_eq!(c.current_index(), 5);
    }

    #[test]
    fn only_single_server_changes_pass() {
        assert!(check_single_change(&m(&[1, 2, 3]), &m(&[1, 2, 3, 4])).is_ok());
        assert!(check_single_change(&m(&[1, 2, 3]), &m(&[1, 2])).is_ok());
        assert_eq!(check_single_change(&m(&[1, 2, 3]), &m(&[1, 4])), Err(ChangeError::NotSingleChange));
        assert_eq!(check_single_change(&m(&[1]), &m(&[])), Err(ChangeError::NotSingleChange));
    }
}
