//! The node driver's own rules, checked with a storage that can be held back
//! and a channel network whose other ends the test plays by hand.

mod common;

use common::fixed_leader::{FixedLeader, Msg};
use quorum_core::{
    Bytes, ChannelNetwork, ChannelTransport, ClientId, Entry, Incoming, KvOp, KvResult, NodeId, Payload, Stamp,
    Storage, StorageError, Stored, Transport, WriteBatch,
};
use quorum_runtime::wire::{Outcome, Wire};
use quorum_runtime::{Node, NodeConfig, NodeHandle};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Storage whose writes wait until the test opens the valve; records each group.
#[derive(Clone, Default)]
struct Valve {
    inner: Arc<(Mutex<ValveState>, Condvar)>,
}

#[derive(Default)]
struct ValveState {
    open: bool,
    groups: Vec<usize>,
}

impl Valve {
    fn open(&self) {
        self.inner.0.lock().unwrap().open = true;
        self.inner.1.notify_all();
    }
    fn groups(&self) -> Vec<usize> {
        self.inner.0.lock().unwrap().groups.clone()
    }
}

impl Storage for Valve {
    fn write(&mut self, batches: &[WriteBatch]) -> Result<(), StorageError> {
        let (lock, cvar) = &*self.inner;
        let mut state = cvar.wait_while(lock.lock().unwrap(), |s| !s.open).unwrap();
        state.groups.push(batches.len());
        Ok(())
    }
    fn load(&self) -> Result<Stored, StorageError> {
        Ok(Stored::default())
    }
}

type Endpoint = ChannelTransport<Wire<Msg>>;

fn start(id: u64, net: &ChannelNetwork<Wire<Msg>>, storage: Valve) -> (NodeHandle, tokio::task::JoinHandle<()>) {
    let transport = net.endpoint(NodeId(id));
    let config = NodeConfig::new(NodeId(id), vec![NodeId(1), NodeId(2), NodeId(3)]);
    let (node, handle) = Node::<FixedLeader, _>::new(config, (), transport, storage).unwrap();
    let task = tokio::spawn(async move {
        node.run(std::future::pending()).await.unwrap();
    });
    (handle, task)
}

async fn next_message(endpoint: &mut Endpoint, within: Duration) -> Option<Wire<Msg>> {
    loop {
        match tokio::time::timeout(within, endpoint.recv()).await {
            Ok(Some(Incoming::Message(_, msg))) => return Some(msg),
            Ok(Some(Incoming::LinkDown(_))) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

fn entry(index: u64) -> Entry {
    let cmd = quorum_core::Command::new(ClientId(9), index, KvOp::Del { key: Bytes::from("k") }.encode());
    Entry { index, stamp: Stamp::new(1, 0), payload: Payload::Command(cmd) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_send_waits_until_the_write_before_it_is_on_disk() {
    let net = ChannelNetwork::new();
    let mut leader = net.endpoint(NodeId(1));
    let _other = net.endpoint(NodeId(3));
    let valve = Valve::default();
    let (_handle, task) = start(2, &net, valve.clone());
    let append = Msg::Append { prev: 0, entries: vec![entry(1), entry(2)], commit: 0 };
    leader.send(NodeId(2), Wire::Protocol(append)).await.unwrap();
    assert!(
        next_message(&mut leader, Duration::from_millis(200)).await.is_none(),
        "the follower acknowledged entries that are not durable"
    );
    valve.open();
    match next_message(&mut leader, Duration::from_secs(5)).await {
        Some(Wire::Protocol(Msg::Ack { last: 2 })) => {}
        other => panic!("expected the ack once durable, got {other:?}"),
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_sends_to_followers_while_its_own_write_is_in_flight_and_writes_queued_meanwhile_share_one_sync() {
    let net = ChannelNetwork::new();
    let mut follower_2 = net.endpoint(NodeId(2));
    let _follower_3 = net.endpoint(NodeId(3));
    let valve = Valve::default();
    let (handle, task) = start(1, &net, valve.clone());
    let mut clients = Vec::new();
    for seq in 1..=20u64 {
        let handle = handle.clone();
        let op = KvOp::Put { key: Bytes::from(format!("k{seq}")), value: Bytes::from("v") };
        clients.push(tokio::spawn(async move { handle.execute(ClientId(seq), 1, op).await }));
    }
    // Thesis §10.2.1: the entries reach the follower before the leader's disk lets any write through.
    let mut seen = 0;
    while seen < 20 {
        match next_message(&mut follower_2, Duration::from_secs(5)).await {
            Some(Wire::Protocol(Msg::Append { entries, .. })) => seen += entries.len(),
            Some(_) => {}
            None => panic!("the leader sent only {seen} of 20 entries while its own write was held"),
        }
    }
    assert!(valve.groups().is_empty(), "nothing was written yet");
    // The follower acknowledges; the leader still waits for its own write to count itself.
    follower_2.send(NodeId(1), Wire::Protocol(Msg::Ack { last: 20 })).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(clients.iter().all(|c| !c.is_finished()), "a write was acknowledged before the leader's own write");
    valve.open();
    for client in clients {
        assert_eq!(client.await.unwrap(), Outcome::Done(KvResult::Done));
    }
    let groups = valve.groups();
    assert_eq!(groups.iter().sum::<usize>(), 20);
    assert!(groups.len() < 20, "writes queued behind a slow sync must share syncs: {groups:?}");
    task.abort();
}
