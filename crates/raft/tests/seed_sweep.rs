//! Thousands of simulated runs with every fault (crashes, partitions, loss,
//! duplication), each checked for linearizability, the simulator's safety
//! checks and Raft's own Figure 3 invariants. `RAFT_SEEDS=n` scales the sweeps.

use quorum_core::Duration;
use quorum_raft::{Raft, RaftConfig, ReadMode};
use quorum_sim::{check_seeds, Faults, SimConfig};

fn seeds(default: u64) -> std::ops::Range<u64> {
    let n: u64 = std::env::var("RAFT_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    0..n
}

fn sweep(base: SimConfig, config: RaftConfig, seeds: std::ops::Range<u64>) {
    let summary = check_seeds::<Raft>(&base, &config, seeds);
    eprintln!("{summary}");
    assert_eq!(summary.violation_count(), 0, "{summary}");
}

#[test]
fn seed_sweep_5000_seeds_all_faults_default_config() {
    sweep(SimConfig::quick(0, Faults::All), RaftConfig::default(), seeds(5000));
}

#[test]
fn seed_sweep_five_nodes_all_faults() {
    let mut base = SimConfig::quick(0, Faults::All);
    base.nodes = 5;
    sweep(base, RaftConfig::default(), seeds(500));
}

#[test]
fn seed_sweep_without_prevote_or_check_quorum() {
    let config = RaftConfig { pre_vote: false, check_quorum: false, ..RaftConfig::default() };
    sweep(SimConfig::quick(0, Faults::All), config, seeds(500));
}

#[test]
fn seed_sweep_lease_reads() {
    let config = RaftConfig { read_mode: ReadMode::Lease, ..RaftConfig::default() };
    sweep(SimConfig::quick(0, Faults::All), config, seeds(500));
}

#[test]
fn seed_sweep_tiny_batches_windows_and_snapshot_chunks() {
    let config = RaftConfig {
        max_entries_per_message: 2,
        max_inflight: 2,
        snapshot_chunk_bytes: 16,
        max_uncommitted_bytes: 400,
        ..RaftConfig::default()
    };
    let mut base = SimConfig::quick(0, Faults::All);
    base.snapshot_every = Some(10);
    base.network.latency =
        quorum_sim::Latency::LongTail { median: Duration::from_millis(2), p99: Duration::from_millis(40) };
    sweep(base, config, seeds(500));
}
