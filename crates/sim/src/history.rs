//! The client history: what each client asked, when, and what it was told.

use quorum_core::{ClientId, Instant, KvOp, KvResult};
use serde::{Deserialize, Serialize};

/// How an operation ended. `R` is the answer's type: [`KvResult`] for the
/// key-value store, a [`crate::Workload`]'s `Output` for a state machine of yours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<R = KvResult> {
    /// The client got this answer at this time.
    Ok {
        /// When the answer arrived (virtual nanoseconds).
        at: Instant,
        /// The answer.
        result: R,
    },
    /// The client never got an answer: the operation may or may not have taken effect.
    Unknown,
}

/// One client operation, from invocation to answer. `O` is what was asked:
/// [`KvOp`] for the key-value store, a [`crate::Workload`]'s `Op` otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation<O = KvOp, R = KvResult> {
    /// The client.
    pub client: ClientId,
    /// The client's sequence number.
    pub seq: u64,
    /// What it asked.
    pub op: O,
    /// When it first sent the request.
    pub invoked: Instant,
    /// How it ended.
    pub outcome: Outcome<R>,
    /// The node that answered, if one did.
    pub answered_by: Option<quorum_core::NodeId>,
}

impl<O, R> Operation<O, R> {
    /// The time of the answer, if there was one.
    pub fn completed_at(&self) -> Option<Instant> {
        match &self.outcome {
            Outcome::Ok { at, .. } => Some(*at),
            Outcome::Unknown => None,
        }
    }

    /// The answer, if there was one.
    pub fn result(&self) -> Option<&R> {
        match &self.outcome {
            Outcome::Ok { result, .. } => Some(result),
            Outcome::Unknown => None,
        }
    }
}
