//! Seeds of `quorum sim --protocol paxos` sweeps that once failed, replayed
//! with the settings the command uses (5 nodes, every fault, 4 clients, 2 s).

use quorum_paxos::Paxos;
use quorum_sim::{Faults, Sim, SimConfig};

fn replay(seed: u64) -> Vec<String> {
    let report = Sim::<Paxos>::new(SimConfig::new(5, seed).with_faults(Faults::All), Default::default()).run();
    report.violations.iter().map(|v| v.to_string()).collect()
}

/// A pause and a partition left nodes 1 and 2 without slots 459 and 460,
/// which nodes 3 to 5 had decided; asking one peer in turn every 500 ms,
/// node 2 asked node 1 (which lacked them too) and had not caught up when
/// the run ended (`convergence`). Every peer is asked now.
#[test]
fn seed_6786_every_node_catches_up_after_the_faults_stop() {
    assert_eq!(replay(6786), Vec::<String>::new());
}
