//! Multi-Paxos in the deterministic simulator: scripted scenarios and seed sweeps.

use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig};
use quorum_sim::{check_seeds, Faults, SimConfig};

#[test]
fn seed_sweep_probe() {
    for kind in [Faults::None, Faults::Crash, Faults::Partition, Faults::All] {
        let mut base = SimConfig::quick(0, kind);
        base.max_events = 300_000;
        let summary = check_seeds::<MultiPaxos>(&base, &MultiPaxosConfig::default(), 0..300);
        println!("{kind:?}: {summary} wall {:?} slowest {:?}", summary.wall, summary.slowest);
    }
}
