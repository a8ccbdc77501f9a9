//! A follower whose disk was wiped rejoins (issue 12, item 6, as the
//! real-process test `rejoin_large_state` found it): it comes back with an
//! empty log, below the match index its leader remembers for it. The leader
//! must see from the follower's rejection that the follower lost what it had
//! acknowledged, and replicate to it from where its log really ends (through
//! a snapshot if those entries were compacted), instead of probing forever
//! just above the old match index.

use quorum_core::{Duration, NodeId, Protocol};
type Cluster = quorum_sim::testkit::Cluster<quorum_raft::Raft>;
use quorum_raft::{PlantedBug, RaftConfig};

/// Elects a leader, commits `entries` commands, and returns the leader and one follower.
fn cluster_with_entries(config: RaftConfig, seed: u64, entries: u64) -> (Cluster, NodeId, NodeId) {
    let mut c = Cluster::new(3, config, seed);
    assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
    let leader = c.leader().unwrap();
    for i in 0..entries {
        c.propose(leader, format!("v{i}").into_bytes()).unwrap();
        c.settle();
    }
    let follower = c.ids().into_iter().find(|id| *id != leader).unwrap();
    // The follower learns the last commit with the next heartbeat.
    assert!(c.run_until(Duration::from_secs(1), |c| c.applied_index(follower) == c.applied_index(leader)));
    (c, leader, follower)
}

/// Wipes `follower`, restarts it, commits one more command, and gives it time to catch up.
fn wipe_and_rejoin(c: &mut Cluster, leader: NodeId, follower: NodeId) {
    c.wipe(follower);
    c.restart(follower);
    c.propose(leader, b"after".to_vec()).unwrap();
    let caught_up = c.run_until(Duration::from_secs(5), |c| c.applied_index(follower) == c.applied_index(leader));
    assert_eq!(c.leader(), Some(leader), "the leader stays (no election is needed)");
    assert!(
        caught_up,
        "the wiped follower applied {} of {} after 5 s: its leader keeps probing above the match index it remembers",
        c.applied_index(follower),
        c.applied_index(leader)
    );
}

#[test]
fn a_wiped_follower_is_sent_the_log_again_from_its_start() {
    for seed in 1..=5 {
        let (mut c, leader, follower) = cluster_with_entries(RaftConfig::default(), seed, 30);
        wipe_and_rejoin(&mut c, leader, follower);
        assert_eq!(c.applied(follower), c.applied(leader), "seed {seed}: the wiped follower applied another log");
        assert!(c.violations().is_empty(), "seed {seed}: {:?}", c.violations());
    }
}

#[test]
fn a_wiped_follower_behind_a_compacted_log_is_sent_the_snapshot() {
    for seed in 1..=5 {
        let (mut c, leader, follower) = cluster_with_entries(RaftConfig::default(), seed, 30);
        c.snapshot(leader);
        wipe_and_rejoin(&mut c, leader, follower);
        assert_eq!(c.snapshots_installed(follower), 1, "seed {seed}: the follower needs the leader's snapshot");
        assert!(c.violations().is_empty(), "seed {seed}: {:?}", c.violations());
    }
}

/// The planted twin: a leader that never goes below the match index it
/// recorded probes the wiped follower just above it, is refused, and probes
/// there again: with no network delay the cluster never goes quiet.
#[test]
fn the_planted_twin_never_lets_the_wiped_follower_catch_up() {
    let config = RaftConfig::default().with(|c| c.planted = Some(PlantedBug::TrustMatchIndex));
    let (mut c, leader, follower) = cluster_with_entries(config, 1, 30);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wipe_and_rejoin(&mut c, leader, follower)));
    let message = outcome.expect_err("the planted twin must keep the wiped follower behind");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains("did not settle within a million steps"),
        "the twin should livelock the leader and the wiped follower, not fail otherwise: {message}"
    );
}

/// A learner is wiped and joins again, and the operator promotes it before
/// the leader has heard from the new, empty process: the leader still holds
/// the match index the old process acknowledged, which passes the caught-up
/// check. Were that index counted, entries the new voter does not hold would
/// commit on it. Here two voters, one cut off: the old leader alone holds
/// five entries, so only the new voter's stale acknowledgment could make a
/// quorum for them. (Found by the `--churn` sweep once its operator wiped
/// learners: 10 seeds of 5,000, `raft: commit on a quorum of the configuration`.)
#[test]
fn a_wiped_learner_promoted_before_its_leader_hears_from_it_counts_only_what_it_holds() {
    for seed in 1..=5 {
        let mut c = Cluster::with_voters(3, &[1, 2], RaftConfig::default(), seed);
        assert!(c.run_until(Duration::from_secs(3), |c| c.leader().is_some()));
        let leader = c.leader().unwrap();
        let voter = NodeId(3 - leader.0);
        let learner = NodeId(3);
        c.act(leader, |r, now, out| r.add_learner(now, learner, out)).unwrap();
        c.settle();
        c.cut_one_way(leader, voter);
        c.cut_one_way(voter, leader);
        for i in 0..5 {
            c.propose(leader, format!("held by the learner only {i}").into_bytes()).unwrap();
        }
        c.settle();
        let held = c.node(leader).unwrap().log().last_index();
        let learner_match = c.node(leader).unwrap().progress().iter().find(|p| p.id == learner).unwrap().match_index;
        assert_eq!(learner_match, held, "seed {seed}: the learner acknowledged the five entries");
        assert!(
            c.node(leader).unwrap().status().commit_index < held,
            "seed {seed}: with one voter cut off, nothing commits"
        );

        // The learner's disk is replaced; the leader does not hear from the new process yet.
        c.cut_one_way(learner, leader);
        c.wipe(learner);
        c.restart(learner);
        c.act(leader, |r, now, out| r.promote(now, learner, out))
            .expect("the stale match index passes the caught-up check");
        c.settle();
        assert!(
            c.violations().is_empty(),
            "seed {seed}: the leader counted the wiped voter's old acknowledgment: {:?}",
            c.violations()
        );
        assert!(c.node(leader).unwrap().status().commit_index < held, "seed {seed}: still nothing may commit");

        c.heal();
        assert!(
            c.run_until(Duration::from_secs(5), |c| c.ids().iter().all(|id| c.applied_index(*id) > held)),
            "seed {seed}: once healed, the entries commit and every node applies them"
        );
        assert_eq!(c.applied(learner), c.applied(leader), "seed {seed}");
        assert!(c.violations().is_empty(), "seed {seed}: {:?}", c.violations());
    }
}
