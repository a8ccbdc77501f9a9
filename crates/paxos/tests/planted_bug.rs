//! The one-value-per-slot checker, trusted only because it catches a planted
//! bug in a real simulated run: proposers that ignore the values their
//! promises report (breaking P2c) soon choose two values for one slot.

use quorum_paxos::{Paxos, PaxosConfig, PlantedBug};
use quorum_sim::testkit::seeds_caught_by;
use quorum_sim::{Faults, SimConfig};

#[test]
fn the_checker_catches_proposers_that_ignore_reported_values() {
    let config = PaxosConfig { planted: Some(PlantedBug::IgnorePromisedValues), ..PaxosConfig::default() };
    let base = SimConfig::quick(0, Faults::All);
    let caught = seeds_caught_by::<Paxos>(&base, &config, 100, "one value chosen per slot");
    assert!(caught >= 10, "the checker fired in only {caught} of 100 seeds");
}
