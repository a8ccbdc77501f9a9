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

/// Runs each seed with local reads, a planted driver bug (if any) and one slow
/// follower (every message to or from node 3 takes 3 ms longer), so a client
/// that moves to it finds it behind what the client has seen. Returns the
/// checks that fired and how many seeds failed.
fn local_read_sweep(bug: Option<quorum_sim::DriverBug>, seeds: std::ops::Range<u64>) -> (Vec<String>, usize) {
    let (mut fired, mut failed) = (Vec::new(), 0);
    for seed in seeds {
        let mut cfg = SimConfig::quick(seed, Faults::All);
        cfg.clients.local_read_ratio = 0.5;
        cfg.driver_bug = bug;
        let mut sim = Sim::<Zab>::new(cfg, ZabConfig::default());
        sim.set_node_delay(quorum_core::NodeId(3), Duration::from_millis(3));
        let report = sim.run();
        failed += usize::from(!report.violations.is_empty());
        fired.extend(report.violations.into_iter().map(|v| v.check));
    }
    fired.sort();
    fired.dedup();
    (fired, failed)
}

#[test]
fn a_follower_serving_a_local_read_behind_the_clients_last_zxid_is_caught() {
    // ZooKeeper refuses a client whose last zxid is ahead of the server; a
    // server that answers anyway lets the client's view go back in time.
    let (fired, failed) = local_read_sweep(Some(quorum_sim::DriverBug::LocalReadIgnoresSession), 0..50);
    eprintln!("local read ignoring the client's zxid: {failed} of 50 seeds caught by {fired:?}");
    assert!(failed > 0, "the planted bug went unnoticed");
    assert_eq!(fired, ["session order"]);
}

#[test]
fn a_follower_stamping_a_stale_local_read_with_the_clients_zxid_is_caught() {
    let (fired, failed) = local_read_sweep(Some(quorum_sim::DriverBug::LocalReadClaimsSession), 0..50);
    eprintln!("local read claiming the client's zxid: {failed} of 50 seeds caught by {fired:?}");
    assert!(failed > 0, "the planted bug went unnoticed");
    assert_eq!(fired, ["read value"]);
}

#[test]
fn without_the_bug_the_slow_follower_makes_local_reads_wait_instead() {
    // The control: the same seeds, with the driver waiting for the client's
    // last zxid as ZooKeeper does, break nothing.
    let (fired, failed) = local_read_sweep(None, 0..50);
    assert_eq!((failed, fired), (0, Vec::<String>::new()));
}
