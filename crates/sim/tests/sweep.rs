//! A sweep reports a seed whose run panicked (a node's own assertion) as a
//! failure of that seed, and goes on with the others.

use quorum_sim::baseline::PrimaryBackup;
use quorum_sim::{check_seeds_with, quietly, Faults, SimConfig};

#[test]
fn a_panicking_seed_is_a_failure_named_panic_and_the_sweep_goes_on() {
    let base = SimConfig::quick(0, Faults::None);
    let setup = |sim: &mut quorum_sim::Sim<PrimaryBackup>| {
        if sim.config().seed == 3 {
            panic!("a planted assertion");
        }
    };
    let summary = quietly(|| check_seeds_with::<PrimaryBackup>(&base, &Default::default(), 0..6, setup, |_| {}))
        .expect("the sweep itself does not panic");
    assert_eq!(summary.seeds, 6);
    assert_eq!(summary.failures.len(), 1, "{summary}");
    let failure = &summary.failures[0];
    assert_eq!(failure.seed, 3);
    assert_eq!(failure.violations[0].check, "panic");
    assert!(failure.violations[0].detail.contains("a planted assertion"), "{summary}");
    assert!(summary.ops_ok > 0, "the other five seeds ran");
}
