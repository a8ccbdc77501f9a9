//! Issue 12: each fixed Multi-Paxos safety bug has a planted twin (behind the
//! `planted-bugs` feature, on for this crate's tests through its dev-dependency
//! on itself), and a seed sweep with small caps must catch it: which check
//! fires, and after how many seeds.

use quorum_core::Duration;
use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig, PlantedBug};
use quorum_sim::{quietly, Faults, Sim, SimConfig};

fn tiny_caps(bug: Option<PlantedBug>) -> MultiPaxosConfig {
    MultiPaxosConfig { catch_up_batch: 8, window: 16, max_batch: 4, planted: bug, ..MultiPaxosConfig::default() }
}

fn busy(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::quick(seed, Faults::All);
    cfg.clients.count = 12;
    cfg.faults.loss = 0.1;
    cfg
}

/// Runs seeds until one is caught; returns (seeds run, checks that fired or "panic: ..").
fn sweep(bug: Option<PlantedBug>, seeds: std::ops::Range<u64>, sim: fn(u64) -> SimConfig) -> (u64, Vec<(u64, Vec<String>)>) {
    let mut caught = Vec::new();
    let mut run = 0;
    for seed in seeds {
        run += 1;
        let config = tiny_caps(bug);
        let outcome = quietly(|| Sim::<MultiPaxos>::new(sim(seed), config).run());
        match outcome {
            None => caught.push((seed, vec!["panic".to_string()])),
            Some(r) if !r.violations.is_empty() => {
                let mut checks: Vec<String> = r.violations.iter().map(|v| v.check.clone()).collect();
                checks.sort();
                checks.dedup();
                caught.push((seed, checks));
            }
            Some(_) => {}
        }
    }
    (run, caught)
}

fn five(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(5, seed).with_faults(Faults::All);
    cfg.duration = Duration::from_secs(1);
    cfg.drain = Duration::from_millis(800);
    cfg.clients.count = 12;
    cfg.faults.loss = 0.1;
    cfg.faults.mean_interval = Duration::from_millis(100);
    cfg.snapshot_every = Some(50);
    cfg
}

fn partitions(seed: u64) -> SimConfig {
    let mut cfg = busy(seed);
    cfg.faults.kind = Faults::Partition;
    cfg.network.loss = 0.1;
    cfg.faults.mean_interval = Duration::from_millis(80);
    cfg
}

#[test]
fn explore() {
    let which = std::env::var("EXPLORE").unwrap_or_default();
    let bug = match which.as_str() { "none" => None, "omit" => Some(PlantedBug::PromiseOmitsChosenPastCap), _ => Some(PlantedBug::AcceptOverwritesChosen) };
    for (name, f) in [("busy", busy as fn(u64) -> SimConfig), ("five", five), ("partitions", partitions)] {
        let (run, caught) = sweep(bug, 0..1000, f);
        println!("{bug:?} {name}: {} of {run}: {:?}", caught.len(), &caught[..caught.len().min(5)]);
    }
}
