//! Counters (`INCR`) in the simulator, proven on the primary-backup baseline:
//! the workload's increments and counter reads are judged against a counter
//! model, a correct driver passes under every fault, and a client that
//! retries under a new sequence number (so an increment may count twice) is
//! caught by the linearizability check. The four protocols run the same
//! workload in `crates/cli/tests/sim_cli.rs` (`--profile counters`).

use quorum_core::{KvOp, KvResult};
use quorum_sim::baseline::PrimaryBackup;
use quorum_sim::{check_seeds, DriverBug, Faults, Outcome, Sim, SimConfig, Summary};

fn counters(seed: u64, faults: Faults, bug: Option<DriverBug>) -> SimConfig {
    let mut c = SimConfig::quick(seed, faults);
    c.clients.incr_ratio = 0.5;
    c.clients.count = 6;
    c.clients.keys = 2;
    // Short timeouts: clients retry often, which is what a doubled increment needs.
    c.clients.timeout = quorum_core::Duration::from_millis(20);
    c.driver_bug = bug;
    c
}

fn sweep(faults: Faults, bug: Option<DriverBug>, seeds: std::ops::Range<u64>) -> Summary {
    check_seeds::<PrimaryBackup>(&counters(0, faults, bug), &Default::default(), seeds)
}

#[test]
fn the_workload_increments_counters_and_reads_them_back() {
    let sim = Sim::<PrimaryBackup>::new(counters(1, Faults::None, None), Default::default());
    let report = sim.run();
    report.assert_clean(100);
    let answered = |f: fn(&KvOp, &KvResult) -> bool| {
        report.history.iter().filter(|o| matches!(&o.outcome, Outcome::Ok { result, .. } if f(&o.op, result))).count()
    };
    let incrs = answered(|op, r| matches!((op, r), (KvOp::Incr { .. }, KvResult::Integer(_))));
    let counter_reads =
        answered(|op, r| matches!((op, r), (KvOp::Get { key }, KvResult::Value(Some(_))) if key.starts_with(b"n")));
    assert!(incrs > 100 && counter_reads > 50, "{incrs} increments and {counter_reads} counter reads answered");
}

#[test]
fn counters_stay_linearizable_under_every_fault() {
    sweep(Faults::All, None, 0..200).assert_clean();
}

#[test]
fn a_retry_under_a_new_sequence_number_counts_an_increment_twice_and_is_caught() {
    let summary = sweep(Faults::All, Some(DriverBug::RetryWithNewSeq), 0..100);
    summary.assert_caught_by("retry with a new seq", &["linearizability"]);
    // Caught because no order exists, never because a search gave up; mostly
    // on a counter (a late re-applied put can also bring an old value back).
    let details: Vec<&str> = summary.failures.iter().flat_map(|f| &f.violations).map(|v| v.detail.as_str()).collect();
    for detail in &details {
        assert!(detail.contains("no linearization"), "{detail}");
    }
    let on_counters = details.iter().filter(|d| d.starts_with("key n")).count();
    eprintln!("{on_counters} of {} caught on a counter key; the first:\n{}", details.len(), details[0]);
    assert!(on_counters * 2 > details.len(), "{on_counters} of {} on counters", details.len());
}
