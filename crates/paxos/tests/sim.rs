//! Basic Paxos in the deterministic simulator: scripted scenarios and seed sweeps.

use quorum_core::{ClientId, Command, Duration, NodeId, Payload};
use quorum_paxos::{Message, Paxos, PaxosConfig};
use quorum_sim::testkit::{five_node_sweep_config, sweep_clean};
use quorum_sim::{check_seeds, Faults, Sim, SimConfig};

fn scripted(nodes: usize, seed: u64) -> Sim<Paxos> {
    let mut cfg = SimConfig::new(nodes, seed);
    cfg.clients.count = 0;
    Sim::new(cfg, PaxosConfig::default())
}

fn cmd(client: u64) -> Command {
    Command::new(ClientId(client), 1, format!("cmd-{client}").into_bytes())
}

fn applied(sim: &Sim<Paxos>, id: u64) -> Vec<Payload> {
    sim.committed(NodeId(id)).iter().map(|e| e.payload.clone()).collect()
}

#[test]
fn one_proposer_one_value_chosen_everywhere() {
    let mut sim = scripted(3, 1);
    sim.propose(NodeId(2), cmd(1)).unwrap();
    assert!(sim.run_until(Duration::from_secs(1), |s| (1..=3).all(|i| s.applied_index(NodeId(i)) == 1)));
    for id in 1..=3 {
        assert_eq!(applied(&sim, id), vec![Payload::Command(cmd(1))]);
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn competing_proposers_converge_on_the_same_log() {
    for seed in 0..20 {
        let mut sim = scripted(5, seed);
        for id in 1..=5 {
            sim.propose(NodeId(id), cmd(id)).unwrap();
        }
        assert!(sim.run_until(Duration::from_secs(3), |s| (1..=5).all(|i| s.applied_index(NodeId(i)) == 5)));
        let log = applied(&sim, 1);
        for id in 2..=5 {
            assert_eq!(applied(&sim, id), log, "seed {seed}");
        }
        let mut sorted: Vec<String> = log.iter().map(|p| format!("{p:?}")).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "seed {seed}: each command once");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }
}

#[test]
fn a_minority_acceptance_before_the_proposer_crashes_is_kept() {
    let mut sim = scripted(5, 3);
    // Node 1's Accepts reach node 2 only: with its own vote, 2 of 5 accepted.
    sim.set_drop_filter(|from, to, msg| from == NodeId(1) && to != NodeId(2) && matches!(msg, Message::Accept { .. }));
    sim.propose(NodeId(1), cmd(1)).unwrap();
    assert!(sim.run_until(Duration::from_secs(1), |s| {
        s.node(NodeId(2)).is_some_and(|n| n.acceptor().accepted(1).is_some())
    }));
    sim.crash(NodeId(1));
    sim.clear_drop_filter();
    // Node 5 is cut off too: every Phase 1 majority is now {2, 3, 4}, so the
    // next proposer hears of v from node 2 and cannot rule out that v was
    // chosen (by {1, 2, 5}, as far as it knows). It must propose v, not its own.
    sim.set_drop_filter(|from, to, _| [from, to].iter().any(|&n| n == NodeId(1) || n == NodeId(5)));
    sim.propose(NodeId(3), cmd(3)).unwrap();
    assert!(sim.run_until(Duration::from_secs(3), |s| (2..=4).all(|i| s.applied_index(NodeId(i)) >= 2)));
    for id in 2..=4 {
        assert_eq!(applied(&sim, id), vec![Payload::Command(cmd(1)), Payload::Command(cmd(3))]);
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn seed_sweep_all_faults_three_nodes() {
    sweep_clean::<Paxos>(&SimConfig::quick(0, Faults::All), &PaxosConfig::default(), 5000, 100_000);
}

#[test]
fn seed_sweep_all_faults_five_nodes() {
    sweep_clean::<Paxos>(&five_node_sweep_config(), &PaxosConfig::default(), 500, 1);
}

/// A 10 ms fsync behind every promise and every vote: five proposers must not
/// spend the run preempting each other. With a fixed 4 ms backoff base these
/// 20 seeds answered 458 operations; starting the backoff from the measured
/// Phase 1 time, 1,549.
#[test]
fn a_slow_disk_does_not_leave_five_proposers_preempting_each_other() {
    let mut base = SimConfig::new(5, 0);
    base.disk.fsync = Duration::from_millis(10);
    base.clients.count = 4;
    let summary = check_seeds::<Paxos>(&base, &PaxosConfig::default(), 0..20);
    summary.assert_clean();
    assert!(summary.ops_ok >= 1_200, "{summary}");
}

/// A disk slower than half of `retry_timeout`: a phase needs our own write
/// and then a peer's, so it takes longer than the timeout gives it. Found by
/// the `crash-storm` sweep profile (30 ms fsync), where Basic Paxos answered
/// no operation in 10,000 seeds: every proposer gave up on each ballot just
/// before its promises came back (no Accept was ever sent). A phase whose
/// answers come after it timed out now gives the next one twice as long. The clients wait 500 ms:
/// four fsyncs one after another are more than the default 150 ms.
#[test]
fn a_disk_slower_than_half_the_retry_timeout_still_lets_values_be_chosen() {
    let mut base = SimConfig::new(3, 0);
    base.disk.fsync = Duration::from_millis(30);
    base.clients.count = 3;
    base.clients.timeout = Duration::from_millis(500);
    let summary = check_seeds::<Paxos>(&base, &PaxosConfig::default(), 0..10);
    summary.assert_clean();
    assert!(summary.ops_ok >= 40, "{summary}");
}

/// The same 30 ms disk with the clients' default 150 ms patience (the
/// `crash-storm` profile without its crashes): a phase takes 60-140 ms
/// there (our write, then a peer's, each maybe queued behind another), so
/// a 50 ms phase timeout gave up on ballots about to win and raised the
/// next above every rival's. Three such proposers chose almost nothing
/// (these 20 seeds: 27 operations; 530 now). The phase's clock now starts
/// when the Prepares leave (our own promise is durable), and a phase gets
/// at least twice the Phase 1 time measured here.
#[test]
fn a_30_ms_disk_does_not_leave_three_proposers_timing_each_other_out() {
    let mut base = SimConfig::new(3, 0);
    base.disk.fsync = Duration::from_millis(30);
    let summary = check_seeds::<Paxos>(&base, &PaxosConfig::default(), 0..20);
    summary.assert_clean();
    assert!(summary.ops_ok >= 300, "{summary}");
}
