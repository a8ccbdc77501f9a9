//! Local reads and the session check, proven on the primary-backup baseline
//! (where any node may answer from its own committed prefix): the correct
//! driver keeps every client's view moving forward, and each planted driver
//! bug is caught by the rule meant to catch it.

use quorum_sim::baseline::PrimaryBackup;
use quorum_sim::{check_seeds, DriverBug, Faults, SimConfig, Summary};

fn sweep(faults: Faults, bug: Option<DriverBug>, seeds: std::ops::Range<u64>) -> Summary {
    let mut base = SimConfig::quick(0, faults);
    base.clients.read_ratio = 0.6;
    base.clients.local_read_ratio = 0.7;
    base.driver_bug = bug;
    check_seeds::<PrimaryBackup>(&base, &Default::default(), seeds)
}

#[test]
fn local_reads_on_any_node_keep_each_clients_view_moving_forward() {
    let summary = sweep(Faults::All, None, 0..300);
    eprintln!("primary-backup, local reads, all faults: {summary}");
    summary.assert_clean();
    assert!(summary.local_reads > 300 * 20, "the workload must issue local reads: {summary}");
}

#[test]
fn a_node_answering_before_it_reaches_the_clients_last_seen_index_is_caught() {
    sweep(Faults::None, Some(DriverBug::LocalReadIgnoresSession), 0..50)
        .assert_caught_by("ignores session", &["session order"]);
}

#[test]
fn a_lagging_node_claiming_the_clients_index_is_caught_by_the_committed_log() {
    sweep(Faults::None, Some(DriverBug::LocalReadClaimsSession), 0..50)
        .assert_caught_by("claims session", &["read value"]);
}
