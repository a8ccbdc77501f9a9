//! The messages Raft nodes exchange (paper Figure 2, plus PreVote, TimeoutNow
//! and chunked InstallSnapshot).

use bytes::Bytes;
use quorum_core::Entry;
use serde::{Deserialize, Serialize};

/// A Raft message. Every message carries the sender's term.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// RequestVote or PreVote.
    Vote(VoteRequest),
    /// The answer to a `Vote`.
    VoteReply(VoteReply),
    /// AppendEntries (also the heartbeat, with no entries).
    Append(Append),
    /// The answer to an `Append`.
    AppendReply(AppendReply),
    /// One chunk of InstallSnapshot.
    Snapshot(SnapshotChunk),
    /// The answer to a `Snapshot` chunk.
    SnapshotReply(SnapshotReply),
    /// Leadership transfer: start an election now (thesis §3.10).
    TimeoutNow {
        /// The leader's term.
        term: u64,
    },
}

impl Message {
    /// The term the sender put on the message.
    pub fn term(&self) -> u64 {
        match self {
            Message::Vote(m) => m.term,
            Message::VoteReply(m) => m.term,
            Message::Append(m) => m.term,
            Message::AppendReply(m) => m.term,
            Message::Snapshot(m) => m.term,
            Message::SnapshotReply(m) => m.term,
            Message::TimeoutNow { term } => *term,
        }
    }
}

/// RequestVote (§5.2) or, with `pre_vote`, a PreVote (thesis §9.6).
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The candidate's term; for a pre-vote, the term it would campaign in.
    pub term: u64,
    /// Index of the candidate's last log entry (§5.4.1).
    pub last_index: u64,
    /// Term of the candidate's last log entry (§5.4.1).
    pub last_term: u64,
    /// A pre-vote: asks "would you vote for me?" without changing any state.
    pub pre_vote: bool,
    /// Sent after TimeoutNow: voters may not ignore it for being in a leader's lease.
    pub transfer: bool,
}

/// The answer to a [`VoteRequest`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteReply {
    /// The voter's term (for a granted pre-vote, the request's term).
    pub term: u64,
    /// Whether the vote was granted.
    pub granted: bool,
    /// Answers a pre-vote.
    pub pre_vote: bool,
}

/// AppendEntries (§5.3). With no entries it is a heartbeat.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct Append {
    /// The leader's term.
    pub term: u64,
    /// Index of the entry just before `entries`.
    pub prev_index: u64,
    /// Term of that entry: the consistency check.
    pub prev_term: u64,
    /// Entries to store, contiguous from `prev_index + 1`.
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub commit: u64,
    /// The leader's heartbeat round, echoed back: confirms leadership for ReadIndex and leases.
    pub round: u64,
}

/// Why a follower refused an [`Append`]: the hint for fast backup (§5.3, last paragraphs).
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The `prev_index` of the refused append (lets the leader drop stale rejections).
    pub prev_index: u64,
    /// The term of the follower's entry at `prev_index`, if it has one.
    pub conflict_term: Option<u64>,
    /// The first index of `conflict_term` in the follower's log, or its last index + 1.
    pub conflict_index: u64,
}

/// The answer to an [`Append`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendReply {
    /// The follower's term.
    pub term: u64,
    /// `Ok(match_index)`: the follower's log matches the leader's up to there.
    pub result: Result<u64, Reject>,
    /// The round of the append being answered.
    pub round: u64,
}

/// One chunk of a snapshot (InstallSnapshot, §7, sent in pieces).
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// The leader's term.
    pub term: u64,
    /// The snapshot's last included index.
    pub index: u64,
    /// The term of the entry at `index`.
    pub index_term: u64,
    /// Raft's metadata (membership at `index`), postcard-encoded.
    pub meta: Bytes,
    /// Byte offset of `data` within the state machine image.
    pub offset: u64,
    /// This chunk's bytes.
    pub data: Bytes,
    /// True on the last chunk.
    pub done: bool,
    /// The leader's heartbeat round.
    pub round: u64,
}

/// The answer to a [`SnapshotChunk`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotReply {
    /// The follower's term.
    pub term: u64,
    /// The snapshot index being answered.
    pub index: u64,
    /// The offset the follower expects next (it may ask to start over at 0).
    pub next_offset: u64,
    /// The follower installed the snapshot (or already had everything in it).
    pub done: bool,
    /// The round of the chunk being answered.
    pub round: u64,
}
