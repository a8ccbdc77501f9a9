//! Zab scenarios in the simulator: each sets up a situation from the paper or
//! from ZooKeeper's bug history, acts, and checks the outcome — and every run
//! is also checked by the simulator's own safety checks and Zab's invariants.

use quorum_core::{ClientId, Command, Duration, NodeId, Protocol, Role};
use quorum_sim::{Sim, SimConfig, What};
use quorum_zab::{Message, Zab, ZabConfig};

fn cmd(seq: u64) -> Command {
    Command::new(ClientId(7), seq, format!("cmd-{seq}").into_bytes())
}

/// A scripted cluster: no workload clients, a full trace, snapshots every `snapshot_every`.
fn cluster(nodes: usize, seed: u64, snapshot_every: Option<u64>) -> Sim<Zab> {
    let mut cfg = SimConfig::new(nodes, seed);
    cfg.clients.count = 0;
    cfg.trace = true;
    cfg.snapshot_every = snapshot_every;
    Sim::new(cfg, ZabConfig::default())
}

fn elect(sim: &mut Sim<Zab>) -> NodeId {
    assert!(sim.run_until(Duration::from_secs(2), |s| s.leader().is_some()), "no leader elected");
    sim.leader().unwrap()
}

/// Proposes commands `seqs` on the leader and waits until `waiters` applied them all.
fn commit(sim: &mut Sim<Zab>, leader: NodeId, seqs: std::ops::RangeInclusive<u64>, waiters: &[NodeId]) {
    let target = sim.applied_index(leader) + (seqs.end() - seqs.start() + 1);
    for seq in seqs {
        sim.propose(leader, cmd(seq)).expect("the leader accepts proposals");
    }
    let ok = sim.run_until(Duration::from_secs(2), |s| waiters.iter().all(|w| s.applied_index(*w) >= target));
    assert!(ok, "commands not applied by {waiters:?}");
}

/// Sync messages (DIFF, TRUNC, SNAP) the trace shows delivered to `to`.
fn sync_kinds_to(sim: &Sim<Zab>, to: NodeId) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for e in sim.trace().events() {
        if let What::Deliver { to: t, msg, .. } = &e.what {
            if *t == to.0 {
                for kind in ["Diff", "Trunc", "Snap"] {
                    if msg.starts_with(&format!("{kind} {{")) {
                        kinds.push(kind);
                    }
                }
            }
        }
    }
    kinds
}

fn assert_clean(sim: &Sim<Zab>) {
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
}

/// Every live node ends with the same applied state as the leader.
fn assert_converged(sim: &mut Sim<Zab>) {
    let ok = sim.run_until(Duration::from_secs(3), |s| {
        let Some(l) = s.leader() else { return false };
        s.members().iter().all(|m| s.applied_index(*m) == s.applied_index(l))
    });
    assert!(ok, "nodes did not converge");
    let l = sim.leader().unwrap();
    for m in sim.members().to_vec() {
        assert_eq!(sim.kv(m), sim.kv(l), "{m} differs from the leader {l}");
    }
}

#[test]
fn election_picks_the_most_up_to_date_node_over_a_higher_id() {
    let mut sim = cluster(3, 1, None);
    let first = elect(&mut sim);
    assert_eq!(first, NodeId(3), "empty histories: the highest id wins");
    commit(&mut sim, first, 1..=5, &[NodeId(1), NodeId(2), NodeId(3)]);
    // Node 2 misses the next commands; node 1 has them.
    sim.partition(&[&[NodeId(2)], &[NodeId(1), NodeId(3)]]);
    commit(&mut sim, first, 6..=8, &[NodeId(1), NodeId(3)]);
    sim.crash(NodeId(3));
    sim.heal();
    let next = elect(&mut sim);
    assert_eq!(next, NodeId(1), "node 1's last zxid beats node 2's id");
    let (one, two) = (sim.node(NodeId(1)).unwrap(), sim.node(NodeId(2)).unwrap());
    assert_eq!(one.current_epoch(), 2);
    assert!(two.history().last_index() >= 8, "node 2 was brought up to date");
    assert_clean(&sim);
}

#[test]
fn discovery_adopts_an_epoch_above_every_accepted_epoch_and_all_adopt_it() {
    let mut sim = cluster(5, 2, None);
    let mut epochs = Vec::new();
    for round in 0..4 {
        let leader = elect(&mut sim);
        let epoch = sim.status(leader).unwrap().term;
        epochs.push(epoch);
        commit(&mut sim, leader, round * 10 + 1..=round * 10 + 3, &[leader]);
        let live: Vec<NodeId> = sim.members().iter().copied().filter(|m| sim.is_up(*m)).collect();
        let ok = sim.run_until(Duration::from_secs(1), |s| {
            live.iter().all(|m| s.node(*m).is_some_and(|z| z.current_epoch() == epoch))
        });
        assert!(ok, "every live node follows epoch {epoch}");
        let max_accepted = live.iter().map(|m| sim.node(*m).unwrap().accepted_epoch()).max().unwrap();
        assert_eq!(max_accepted, epoch, "no node promised beyond the established epoch");
        sim.crash(leader);
        sim.run_for(Duration::from_millis(5));
        if round == 1 {
            sim.restart(NodeId(5));
            sim.restart(NodeId(4));
        }
    }
    assert!(epochs.windows(2).all(|w| w[1] > w[0]), "epochs increase: {epochs:?}");
    assert_clean(&sim);
}

#[test]
fn an_epoch_promised_but_never_established_is_skipped_by_the_next_leader() {
    // Every NEWLEADER is lost: leaders gather ACKEPOCH quorums (nodes promise
    // their epochs) but never establish them, and give up after initLimit.
    let mut sim = cluster(3, 7, None);
    sim.set_drop_filter(|_, _, m| matches!(m, Message::NewLeader { .. }));
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.leader(), None, "no epoch can be established");
    let promised = |s: &Sim<Zab>| s.members().iter().map(|m| s.node(*m).unwrap().accepted_epoch()).max().unwrap();
    let before = promised(&sim);
    assert!(before >= 2, "several epochs were promised: {before}");
    for m in sim.members().to_vec() {
        assert_eq!(sim.node(m).unwrap().established_epoch(), None);
    }
    sim.clear_drop_filter();
    let leader = elect(&mut sim);
    let epoch = sim.status(leader).unwrap().term;
    assert!(epoch > before, "the new epoch {epoch} is above every promised epoch ({before})");
    let all = sim.members().to_vec();
    commit(&mut sim, leader, 1..=2, &all);
    assert_clean(&sim);
}

#[test]
fn a_follower_that_missed_commits_is_synchronised_by_diff() {
    let mut sim = cluster(3, 3, None);
    let leader = elect(&mut sim);
    let lagging = NodeId(1);
    let other = NodeId(2);
    commit(&mut sim, leader, 1..=2, &[leader, lagging, other]);
    sim.partition(&[&[lagging], &[leader, other]]);
    commit(&mut sim, leader, 3..=7, &[leader, other]);
    sim.heal();
    assert_converged(&mut sim);
    let kinds = sync_kinds_to(&sim, lagging);
    assert_eq!(kinds.last(), Some(&"Diff"), "{kinds:?}");
    assert_eq!(sim.applied_index(lagging), 7);
    assert_clean(&sim);
}

#[test]
fn an_uncommitted_proposal_of_an_old_epoch_is_truncated_with_trunc() {
    // 5 nodes; leader 5 gets proposal 4 to node 4 only, and node 4's ACK is lost.
    let mut sim = cluster(5, 4, None);
    let leader = elect(&mut sim);
    assert_eq!(leader, NodeId(5));
    let all: Vec<NodeId> = sim.members().to_vec();
    commit(&mut sim, leader, 1..=3, &all);
    sim.set_drop_filter(|from, to, m| match m {
        Message::Proposal { .. } => from == NodeId(5) && to != NodeId(4),
        Message::Ack { .. } => from == NodeId(4),
        _ => false,
    });
    sim.propose(leader, cmd(4)).unwrap();
    sim.run_for(Duration::from_millis(20));
    let holder = sim.node(NodeId(4)).unwrap();
    assert_eq!(holder.history().last_index(), 4, "node 4 logged the proposal");
    assert_eq!(holder.commit_index(), 3, "nobody committed it");
    // The leader and the only holder crash; {1, 2, 3} go on in a new epoch.
    sim.crash(NodeId(5));
    sim.crash(NodeId(4));
    sim.clear_drop_filter();
    let next = elect(&mut sim);
    commit(&mut sim, next, 10..=11, &[NodeId(1), NodeId(2), NodeId(3)]);
    sim.restart(NodeId(4));
    sim.restart(NodeId(5));
    assert_converged(&mut sim);
    assert!(sync_kinds_to(&sim, NodeId(4)).contains(&"Trunc"), "{:?}", sync_kinds_to(&sim, NodeId(4)));
    let four = sim.node(NodeId(4)).unwrap();
    assert!(four.history().iter().all(|e| e.payload != quorum_core::Payload::Command(cmd(4))), "cmd 4 is gone");
    assert!(sim.committed(NodeId(1)).iter().all(|e| e.payload != quorum_core::Payload::Command(cmd(4))));
    assert_clean(&sim);
}

#[test]
fn a_follower_behind_the_leaders_snapshot_is_synchronised_by_snap() {
    let mut sim = cluster(3, 5, Some(5));
    let leader = elect(&mut sim);
    let lagging = if leader == NodeId(1) { NodeId(2) } else { NodeId(1) };
    let others: Vec<NodeId> = sim.members().iter().copied().filter(|m| *m != lagging).collect();
    let all = sim.members().to_vec();
    commit(&mut sim, leader, 1..=2, &all);
    sim.partition(&[&[lagging], &others]);
    commit(&mut sim, leader, 3..=20, &others);
    assert!(sim.node(leader).unwrap().history().offset() >= 15, "the leader compacted its history");
    sim.heal();
    assert_converged(&mut sim);
    assert_eq!(sync_kinds_to(&sim, lagging).last(), Some(&"Snap"));
    assert_eq!(sim.applied_index(lagging), 20);
    assert_clean(&sim);
}

#[test]
fn leader_crash_in_the_middle_of_a_broadcast_loses_no_committed_write() {
    for seed in 0..20 {
        let mut cfg = SimConfig::new(5, seed);
        cfg.duration = Duration::from_millis(600);
        let mut sim = Sim::<Zab>::new(cfg, ZabConfig::default());
        sim.start_workload();
        sim.run_for(Duration::from_millis(200));
        let leader = sim.leader().expect("a leader under load");
        let applied = sim.applied_index(leader);
        assert!(applied > 10, "the workload is running");
        sim.crash(leader);
        assert!(sim.run_until(Duration::from_secs(1), |s| s.leader().is_some_and(|l| l != leader)));
        let next = sim.leader().unwrap();
        assert!(sim.run_until(Duration::from_secs(1), |s| s.applied_index(next) > applied + 5), "progress resumes");
        sim.restart(leader);
        sim.run_for(Duration::from_millis(500));
        assert_converged(&mut sim);
        sim.run_finish().assert_clean(0);
    }
}

#[test]
fn a_late_joiner_is_synchronised_while_the_leader_is_broadcasting() {
    // ZooKeeper's TLA+ work found late-joiner bugs (ZOOKEEPER-3023, -4394,
    // -4643, -4646) where proposals and commits of the running epoch
    // interleave with synchronisation. Restart a follower under load, many times.
    for seed in 0..20 {
        let mut cfg = SimConfig::new(3, seed);
        cfg.duration = Duration::from_millis(700);
        cfg.clients.count = 6;
        cfg.clients.think_time = Duration::ZERO;
        cfg.snapshot_every = Some(25);
        cfg.trace = true;
        let mut sim = Sim::<Zab>::new(cfg, ZabConfig::default());
        sim.start_workload();
        sim.run_for(Duration::from_millis(100));
        let leader = sim.leader().expect("a leader under load");
        let joiner = sim.members().iter().copied().find(|m| *m != leader).unwrap();
        sim.crash(joiner);
        sim.run_for(Duration::from_millis(150));
        sim.restart(joiner);
        let rejoined = sim.run_until(Duration::from_secs(1), |s| {
            s.status(joiner).is_some_and(|st| st.role == Role::Follower && st.commit_index > 0)
        });
        assert!(rejoined, "seed {seed}: the joiner follows again");
        // In flight while it synced: the leader kept proposing.
        let leader_last = sim.node(leader).unwrap().history().last_index();
        sim.run_for(Duration::from_millis(300));
        assert!(sim.applied_index(joiner) > leader_last, "seed {seed}: it applies the running epoch's commits");
        assert!(!sync_kinds_to(&sim, joiner).is_empty());
        assert_converged(&mut sim);
        sim.run_finish().assert_clean(0);
    }
}

#[test]
fn a_frozen_leader_is_replaced_after_the_sync_limit_and_rejoins_as_follower() {
    let mut sim = cluster(3, 6, None);
    let leader = elect(&mut sim);
    let all = sim.members().to_vec();
    commit(&mut sim, leader, 1..=3, &all);
    sim.freeze(leader);
    let frozen_at = sim.now();
    assert!(sim.run_until(Duration::from_secs(1), |s| s.leader().is_some_and(|l| l != leader)));
    let waited = sim.now().saturating_since(frozen_at);
    assert!(waited >= ZabConfig::default().sync_limit(), "followers wait for syncLimit: {waited}");
    let next = sim.leader().unwrap();
    commit(&mut sim, next, 4..=5, &[next]);
    sim.thaw(leader);
    assert_converged(&mut sim);
    assert_eq!(sim.status(leader).unwrap().role, Role::Follower);
    assert_clean(&sim);
}

#[test]
fn sync_reads_on_leader_and_followers_are_linearizable_under_partitions() {
    let mut base = SimConfig::quick(0, quorum_sim::Faults::Partition);
    base.clients.read_ratio = 0.6;
    base.clients.reads = quorum_sim::ReadPath::Protocol;
    let summary = quorum_sim::check_seeds::<Zab>(&base, &ZabConfig::default(), 0..300);
    summary.assert_clean();
    assert!(summary.ops_ok > 300 * 100, "{summary}");
}

#[test]
fn a_single_node_cluster_leads_itself_and_survives_restarts() {
    let mut sim = cluster(1, 8, Some(3));
    let leader = elect(&mut sim);
    commit(&mut sim, leader, 1..=5, &[leader]);
    sim.crash(leader);
    sim.restart(leader);
    let leader = elect(&mut sim);
    assert_eq!(sim.status(leader).unwrap().term, 2);
    commit(&mut sim, leader, 6..=7, &[leader]);
    assert_eq!(sim.applied_index(leader), 7);
    assert_clean(&sim);
}

#[test]
fn zab_declares_fifo_links() {
    assert_eq!(Zab::LINKS, quorum_core::LinkKind::Fifo);
    assert_eq!(Zab::NAME, "zab");
}
