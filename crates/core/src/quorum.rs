//! Quorum arithmetic, in one place for every protocol and driver.
//!
//! Every protocol here decides by a majority of one voter set: a value is
//! chosen, an entry committed, an election won or a lease held once more than
//! half of the voters said so. Callers ask the questions a quorum answers —
//! has this count reached a quorum, what value has a quorum reached, is this
//! vote won or lost — rather than compare against `n / 2 + 1` themselves, so
//! that a joint or flexible quorum can later stand in behind the same calls.

/// The smallest number of nodes out of `cluster_size` that forms a majority.
pub fn majority(cluster_size: usize) -> usize {
    cluster_size / 2 + 1
}

/// A majority quorum over `voters` nodes.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Majority {
    voters: usize,
}

/// Where a vote stands after some answers.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// Neither outcome is settled yet.
    Pending,
    /// So many refused that the rest can no longer make a quorum.
    Lost,
}

impl Majority {
    /// The majority of a voter set of this size.
    pub fn of(voters: usize) -> Self {
        Majority { voters }
    }

    /// How many voters make a quorum.
    pub fn needed(self) -> usize {
        majority(self.voters)
    }

    /// True if `count` distinct voters make a quorum.
    pub fn is_reached(self, count: usize) -> bool {
        count >= self.needed()
    }

    /// The state of a vote with `granted` and `rejected` distinct voters
    /// answered (neither counting a node outside the voter set).
    pub fn tally(self, granted: usize, rejected: usize) -> VoteResult {
        if self.is_reached(granted) {
            VoteResult::Won
        } else if rejected > self.voters.saturating_sub(self.needed()) {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }

    /// The largest value that a quorum of voters has reached, given one value
    /// per voter: the `needed()`-th largest. This is the commit rule of Raft
    /// (the match index a majority holds) and of every log the voters copy.
    /// Voters missing from `values` count as having reached 0.
    pub fn reached_by_quorum(self, values: impl IntoIterator<Item = u64>) -> u64 {
        let mut values: Vec<u64> = values.into_iter().collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values.get(self.needed().wrapping_sub(1)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_of_common_cluster_sizes() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
        assert_eq!(majority(7), 4);
    }

    #[test]
    fn a_vote_is_lost_once_the_remaining_voters_cannot_make_a_quorum() {
        let five = Majority::of(5);
        assert_eq!(five.tally(2, 2), VoteResult::Pending);
        assert_eq!(five.tally(3, 2), VoteResult::Won);
        assert_eq!(five.tally(0, 3), VoteResult::Lost);
        let four = Majority::of(4);
        assert_eq!(four.tally(2, 1), VoteResult::Pending);
        assert_eq!(four.tally(1, 2), VoteResult::Lost, "3 of 4 are needed: two refusals settle it");
        assert_eq!(Majority::of(1).tally(1, 0), VoteResult::Won);
    }

    #[test]
    fn the_quorum_value_is_the_kth_largest() {
        assert_eq!(Majority::of(5).reached_by_quorum([9, 3, 7, 1, 5]), 5);
        assert_eq!(Majority::of(4).reached_by_quorum([9, 3, 7, 1]), 3);
        assert_eq!(Majority::of(3).reached_by_quorum([4]), 0, "two voters have not answered");
        assert_eq!(Majority::of(1).reached_by_quorum([4]), 4);
        assert_eq!(Majority::of(0).reached_by_quorum([]), 0);
    }
}
