//! The one-value-per-slot checker catches a planted bug in real simulated
//! runs: a new leader that ignores the values its promises report (breaking
//! P2c) overwrites slots that were already chosen.

use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig, PlantedBug};
use quorum_sim::testkit::seeds_caught_by;
use quorum_sim::{Faults, SimConfig};

#[test]
fn the_checker_catches_a_leader_that_ignores_reported_values() {
    let config = MultiPaxosConfig { planted: Some(PlantedBug::IgnorePromisedValues), ..MultiPaxosConfig::default() };
    let base = SimConfig::quick(0, Faults::Crash);
    let caught = seeds_caught_by::<MultiPaxos>(&base, &config, 300, "one value chosen per slot");
    assert!(caught >= 30, "the checker fired in only {caught} of 300 seeds");
}
