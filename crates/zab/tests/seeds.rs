//! Seed sweeps: thousands of short runs with every fault on (crashes,
//! restarts, partitions, one-way cuts, connection resets), each checked for
//! linearizability, the simulator's safety checks and Zab's invariants. Zab
//! declares fifo links, so the simulator runs it over fifo links.

use quorum_sim::{check_seeds, Faults, SimConfig};
use quorum_zab::{Zab, ZabConfig};

#[test]
fn five_thousand_seeds_with_all_faults_on_three_nodes_have_no_violation() {
    let summary = check_seeds::<Zab>(&SimConfig::quick(0, Faults::All), &ZabConfig::default(), 0..5000);
    eprintln!("zab, 3 nodes, all faults: {summary}; wall {:?}", summary.wall);
    assert_eq!(summary.violation_count(), 0, "{summary}");
    assert!(summary.ops_ok > 5000 * 50, "the workload must make progress: {summary}");
}

#[test]
fn five_node_clusters_with_all_faults_have_no_violation() {
    let mut base = SimConfig::quick(0, Faults::All);
    base.nodes = 5;
    let summary = check_seeds::<Zab>(&base, &ZabConfig::default(), 0..500);
    eprintln!("zab, 5 nodes, all faults: {summary}; wall {:?}", summary.wall);
    assert_eq!(summary.violation_count(), 0, "{summary}");
}
