//! Running a workload and a fault plan on the simulator.

use crate::metrics::{summarize, RunData, RunResult};
use crate::workload::{FaultKind, FaultPlan, Workload};
use quorum_core::{NodeId, Protocol};
use quorum_sim::{Faults, Sim, SimConfig};

/// The simulator configuration a workload stands for.
pub fn sim_config(w: &Workload, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(w.nodes, seed).with_faults(Faults::None);
    c.duration = w.duration;
    c.drain = quorum_core::Duration::from_millis(500);
    c.network.latency = w.latency;
    c.network.loss = w.loss;
    c.disk.fsync = w.fsync;
    c.clients.count = w.clients;
    c.clients.rate = w.rate;
    c.clients.keys = w.keys;
    c.clients.key_distribution = w.key_distribution;
    c.clients.value_size = w.value_size;
    c.clients.read_ratio = w.read_ratio;
    c.clients.cas_ratio = 0.0;
    c.clients.delete_ratio = 0.0;
    c.clients.think_time = quorum_core::Duration::ZERO;
    c.clients.timeout = quorum_core::Duration::from_millis(100);
    c
}

/// Picks the node the fault hits: the leader (for a leaderless protocol, the
/// node that accepted a command most recently), or a follower.
fn victim<P: Protocol>(sim: &Sim<P>, kind: FaultKind) -> (NodeId, String) {
    let leader = sim.leader();
    match (kind, leader) {
        (FaultKind::FollowerCrash, l) => {
            let f = sim.members().iter().copied().rev().find(|m| Some(*m) != l && sim.is_up(*m)).expect("a follower");
            (f, format!("{f} (a follower)"))
        }
        (_, Some(l)) => (l, format!("{l} (the leader)")),
        (_, None) => {
            let p = sim.last_proposer().unwrap_or(NodeId(1));
            (p, format!("{p} (no leader: the node that proposed most recently)"))
        }
    }
}

/// Runs one protocol under a workload and fault plan in the simulator.
pub fn run_sim<P: Protocol>(w: &Workload, plan: &FaultPlan, seed: u64, protocol: P::Config) -> RunResult {
    let mut sim = Sim::<P>::new(sim_config(w, seed), protocol);
    let start = sim.now();
    sim.start_workload();
    let mut fault = None;
    let mut victim_note = None;
    // Membership changes under load and chaos are real-mode plans (`quorum
    // sim --churn` and `--faults all` are the simulator's): here they are no
    // fault at all (the command refuses them).
    if !matches!(plan.kind, FaultKind::None | FaultKind::Reconfigure | FaultKind::Chaos) {
        sim.run_until_time(start + plan.at);
        let (v, note) = victim(&sim, plan.kind);
        victim_note = Some(note);
        fault = Some((sim.now(), v));
        match plan.kind {
            FaultKind::LeaderCrash | FaultKind::FollowerCrash => sim.crash(v),
            FaultKind::LeaderFreeze => sim.freeze(v),
            FaultKind::LeaderPartition => {
                let rest: Vec<NodeId> = sim.members().iter().copied().filter(|m| *m != v).collect();
                sim.partition(&[&[v], &rest]);
            }
            FaultKind::None | FaultKind::Reconfigure | FaultKind::Chaos => unreachable!("no fault to make"),
        }
        sim.run_until_time(start + plan.until);
        match plan.kind {
            FaultKind::LeaderCrash | FaultKind::FollowerCrash => sim.restart(v),
            FaultKind::LeaderFreeze => sim.thaw(v),
            FaultKind::LeaderPartition => sim.heal(),
            FaultKind::None | FaultKind::Reconfigure | FaultKind::Chaos => unreachable!("no fault to make"),
        }
    }
    sim.run_until_time(start + w.duration + sim.config().drain);
    let report = sim.run_finish();
    summarize(&RunData {
        protocol: P::NAME,
        mode: "sim",
        seed,
        history: &report.history,
        start,
        warmup: w.warmup,
        duration: w.duration,
        fault,
        messages: report.metrics.messages,
        bytes: report.metrics.bytes,
        commits: report.metrics.commits,
        elections: report.metrics.elections,
        violations: report.violations.len(),
        victim: victim_note,
        first_applied: &report.metrics.first_applied,
    })
}
