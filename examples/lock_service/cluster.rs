//! Three quorum-raft nodes serving the lock service, in this process, over
//! TCP on loopback, each with its own fsync'd write-ahead log in a temp dir.

use crate::lock::LockService;
use quorum::core::{NodeId, Protocol, Role};
use quorum::raft::{Raft, RaftConfig};
use quorum_runtime::node::NodeError;
use quorum_runtime::tcp::PeerDirectory;
use quorum_runtime::{Node, NodeConfig, NodeHandle, TcpConfig, TcpTransport, Wal};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A node that is running: how to reach it, and its task.
struct Running {
    handle: NodeHandle,
    task: JoinHandle<Result<(), NodeError>>,
}

/// The cluster: every member's peer address and data dir, and the running nodes.
pub struct Cluster {
    peers: BTreeMap<NodeId, SocketAddr>,
    data: tempfile::TempDir,
    running: BTreeMap<NodeId, Running>,
}

impl Cluster {
    /// Starts `n` nodes on free loopback ports.
    pub async fn start(n: u64) -> Result<Cluster, String> {
        let mut listeners = BTreeMap::new();
        for id in (1..=n).map(NodeId) {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?);
        }
        let peers = listeners.iter().map(|(id, l)| Ok((*id, l.local_addr()?))).collect::<std::io::Result<_>>();
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut cluster = Cluster { peers: peers.map_err(|e| e.to_string())?, data, running: BTreeMap::new() };
        for (id, listener) in listeners {
            cluster.launch(id, listener)?;
        }
        Ok(cluster)
    }

    /// Embedding in four calls: a transport, a log, a node around your state machine, a task.
    fn launch(&mut self, id: NodeId, listener: TcpListener) -> Result<(), String> {
        let tcp = TcpConfig::new(id, "lock-service", Raft::NAME, self.peers.clone());
        let transport = TcpTransport::start(listener, tcp, PeerDirectory::default()).map_err(|e| e.to_string())?;
        let wal = Wal::open(self.data.path().join(format!("node-{id}"))).map_err(|e| e.to_string())?;
        let config = NodeConfig::new(id, self.peers.keys().copied().collect());
        let (node, handle) = Node::<Raft, _, LockService>::new(config, RaftConfig::default(), transport, wal)
            .map_err(|e| e.to_string())?;
        let task = tokio::spawn(node.run(std::future::pending()));
        self.running.insert(id, Running { handle, task });
        Ok(())
    }

    /// Stops a node abruptly: its task is dropped mid-step and its sockets close.
    pub async fn crash(&mut self, id: NodeId) {
        if let Some(node) = self.running.remove(&id) {
            node.task.abort();
            let _ = node.task.await;
        }
    }

    /// Restarts a crashed node on its old address, from its write-ahead log.
    pub async fn restart(&mut self, id: NodeId) -> Result<(), String> {
        let listener = TcpListener::bind(self.peers[&id]).await.map_err(|e| e.to_string())?;
        self.launch(id, listener)
    }

    /// The handle of a running node.
    pub fn node(&self, id: NodeId) -> Option<&NodeHandle> {
        self.running.get(&id).map(|r| &r.handle)
    }

    /// The handles of every running node.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeHandle> {
        self.running.values().map(|r| &r.handle)
    }

    /// Waits until a running node leads a term that every running node has reached; returns it and the term.
    pub async fn leader(&self, within: Duration) -> Result<(NodeId, u64), String> {
        let give_up = tokio::time::Instant::now() + within;
        loop {
            let mut statuses = Vec::new();
            for handle in self.nodes() {
                statuses.extend(handle.status().await.map(|s| s.status));
            }
            let top_term = statuses.iter().map(|s| s.term).max().unwrap_or(0);
            if let Some(leader) = statuses.iter().find(|s| s.role == Role::Leader && s.term == top_term) {
                if statuses.iter().all(|s| s.leader == Some(leader.id)) {
                    return Ok((leader.id, leader.term));
                }
            }
            if tokio::time::Instant::now() > give_up {
                return Err(format!("no leader within {within:?}: {statuses:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        let ids: Vec<NodeId> = self.running.keys().copied().collect();
        for id in ids {
            self.crash(id).await;
        }
    }
}
