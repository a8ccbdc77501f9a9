//! Issue 12, item 4: lease reads over fifo links with link-down hints.

use quorum_core::{Duration, LinkKind, NodeId, Protocol, Rng};
use quorum_raft::{Message, PlantedBug, Raft, RaftConfig, ReadMode};
use quorum_sim::{check_seeds_with, ClockConfig, Faults, LeaseDisturbance, Sim, SimConfig, Summary};
use std::cell::Cell;
use std::rc::Rc;

/// An operator turn (about every 50 ms) either counts down the disturbance
/// it started (it lasts six turns, about 300 ms), or starts one: the
/// connection between the leader and one follower resets (the follower gets
/// a link-down hint while the leader lives and keeps sending), the leader is
/// cut off from the other follower, and messages of a newer term do not reach
/// the leader (as if delayed), so it keeps serving reads until its lease ends.
fn resets(sim: &mut Sim<Raft>, rng: &mut Rng, active: &Rc<Cell<u32>>) {
    if active.get() > 0 {
        active.set(active.get() - 1);
        if active.get() == 0 {
            sim.clear_drop_filter();
        }
        return;
    }
    let Some(leader) = sim.leader() else { return };
    let others: Vec<NodeId> = sim.members().iter().copied().filter(|m| *m != leader).collect();
    let hinted = others[rng.index(others.len())];
    sim.act(hinted, "link to the leader reset", |r: &mut Raft, now, out| r.on_link_down(now, leader, out));
    let term = sim.status(leader).map_or(0, |s| s.term);
    let cut: Vec<NodeId> = others.into_iter().filter(|o| *o != hinted).collect();
    sim.set_drop_filter(move |from, to, m: &Message| {
        (from == leader && cut.contains(&to)) || (to == leader && (cut.contains(&from) || m.term() > term))
    });
    active.set(6);
}

fn lease_sweep(seeds: std::ops::Range<u64>, config: &RaftConfig) -> Summary {
    lease_sweep_with_clocks(seeds, config, ClockConfig::default())
}

fn lease_sweep_with_clocks(seeds: std::ops::Range<u64>, config: &RaftConfig, clocks: ClockConfig) -> Summary {
    let mut base = SimConfig::quick(0, Faults::All);
    base.clocks = clocks;
    base.network.links = Some(LinkKind::Fifo);
    base.clients.count = 16;
    base.clients.read_ratio = 0.6;
    base.clients.timeout = Duration::from_millis(30);
    let setup = |sim: &mut Sim<Raft>| {
        let active = Rc::new(Cell::new(0));
        sim.set_operator(Duration::from_millis(50), move |sim: &mut Sim<Raft>, rng: &mut Rng| {
            resets(sim, rng, &active)
        });
    };
    check_seeds_with::<Raft>(&base, config, seeds, setup, |_| {})
}

fn seeds(default: u64) -> std::ops::Range<u64> {
    let n: u64 = std::env::var("RAFT_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    0..n
}

fn lease() -> RaftConfig {
    RaftConfig::default().with(|c| c.read_mode = ReadMode::Lease)
}

/// Lease reads over fifo links, with every fault, connection resets that
/// hint the leader's death to one follower while it lives, and the leader
/// cut off from the others: every history is linearizable.
#[test]
fn seed_sweep_lease_reads_fifo_links_link_down_hints_all_faults() {
    let summary = lease_sweep(seeds(400), &lease());
    summary.assert_clean();
    assert!(summary.ops_ok > 400 * 200, "{summary}");
}

/// The same sweep catches the defect as it was (a suspecting follower's
/// acks renew the leader's lease, but it votes as if it had not heard them):
/// the linearizability check fires.
#[test]
fn the_lease_sweep_catches_a_follower_that_acks_without_honouring_the_lease() {
    let config = lease().with(|c| c.planted = Some(PlantedBug::SuspectedAckWithoutLease));
    lease_sweep(0..500, &config).assert_caught_by("planted SuspectedAckWithoutLease", &["linearizability"]);
}

/// The generic disturbance of `quorum sim --profile lease-fifo` (5 nodes,
/// every fault, `quorum_sim::LeaseDisturbance`), with none of this file's
/// Raft-specific filters, catches the same twin.
#[test]
fn the_lease_fifo_profiles_disturbance_catches_the_same_twin() {
    let mut base = SimConfig::new(5, 0).with_faults(Faults::All);
    base.network.links = Some(LinkKind::Fifo);
    base.clients.count = 16;
    base.clients.read_ratio = 0.6;
    base.clients.timeout = Duration::from_millis(20);
    let config = lease().with(|c| c.planted = Some(PlantedBug::SuspectedAckWithoutLease));
    let disturb = |sim: &mut Sim<Raft>| {
        let (min, max) = (Duration::from_millis(20), Duration::from_millis(200));
        sim.set_operator(Duration::from_millis(2), LeaseDisturbance::new(min, max));
    };
    check_seeds_with::<Raft>(&base, &config, 0..40, disturb, |_| {})
        .assert_caught_by("planted SuspectedAckWithoutLease", &["linearizability"]);
}

/// Clocks at the edge of the bound the lease assumes: every node up to
/// 0.5 % fast or slow, so two nodes' rates differ by up to the 1 % of
/// `max_clock_drift_ppm`, and up to a second apart. Every history is
/// linearizable.
#[test]
fn lease_reads_stay_linearizable_with_clocks_drifting_within_the_bound() {
    let clocks = ClockConfig { max_offset: Duration::from_secs(1), max_drift_ppm: 5_000 };
    lease_sweep_with_clocks(seeds(400), &lease(), clocks).assert_clean();
}

/// Beyond the bound the lease is not safe, and the sweep shows it: with
/// clocks up to 50 % fast or slow (the most the model draws), a follower's
/// election timer can run out (in true time) while the old leader's lease
/// still holds on its slow clock, and the old leader answers a stale read (3
/// of 500 seeds, the first at seed 85; at 45 %, 3 of 2,000, the first at
/// seed 659; the window is narrow).
#[test]
fn lease_reads_with_clocks_drifting_beyond_the_bound_are_caught() {
    let clocks = ClockConfig { max_offset: Duration::from_secs(1), max_drift_ppm: 500_000 };
    lease_sweep_with_clocks(0..500, &lease(), clocks).assert_caught_by("clocks 50 % off", &["linearizability"]);
}
