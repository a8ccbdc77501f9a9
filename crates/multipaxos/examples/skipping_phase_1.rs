//! Multi-Paxos skips Phase 1: one Prepare round elects a leader for every
//! slot, after which each command costs one Accept/Accepted round trip. Basic
//! Paxos pays Prepare/Promise for every command (and spreads each decision
//! with Decided, where Multi-Paxos piggybacks its commit point on the next
//! Accept or heartbeat). This counts the messages of
//! ten commands under each, on the hand-driven network (no losses, no timers).
//!
//! Run with `cargo run -p quorum-multipaxos --example skipping_phase_1`.

use quorum_core::{ClientId, Command, Duration, NodeId, Protocol};
use quorum_multipaxos::{Message as MultiMessage, MultiPaxos, MultiPaxosConfig};
use quorum_paxos::testkit::Net;
use quorum_paxos::{Message as PaxosMessage, Paxos, PaxosConfig};
use std::collections::BTreeMap;

fn cmd(seq: u64) -> Command {
    Command::new(ClientId(1), seq, format!("set x {seq}").into_bytes())
}

fn main() {
    let mut paxos: Net<Paxos> = Net::new(3, PaxosConfig::default(), 1);
    let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
    for seq in 1..=10 {
        paxos.propose(NodeId(1), cmd(seq)).expect("any node proposes");
        while let Some(env) = paxos.in_flight.front() {
            let kind = match env.msg {
                PaxosMessage::Prepare { .. } => "Prepare",
                PaxosMessage::Promise { .. } => "Promise",
                PaxosMessage::Accept { .. } => "Accept",
                PaxosMessage::Accepted { .. } => "Accepted",
                PaxosMessage::Decided { .. } => "Decided",
                _ => "other",
            };
            *kinds.entry(kind).or_default() += 1;
            paxos.deliver_at(0);
        }
    }
    println!("Basic Paxos, 10 commands, 3 nodes: {kinds:?}");

    let mut multi: Net<MultiPaxos> = Net::new(3, MultiPaxosConfig::default(), 1);
    let leader_elected = |net: &Net<MultiPaxos>| net.nodes.iter().flatten().any(|n| n.leading_ballot().is_some());
    assert!(multi.run_until(Duration::from_secs(1), leader_elected));
    let leader = multi.nodes.iter().flatten().find(|n| n.leading_ballot().is_some()).map(|n| n.status().id).unwrap();
    while multi.deliver_at(0) {}
    let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
    for seq in 1..=10 {
        multi.propose(leader, cmd(seq)).expect("the leader orders commands");
        while let Some(env) = multi.in_flight.front() {
            let kind = match env.msg {
                MultiMessage::Prepare { .. } => "Prepare",
                MultiMessage::Promise { .. } => "Promise",
                MultiMessage::Accept { .. } => "Accept",
                MultiMessage::Accepted { .. } => "Accepted",
                _ => "other",
            };
            *kinds.entry(kind).or_default() += 1;
            multi.deliver_at(0);
        }
    }
    println!("Multi-Paxos, 10 commands, 3 nodes, after one election: {kinds:?}");
}
