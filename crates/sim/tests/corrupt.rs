//! `NetworkConfig::corrupt`: messages between nodes arrive corrupted, as a
//! broken or hostile peer would send them. What still decodes is delivered
//! as forged; what does not breaks its link. The safety checks are off (the
//! protocols tolerate crashes, not lies), so such a run checks one thing:
//! no node panics on what it is sent.

use quorum_sim::baseline::PrimaryBackup;
use quorum_sim::{Faults, Sim, SimConfig, What};

fn config(corrupt: f64) -> SimConfig {
    let mut config = SimConfig::quick(3, Faults::All);
    config.trace = true;
    config.network.corrupt = corrupt;
    config
}

fn drops_with(report: &quorum_sim::Report, reason: &str) -> usize {
    report
        .trace
        .events()
        .iter()
        .filter(|e| matches!(&e.what, What::Drop { reason: r, .. } if r.contains(reason)))
        .count()
}

#[test]
fn corrupted_messages_are_delivered_forged_or_break_their_link_and_nothing_is_judged() {
    let report = Sim::<PrimaryBackup>::new(config(0.1), Default::default()).run();
    let forged = drops_with(&report, "corrupted in flight, delivered as");
    let undecodable = drops_with(&report, "corrupted in flight: undecodable");
    assert!(forged > 10 && undecodable > 10, "forged {forged}, undecodable {undecodable}");
    assert!(report.violations.is_empty(), "safety checks are off: {:?}", report.violations);
    assert!(report.ops_ok > 0);
}

#[test]
fn without_corruption_nothing_is_forged() {
    let report = Sim::<PrimaryBackup>::new(config(0.0), Default::default()).run();
    assert_eq!(drops_with(&report, "corrupted in flight"), 0);
}
