//! The client history: what each client asked, when, and what it was told.

use quorum_core::{ClientId, Instant, KvOp, KvResult};
use serde::{Deserialize, Serialize};

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The client got this answer at this time.
    Ok {
        /// When the answer arrived (virtual nanoseconds).
        at: Instant,
        /// The answer.
        result: KvResult,
    },
    /// The client never got an answer: the operation may or may not have taken effect.
    Unknown,
}

/// One client operation, from invocation to answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The client.
    pub client: ClientId,
    /// The client's sequence number.
    pub seq: u64,
    /// What it asked.
    pub op: KvOp,
    /// When it first sent the request.
    pub invoked: Instant,
    /// How it ended.
    pub outcome: Outcome,
    /// The node that answered, if one did.
    pub answered_by: Option<quorum_core::NodeId>,
}

impl Operation {
    /// The time of the answer, if there was one.
    pub fn completed_at(&self) -> Option<Instant> {
        match &self.outcome {
            Outcome::Ok { at, .. } => Some(*at),
            Outcome::Unknown => None,
        }
    }
}
