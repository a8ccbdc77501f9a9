//! The handle the client server uses to talk to its node task.

use crate::wire::Outcome;
use quorum_core::{ClientId, KvOp, NodeId, Status};
use tokio::sync::{mpsc, oneshot};

/// A request from the client port to the node task.
#[derive(Debug)]
pub enum Request {
    /// Execute a key-value operation for a client.
    Op {
        /// The client session.
        client: ClientId,
        /// Its sequence number.
        seq: u64,
        /// The operation.
        op: KvOp,
        /// Where the answer goes.
        reply: oneshot::Sender<Outcome>,
    },
    /// Report the node's status.
    Status {
        /// Where the answer goes.
        reply: oneshot::Sender<NodeStatus>,
    },
}

/// What `INFO` and `ROLE` show.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// The protocol's own status.
    pub status: Status,
    /// The protocol's name.
    pub protocol: &'static str,
    /// The last index applied to the state machine.
    pub applied_index: u64,
    /// The client address of the leader, if known.
    pub leader_client_addr: Option<String>,
    /// Number of keys in the store.
    pub keys: usize,
}

/// A cheap, cloneable way to reach a running node.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    pub(crate) id: NodeId,
    pub(crate) tx: mpsc::Sender<Request>,
}

impl NodeHandle {
    /// The node this handle reaches.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Executes `op` for `(client, seq)` and waits for its outcome.
    pub async fn execute(&self, client: ClientId, seq: u64, op: KvOp) -> Outcome {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Op { client, seq, op, reply }).await.is_err() {
            return Outcome::Retry("the node is shutting down".into());
        }
        rx.await.unwrap_or_else(|_| Outcome::Retry("the node dropped the request".into()))
    }

    /// The node's status, or `None` once it stopped.
    pub async fn status(&self) -> Option<NodeStatus> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Status { reply }).await.ok()?;
        rx.await.ok()
    }
}
