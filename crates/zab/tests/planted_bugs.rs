//! The checks are trusted only because they catch real mistakes: each planted
//! bug breaks one rule of Zab, and a short seed sweep must notice — through
//! the simulator's checks, Zab's invariants, or the protocol's own assertions
//! (a follower asserting that TRUNC never removes a committed transaction).

use quorum_core::Duration;
use quorum_sim::{Faults, Sim, SimConfig};
use quorum_zab::{PlantedBug, Zab, ZabConfig};

/// The panic hook is process-wide: one sweep at a time silences it.
static QUIET: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs each seed; returns (seeds caught by a violation, seeds caught by an assertion).
fn sweep(bug: PlantedBug, nodes: usize, faults: Faults, seeds: std::ops::Range<u64>) -> (usize, usize) {
    let config = ZabConfig { planted_bug: Some(bug), ..Default::default() };
    let (mut violations, mut assertions) = (0, 0);
    let _one_at_a_time = QUIET.lock().unwrap_or_else(|e| e.into_inner());
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for seed in seeds {
        let mut cfg = SimConfig::quick(seed, faults);
        cfg.nodes = nodes;
        // A slow disk leaves a wide window between a write and its durability.
        cfg.disk.fsync = Duration::from_millis(5);
        match std::panic::catch_unwind(|| Sim::<Zab>::new(cfg, config.clone()).run()) {
            Ok(report) if !report.violations.is_empty() => violations += 1,
            Ok(_) => {}
            Err(_) => assertions += 1,
        }
    }
    std::panic::set_hook(quiet);
    (violations, assertions)
}

#[test]
fn acknowledging_before_the_proposal_is_durable_is_caught() {
    let (violations, assertions) = sweep(PlantedBug::AckBeforeDurable, 3, Faults::Crash, 0..300);
    eprintln!("ack before durable: caught in {violations} seeds by checks, {assertions} by assertions, of 300");
    assert!(violations + assertions > 0, "the planted bug went unnoticed");
}

#[test]
fn committing_without_a_quorum_is_caught() {
    let (violations, assertions) = sweep(PlantedBug::CommitWithoutQuorum, 5, Faults::All, 0..300);
    eprintln!("commit without quorum: caught in {violations} seeds by checks, {assertions} by assertions, of 300");
    assert!(violations + assertions > 0, "the planted bug went unnoticed");
}
