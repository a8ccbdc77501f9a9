//! Helpers the hand-driven unit tests share.

use crate::{MultiPaxos, MultiPaxosConfig, NodeId};
use quorum_core::{ClientId, Command, Duration, Payload, Protocol};
use quorum_sim::testkit::Net;

/// Command `seq` of `client`, with a body that names both.
pub(crate) fn cmd(client: u64, seq: u64) -> Command {
    Command::new(ClientId(client), seq, format!("c{client}-{seq}").into_bytes())
}

/// [`cmd`] as a log payload.
pub(crate) fn value(client: u64, seq: u64) -> Payload {
    Payload::Command(cmd(client, seq))
}

/// The node that leads, if any.
pub(crate) fn leader_of(net: &Net<MultiPaxos>) -> Option<NodeId> {
    net.nodes.iter().flatten().find(|n| n.leading_ballot().is_some()).map(|n| n.status().id)
}

/// Runs until a leader is elected (within 2 s) and returns it.
pub(crate) fn elect(net: &mut Net<MultiPaxos>) -> NodeId {
    assert!(net.run_until(Duration::from_secs(2), |net| leader_of(net).is_some()), "a leader is elected");
    leader_of(net).expect("checked above")
}

/// Three nodes with `config` and `seed`, run until one leads: the network
/// and its leader.
pub(crate) fn elected(config: MultiPaxosConfig, seed: u64) -> (Net<MultiPaxos>, NodeId) {
    let mut net = Net::new(3, config, seed);
    let leader = elect(&mut net);
    (net, leader)
}

/// What node `id` has committed, in order.
pub(crate) fn committed_values(net: &Net<MultiPaxos>, id: NodeId) -> Vec<Payload> {
    net.committed[(id.0 - 1) as usize].iter().map(|e| e.payload.clone()).collect()
}
