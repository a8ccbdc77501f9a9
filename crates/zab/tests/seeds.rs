//! Seed sweeps: thousands of short runs with every fault on (crashes,
//! restarts, partitions, one-way cuts, connection resets), each checked for
//! linearizability, the simulator's safety checks and Zab's invariants. Zab
//! declares fifo links, so the simulator runs it over fifo links.
//!
//! Every read kind is exercised: half the reads are local reads (served by
//! whichever node the client reaches, checked for per-client session order and
//! against the committed log, never for linearizability), the others go
//! through `sync` (half the seeds) or through the log (the other half), and
//! those are checked for linearizability.

use quorum_sim::{check_seeds, check_seeds_with, Faults, ReadPath, SimConfig, Summary};
use quorum_zab::{Message, Zab, ZabConfig};

/// `quick` with local reads mixed into the workload, the rest via `reads`.
fn with_local_reads(reads: ReadPath) -> SimConfig {
    let mut base = SimConfig::quick(0, Faults::All);
    base.clients.reads = reads;
    base.clients.local_read_ratio = 0.5;
    base
}

/// Seeds `0..2500` read through `sync`, seeds `2500..5000` through the log.
fn sweep_every_read_kind() -> (Summary, Summary) {
    let zab = ZabConfig::default();
    let sync = check_seeds::<Zab>(&with_local_reads(ReadPath::Protocol), &zab, 0..2500);
    let log = check_seeds::<Zab>(&with_local_reads(ReadPath::Log), &zab, 2500..5000);
    (sync, log)
}

#[test]
fn five_thousand_seeds_with_all_faults_on_three_nodes_have_no_violation() {
    let (sync, log) = sweep_every_read_kind();
    for (reads, summary) in [("sync", &sync), ("log", &log)] {
        eprintln!("zab, 3 nodes, all faults, local + {reads} reads: {summary}; wall {:?}", summary.wall);
        summary.assert_clean();
        assert!(summary.ops_ok > 2500 * 50, "the workload must make progress: {summary}");
        // Half the reads (0.4 of operations) are local: about a fifth of what completes.
        assert!(summary.local_reads > summary.ops_ok / 10, "the sweep must issue local reads: {summary}");
    }
}

#[test]
fn five_node_clusters_with_all_faults_have_no_violation() {
    let mut base = with_local_reads(ReadPath::Protocol);
    base.nodes = 5;
    let summary = check_seeds::<Zab>(&base, &ZabConfig::default(), 0..500);
    eprintln!("zab, 5 nodes, all faults: {summary}; wall {:?}", summary.wall);
    summary.assert_clean();
}

#[test]
fn hung_nodes_frozen_and_thawed_under_load_cause_no_violation() {
    // A frozen process keeps its connections: nobody gets on_link_down, and
    // what was sent to it (or by it, before it froze) is handled after the
    // thaw, late. Leaders are the preferred victims.
    use quorum_core::{Duration, NodeId, Rng};
    use quorum_sim::Sim;
    let (mut failed, mut ops) = (Vec::new(), 0);
    for seed in 0..500u64 {
        let mut cfg = SimConfig::quick(seed, if seed % 2 == 0 { Faults::None } else { Faults::All });
        cfg.clients.local_read_ratio = 0.5;
        cfg.nodes = if seed % 3 == 0 { 5 } else { 3 };
        let n = cfg.nodes as u64;
        let mut sim = Sim::<Zab>::new(cfg, ZabConfig::default());
        let mut rng = Rng::new(seed ^ 0xF00D);
        sim.start_workload();
        for _ in 0..6 {
            sim.run_for(Duration::from_millis(rng.range(20, 150)));
            let victim = match sim.leader() {
                Some(l) if rng.chance(0.6) => l,
                _ => NodeId(rng.range(1, n + 1)),
            };
            sim.freeze(victim);
            sim.run_for(Duration::from_millis(rng.range(5, 300)));
            sim.thaw(victim);
        }
        sim.run_for(Duration::from_millis(1500));
        let report = sim.run_finish();
        ops += report.ops_ok;
        if !report.violations.is_empty() {
            failed.push((seed, report.violations));
        }
    }
    eprintln!("zab, freeze/thaw: 500 seeds, {ops} ops ok, {} failed", failed.len());
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(ops > 500 * 50, "the workload must make progress");
}

#[test]
fn synchronisation_in_tiny_chunks_with_all_faults_has_no_violation() {
    // 64-byte sync chunks, two in flight: every DIFF, TRUNC and SNAP of the
    // sweep (snapshots every 50 entries) streams as many chunks, and crashes,
    // partitions and resets break streams halfway.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let zab = ZabConfig::default().with(|c| {
        c.sync_chunk_bytes = 64;
        c.sync_window_chunks = 2;
    });
    // Every sync message the sweep sends is measured as the wire encodes it:
    // at most a chunk (or one entry that is larger on its own) plus a header.
    let (chunks, over) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let measure = |sim: &mut quorum_sim::Sim<Zab>| {
        let (chunks, over) = (chunks.clone(), over.clone());
        sim.set_drop_filter(move |_, _, msg| {
            let entries = match msg {
                Message::Diff { entries, .. }
                | Message::Trunc { entries, .. }
                | Message::Snap { entries, .. }
                | Message::SyncEntries { entries, .. } => entries.as_slice(),
                Message::SnapChunk { .. } => &[],
                _ => return false,
            };
            let size = postcard::to_allocvec(msg).unwrap().len();
            let one = match entries {
                [only] => postcard::to_allocvec(only).unwrap().len(),
                _ => 0,
            };
            chunks.fetch_add(1, Ordering::Relaxed);
            if size > 64.max(one) + 48 {
                over.fetch_add(1, Ordering::Relaxed);
            }
            false
        });
    };
    let three = check_seeds_with::<Zab>(&with_local_reads(ReadPath::Protocol), &zab, 0..600, measure, |_| {});
    let (chunks, over) = (chunks.load(Ordering::Relaxed), over.load(Ordering::Relaxed));
    eprintln!("zab, 3 nodes, all faults, 64-byte sync chunks: {three}; {chunks} sync messages; wall {:?}", three.wall);
    assert_eq!(over, 0, "{over} of {chunks} sync messages over 64 bytes + header");
    assert!(chunks > 600, "the sweep must synchronise followers in chunks: {chunks}");
    assert_eq!(three.violation_count(), 0, "{three}");
    assert!(three.ops_ok > 600 * 50, "the workload must make progress: {three}");
    let mut base = with_local_reads(ReadPath::Log);
    base.nodes = 5;
    let five = check_seeds::<Zab>(&base, &zab, 0..200);
    eprintln!("zab, 5 nodes, all faults, 64-byte sync chunks: {five}; wall {:?}", five.wall);
    assert_eq!(five.violation_count(), 0, "{five}");
}
