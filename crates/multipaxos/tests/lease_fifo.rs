//! Lease reads over FIFO links with link-down hints (issue 12 item 4).
//!
//! On FIFO links every partition and connection reset tells both ends
//! `on_link_down`, so followers suspect a leader that is still alive and keep
//! acknowledging its heartbeats while they wait to ask about it. Every
//! acknowledgement extends the leader's lease, so the follower must honour it
//! before it backs another leader. These sweeps run lease reads in that
//! setting and must stay linearizable.
//!
//! The planted twin (`PlantedBug::LeaseIgnoresAcks`) is not caught by the
//! first three sweeps: 0 of 600 seeds with random faults, 0 of 400 with
//! `reset_and_cut`, and a single catch (linearizability) in about 3,000 seed
//! runs of variants of `reset_then_isolate`.
//! `reset_then_isolate` (now `quorum_sim::LeaseDisturbance`) does reach the state (two leaders at once, the old
//! one still holding a lease on acks the new leader's promiser gave), but a
//! stale read also needs the old leader to have had no write offered to it
//! since it was cut off: its lease read waits for its last proposed slot to
//! be applied, so a single client write there, which can no longer commit,
//! stalls its lease reads until it steps down. The hand-driven harness
//! catches the twin instead
//! (`tests::the_stale_lease_read_harness_catches_the_planted_twin`, in 11 of
//! 20 seeds, first at seed 1), and so does the last sweep here, whose
//! disturbance also cuts the clients that write off from the isolated leader
//! while some only read (as `quorum sim --profile lease-fifo` does).

use quorum_core::{Duration, LinkKind, NodeId, Protocol, Rng};
use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig, PlantedBug};
use quorum_sim::Summary;
use quorum_sim::{check_seeds, check_seeds_with, Faults, LeaseDisturbance, Sim, SimConfig};

fn base() -> SimConfig {
    let mut base = SimConfig::quick(0, Faults::All);
    base.network.links = Some(LinkKind::Fifo);
    // Each connection resets every 400 ms on average: many link-down hints while the leader lives.
    base.faults.loss = 0.1;
    base.clients.count = 4;
    base.clients.read_ratio = 0.6;
    base
}

fn lease() -> MultiPaxosConfig {
    MultiPaxosConfig::default().with(|c| c.read_lease = true)
}

#[test]
fn seed_sweep_lease_reads_over_fifo_links_with_link_down_hints() {
    let summary = check_seeds::<MultiPaxos>(&base(), &lease(), 0..400);
    summary.assert_clean();
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
    check_seeds_with::<MultiPaxos>(&base, &lease(), 0..300, reset_and_cut, |_| {}).assert_clean();
}

fn sharp_base() -> SimConfig {
    let mut base = base();
    base.faults.kind = Faults::None;
    // Clients give up on a stalled leader quickly and find the new one.
    base.clients.timeout = Duration::from_millis(20);
    base
}

#[test]
fn seed_sweep_lease_reads_with_a_reset_then_an_isolated_leader() {
    let summary = check_seeds_with::<MultiPaxos>(
        &sharp_base(),
        &lease(),
        0..200,
        |s| {
            let at = Duration::from_millis(95);
            s.set_operator(Duration::from_millis(2), LeaseDisturbance::new(at, at))
        },
        |_| {},
    );
    summary.assert_clean();
    assert!(summary.ops_ok > 10_000, "the workload made progress: {summary}");
}

/// `quorum sim --profile lease-fifo` in small: 16 clients of which 4 only
/// read, and the lease disturbance cutting the writers off from the leader it
/// isolates, so that its lease reads are not stalled behind a write.
fn readers_with_an_isolated_leader(config: MultiPaxosConfig, seeds: std::ops::Range<u64>) -> Summary {
    let mut base = sharp_base();
    base.faults.kind = Faults::All;
    base.faults.loss = 0.05;
    base.clients.count = 16;
    base.clients.readers = 4;
    base.duration = Duration::from_secs(2);
    check_seeds_with::<MultiPaxos>(
        &base,
        &config,
        seeds,
        |s| {
            let (min, max) = (Duration::from_millis(20), Duration::from_millis(200));
            s.set_operator(Duration::from_millis(2), LeaseDisturbance::new(min, max).cutting_writers())
        },
        |_| {},
    )
}

#[test]
fn seed_sweep_lease_reads_with_readers_left_with_an_isolated_leader() {
    readers_with_an_isolated_leader(lease(), 0..100).assert_clean();
}

#[test]
fn readers_left_with_an_isolated_leader_catch_the_planted_twin() {
    let planted = lease().with(|c| c.planted = Some(PlantedBug::LeaseIgnoresAcks));
    readers_with_an_isolated_leader(planted, 0..40).assert_caught_by("planted LeaseIgnoresAcks", &["linearizability"]);
}

/// The planted `NoCheckQuorum` (a leader cut off in a minority leads on) is a
/// liveness bug no safety check sees; the `multipaxos: check quorum`
/// invariant does, and alone.
#[test]
fn the_check_quorum_invariant_catches_the_planted_no_check_quorum() {
    let planted = lease().with(|c| c.planted = Some(PlantedBug::NoCheckQuorum));
    readers_with_an_isolated_leader(planted, 0..10)
        .assert_caught_by("planted NoCheckQuorum", &["multipaxos: check quorum"]);
}
