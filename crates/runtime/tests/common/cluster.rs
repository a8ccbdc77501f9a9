//! An in-process cluster of runtime nodes over real TCP and real files.

use super::fixed_leader::FixedLeader;
use quorum_core::NodeId;
use quorum_runtime::node::NodeError;
use quorum_runtime::server::{self, ServerConfig};
use quorum_runtime::tcp::PeerDirectory;
use quorum_runtime::{Node, NodeConfig, TcpConfig, TcpTransport, Wal};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::oneshot;

pub const CLUSTER_ID: &str = "test-cluster";

type Running = (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), NodeError>>, tokio::task::JoinHandle<()>);

pub struct Member {
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    pub dir: PathBuf,
    /// The running node's handle.
    pub handle: Option<quorum_runtime::NodeHandle>,
    running: Option<Running>,
}

pub struct Cluster {
    pub rt: tokio::runtime::Runtime,
    pub members: BTreeMap<NodeId, Member>,
    pub forward: bool,
    pub snapshot_every: u64,
    /// How every node's client port serves.
    pub server: ServerConfig,
    _root: tempfile::TempDir,
}

impl Cluster {
    pub fn new(n: u64, forward: bool, snapshot_every: u64) -> Cluster {
        Cluster::with_server(n, forward, snapshot_every, ServerConfig::default())
    }

    pub fn with_server(n: u64, forward: bool, snapshot_every: u64, server: ServerConfig) -> Cluster {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let root = tempfile::tempdir().unwrap();
        let members = (1..=n)
            .map(|i| {
                let member = Member {
                    peer_addr: super::free_addr(),
                    client_addr: super::free_addr(),
                    dir: root.path().join(format!("n{i}")),
                    handle: None,
                    running: None,
                };
                (NodeId(i), member)
            })
            .collect();
        let mut cluster = Cluster { rt, members, forward, snapshot_every, server, _root: root };
        for i in 1..=n {
            cluster.start(NodeId(i));
        }
        cluster
    }

    pub fn start(&mut self, id: NodeId) {
        let peers: BTreeMap<NodeId, SocketAddr> = self.members.iter().map(|(i, m)| (*i, m.peer_addr)).collect();
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        let member = &self.members[&id];
        let (peer_addr, client_addr, dir) = (member.peer_addr, member.client_addr, member.dir.clone());
        let (forward, snapshot_every, server_config) = (self.forward, self.snapshot_every, self.server.clone());
        let (stop_tx, stop_rx) = oneshot::channel();
        let (node_task, server_task, handle) = self.rt.block_on(async move {
            let directory = PeerDirectory::default();
            let mut tcp = TcpConfig::new(id, CLUSTER_ID, "fixed-leader", peers);
            tcp.client_addr = client_addr.to_string();
            let listener = tokio::net::TcpListener::bind(peer_addr).await.unwrap();
            let transport = TcpTransport::start(listener, tcp, directory.clone()).unwrap();
            let mut config = NodeConfig::new(id, ids);
            config.forward = forward;
            config.snapshot_every = snapshot_every;
            config.directory = directory;
            let wal = Wal::open(&dir).unwrap();
            let (node, handle) = Node::<FixedLeader, _>::new(config, (), transport, wal).unwrap();
            let clients = tokio::net::TcpListener::bind(client_addr).await.unwrap();
            let server_task = tokio::spawn(server::serve(clients, handle.clone(), server_config));
            let node_task = tokio::spawn(node.run(async {
                let _ = stop_rx.await;
            }));
            (node_task, server_task, handle)
        });
        let member = self.members.get_mut(&id).unwrap();
        member.running = Some((stop_tx, node_task, server_task));
        member.handle = Some(handle);
    }

    pub fn stop(&mut self, id: NodeId) {
        let (stop, node_task, server_task) = self.members.get_mut(&id).unwrap().running.take().expect("running");
        let _ = stop.send(());
        server_task.abort();
        self.rt.block_on(async {
            node_task.await.unwrap().unwrap();
            let _ = server_task.await;
        });
    }

    pub fn client(&self, id: NodeId) -> redis::Connection {
        let url = format!("redis://{}/", self.members[&id].client_addr);
        let client = redis::Client::open(url).unwrap();
        let conn = client.get_connection_with_timeout(Duration::from_secs(5)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conn
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<NodeId> = self.members.iter().filter(|(_, m)| m.running.is_some()).map(|(i, _)| *i).collect();
        for id in ids {
            self.stop(id);
        }
    }
}

/// Reads an `INFO` field.
pub fn info_field(conn: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").query(conn).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .to_string()
}
