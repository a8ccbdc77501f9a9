//! Issue 12, item 7: a leader cut off from its quorum with CheckQuorum off
//! never confirms a heartbeat round and never steps down, so every read it
//! takes waits forever. The queue of waiting reads is bounded: past
//! `max_pending_reads` the leader answers `ReadError::Busy`, which clients
//! retry (elsewhere or later).

use quorum_core::{Duration, ReadError, ReadId};
type Cluster = quorum_sim::testkit::Cluster<quorum_raft::Raft>;
use quorum_raft::{PlantedBug, RaftConfig};

/// Issues `n` reads to an isolated leader; returns how many were queued
/// before the first refusal, and the refusal.
fn flood_isolated_leader(config: RaftConfig, n: u64) -> (u64, Option<ReadError>) {
    let mut c = Cluster::new(3, config, 11);
    assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
    c.run_for(Duration::from_millis(200));
    let leader = c.leader().unwrap();
    c.isolate(leader);
    for i in 0..n {
        let id: ReadId = i;
        if let Err(e) = c.read(leader, id) {
            return (i, Some(e));
        }
        if i % 1000 == 0 {
            c.run_for(Duration::from_millis(5));
            assert_eq!(c.leader(), Some(leader), "without CheckQuorum the cut-off leader stays");
        }
    }
    (n, None)
}

#[test]
fn a_cut_off_leader_without_check_quorum_refuses_reads_past_its_bound() {
    let config = RaftConfig::default().with(|c| c.check_quorum = false);
    let limit = config.max_pending_reads as u64;
    let (queued, refusal) = flood_isolated_leader(config, 2 * limit);
    assert_eq!(
        refusal,
        Some(ReadError::Busy { limit }),
        "{queued} reads queued on a leader cut off from its quorum, none refused"
    );
    assert_eq!(queued, limit);
}

#[test]
fn a_small_bound_is_honoured_and_reads_flow_again_once_the_quorum_is_back() {
    let config = RaftConfig::default().with(|c| {
        c.check_quorum = false;
        c.max_pending_reads = 5;
    });
    let mut c = Cluster::new(3, config, 3);
    assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
    c.run_for(Duration::from_millis(200));
    let leader = c.leader().unwrap();
    c.isolate(leader);
    for id in 0..5 {
        c.read(leader, id).unwrap();
    }
    assert_eq!(c.read(leader, 5), Err(ReadError::Busy { limit: 5 }));
    // Healed (before anyone else took over): the queued reads are answered and new ones accepted.
    c.heal();
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.reads(leader).len(), 5, "the five queued reads are answered");
    c.read(leader, 6).unwrap();
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

/// The planted twin: with the bound ignored, the first test's flood is
/// queued whole.
#[test]
fn the_bound_test_catches_unbounded_reads() {
    let config = RaftConfig::default().with(|c| {
        c.check_quorum = false;
        c.planted = Some(PlantedBug::UnboundedReads);
    });
    let limit = config.max_pending_reads as u64;
    let (queued, refusal) = flood_isolated_leader(config, 2 * limit);
    assert_eq!((queued, refusal), (2 * limit, None), "the planted bug queues every read");
}

/// Issue 13: the generic sweep sees the unbounded queue too. Many clients
/// against a small read bound fill the queue (clients are told Busy), and
/// the `raft: bounded queues` invariant holds after every step; with the
/// bound planted away, it is the check that fires.
fn crowded_sweep(planted: Option<PlantedBug>) -> quorum_sim::Summary {
    let mut base = quorum_sim::SimConfig::quick(0, quorum_sim::Faults::All);
    base.clients.count = 48;
    base.clients.read_ratio = 0.6;
    let config = RaftConfig::default().with(|c| {
        c.max_pending_reads = 4;
        c.planted = planted;
    });
    quorum_sim::testkit::sweep::<quorum_raft::Raft>(&base, &config, 0..6)
}

#[test]
fn a_crowded_sweep_keeps_the_read_queue_within_its_bound() {
    crowded_sweep(None).assert_clean();
}

#[test]
fn a_crowded_sweep_catches_the_unbounded_read_queue_by_its_invariant() {
    crowded_sweep(Some(PlantedBug::UnboundedReads))
        .assert_caught_by("planted UnboundedReads", &["raft: bounded queues"]);
}
