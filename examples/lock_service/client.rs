//! A client of the lock service: one session, one request at a time, retried
//! with the same sequence number until some node answers.

use crate::cluster::Cluster;
use crate::lock::{LockReply, LockRequest};
use bytes::Bytes;
use quorum::core::ClientId;
use quorum_runtime::wire::Outcome;
use quorum_runtime::NodeHandle;
use std::time::Duration;

/// How long a request is retried before the client gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// One client session.
pub struct Client {
    /// The name the client takes locks under.
    pub name: &'static str,
    id: ClientId,
    seq: u64,
}

impl Client {
    /// A new session.
    pub fn new(name: &'static str, id: u64) -> Client {
        Client { name, id: ClientId(id), seq: 0 }
    }

    /// Orders `request` through the log.
    pub async fn command(&mut self, cluster: &Cluster, request: LockRequest) -> Result<LockReply, String> {
        self.call(cluster, request, |node, client, seq, bytes| async move { node.command(client, seq, bytes).await })
            .await
    }

    /// Asks a read-only question, answered linearizably (Raft's ReadIndex on the leader).
    pub async fn query(&mut self, cluster: &Cluster, request: LockRequest) -> Result<LockReply, String> {
        self.call(cluster, request, |node, client, seq, bytes| async move { node.query(client, seq, bytes).await })
            .await
    }

    async fn call<F, Fut>(&mut self, cluster: &Cluster, request: LockRequest, send: F) -> Result<LockReply, String>
    where
        F: Fn(NodeHandle, ClientId, u64, Bytes) -> Fut,
        Fut: std::future::Future<Output = Outcome>,
    {
        self.seq += 1;
        let bytes = request.encode();
        let give_up = tokio::time::Instant::now() + GIVE_UP_AFTER;
        let mut last = String::new();
        while tokio::time::Instant::now() < give_up {
            // Any running node will do: a follower forwards to its leader.
            let nodes: Vec<NodeHandle> = cluster.nodes().cloned().collect();
            for node in nodes {
                match send(node, self.id, self.seq, bytes.clone()).await {
                    Outcome::Done(answer) => return LockReply::decode(&answer).map_err(|e| e.to_string()),
                    Outcome::NotLeader(hint) => last = format!("not the leader (hint {hint:?})"),
                    Outcome::Retry(why) => last = why,
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("{} gave up on {request:?}: {last}", self.name))
    }
}
