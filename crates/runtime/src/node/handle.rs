//! The handle clients (the RESP port, an embedding program) use to talk to
//! their node task.

use crate::metrics::{NodeMetrics, NodeView};
use crate::wire::{Op, Outcome};
use quorum_core::{Bytes, ClientId, KvOp, KvResult, NodeId, Status};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// A request from a client to the node task.
#[derive(Debug)]
pub enum Request {
    /// Serve a command or query for a client.
    Op {
        /// The client session.
        client: ClientId,
        /// Its sequence number.
        seq: u64,
        /// The command or query.
        op: Op,
        /// Where the answer goes.
        reply: oneshot::Sender<Outcome>,
    },
    /// Answer a query from this node's own state, without the protocol.
    Local {
        /// The query.
        query: Bytes,
        /// Where the answer goes.
        reply: oneshot::Sender<Bytes>,
    },
    /// Report the node's status.
    Status {
        /// Where the answer goes.
        reply: oneshot::Sender<NodeStatus>,
    },
    /// Do what an operator asked.
    Admin {
        /// What.
        action: AdminAction,
        /// What was done (a sentence, or the backup file's bytes), or why not.
        reply: oneshot::Sender<Result<Bytes, String>>,
    },
}

/// What an operator may ask of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminAction {
    /// This leader passes leadership to the given node (Raft).
    TransferLeader(NodeId),
    /// Snapshot the state machine now and let the protocol compact its log.
    Snapshot,
    /// The bytes of a backup file (see the `backup` module) of the state
    /// machine as applied now. Ask after a linearizable read for a backup
    /// holding every acknowledged write.
    Backup,
    /// Change the membership (on the leader; answered once the change commits).
    Change(quorum_core::MembershipChange),
    /// The members, one per line: id, `voter` or `learner`, peer address.
    Members,
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
    /// Items in the state machine (keys of the key-value store), as
    /// [`crate::Service::item_count`] counts them.
    pub items: usize,
}

/// A cheap, cloneable way to reach a running node.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    pub(crate) id: NodeId,
    pub(crate) tx: mpsc::Sender<Request>,
    pub(crate) view: watch::Receiver<NodeView>,
    pub(crate) metrics: Arc<NodeMetrics>,
}

impl NodeHandle {
    /// The node this handle reaches.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's role, term, leader and commit and applied indexes, updated
    /// whenever one changes: `changed().await` learns of a new leader
    /// without polling.
    pub fn watch(&self) -> watch::Receiver<NodeView> {
        self.view.clone()
    }

    /// Asks the node to do `action`; the answer says what was done, or why not.
    pub async fn admin(&self, action: AdminAction) -> Result<Bytes, String> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Request::Admin { action, reply }).await.map_err(|_| "the node is shutting down".to_string())?;
        answer.await.map_err(|_| "the node is shutting down".to_string())?
    }

    /// What the node has counted and timed (latencies, proposals, leader changes...).
    pub fn metrics(&self) -> Arc<NodeMetrics> {
        self.metrics.clone()
    }

    /// Orders `command` through the log for `(client, seq)` and waits for the
    /// state machine's answer. A retry must reuse the same `(client, seq)`.
    pub async fn command(&self, client: ClientId, seq: u64, command: Bytes) -> Outcome {
        self.request(client, seq, Op::Command(command)).await
    }

    /// Answers a read-only `query` linearizably (at an index the protocol
    /// confirmed, or through the log) and waits for the answer.
    pub async fn query(&self, client: ClientId, seq: u64, query: Bytes) -> Outcome {
        self.request(client, seq, Op::Query(query)).await
    }

    /// Key-value convenience: executes `op` on a node serving a
    /// [`quorum_core::KvStore`] (a `Get` as a query, the rest as commands).
    pub async fn execute(&self, client: ClientId, seq: u64, op: KvOp) -> Outcome<KvResult> {
        let op = if op.is_read() { Op::Query(op.encode()) } else { Op::Command(op.encode()) };
        self.request(client, seq, op).await.decode(KvResult::decode)
    }

    async fn request(&self, client: ClientId, seq: u64, op: Op) -> Outcome {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Op { client, seq, op, reply }).await.is_err() {
            return Outcome::Retry("the node is shutting down".into());
        }
        rx.await.unwrap_or_else(|_| Outcome::Retry("the node dropped the request".into()))
    }

    /// Answers `query` from this node's own copy of the state, at once and
    /// without the protocol: it may be stale (not linearizable). For looking
    /// at one replica (tests, monitoring); `None` once the node stopped.
    pub async fn read_local(&self, query: Bytes) -> Option<Bytes> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Local { query, reply }).await.ok()?;
        rx.await.ok()
    }

    /// The node's status, or `None` once it stopped.
    pub async fn status(&self) -> Option<NodeStatus> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Status { reply }).await.ok()?;
        rx.await.ok()
    }
}
