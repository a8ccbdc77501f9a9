//! Dueling proposers ("Paxos Made Simple" §2.4): two proposers that keep
//! preempting each other's ballots can stop Basic Paxos from ever choosing a
//! value. The schedule below delivers every Phase 1 message before any Phase 2
//! message, so each Prepare overtakes the other proposer's Accepts. Without
//! backoff the ballots climb forever; with randomized exponential backoff one
//! proposer waits, the other finishes, and both commands end up committed.
//!
//! Run with `cargo run -p quorum-paxos --example dueling_proposers`.

use quorum_core::{ClientId, Command, Duration, NodeId, Protocol};
use quorum_paxos::testkit::{Envelope, Net};
use quorum_paxos::{Message, Paxos, PaxosConfig};

fn is_phase1(env: &Envelope<Message>) -> bool {
    matches!(env.msg, Message::Prepare { .. } | Message::Promise { .. } | Message::Nack { .. })
}

fn duel(backoff: bool) {
    let config = PaxosConfig { backoff, ..PaxosConfig::default() };
    let mut net: Net<Paxos> = Net::new(3, config, 7);
    for id in [1, 2] {
        let cmd = Command::new(ClientId(id), 1, format!("from proposer {id}").into_bytes());
        net.propose(NodeId(id), cmd).expect("any node proposes in Basic Paxos");
    }
    let mut steps = 0;
    while steps < 5_000 && net.nodes.iter().flatten().all(|n| n.learner().committed() == 0) {
        steps += 1;
        if !(net.deliver_first(is_phase1) || net.deliver_at(0) || net.fire_timers()) {
            break;
        }
    }
    let round = net.node(NodeId(1)).map_or(0, |n| n.status().term);
    let chosen = net.nodes.iter().flatten().any(|n| n.learner().committed() > 0);
    println!(
        "backoff {:>5}: after {steps} steps and {} messages, highest ballot round {round}, value chosen: {chosen}",
        backoff, net.delivered
    );
    if chosen {
        net.run_until(Duration::from_secs(1), |net| net.nodes.iter().flatten().all(|n| n.learner().committed() >= 2));
        for entry in &net.committed[0] {
            println!("    slot {}: {:?}", entry.index, entry.payload);
        }
    }
}

fn main() {
    duel(false);
    duel(true);
}
