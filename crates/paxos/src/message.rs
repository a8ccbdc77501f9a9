//! The messages of Basic Paxos, one Synod instance per slot.

use crate::{Accepted, Ballot};
use quorum_core::Payload;
use serde::{Deserialize, Serialize};

/// A value known chosen: the slot, the ballot that chose it, and the value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chosen {
    /// The slot.
    pub slot: u64,
    /// The ballot in which a majority accepted it.
    pub ballot: Ballot,
    /// The value.
    pub value: Payload,
}

/// A Basic Paxos message. Every one names its slot: instances are independent.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// Phase 1a: a proposer asks the acceptors of `slot` to promise `ballot`.
    Prepare {
        /// The slot.
        slot: u64,
        /// The ballot to promise.
        ballot: Ballot,
    },
    /// Phase 1b: the promise, with the highest-ballot proposal accepted so far.
    Promise {
        /// The slot.
        slot: u64,
        /// The ballot promised.
        ballot: Ballot,
        /// The highest-ballot proposal this acceptor accepted for the slot.
        accepted: Option<Accepted>,
    },
    /// Phase 2a: a proposer asks the acceptors to accept `value` in `ballot`.
    Accept {
        /// The slot.
        slot: u64,
        /// The ballot.
        ballot: Ballot,
        /// The value (the adopted one, or the proposer's own if none was reported).
        value: Payload,
    },
    /// Phase 2b: the acceptor accepted the proposal in `ballot`.
    Accepted {
        /// The slot.
        slot: u64,
        /// The ballot accepted.
        ballot: Ballot,
    },
    /// A Prepare or Accept refused: the acceptor promised a higher ballot.
    Nack {
        /// The slot.
        slot: u64,
        /// The ballot refused.
        ballot: Ballot,
        /// The higher ballot the acceptor promised.
        promised: Ballot,
    },
    /// Chosen values, spread by the proposer that learned them, sent in answer
    /// to a request about a slot already decided, or to a catch-up request.
    Decided {
        /// The values, in slot order.
        chosen: Vec<Chosen>,
        /// In answer to a catch-up request: the sender knows values beyond
        /// these (its answers are capped by count and by bytes), so the asker
        /// should ask it again.
        more: bool,
    },
    /// A lagging node asks for the chosen values of the slots from `from` on.
    CatchUp {
        /// The first slot the asker has not learned.
        from: u64,
    },
}
