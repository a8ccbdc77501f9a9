//! Multi-Paxos in the deterministic simulator: scripted scenarios and seed sweeps.

use quorum_core::{ClientId, Command, Duration, NodeId, Payload, Role};
use quorum_multipaxos::{Message, MultiPaxos, MultiPaxosConfig};
use quorum_sim::testkit::{five_node_sweep_config, sweep_clean};
use quorum_sim::{check_seeds, check_seeds_with, Faults, Sim, SimConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn scripted(nodes: usize, seed: u64) -> Sim<MultiPaxos> {
    let mut cfg = SimConfig::new(nodes, seed);
    cfg.clients.count = 0;
    Sim::new(cfg, MultiPaxosConfig::default())
}

fn cmd(seq: u64) -> Command {
    Command::new(ClientId(1), seq, format!("cmd-{seq}").into_bytes())
}

fn applied(sim: &Sim<MultiPaxos>, id: NodeId) -> Vec<Payload> {
    sim.committed(id).iter().map(|e| e.payload.clone()).collect()
}

fn elect(sim: &mut Sim<MultiPaxos>) -> NodeId {
    assert!(sim.run_until(Duration::from_secs(2), |s| s.leader().is_some()), "a leader is elected");
    sim.leader().unwrap()
}

#[test]
fn a_stable_leader_serves_the_workload_without_faults() {
    let report = Sim::<MultiPaxos>::new(SimConfig::quick(1, Faults::None), MultiPaxosConfig::default()).run();
    report.assert_clean(101);
    assert_eq!(report.metrics.elections, 1, "one Phase 1 for the whole run");
}

#[test]
fn a_leader_change_fills_the_old_leaders_holes_with_noops() {
    let mut sim = scripted(3, 2);
    let old = elect(&mut sim);
    // The old leader's Accepts for slot 2 never leave it.
    sim.set_drop_filter(move |from, _, msg| {
        from == old && matches!(msg, Message::Accept { entries, .. } if entries.iter().any(|(slot, _)| *slot == 2))
    });
    for seq in 1..=3 {
        sim.propose(old, cmd(seq)).unwrap();
    }
    let others: Vec<NodeId> = (1..=3).map(NodeId).filter(|&n| n != old).collect();
    let accepted_3 = |s: &Sim<MultiPaxos>| others.iter().any(|&n| s.node(n).unwrap().acceptor().accepted(3).is_some());
    assert!(sim.run_until(Duration::from_secs(1), accepted_3));
    sim.crash(old);
    sim.clear_drop_filter();
    assert!(sim.run_until(Duration::from_secs(2), |s| s.leader().is_some_and(|l| l != old)));
    assert!(sim.run_until(Duration::from_secs(1), |s| others.iter().all(|&n| s.applied_index(n) >= 3)));
    let expected = vec![Payload::Command(cmd(1)), Payload::Noop, Payload::Command(cmd(3))];
    for &n in &others {
        assert_eq!(applied(&sim, n), expected, "{n}");
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn an_old_leader_cut_off_cannot_commit_and_its_late_accepts_are_refused() {
    let mut sim = scripted(5, 3);
    let old = elect(&mut sim);
    let rest: Vec<NodeId> = (1..=5).map(NodeId).filter(|&n| n != old).collect();
    sim.partition(&[&[old], &rest]);
    sim.propose(old, cmd(1)).unwrap();
    assert!(sim.run_until(Duration::from_secs(2), |s| s.leader().is_some_and(|l| l != old)));
    let new = rest.iter().copied().find(|&n| s_role(&sim, n) == Role::Leader).unwrap();
    sim.propose(new, cmd(2)).unwrap();
    assert!(sim.run_until(Duration::from_secs(1), |s| s.applied_index(new) >= 1));
    // CheckQuorum: no answers from a majority for an election timeout, so the
    // old leader stepped down on its own (before this, it led on until it
    // heard of the new ballot; this line asserted that).
    assert_eq!(s_role(&sim, old), Role::Follower);
    sim.heal();
    assert!(sim.run_until(Duration::from_secs(1), |s| s_role(s, old) == Role::Follower), "the old leader steps down");
    assert!(sim.run_until(Duration::from_secs(1), |s| s.applied_index(old) >= 1));
    for n in (1..=5).map(NodeId) {
        assert!(!applied(&sim, n).contains(&Payload::Command(cmd(1))), "the cut-off leader's command never commits");
        assert_eq!(applied(&sim, n)[0], Payload::Command(cmd(2)));
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

fn s_role(sim: &Sim<MultiPaxos>, n: NodeId) -> Role {
    sim.status(n).unwrap().role
}

#[test]
fn a_lagging_replica_receives_the_leaders_snapshot() {
    let mut cfg = SimConfig::new(3, 4);
    cfg.snapshot_every = Some(20);
    cfg.clients.count = 2;
    cfg.duration = Duration::from_secs(1);
    let mut sim = Sim::<MultiPaxos>::new(cfg, MultiPaxosConfig::default());
    let leader = elect(&mut sim);
    let lagging = NodeId(leader.0 % 3 + 1);
    sim.crash(lagging);
    sim.start_workload();
    sim.run_for(Duration::from_millis(500));
    let leader = sim.leader().unwrap();
    assert!(sim.applied_index(leader) > 60, "the others moved on: {}", sim.applied_index(leader));
    sim.restart(lagging);
    let target = sim.applied_index(leader);
    assert!(sim.run_until(Duration::from_secs(1), |s| s.applied_index(lagging) >= target));
    let first = sim.committed(lagging).first().map(|e| e.index);
    assert!(first.is_some_and(|i| i > 1), "entries before the snapshot were installed, not replayed: {first:?}");
    assert!(sim.node(lagging).unwrap().snapshot().is_some());
    let report = sim.run_finish();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[test]
fn seed_sweep_all_faults_three_nodes() {
    sweep_clean::<MultiPaxos>(&SimConfig::quick(0, Faults::All), &MultiPaxosConfig::default(), 5000, 100_000);
}

#[test]
fn seed_sweep_all_faults_five_nodes() {
    let base = SimConfig { snapshot_every: Some(50), ..five_node_sweep_config() };
    sweep_clean::<MultiPaxos>(&base, &MultiPaxosConfig::default(), 500, 1);
}

#[test]
fn seed_sweep_all_faults_with_snapshots_streamed_in_tiny_pieces() {
    // Snapshots every 20 entries, streamed 64 bytes at a time (a few dozen
    // pieces each) through crashes, partitions, loss and duplication.
    let mut base = SimConfig::quick(0, Faults::All);
    base.snapshot_every = Some(20);
    let config = MultiPaxosConfig::default().with(|c| c.snapshot_chunk_bytes = 64);
    // Count the pieces past the first that were sent (a drop filter that drops nothing).
    let later_pieces = Arc::new(AtomicU64::new(0));
    let count = |sim: &mut Sim<MultiPaxos>| {
        let later_pieces = later_pieces.clone();
        sim.set_drop_filter(move |_, _, msg| {
            if matches!(msg, Message::SnapshotChunk(piece) if piece.offset > 0) {
                later_pieces.fetch_add(1, Ordering::Relaxed);
            }
            false
        });
    };
    let summary = check_seeds_with::<MultiPaxos>(&base, &config, 0..500, count, |_| {});
    summary.assert_clean();
    assert!(summary.ops_ok > 10_000, "the workload made progress: {summary}");
    let later = later_pieces.load(Ordering::Relaxed);
    println!("snapshot pieces past the first: {later}");
    assert!(later > 1_000, "snapshots really went in many pieces: {later}");
}

#[test]
fn seed_sweep_all_faults_with_a_tiny_leader_queue() {
    // Two slots in flight and two commands queued at most: the clients are
    // often answered Busy and back off; nothing may break.
    let mut base = SimConfig::quick(0, Faults::All);
    base.clients.count = 6;
    let config = MultiPaxosConfig::default().with(|c| {
        c.window = 2;
        c.max_queued = 2;
    });
    let summary = check_seeds::<MultiPaxos>(&base, &config, 0..300);
    summary.assert_clean();
    assert!(summary.ops_ok > 10_000, "the workload made progress: {summary}");
}

#[test]
fn seed_sweep_all_faults_with_lease_reads() {
    // Clients read through `Protocol::read` (the default read path): a leader
    // with a lease answers locally, and the history must stay linearizable.
    let base = SimConfig::quick(0, Faults::All);
    let config = MultiPaxosConfig::default().with(|c| c.read_lease = true);
    check_seeds::<MultiPaxos>(&base, &config, 0..2000).assert_clean();
}

/// `quorum sim -p multipaxos --profile tiny-caps --seed 3666` as the sweep
/// that found the defect ran it, every crash a process's (peers hear of it at
/// once): a leader elected with an old commit point re-proposes slots its
/// followers have committed and compacted into their snapshots. They used to
/// ignore those Accepts, so it never committed again (`convergence`); now
/// each answers with an empty Decided marked `more`, and the leader catches
/// up from it. (Seed 3669 since the promise-page deadline of 2026-12-07
/// changed 3666's course; the marker below finds a seed again, 3602-3673
/// held a dozen.)
#[test]
fn a_leader_behind_its_followers_snapshots_catches_up_and_commits() {
    let mut cfg = SimConfig::new(5, 3669).with_faults(Faults::All).with_small_frames();
    cfg.faults.late_link_down = 0.0;
    cfg.trace = true;
    let report = Sim::<MultiPaxos>::new(cfg, MultiPaxosConfig::tiny_caps()).run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(
        report.trace.to_text().contains("Decided { chosen: [], more: true }"),
        "seed 3669 no longer puts a leader behind its followers' snapshots: find another seed"
    );
}

/// Seed 40981 of `quorum sim -p multipaxos --churn --nodes 7 --profile
/// tiny-caps --seed-start 40000` (convergence): a leader removed itself
/// with 150 slots accepted that the others had not committed; each
/// candidate's Phase 1 paged through them a few slots per round trip,
/// longer than an election timeout, and its timer started a new ballot
/// from the first page, over and over, for the last 1.3 s of the run. A
/// candidate whose promises still have pages to come keeps its ballot.
#[test]
fn a_phase_1_longer_than_an_election_timeout_finishes_while_its_pages_arrive() {
    let mut cfg = SimConfig::new(3, 7);
    cfg.clients.count = 0;
    // Promise pages of one or two slots; every Accept leaves, answered or not.
    let config = MultiPaxosConfig::default().with(|c| {
        c.snapshot_chunk_bytes = 16;
        c.max_accepts_in_flight = 1000;
    });
    let mut sim = Sim::<MultiPaxos>::new(cfg, config);
    let old = elect(&mut sim);
    let others: Vec<NodeId> = (1..=3).map(NodeId).filter(|&n| n != old).collect();
    // No vote reaches the leader: the followers accept everything and
    // commit nothing.
    sim.set_drop_filter(move |_, to, msg| to == old && matches!(msg, Message::Accepted { .. }));
    let slots = 120;
    for seq in 1..=slots {
        sim.propose(old, cmd(seq)).unwrap();
    }
    let accepted_all =
        |s: &Sim<MultiPaxos>| others.iter().all(|&n| s.node(n).unwrap().acceptor().accepted(slots).is_some());
    assert!(sim.run_until(Duration::from_secs(2), accepted_all), "the followers accept every slot");
    assert!(others.iter().all(|&n| sim.applied_index(n) == 0));
    sim.crash(old);
    sim.clear_drop_filter();
    // 3 ms each way to and from each follower: a page's round trip takes
    // 12 ms, so Phase 1 over 120 slots (below the window of 128) takes longer than an election timeout.
    for &n in &others {
        sim.set_node_delay(n, Duration::from_millis(3));
    }
    let committed = |s: &Sim<MultiPaxos>| others.iter().all(|&n| s.applied_index(n) >= slots);
    assert!(sim.run_until(Duration::from_secs(10), committed), "a new leader commits the 120 slots");
    for &n in &others {
        let expected: Vec<Payload> = (1..=slots).map(|seq| Payload::Command(cmd(seq))).collect();
        assert_eq!(applied(&sim, n)[..slots as usize], expected[..], "{n}");
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
