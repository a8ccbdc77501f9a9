//! What travels between two runtime nodes: the protocol's own messages, and
//! client requests a follower forwards to its leader (with their answers).

use quorum_core::{ClientId, KvOp, KvResult, NodeId};
use serde::{Deserialize, Serialize};

/// One frame on a peer link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Wire<M> {
    /// A message of the consensus protocol.
    Protocol(M),
    /// A client request forwarded by a follower to the leader it believes in.
    Forward {
        /// The follower's id for the request.
        id: u64,
        /// The client session, kept so a retry is applied at most once.
        client: ClientId,
        /// The client's sequence number.
        seq: u64,
        /// The operation.
        op: KvOp,
    },
    /// The leader's answer to a forwarded request.
    ForwardReply {
        /// The follower's id for the request.
        id: u64,
        /// The answer.
        outcome: Outcome,
    },
}

/// How a client request ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Applied (or read); the state machine's answer.
    Done(KvResult),
    /// This node cannot order it; the hint names who may.
    NotLeader(Option<NodeId>),
    /// The outcome is unknown or the request could not be served now; the same
    /// (client, seq) may be retried safely, the state machine deduplicates it.
    Retry(String),
}
