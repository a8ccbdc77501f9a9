//! The simulator and its checkers, proven on the primary-backup baseline before
//! any real protocol exists: the correct baseline passes, and each planted bug
//! is caught by the checker meant to catch it.

use quorum_core::{ClientId, Command, Duration, NodeId};
use quorum_sim::baseline::{PlantedBug, PrimaryBackup, PrimaryBackupConfig};
use quorum_sim::{check_seeds, Faults, Sim, SimConfig, Summary};

fn sweep(faults: Faults, bug: Option<PlantedBug>, seeds: std::ops::Range<u64>) -> Summary {
    let config = PrimaryBackupConfig { bug, ..Default::default() };
    check_seeds::<PrimaryBackup>(&SimConfig::quick(0, faults), &config, seeds)
}

#[test]
fn the_correct_baseline_passes_every_check_across_many_seeds() {
    let summary = sweep(Faults::All, None, 0..1000);
    summary.assert_clean();
    assert!(summary.ops_ok > 1000 * 20, "the workload must make progress: {summary}");
}

#[test]
fn acknowledging_before_a_majority_has_it_is_caught_as_a_lost_write() {
    let summary = sweep(Faults::Crash, Some(PlantedBug::AckBeforeMajority), 0..200);
    let fired = summary.checks_that_fired();
    assert!(!summary.failures.is_empty(), "the planted bug went unnoticed: {summary}");
    assert!(fired.iter().any(|c| c == "acknowledged write lost"), "expected a lost write to be caught, got {fired:?}");
}

#[test]
fn two_nodes_applying_different_commands_at_one_index_is_caught() {
    let summary = sweep(Faults::All, Some(PlantedBug::DivergentApply), 0..100);
    let fired = summary.checks_that_fired();
    assert!(
        fired.iter().any(|c| c == "state machine safety"),
        "expected divergent applies to be caught, got {fired:?}"
    );
}

#[test]
fn a_stale_local_read_is_caught_by_the_linearizability_checker() {
    let summary = sweep(Faults::Partition, Some(PlantedBug::StaleLocalRead), 0..100);
    let fired = summary.checks_that_fired();
    assert_eq!(fired, vec!["linearizability".to_string()], "{summary}");
}

#[test]
fn a_seed_replays_to_the_same_trace_hash() {
    let run = |seed| Sim::<PrimaryBackup>::new(SimConfig::quick(seed, Faults::All), Default::default()).run();
    let (a, b, c) = (run(42), run(42), run(43));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert_ne!(a.trace_hash, c.trace_hash, "different seeds should differ");
}

#[test]
fn keeping_the_trace_does_not_change_the_run() {
    let mut cfg = SimConfig::quick(5, Faults::All);
    let plain = Sim::<PrimaryBackup>::new(cfg.clone(), Default::default()).run();
    cfg.trace = true;
    let mut sim = Sim::<PrimaryBackup>::new(cfg, Default::default());
    sim.start_workload();
    sim.run_for(Duration::from_millis(1800));
    assert_eq!(sim.trace().hash(), plain.trace_hash);
    assert!(sim.trace().to_mermaid(3).lines().count() > 100);
}

#[test]
fn a_committed_command_reaches_every_node_and_survives_a_full_restart() {
    let mut cfg = SimConfig::new(3, 1);
    cfg.clients.count = 0;
    let mut sim = Sim::<PrimaryBackup>::new(cfg, Default::default());
    sim.propose(NodeId(1), Command::new(ClientId(9), 1, &b"x"[..])).unwrap();
    let everywhere = |s: &Sim<PrimaryBackup>| s.members().iter().all(|id| s.applied_index(*id) == 1);
    assert!(sim.run_until(Duration::from_secs(1), everywhere));
    for id in [1, 2, 3] {
        sim.crash(NodeId(id));
    }
    for id in [1, 2, 3] {
        sim.restart(NodeId(id));
    }
    assert!(sim.run_until(Duration::from_secs(1), everywhere), "the entry must be recovered from disk");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert_eq!(
        sim.propose(NodeId(2), Command::new(ClientId(9), 2, &b"y"[..])).unwrap_err().leader_hint(),
        Some(NodeId(1))
    );
}

#[test]
fn a_minority_partition_does_not_stop_commits_and_a_majority_partition_does() {
    let mut cfg = SimConfig::new(5, 3);
    cfg.clients.count = 0;
    let mut sim = Sim::<PrimaryBackup>::new(cfg, Default::default());
    sim.partition(&[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(4), NodeId(5)]]);
    sim.propose(NodeId(1), Command::new(ClientId(1), 1, &b"a"[..])).unwrap();
    assert!(sim.run_until(Duration::from_millis(500), |s| s.status(NodeId(1)).unwrap().commit_index == 1));
    sim.heal();
    sim.partition(&[&[NodeId(1), NodeId(2)], &[NodeId(3), NodeId(4), NodeId(5)]]);
    sim.propose(NodeId(1), Command::new(ClientId(1), 2, &b"b"[..])).unwrap();
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.status(NodeId(1)).unwrap().commit_index, 1, "two of five is not a majority");
    sim.heal();
    assert!(sim.run_until(Duration::from_millis(500), |s| s.status(NodeId(1)).unwrap().commit_index == 2));
}

#[test]
fn a_frozen_primary_stalls_commits_without_breaking_links_and_resumes_when_thawed() {
    let mut cfg = SimConfig::new(3, 4);
    cfg.clients.count = 0;
    cfg.trace = true;
    let mut sim = Sim::<PrimaryBackup>::new(cfg, Default::default());
    sim.run_for(Duration::from_millis(50));
    sim.freeze(NodeId(1));
    sim.propose(NodeId(1), Command::new(ClientId(1), 1, &b"a"[..])).unwrap();
    sim.run_for(Duration::from_millis(300));
    assert_eq!(sim.applied_index(NodeId(2)), 0, "a frozen primary replicates nothing");
    let link_downs =
        sim.trace().events().iter().filter(|e| matches!(e.what, quorum_sim::What::LinkDown { .. })).count();
    assert_eq!(link_downs, 0, "a frozen process keeps its connections open");
    sim.thaw(NodeId(1));
    assert!(sim.run_until(Duration::from_millis(300), |s| s.applied_index(NodeId(2)) == 1));
}

#[test]
fn open_loop_clients_keep_the_offered_rate_whatever_the_answers() {
    let mut cfg = SimConfig::new(3, 2);
    cfg.clients.rate = Some(2000.0);
    cfg.duration = Duration::from_secs(1);
    cfg.clients.key_distribution = quorum_sim::KeyDistribution::Zipf(1.0);
    cfg.clients.keys = 100;
    let report = Sim::<PrimaryBackup>::new(cfg, Default::default()).run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    let ops = report.ops_ok + report.ops_unknown;
    assert!((1800..2200).contains(&ops), "about 2000 requests in one second at 2000/s, got {ops}");
}

/// Each failing seed's first violation, so that a test can say which check
/// caught a bug before its consequences set off others.
fn first_checks(summary: &Summary) -> Vec<String> {
    let mut first: Vec<String> = summary.failures.iter().map(|f| f.violations[0].check.clone()).collect();
    first.sort();
    first.dedup();
    first
}

#[test]
fn an_applied_index_handed_over_again_with_other_contents_is_caught() {
    let summary = sweep(Faults::All, Some(PlantedBug::RedeliverAsNoop), 0..20);
    assert_eq!(summary.failures.len(), 20, "every seed commits something: {summary}");
    assert_eq!(summary.checks_that_fired(), vec!["re-delivered entry".to_string()], "{summary}");
}

#[test]
fn a_snapshot_labelled_ahead_of_its_contents_is_caught() {
    let mut config = SimConfig::quick(0, Faults::None);
    config.snapshot_every = Some(50);
    let bug = PrimaryBackupConfig { bug: Some(PlantedBug::SnapshotAhead), ..Default::default() };
    let summary = check_seeds::<PrimaryBackup>(&config, &bug, 0..20);
    assert!(!summary.failures.is_empty(), "the planted bug went unnoticed: {summary}");
    assert_eq!(first_checks(&summary), vec!["snapshot".to_string()], "{summary}");
}

#[test]
fn a_node_that_never_catches_up_is_caught_at_the_end_of_the_run() {
    let summary = sweep(Faults::Crash, Some(PlantedBug::StuckAfterRestart), 0..50);
    assert!(!summary.failures.is_empty(), "the planted bug went unnoticed: {summary}");
    assert_eq!(summary.checks_that_fired(), vec!["convergence".to_string()], "{summary}");
}

/// `ClientConfig::readers` only read; a client cut from every node
/// (`Sim::cut_client`) is answered nothing until the network heals, and then
/// carries on.
#[test]
fn readers_only_read_and_a_cut_off_client_waits_for_the_heal() {
    let mut cfg = SimConfig::new(3, 8);
    cfg.clients.count = 4;
    cfg.clients.readers = 2;
    cfg.clients.give_up_after = 0;
    let mut sim = Sim::<PrimaryBackup>::new(cfg, Default::default());
    for node in sim.members().to_vec() {
        sim.cut_client(3, node);
    }
    sim.start_workload();
    sim.run_for(Duration::from_millis(400));
    let answered = |sim: &Sim<PrimaryBackup>, client: u64| {
        sim.history().iter().filter(|o| o.client == ClientId(client) && o.completed_at().is_some()).count()
    };
    assert_eq!(answered(&sim, 4), 0, "the cut-off client got an answer");
    assert!(answered(&sim, 3) > 10, "the others carry on");
    sim.heal();
    sim.run_for(Duration::from_millis(400));
    assert!(answered(&sim, 4) > 10, "after the heal it carries on too");
    for op in sim.history() {
        let reader = op.client == ClientId(1) || op.client == ClientId(2);
        assert!(!reader || op.op.is_read(), "a reader wrote: {op:?}");
    }
    assert!(sim.history().iter().any(|o| o.client == ClientId(3) && !o.op.is_read()), "the others write");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
