//! What travels between two runtime nodes: the protocol's own messages, and
//! client requests a follower forwards to its leader (with their answers).

use quorum_core::{Bytes, ClientId, NodeId};
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
        /// The command or query.
        op: Op,
    },
    /// The leader's answer to a forwarded request.
    ForwardReply {
        /// The follower's id for the request.
        id: u64,
        /// The answer.
        outcome: Outcome,
    },
}

/// What a client asks of the state machine, in its own encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A command, ordered through the log and answered by `apply`.
    Command(Bytes),
    /// A read-only query, answered by [`crate::Service::query`] at a confirmed read index.
    Query(Bytes),
}

/// How a client request ended. `R` is the answer: bytes from the state
/// machine, or decoded (`NodeHandle::execute` gives a `KvResult`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<R = Bytes> {
    /// Applied (or read); the state machine's answer.
    Done(R),
    /// This node cannot order it; the hint names who may.
    NotLeader(Option<NodeId>),
    /// The outcome is unknown or the request could not be served now; the same
    /// (client, seq) may be retried safely, the state machine deduplicates it.
    Retry(String),
}

impl Outcome {
    /// Decodes the answer with `decode`; an undecodable answer becomes a `Retry`.
    pub fn decode<R, E: std::fmt::Display>(self, decode: impl FnOnce(&[u8]) -> Result<R, E>) -> Outcome<R> {
        match self {
            Outcome::Done(bytes) => match decode(&bytes) {
                Ok(answer) => Outcome::Done(answer),
                Err(e) => Outcome::Retry(format!("undecodable answer: {e}")),
            },
            Outcome::NotLeader(hint) => Outcome::NotLeader(hint),
            Outcome::Retry(why) => Outcome::Retry(why),
        }
    }
}
