//! Commands: what clients ask the replicated state machine to do.

use crate::ClientId;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One client request: opaque bytes for the state machine, plus the client's
/// session id and sequence number so that a retried command is applied at most once.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    /// The client session that issued the command.
    pub client: ClientId,
    /// The client's sequence number; a retry reuses it.
    pub seq: u64,
    /// The operation, encoded by the state machine's own codec.
    pub data: Bytes,
}

impl Command {
    /// A command from `client` with sequence number `seq`.
    pub fn new(client: ClientId, seq: u64, data: impl Into<Bytes>) -> Self {
        Command { client, seq, data: data.into() }
    }

    /// The (client, seq) pair that identifies this command across retries.
    pub fn id(&self) -> (ClientId, u64) {
        (self.client, self.seq)
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}({}B)", self.client, self.seq, self.data.len())
    }
}
