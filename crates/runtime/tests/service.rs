//! The node driver serves any state machine, not only the key-value store:
//! commands answered with `apply`'s bytes, retries answered once, queries
//! answered from the state at the read index, and local reads.

mod common;

use common::fixed_leader::FixedLeader;
use quorum_core::{Bytes, ChannelNetwork, ClientId, Command, MemStorage, NodeId, SnapshotError, StateMachine};
use quorum_runtime::wire::{Outcome, Wire};
use quorum_runtime::{Node, NodeConfig, Service};
use std::collections::HashMap;

/// A counter: a command adds its 8 little-endian bytes to the total and is
/// answered with the new total; any query is answered with the total.
#[derive(Default)]
struct Counter {
    total: u64,
    applied_index: u64,
    sessions: HashMap<ClientId, (u64, Bytes)>,
}

fn number(n: u64) -> Bytes {
    Bytes::copy_from_slice(&n.to_le_bytes())
}

fn done(outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Done(bytes) => u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
        other => panic!("expected an answer, got {other:?}"),
    }
}

impl StateMachine for Counter {
    fn apply(&mut self, index: u64, cmd: &Command) -> Bytes {
        assert!(index > self.applied_index);
        self.applied_index = index;
        if let Some(cached) = self.cached_response(cmd.client, cmd.seq) {
            return cached;
        }
        self.total += u64::from_le_bytes(cmd.data[..8].try_into().expect("8 bytes"));
        let answer = number(self.total);
        self.sessions.insert(cmd.client, (cmd.seq, answer.clone()));
        answer
    }
    fn snapshot(&self) -> Bytes {
        number(self.total)
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        self.total = u64::from_le_bytes(data.try_into().map_err(|_| SnapshotError("not 8 bytes".into()))?);
        Ok(())
    }
}

impl Service for Counter {
    fn query(&self, _query: &[u8]) -> Bytes {
        number(self.total)
    }
    fn cached_response(&self, client: ClientId, seq: u64) -> Option<Bytes> {
        self.sessions.get(&client).filter(|(s, _)| *s == seq).map(|(_, answer)| answer.clone())
    }
    fn item_count(&self) -> usize {
        1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_state_machine_answers_commands_once_and_queries_at_the_read_index() {
    let net = ChannelNetwork::<Wire<common::fixed_leader::Msg>>::new();
    let config = NodeConfig::new(NodeId(1), vec![NodeId(1)]);
    let machine = Counter { total: 100, ..Counter::default() };
    let (node, handle) =
        Node::<FixedLeader, _, Counter>::with_machine(config, (), net.endpoint(NodeId(1)), MemStorage::new(), machine)
            .unwrap();
    let task = tokio::spawn(node.run(std::future::pending()));
    let (alice, bob) = (ClientId(1), ClientId(2));
    assert_eq!(done(handle.command(alice, 1, number(5)).await), 105);
    // A retry of (alice, 1) gets the first answer; the 5 is not added twice.
    assert_eq!(done(handle.command(alice, 1, number(5)).await), 105);
    assert_eq!(done(handle.command(bob, 1, number(2)).await), 107);
    assert_eq!(done(handle.query(bob, 2, Bytes::new()).await), 107);
    assert_eq!(handle.read_local(Bytes::new()).await.map(|b| b.to_vec()), Some(number(107).to_vec()));
    let status = handle.status().await.unwrap();
    assert_eq!((status.items, status.applied_index), (1, 2), "two commands applied, the retry and the query not");
    task.abort();
}
