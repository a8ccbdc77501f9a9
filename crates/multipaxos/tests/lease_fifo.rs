//! Lease reads over FIFO links with link-down hints (issue 12 item 4).
//!
//! On FIFO links every partition and connection reset tells both ends
//! `on_link_down`, so followers suspect a leader that is still alive and keep
//! acknowledging its heartbeats while they wait to ask about it. Every
//! acknowledgement extends the leader's lease, so the follower must honour it
//! before it backs another leader. These sweeps run lease reads in that
//! setting and must stay linearizable.
//!
//! The planted twin (`PlantedBug::LeaseIgnoresAcks`) is not reached by these
//! sweeps (0 of 600 and 0 of 400 seeds): the stale read needs a client at the
//! new leader within the few milliseconds before the old leader hears of it,
//! and the simulated clients are all still talking to the old leader then.
//! The hand-driven harness catches it instead
//! (`tests::the_stale_lease_read_harness_catches_the_planted_twin`).

use quorum_core::{Duration, LinkKind, NodeId, Protocol, Rng};
use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig};
use quorum_sim::{check_seeds, check_seeds_with, Faults, Sim, SimConfig};

fn base() -> SimConfig {
    let mut base = SimConfig::quick(0, Faults::All);
    base.network.links = Some(LinkKind::Fifo);
    // Resets on one message in 40 (loss / 4): many link-down hints while the leader lives.
    base.faults.loss = 0.1;
    base.clients.count = 4;
    base.clients.read_ratio = 0.6;
    base
}

fn lease() -> MultiPaxosConfig {
    MultiPaxosConfig { read_lease: true, ..MultiPaxosConfig::default() }
}

#[test]
fn seed_sweep_lease_reads_over_fifo_links_with_link_down_hints() {
    let summary = check_seeds::<MultiPaxos>(&base(), &lease(), 0..400);
    assert_eq!(summary.violation_count(), 0, "{summary}");
    assert!(summary.ops_ok > 10_000, "the workload made progress: {summary}");
}

/// The operator this sweep adds: at random times, cut the leader off from one
/// follower (both ways) while the other follower's connection to it resets
/// (a link-down hint while the leader lives); the next turn heals.
fn reset_and_cut(sim: &mut Sim<MultiPaxos>) {
    let mut cut = false;
    sim.set_operator(Duration::from_millis(150), move |sim: &mut Sim<MultiPaxos>, rng: &mut Rng| {
        if cut {
            sim.heal();
            cut = false;
            return;
        }
        let Some(leader) = sim.leader() else { return };
        let others: Vec<NodeId> = sim.members().iter().copied().filter(|&n| n != leader).collect();
        let far = others[rng.range(0, others.len() as u64) as usize];
        sim.cut_one_way(leader, far);
        sim.cut_one_way(far, leader);
        for &near in others.iter().filter(|&&n| n != far) {
            sim.act(near, "connection reset", |node, now, out| node.on_link_down(now, leader, out));
        }
        cut = true;
    });
}

#[test]
fn seed_sweep_lease_reads_with_resets_and_cuts() {
    let mut base = base();
    base.faults.kind = Faults::None;
    let summary = check_seeds_with::<MultiPaxos>(&base, &lease(), 0..300, reset_and_cut, |_| {});
    assert_eq!(summary.violation_count(), 0, "{summary}");
}
