//! Thousands of simulated runs with every fault (crashes, partitions, loss,
//! duplication, reordering), snapshots and ReadIndex reads, each checked for
//! linearizability, the simulator's safety checks and Raft's own Figure 3
//! invariants. The main sweeps add membership churn: an operator removes
//! voters (the leader too), adds them back as learners, promotes them, and
//! transfers leadership, at random times (`churn`). `RAFT_SEEDS=n` scales
//! the sweeps.

mod churn;

use quorum_core::{Duration, LinkKind};
use quorum_raft::{Raft, RaftConfig, ReadMode};
use quorum_sim::{check_seeds, check_seeds_with, Faults, Sim, SimConfig};

fn seeds(default: u64) -> std::ops::Range<u64> {
    let n: u64 = std::env::var("RAFT_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    0..n
}

fn sweep(base: SimConfig, config: RaftConfig, seeds: std::ops::Range<u64>) {
    check_seeds::<Raft>(&base, &config, seeds).assert_clean();
}

/// A sweep with the churn operator in every run.
fn sweep_with_churn(base: SimConfig, config: RaftConfig, seeds: std::ops::Range<u64>) {
    let record = churn::Record::default();
    let setup = |sim: &mut Sim<Raft>| churn::install(sim, record.clone());
    let summary = check_seeds_with::<Raft>(&base, &config, seeds, setup, |_| {});
    let counts = churn::Counts::of(&record.lock().expect("record lock"));
    eprintln!("{summary}\n  operator: {counts:?}");
    summary.assert_clean();
    assert!(summary.config_changes > 0, "no membership change ever committed: {summary}");
}

/// Issue 3's sweep: 5,000 seeds over datagram links (Raft's declared kind:
/// loss, duplication, reordering) with crashes, partitions, snapshots every
/// 50 entries, ReadIndex reads, and membership churn with leadership transfers.
#[test]
fn seed_sweep_5000_seeds_all_faults_membership_churn_datagram_links() {
    let base = SimConfig::quick(0, Faults::All);
    assert_eq!(base.network.links, None, "quick() leaves the links to the protocol: Raft declares datagram");
    sweep_with_churn(base, RaftConfig::default(), seeds(5000));
}

/// The same over fifo links (TCP-like: no loss, duplication or reordering
/// within a connection, but a lossy message breaks the connection, which the
/// peers learn through `on_link_down`).
#[test]
fn seed_sweep_all_faults_membership_churn_fifo_links() {
    let mut base = SimConfig::quick(0, Faults::All);
    base.network.links = Some(LinkKind::Fifo);
    sweep_with_churn(base, RaftConfig::default(), seeds(2000));
}

#[test]
fn seed_sweep_five_nodes_all_faults_membership_churn() {
    let mut base = SimConfig::quick(0, Faults::All);
    base.nodes = 5;
    sweep_with_churn(base, RaftConfig::default(), seeds(500));
}

#[test]
fn seed_sweep_without_prevote_or_check_quorum_membership_churn() {
    let config = RaftConfig::default().with(|c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    sweep_with_churn(SimConfig::quick(0, Faults::All), config, seeds(500));
}

#[test]
fn seed_sweep_lease_reads_membership_churn() {
    let config = RaftConfig::default().with(|c| c.read_mode = ReadMode::Lease);
    sweep_with_churn(SimConfig::quick(0, Faults::All), config, seeds(500));
}

#[test]
fn seed_sweep_tiny_batches_windows_and_snapshot_chunks_membership_churn() {
    let config = RaftConfig::default().with(|c| {
        c.max_entries_per_message = 2;
        c.max_inflight = 2;
        c.snapshot_chunk_bytes = 16;
        c.max_uncommitted_bytes = 400;
    });
    let mut base = SimConfig::quick(0, Faults::All);
    base.snapshot_every = Some(10);
    base.network.latency =
        quorum_sim::Latency::LongTail { median: Duration::from_millis(2), p99: Duration::from_millis(40) };
    sweep_with_churn(base, config, seeds(500));
}

#[test]
fn the_sweep_configuration_really_exercises_elections_snapshots_and_repairs() {
    use quorum_raft::Message;
    use quorum_sim::Sim;
    use std::cell::Cell;
    use std::rc::Rc;
    let (mut elections, mut ops) = (0, 0);
    let chunks = Rc::new(Cell::new(0u64));
    let rejections = Rc::new(Cell::new(0u64));
    for seed in 0..20 {
        let mut sim = Sim::<Raft>::new(SimConfig::quick(seed, Faults::All), RaftConfig::default());
        let (c, r) = (chunks.clone(), rejections.clone());
        sim.set_drop_filter(move |_, _, msg: &Message| {
            match msg {
                Message::Snapshot(_) => c.set(c.get() + 1),
                Message::AppendReply(a) if a.result.is_err() => r.set(r.get() + 1),
                _ => {}
            }
            false
        });
        let report = sim.run();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        elections += report.metrics.elections;
        ops += report.ops_ok;
    }
    eprintln!(
        "20 seeds: {elections} elections, {ops} ops, {} snapshot chunks, {} rejections",
        chunks.get(),
        rejections.get()
    );
    assert!(elections > 20, "only {elections} elections in 20 faulty runs: faults should force re-elections");
    assert!(chunks.get() > 0, "no snapshot was ever sent");
    assert!(rejections.get() > 0, "no log ever needed repair");
    assert!(ops > 20 * 100);
}

/// Slow fsyncs and frequent crashes widen the window between issuing a write
/// and its durability, where durability bugs (a vote or an ack sent too early,
/// a leader counting its own undurable entries) lose committed data. Without
/// churn: a fixed configuration is a schedule of its own.
#[test]
fn seed_sweep_slow_disks_and_frequent_crashes() {
    let mut base = SimConfig::quick(0, Faults::All);
    base.disk.fsync = Duration::from_millis(15);
    base.faults.mean_interval = Duration::from_millis(60);
    base.faults.max_outage = Duration::from_millis(200);
    sweep(base, RaftConfig::default(), seeds(4000));
}

/// What the churn operator achieved in one run, read from the run's report.
#[derive(Debug, Default)]
struct Achieved {
    changes_committed: u64,
    removals_committed: u64,
    leader_removals_committed: u64,
    promotions_committed: u64,
    transfers_completed: u64,
    timeout_nows_sent: u64,
    snapshot_chunks_sent: u64,
    reads_answered: u64,
}

fn achieved(report: &quorum_sim::Report, done: &[churn::Done], nodes: u64) -> Achieved {
    use quorum_core::NodeId;
    use std::collections::HashMap;
    let mut a = Achieved { changes_committed: report.metrics.config_changes.len() as u64, ..Achieved::default() };
    let leader_of_term: HashMap<u64, NodeId> =
        report.metrics.leader_changes.iter().map(|(_, id, t)| (*t, *id)).collect();
    // Committed configurations, in index order: who left and who joined at each step.
    let mut voters: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
    for change in &report.metrics.config_changes {
        let new = &change.membership.voters;
        let removed: Vec<NodeId> = voters.iter().copied().filter(|v| !new.contains(v)).collect();
        let added = new.iter().filter(|v| !voters.contains(v)).count() as u64;
        if let [gone] = removed[..] {
            a.removals_committed += 1;
            // Proposed by the leader of the entry's term: the leader removed itself.
            a.leader_removals_committed += u64::from(leader_of_term.get(&change.stamp.major) == Some(&gone));
        }
        a.promotions_committed += added;
        voters = new.clone();
    }
    // A transfer completed if the next new leader after the request is its
    // target, within the transfer's deadline (the maximum election timeout).
    let deadline = RaftConfig::default().election_timeout_max;
    for d in done {
        if let churn::Done::Transfer { at, to, term, .. } = d {
            let next = report.metrics.leader_changes.iter().find(|(t, _, term2)| t >= at && term2 > term);
            a.transfers_completed += u64::from(next.is_some_and(|(t, id, _)| id == to && *t - *at <= deadline));
        }
    }
    a
}

/// The churn sweep is only worth its seeds if membership really changes:
/// voters removed (the leader itself among them) and promoted back through
/// the learner stage, leadership handed over, all committed while crashes,
/// partitions, loss and duplication go on, snapshots are shipped and reads
/// answered, in both link kinds.
#[test]
fn the_churn_sweep_really_commits_membership_changes_leader_removals_and_transfers() {
    use quorum_raft::Message;
    use std::cell::Cell;
    use std::rc::Rc;
    const SEEDS: u64 = 100;
    for links in [LinkKind::Datagram, LinkKind::Fifo] {
        let mut total = Achieved::default();
        let mut requested = churn::Counts::default();
        for seed in 0..SEEDS {
            let mut base = SimConfig::quick(seed, Faults::All);
            base.network.links = Some(links);
            let mut sim = Sim::<Raft>::new(base, RaftConfig::default());
            let record = churn::Record::default();
            churn::install(&mut sim, record.clone());
            let (timeout_nows, chunks) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
            let (t, c) = (timeout_nows.clone(), chunks.clone());
            sim.set_drop_filter(move |_, _, msg: &Message| {
                match msg {
                    Message::TimeoutNow { .. } => t.set(t.get() + 1),
                    Message::Snapshot(_) => c.set(c.get() + 1),
                    _ => {}
                }
                false
            });
            let report = sim.run();
            assert!(report.violations.is_empty(), "seed {seed}: {:?}", report.violations);
            let done = record.lock().expect("record lock").clone();
            let a = achieved(&report, &done, 3);
            let c = churn::Counts::of(&done);
            total.changes_committed += a.changes_committed;
            total.removals_committed += a.removals_committed;
            total.leader_removals_committed += a.leader_removals_committed;
            total.promotions_committed += a.promotions_committed;
            total.transfers_completed += a.transfers_completed;
            total.timeout_nows_sent += timeout_nows.get();
            total.snapshot_chunks_sent += chunks.get();
            let read = |o: &&quorum_sim::Operation| matches!(o.op, quorum_core::KvOp::Get { .. });
            total.reads_answered +=
                report.history.iter().filter(read).filter(|o| o.completed_at().is_some()).count() as u64;
            requested.removals += c.removals;
            requested.leader_removals += c.leader_removals;
            requested.learners += c.learners;
            requested.promotions += c.promotions;
            requested.transfers += c.transfers;
        }
        eprintln!("{links:?} links, {SEEDS} seeds: requested {requested:?}\n  committed/completed {total:?}");
        let n = SEEDS;
        // Lower bounds at about half of what these seeds do today.
        assert!(total.changes_committed >= n, "{total:?}");
        assert!(total.removals_committed >= n / 2, "{total:?}");
        assert!(total.leader_removals_committed >= n / 10, "{total:?}");
        assert!(total.promotions_committed >= n / 8, "{total:?}");
        assert!(total.transfers_completed >= n / 4, "{total:?}");
        assert!(total.timeout_nows_sent >= total.transfers_completed, "{total:?}");
        assert!(total.snapshot_chunks_sent > 0 && total.reads_answered >= n * 20, "{total:?}");
    }
}
