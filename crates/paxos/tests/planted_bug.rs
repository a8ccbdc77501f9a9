//! The one-value-per-slot checker, trusted only because it catches a planted
//! bug in a real simulated run: proposers that ignore the values their
//! promises report (breaking P2c) soon choose two values for one slot.

use quorum_paxos::{Paxos, PaxosConfig};
use quorum_sim::{quietly, Faults, Sim, SimConfig};

#[test]
fn the_checker_catches_proposers_that_ignore_reported_values() {
    // The protocol's own assertions also catch the bug (a little later, when a
    // node learns the second value): `quietly` silences their panic messages.
    let config = PaxosConfig { planted_bug_ignore_promised_values: true, ..PaxosConfig::default() };
    let mut caught_by_checker = 0;
    for seed in 0..100 {
        let run = quietly(|| {
            let cfg = SimConfig::quick(seed, Faults::All);
            let limit = cfg.duration + cfg.drain;
            let mut sim = Sim::<Paxos>::new(cfg, config.clone());
            sim.start_workload();
            sim.run_until(limit, |s| !s.violations().is_empty());
            sim.violations().iter().any(|v| v.check == "one value chosen per slot")
        });
        if run == Some(true) {
            caught_by_checker += 1;
        }
    }
    println!("caught by the checker in {caught_by_checker} seeds");
    assert!(caught_by_checker >= 10, "the checker fired in only {caught_by_checker} of 100 seeds");
}
