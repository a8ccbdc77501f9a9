//! Identifiers of nodes and clients.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A member of the cluster. Ids are small positive integers chosen by the operator.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

/// A client session: commands from one client carry increasing sequence numbers,
/// which the state machine uses to apply each command at most once.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

debug_is_display!(NodeId, ClientId);
