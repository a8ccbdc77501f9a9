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

#[test]
fn the_sweep_catches_a_vote_sent_before_it_is_durable() {
    let summary = sweep(Some(PlantedBug::VoteBeforePersisted));
    summary.assert_caught_including("planted VoteBeforePersisted", "raft: election safety");
}
