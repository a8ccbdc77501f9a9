//! Membership: who votes and who only learns, the configurations a log
//! holds, and single-server changes (Raft thesis §4.1; the same rule keeps
//! Multi-Paxos's configurations overlapping).
//!
//! A change adds or removes one voter at a time, so every majority of the old
//! voters and every majority of the new ones share a node: two leaders, one
//! counting the old configuration and one the new, can never both be chosen
//! by disjoint quorums. The protocols differ in *when* a configuration takes
//! effect (Raft: once in the log; Multi-Paxos: once chosen, with no slot
//! proposed past it before then) but share the rule, the history of
//! configurations and the refusals.

use crate::{Majority, NodeId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The voting and non-voting members of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Membership {
    /// Nodes whose votes count towards a quorum.
    pub voters: Vec<NodeId>,
    /// Nodes that receive the log but do not vote.
    pub learners: Vec<NodeId>,
    /// Where members added while the cluster ran listen for their peers, as
    /// the operator gave it (`host:port`), by node id. The address travels
    /// in the log with the change that adds the node, so every member, and
    /// any member restarted later, learns it from the log and never from
    /// what an unauthenticated peer claims. The founding members' addresses
    /// come from each node's own settings and are not listed.
    pub addresses: Vec<(NodeId, String)>,
    /// How many changes led here: 0 for the founding configuration, one
    /// more for each change ([`Membership::changed`]). Multi-Paxos applies a
    /// configuration chosen in a slot only if it follows the one in force
    /// there ([`Membership::follows`]): a change proposed by a leader that
    /// lost its slot to another leader's change, and chosen later by a
    /// successor that had to propose it again, is void rather than a jump
    /// of two voters. Raft carries it along and needs it not.
    pub epoch: u64,
}

/// The longest peer address a membership may carry.
pub const MAX_ADDRESS_LEN: usize = 256;

/// The most members (voters and learners) a membership may list.
pub const MAX_MEMBERS: usize = 1024;

/// No configuration gets this many changes: an epoch at or above it comes
/// from a broken peer (and stays far from overflowing `epoch + 1`).
const MAX_EPOCH: u64 = 1 << 62;

impl Membership {
    /// True if `node` votes or learns here.
    pub fn contains(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.learners.contains(&node)
    }

    /// This configuration with `node` added as a learner (unchanged if it is
    /// a member already).
    pub fn with_learner(&self, node: NodeId) -> Membership {
        let mut new = self.clone();
        if !self.contains(node) {
            new.learners.push(node);
            new.learners.sort();
        }
        new
    }

    /// This configuration with `node` a voter (a learner promoted, or a node
    /// added).
    pub fn with_voter(&self, node: NodeId) -> Membership {
        let mut new = self.clone();
        new.learners.retain(|l| *l != node);
        if !new.voters.contains(&node) {
            new.voters.push(node);
            new.voters.sort();
        }
        new
    }

    /// This configuration without `node`, or `None` if it is not a member.
    pub fn without(&self, node: NodeId) -> Option<Membership> {
        let mut new = self.clone();
        new.voters.retain(|v| *v != node);
        new.learners.retain(|l| *l != node);
        new.addresses.retain(|(n, _)| *n != node);
        self.contains(node).then_some(new)
    }

    /// This configuration with `address` recorded for `node`.
    pub fn with_address(&self, node: NodeId, address: &str) -> Membership {
        let mut new = self.clone();
        new.addresses.retain(|(n, _)| *n != node);
        new.addresses.push((node, address.to_string()));
        new.addresses.sort();
        new
    }

    /// The peer address recorded for `node`, if it was added with one.
    pub fn address_of(&self, node: NodeId) -> Option<&str> {
        self.addresses.iter().find(|(n, _)| *n == node).map(|(_, a)| a.as_str())
    }

    /// Whether this configuration is one a node could have made: at least
    /// one voter, at most `MAX_MEMBERS` members, nobody listed twice,
    /// addresses only for members, each short and printable, a plausible
    /// epoch. Check what a peer sends before trusting it.
    pub fn is_sane(&self) -> bool {
        let mut all: Vec<NodeId> = self.voters.iter().chain(self.learners.iter()).copied().collect();
        let n = all.len();
        all.sort();
        all.dedup();
        let mut addressed: Vec<NodeId> = self.addresses.iter().map(|(n, _)| *n).collect();
        addressed.dedup();
        !self.voters.is_empty()
            && n <= MAX_MEMBERS
            && self.epoch < MAX_EPOCH
            && all.len() == n
            && addressed.len() == self.addresses.len()
            && self.addresses.iter().all(|(node, address)| {
                self.contains(*node)
                    && !address.is_empty()
                    && address.len() <= MAX_ADDRESS_LEN
                    && address.bytes().all(|b| b.is_ascii_graphic())
            })
    }
}

/// A change of membership an operator asks of a leader
/// ([`crate::Protocol::change_membership`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add a node that receives the log but does not vote, listening for
    /// peers at `address` (`None`: its address is already configured).
    AddLearner {
        /// The new node.
        node: NodeId,
        /// Where it listens for peers.
        address: Option<String>,
    },
    /// Make a learner that has caught up a voter.
    Promote(NodeId),
    /// Remove a voter (the leader itself too) or a learner.
    Remove(NodeId),
}

impl MembershipChange {
    /// Add `node` as a learner whose peer address is configured already.
    pub fn learner(node: NodeId) -> MembershipChange {
        MembershipChange::AddLearner { node, address: None }
    }
}

impl fmt::Display for MembershipChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipChange::AddLearner { node, address: Some(a) } => write!(f, "add {node} at {a} as a learner"),
            MembershipChange::AddLearner { node, address: None } => write!(f, "add {node} as a learner"),
            MembershipChange::Promote(node) => write!(f, "promote {node} to voter"),
            MembershipChange::Remove(node) => write!(f, "remove {node}"),
        }
    }
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
    /// The configuration would list more than `MAX_MEMBERS` members.
    TooManyMembers,
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
            ChangeError::TooManyMembers => write!(f, "a configuration lists at most {MAX_MEMBERS} members"),
            ChangeError::BadAddress(n) => {
                write!(f, "the peer address for {n} must be 1 to {MAX_ADDRESS_LEN} printable characters (host:port)")
            }
        }
    }
}

impl std::error::Error for ChangeError {}

impl Membership {
    /// The configuration an operator's `change` makes of this one, or why it
    /// cannot: the node to add must be new (and its address sane), the node
    /// to promote must not vote yet, the node to remove must be a member, and
    /// the result must change at most one voter and keep one
    /// ([`check_single_change`]). Whether a promoted node has caught up is
    /// for the leader to judge.
    pub fn changed(&self, change: &MembershipChange) -> Result<Membership, ChangeError> {
        let new = match change {
            MembershipChange::AddLearner { node, address } => {
                if self.contains(*node) {
                    return Err(ChangeError::AlreadyMember(*node));
                }
                let new = self.with_learner(*node);
                match address {
                    Some(address) => {
                        let new = new.with_address(*node, address);
                        if !new.is_sane() {
                            return Err(ChangeError::BadAddress(*node));
                        }
                        new
                    }
                    None => new,
                }
            }
            MembershipChange::Promote(node) => {
                if self.voters.contains(node) {
                    return Err(ChangeError::AlreadyVoter(*node));
                }
                self.with_voter(*node)
            }
            MembershipChange::Remove(node) => self.without(*node).ok_or(ChangeError::NotMember(*node))?,
        };
        check_single_change(self, &new)?;
        let new = Membership { epoch: self.epoch + 1, ..new };
        if !new.is_sane() {
            return Err(ChangeError::TooManyMembers); // the one rule left that an edit can break
        }
        Ok(new)
    }

    /// True if this configuration was made from `previous` by one change:
    /// only then does it replace `previous` where it is chosen.
    pub fn follows(&self, previous: &Membership) -> bool {
        previous.epoch.checked_add(1) == Some(self.epoch)
    }

    /// The majority of this configuration's voters.
    pub fn majority(&self) -> Majority {
        Majority::of(self.voters.len())
    }

    /// True if the voters among `nodes` make a majority of this configuration.
    pub fn is_quorum<'a>(&self, nodes: impl IntoIterator<Item = &'a NodeId>) -> bool {
        self.majority().is_reached(nodes.into_iter().filter(|n| self.voters.contains(n)).count())
    }

    /// The largest value that a majority of the voters have reached, given each voter's value.
    pub fn quorum_value(&self, mut value_of: impl FnMut(NodeId) -> u64) -> u64 {
        self.majority().reached_by_quorum(self.voters.iter().map(|v| value_of(*v)))
    }
}

/// Checks that `new` differs from `old` by at most one voter and keeps one.
pub fn check_single_change(old: &Membership, new: &Membership) -> Result<(), ChangeError> {
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

/// What a snapshot's metadata says about membership: the configuration in
/// force at its index (a snapshot replaces the log that held it).
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The membership in force at the snapshot's index.
    pub membership: Membership,
}

impl SnapshotMeta {
    /// The metadata as bytes.
    pub fn encode(&self) -> bytes::Bytes {
        bytes::Bytes::from(postcard::to_allocvec(self).expect("snapshot metadata encodes"))
    }

    /// Decodes and checks metadata a peer or a disk gave us.
    pub fn decode(meta: &[u8]) -> Result<SnapshotMeta, String> {
        let decoded: SnapshotMeta = postcard::from_bytes(meta).map_err(|e| e.to_string())?;
        if !decoded.membership.is_sane() {
            return Err(format!("membership makes no sense: {:?}", decoded.membership));
        }
        Ok(decoded)
    }
}

/// The configurations in a log, newest last, each with the index (slot) of
/// the entry that holds it. The first is the one in force at the compaction
/// point (or the initial one).
#[derive(Clone, Debug, Hash)]
pub struct Configs {
    history: Vec<(u64, Membership)>,
}

impl Configs {
    /// Starts with `base` in force at `index`.
    pub fn new(index: u64, base: Membership) -> Self {
        Configs { history: vec![(index, base)] }
    }

    /// The configuration in force now (the newest).
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

    /// The configuration before the newest one while the newest is not
    /// committed (its index is above `committed`): until then the voters of
    /// the one before still decide too.
    pub fn pending_previous(&self, committed: u64) -> Option<&Membership> {
        self.previous().filter(|_| self.current_index() > committed)
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

    /// Replaces everything with `base` in force at `index` (a snapshot installed).
    pub fn reset(&mut self, index: u64, base: Membership) {
        self.history = vec![(index, base)];
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
        assert_eq!(conf.quorum_value(|n| values[(n.0 - 1) as usize]), 7);
        assert_eq!(m(&[1]).quorum_value(|_| 4), 4);
    }

    #[test]
    fn only_voters_make_a_quorum() {
        let conf = m(&[1, 2, 3]).with_learner(NodeId(4));
        assert!(!conf.is_quorum(&[NodeId(1), NodeId(4)]));
        assert!(conf.is_quorum(&[NodeId(1), NodeId(3)]));
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

    #[test]
    fn an_operator_change_is_refused_with_its_reason() {
        let conf = m(&[1, 2, 3]);
        let add = |n, a: Option<&str>| MembershipChange::AddLearner { node: NodeId(n), address: a.map(String::from) };
        assert_eq!(conf.changed(&add(2, None)), Err(ChangeError::AlreadyMember(NodeId(2))));
        assert_eq!(conf.changed(&add(4, Some("bad address"))), Err(ChangeError::BadAddress(NodeId(4))));
        let added = conf.changed(&add(4, Some("10.0.0.4:7000"))).unwrap();
        assert_eq!(added.address_of(NodeId(4)), Some("10.0.0.4:7000"));
        assert_eq!(conf.changed(&MembershipChange::Promote(NodeId(1))), Err(ChangeError::AlreadyVoter(NodeId(1))));
        assert_eq!(conf.changed(&MembershipChange::Remove(NodeId(9))), Err(ChangeError::NotMember(NodeId(9))));
        assert_eq!(m(&[1]).changed(&MembershipChange::Remove(NodeId(1))), Err(ChangeError::NotSingleChange));
        assert_eq!(added.changed(&MembershipChange::Promote(NodeId(4))).unwrap().voters.len(), 4);
    }

    #[test]
    fn a_configuration_stays_within_its_bounds() {
        let full = m(&(1..=MAX_MEMBERS as u64).collect::<Vec<_>>());
        assert!(full.is_sane());
        let add = MembershipChange::AddLearner { node: NodeId(MAX_MEMBERS as u64 + 1), address: None };
        assert_eq!(full.changed(&add), Err(ChangeError::TooManyMembers));
        let late = Membership { epoch: u64::MAX, ..m(&[1]) };
        assert!(!late.is_sane(), "an epoch no cluster reaches is a broken peer's");
        assert!(!Membership { epoch: 0, ..m(&[1]) }.follows(&late), "no overflow past u64::MAX");
    }
}
