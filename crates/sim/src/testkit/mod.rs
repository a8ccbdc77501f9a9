//! Tests every protocol crate runs the same way, written once: seed sweeps,
//! a planted bug's catch rate, and the time to recover from a fault on the
//! leader. Each protocol's `tests/` call these with its own type, config and
//! thresholds, so the four crates measure one thing one way. [`Net`] is the
//! hand-driven network for scenarios that need one exact schedule;
//! [`Cluster`] an in-memory cluster that runs its own traffic, with real
//! durability gates, crashes, partitions and the protocol's invariants.

mod cluster;
mod net;

pub use cluster::Cluster;
pub use net::{Envelope, Net, Recorded};

use crate::{check_seeds, quietly, Faults, Sim, SimConfig, Summary};
use quorum_core::{ClientId, Command, Duration, NodeId, Payload, Protocol, Role};

/// Runs `seeds` of `base` with the nodes' logs silenced: what every sweep
/// test does before it looks at the summary (a planted bug's panic is a
/// `panic` failure of its seed, not of the test).
pub fn sweep<P: Protocol>(base: &SimConfig, config: &P::Config, seeds: std::ops::Range<u64>) -> Summary
where
    P::Config: Sync,
{
    quietly(|| check_seeds::<P>(base, config, seeds)).expect("a sweep reports panics per seed")
}

/// Runs `seeds` of `base`, asserting no violation and at least `min_ops`
/// answered operations in all; returns the summary for further checks.
pub fn sweep_clean<P: Protocol>(base: &SimConfig, config: &P::Config, seeds: u64, min_ops: u64) -> Summary
where
    P::Config: Sync,
{
    let summary = check_seeds::<P>(base, config, 0..seeds);
    assert_eq!(summary.violation_count(), 0, "{}: {summary}", P::NAME);
    assert!(summary.ops_ok >= min_ops, "{}: the workload made too little progress: {summary}", P::NAME);
    summary
}

/// In how many of `seeds` runs of `base` (each stopped at its first
/// violation) the check named `check` fired. The protocol's own assertions
/// may also trip over a planted bug; their panics are silenced and such a run
/// counts only if the check fired first.
pub fn seeds_caught_by<P: Protocol>(base: &SimConfig, config: &P::Config, seeds: u64, check: &str) -> u64 {
    let mut caught = 0;
    for seed in 0..seeds {
        let fired = quietly(|| {
            let mut cfg = base.clone();
            cfg.seed = seed;
            let limit = cfg.duration + cfg.drain;
            let mut sim = Sim::<P>::new(cfg, config.clone());
            sim.start_workload();
            sim.run_until(limit, |s| !s.violations().is_empty());
            sim.violations().iter().any(|v| v.check == check)
        });
        if fired == Some(true) {
            caught += 1;
        }
    }
    println!("{}: check '{check}' fired in {caught} of {seeds} seeds", P::NAME);
    caught
}

/// What happens to the leader.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LeaderFault {
    /// kill -9: its connections close, so every live peer is told `on_link_down`.
    Crash,
    /// SIGSTOP: its connections stay open and nobody is told anything.
    Freeze,
}

/// Milliseconds from a fault on the leader of a steady `nodes`-node cluster
/// until a new leader (of a higher term) has committed a fresh command, which
/// is offered, like a client would, to a new leader the moment there is one
/// (and again every 10 ms until it commits). Then the old leader comes back
/// (restarted or thawed) and the run must stay clean.
pub fn leader_recovery_ms<P: Protocol>(nodes: usize, seed: u64, config: &P::Config, fault: LeaderFault) -> f64 {
    let cmd = |seq: u64| Command::new(ClientId(1), seq, format!("cmd-{seq}").into_bytes());
    let mut cfg = SimConfig::new(nodes, seed);
    cfg.clients.count = 0;
    let mut s = Sim::<P>::new(cfg, config.clone());
    assert!(s.run_until(Duration::from_secs(3), |s| s.leader().is_some()), "seed {seed}: no first leader");
    let old = s.leader().expect("checked above");
    let _ = s.propose(old, cmd(1));
    // Steady state: every follower has heard the leader for a while.
    s.run_for(Duration::from_millis(400));
    let old_term = s.status(old).expect("the leader is up").term;
    let start = s.now();
    match fault {
        LeaderFault::Crash => s.crash(old),
        LeaderFault::Freeze => s.freeze(old),
    }
    let new_leader = |s: &Sim<P>| -> Option<NodeId> {
        let live = s.members().iter().filter(|id| **id != old).filter_map(|id| s.status(*id));
        live.filter(|st| st.role == Role::Leader && st.term > old_term).map(|st| st.id).next()
    };
    let fresh = Payload::Command(cmd(2));
    let done = |s: &Sim<P>| s.members().iter().any(|id| s.committed(*id).iter().any(|e| e.payload == fresh));
    let mut offered: Option<NodeId> = None;
    while !done(&s) {
        assert!(s.now() < start + Duration::from_secs(3), "seed {seed}: nothing committed within 3 s");
        if let Some(leader) = new_leader(&s) {
            offered = s.propose(leader, cmd(2)).is_ok().then_some(leader);
        }
        // Until it commits, a new leader appears, or it is time to offer again.
        s.run_until(Duration::from_millis(10), |s| done(s) || new_leader(s).is_some_and(|l| offered != Some(l)));
    }
    let ms = (s.now() - start).as_millis_f64();
    match fault {
        LeaderFault::Crash => s.restart(old),
        LeaderFault::Freeze => s.thaw(old),
    }
    s.run_for(Duration::from_millis(500));
    assert!(s.violations().is_empty(), "seed {seed}: {:?}", s.violations());
    ms
}

/// [`leader_recovery_ms`] over seeds `0..seeds`.
pub fn leader_recoveries<P: Protocol>(nodes: usize, seeds: u64, config: &P::Config, fault: LeaderFault) -> Vec<f64> {
    (0..seeds).map(|seed| leader_recovery_ms::<P>(nodes, seed, config, fault)).collect()
}

/// The median of some samples (the upper one of an even count).
pub fn median(mut samples: Vec<f64>) -> f64 {
    assert!(!samples.is_empty(), "the median of nothing");
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The default sweep configs: three nodes with every fault for `quick`
/// seeds, five nodes with 1 s of load.
pub fn five_node_sweep_config() -> SimConfig {
    let mut base = SimConfig::new(5, 0).with_faults(Faults::All);
    base.duration = Duration::from_secs(1);
    base.drain = Duration::from_millis(800);
    base
}
