//! Ballots: the proposal numbers of Paxos.
//!
//! "Paxos Made Simple" §2.2 asks that proposals be numbered from a totally
//! ordered set, with no two proposers ever using the same number. A ballot is
//! the pair `(round, node)` compared lexicographically: proposers pick rounds
//! freely and the node id breaks ties, so two nodes never share a ballot.

use quorum_core::{NodeId, Stamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A proposal number `(round, node)`, ordered by round, then node.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Ballot {
    /// The round; a proposer picks one above every round it has seen.
    pub round: u64,
    /// The proposer that owns this ballot.
    pub node: u64,
}

impl Ballot {
    /// The ballot below every real one: "nothing promised yet".
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// The ballot `(round, node)`.
    pub const fn new(round: u64, node: NodeId) -> Self {
        Ballot { round, node: node.0 }
    }

    /// The smallest ballot owned by `node` that is above every round in `seen`.
    pub fn next_above(seen: u64, node: NodeId) -> Self {
        Ballot::new(seen + 1, node)
    }

    /// The node that owns the ballot (None for [`Ballot::ZERO`]).
    pub fn owner(self) -> Option<NodeId> {
        (self != Ballot::ZERO).then_some(NodeId(self.node))
    }

    /// The ballot as a log [`Stamp`] `(round, node)`.
    pub fn stamp(self) -> Stamp {
        Stamp::new(self.round, self.node)
    }

    /// The ballot a stamp was made from.
    pub fn from_stamp(stamp: Stamp) -> Self {
        Ballot { round: stamp.major, node: stamp.minor }
    }
}

impl fmt::Debug for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.round, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_node_and_never_collide_across_nodes() {
        let a = Ballot::new(3, NodeId(1));
        let b = Ballot::new(3, NodeId(2));
        let c = Ballot::new(4, NodeId(1));
        assert!(Ballot::ZERO < a && a < b && b < c);
        assert_ne!(Ballot::next_above(3, NodeId(1)), Ballot::next_above(3, NodeId(2)));
        assert_eq!(Ballot::from_stamp(b.stamp()), b);
        assert_eq!(Ballot::ZERO.owner(), None);
        assert_eq!(c.owner(), Some(NodeId(1)));
    }
}
