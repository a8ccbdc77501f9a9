//! Issue 13: the simulator catches a durability bug in Raft's voting. The
//! planted twin `PlantedBug::VoteBeforePersisted` lets a granted vote leave
//! before the term and vote are on disk; a voter that crashes before the
//! write lands forgets its vote and can grant another in the same term, so
//! two leaders share a term. Slow disks (a long window between a write and
//! its durability), frequent short crashes, and a narrow election timeout
//! (rival candidates in one term) reach it.

use quorum_core::Duration;
use quorum_raft::{PlantedBug, Raft, RaftConfig};
use quorum_sim::{Faults, SimConfig, Summary};

const SEEDS: std::ops::Range<u64> = 0..2000;

fn sweep(planted: Option<PlantedBug>) -> Summary {
    let mut base = SimConfig::quick(0, Faults::Crash);
    base.disk.fsync = Duration::from_millis(30);
    base.faults.mean_interval = Duration::from_millis(60);
    base.faults.max_outage = Duration::from_millis(40);
    let config = RaftConfig::default().with(|c| {
        c.election_timeout_max = Duration::from_millis(160);
        c.planted = planted;
    });
    quorum_sim::testkit::sweep::<Raft>(&base, &config, SEEDS)
}

#[test]
fn slow_disks_short_crashes_and_rival_candidates_keep_one_leader_per_term() {
    sweep(None).assert_clean();
}

/// The early vote itself is caught in every run with an election, by the
/// simulator's "durable sends" check, where the double vote it allows needs
/// a crash inside the write's window and a rival in the same term.
#[test]
fn durable_sends_catches_the_early_vote_in_every_run() {
    let base = SimConfig::quick(0, Faults::None);
    let config = RaftConfig::default().with(|c| c.planted = Some(PlantedBug::VoteBeforePersisted));
    let summary = quorum_sim::testkit::sweep::<Raft>(&base, &config, 0..20);
    assert_eq!(summary.failures.len(), 20, "{summary}");
    summary.assert_caught_by("planted VoteBeforePersisted", &["durable sends"]);
    quorum_sim::testkit::sweep::<Raft>(&base, &RaftConfig::default(), 0..20).assert_clean();
}

#[test]
fn the_sweep_catches_a_vote_sent_before_it_is_durable() {
    let summary = sweep(Some(PlantedBug::VoteBeforePersisted));
    summary.assert_caught_including("planted VoteBeforePersisted", "raft: election safety");
}
