//! The one-value-per-slot checker catches a planted bug in real simulated
//! runs: a new leader that ignores the values its promises report (breaking
//! P2c) overwrites slots that were already chosen.

use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig};
use quorum_sim::{quietly, Faults, Sim, SimConfig};

#[test]
fn the_checker_catches_a_leader_that_ignores_reported_values() {
    // The protocol's own assertions may also catch the bug (later, when a node
    // learns the second value): `quietly` silences their panic messages.
    let config = MultiPaxosConfig { planted_bug_ignore_promised_values: true, ..MultiPaxosConfig::default() };
    let mut caught_by_checker = 0;
    for seed in 0..300 {
        let run = quietly(|| {
            let cfg = SimConfig::quick(seed, Faults::Crash);
            let limit = cfg.duration + cfg.drain;
            let mut sim = Sim::<MultiPaxos>::new(cfg, config.clone());
            sim.start_workload();
            sim.run_until(limit, |s| !s.violations().is_empty());
            sim.violations().iter().any(|v| v.check == "one value chosen per slot")
        });
        if run == Some(true) {
            caught_by_checker += 1;
        }
    }
    println!("caught by the checker in {caught_by_checker} seeds");
    assert!(caught_by_checker >= 30, "the checker fired in only {caught_by_checker} of 300 seeds");
}
