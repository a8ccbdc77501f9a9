//! The messages of Multi-Paxos.

use quorum_core::{Bytes, Instant, Payload, Stamp};
use quorum_paxos::{Accepted, Ballot, Chosen};
use serde::{Deserialize, Serialize};

/// A Multi-Paxos message.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// Phase 1a for every slot from `from` on: "promise me `ballot`".
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// The first slot the candidate does not know committed.
        from: u64,
    },
    /// Phase 1b: the promise, with what the acceptor knows from `first` on,
    /// one page at a time: a page holds at most `snapshot_chunk_bytes` of
    /// values past its first (so it fits a frame), and if the acceptor knows
    /// more past `last`, the candidate asks again from `last + 1` (a Prepare
    /// of the same ballot).
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The first slot this page covers (the Prepare's `from`).
        first: u64,
        /// The last slot this page covers, if the acceptor knows more past
        /// it; `None`: the page covers every slot from `first` on.
        last: Option<u64>,
        /// Slots this node knows are chosen (the candidate learns them as they are).
        chosen: Vec<Chosen>,
        /// Every other slot this acceptor accepted, with the ballot it accepted it in.
        accepted: Vec<(u64, Accepted)>,
        /// Slots up to here are folded into this node's snapshot: their values
        /// are not in this promise.
        snapshot_index: u64,
        /// This node's commit point. If `chosen` stops short of it (the list
        /// is capped), the candidate must catch up before it can lead.
        committed: u64,
    },
    /// Phase 2a for a batch of slots, with the leader's commit point piggybacked.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// Slots and the values proposed for them.
        entries: Vec<(u64, Payload)>,
        /// Every slot up to here is chosen.
        commit: u64,
    },
    /// Phase 2b: the acceptor accepted these slots in `ballot`.
    Accepted {
        /// The ballot.
        ballot: Ballot,
        /// The slots accepted.
        slots: Vec<u64>,
    },
    /// A Prepare, Accept or Heartbeat refused: the acceptor promised a higher ballot.
    Nack {
        /// The ballot refused.
        ballot: Ballot,
        /// The higher ballot promised.
        promised: Ballot,
    },
    /// The leader is alive; every slot up to `commit` is chosen.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's commit point.
        commit: u64,
        /// The leader's clock when it sent this (echoed back for leases).
        sent_at: Instant,
    },
    /// A replica accepted the heartbeat sent at `sent_at` (for CheckQuorum,
    /// read leases, and how far a learner has caught up).
    HeartbeatAck {
        /// The leader's ballot.
        ballot: Ballot,
        /// The echoed send time.
        sent_at: Instant,
        /// The replica's commit point.
        committed: u64,
    },
    /// "Take over from me now": a leader hands over to a voter (a transfer,
    /// or its own removal), which starts Phase 1 without waiting.
    TakeOver {
        /// The sender's ballot: only the leader the receiver follows is obeyed.
        ballot: Ballot,
    },
    /// A lagging replica asks for the chosen values from `from` on.
    CatchUp {
        /// The first slot it is missing.
        from: u64,
    },
    /// Chosen values, in slot order. With none and `more`: "you propose in
    /// slots I have compacted into my snapshot: catch up from me".
    Decided {
        /// The values.
        chosen: Vec<Chosen>,
        /// An answer to `CatchUp` cut by the caps: the sender has chosen
        /// values past the last one here, so ask again at once.
        more: bool,
    },
    /// "My link to the leader of `ballot` broke: have you lost it too?" (the
    /// link-down hint, Raft's PreVote for Paxos). Changes nothing where it lands.
    Suspect {
        /// The ballot of the leader the sender lost.
        ballot: Ballot,
    },
    /// The answer to `Suspect`.
    SuspectReply {
        /// The ballot asked about.
        ballot: Ballot,
        /// True if the sender neither leads nor heard from its leader within an election timeout.
        agree: bool,
    },
    /// One piece of the sender's snapshot, for a replica behind its
    /// compaction point. A snapshot travels in pieces of at most
    /// `snapshot_chunk_bytes`, one at a time, each asked for by the receiver
    /// (`SnapshotPull`): no message grows with the state machine.
    SnapshotChunk(SnapshotPiece),
    /// "Send me the piece at `offset` of your snapshot at `index`" (the next
    /// one, or a lost one again). A sender whose snapshot moved on answers
    /// with the first piece of its current one.
    SnapshotPull {
        /// The snapshot being received.
        index: u64,
        /// The first byte not yet received.
        offset: u64,
    },
}

/// One piece of a snapshot in transfer (`Message::SnapshotChunk`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPiece {
    /// The last slot the snapshot covers.
    pub index: u64,
    /// The ballot stamp of that slot.
    pub stamp: Stamp,
    /// The snapshot's metadata (in the first piece only).
    pub meta: Bytes,
    /// The length of the whole snapshot data.
    pub total: u64,
    /// Where this piece starts in the data.
    pub offset: u64,
    /// The piece.
    pub data: Bytes,
}
