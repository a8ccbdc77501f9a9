//! Issue 12: the fixed Multi-Paxos safety bugs have planted twins (behind the
//! `planted-bugs` feature, which this crate's tests turn on through its
//! dev-dependency on itself), and a seed sweep with small caps must catch the
//! one the random simulator can reach: which check fires, and at which seed.
//!
//! `PlantedBug::AcceptOverwritesChosen` needs a stale Accept to reach a node
//! that learned the slot's value from a catch-up while still promised to the
//! old ballot, and `PlantedBug::LearnKeepsOlderStamp` a restarted node's
//! stale stamp to reach a leader of a ballot in between. No random seed
//! reached either (4000 and 1000 seeds tried: 3, 5 and 7 nodes, crashes,
//! partitions, 10% loss, these caps), so the hand-driven scenarios in
//! `src/safety_tests.rs` are what catch them.

use quorum_core::Duration;
use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig, PlantedBug};
use quorum_sim::{check_seeds, Faults, SimConfig};

/// Caps small enough that a stuck slot leaves more chosen slots behind it
/// than a promise lists (`catch_up_batch`), and Accepts carry few slots;
/// each command leaves in an Accept of its own as it comes (as many batches
/// in flight as the window has slots), so one lost Accept holds back one slot.
fn tiny_caps(planted: Option<PlantedBug>) -> MultiPaxosConfig {
    MultiPaxosConfig::default().with(|c| {
        c.catch_up_batch = 8;
        c.window = 16;
        c.max_batch = 4;
        c.max_accepts_in_flight = 16;
        c.planted = planted;
    })
}

/// Many clients (so slots pile up behind a lost Accept), 10% loss and
/// partitions every 80 ms on average (so leaders change while they do).
fn busy_partitions() -> SimConfig {
    let mut cfg = SimConfig::quick(0, Faults::Partition);
    cfg.clients.count = 12;
    cfg.network.loss = 0.1;
    cfg.faults.mean_interval = Duration::from_millis(80);
    cfg
}

/// The same, with crashes, duplication and loss as well.
fn busy_all() -> SimConfig {
    let mut cfg = SimConfig::quick(0, Faults::All);
    cfg.clients.count = 12;
    cfg.faults.loss = 0.1;
    cfg
}

#[test]
fn the_sweep_catches_a_promise_that_omits_chosen_values_past_the_cap() {
    let config = tiny_caps(Some(PlantedBug::PromiseOmitsChosenPastCap));
    let summary = check_seeds::<MultiPaxos>(&busy_partitions(), &config, 0..200);
    let first = summary.failures.first().map(|f| f.seed);
    println!("promise omits chosen values past the cap: {summary}\nfirst caught at seed {first:?}");
    assert!(first.is_some(), "the planted bug went unnoticed: {summary}");
    let fired = summary.checks_that_fired();
    assert!(fired.contains(&"one value chosen per slot".to_string()), "{fired:?}");
    // Besides: its consequences (a node left with a state no single apply
    // showed wrong is seen by the end-of-run checks).
    let expected = [
        "acknowledged write lost",
        "convergence",
        "final state",
        "linearizability",
        "one value chosen per slot",
        "snapshot",
        "state machine safety",
    ];
    assert!(fired.iter().all(|c| expected.contains(&c.as_str())), "{fired:?}");
}

#[test]
fn the_fixed_protocol_passes_the_same_sweeps() {
    for (name, base) in [("partitions", busy_partitions()), ("all faults", busy_all())] {
        let summary = check_seeds::<MultiPaxos>(&base, &tiny_caps(None), 0..200);
        println!("{name}: {summary}");
        assert_eq!(summary.violation_count(), 0, "{name}: {summary}");
    }
}
