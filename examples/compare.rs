//! The four protocols side by side under one light workload: latency at the
//! message-delay bound, and recovery from a leader crash.
//!
//! `cargo run --example compare` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_bench::{run_sim, FaultKind, FaultPlan, RunResult, Workload};
use quorum_core::{Duration, Instant};
use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig};
use quorum_paxos::{Paxos, PaxosConfig};
use quorum_raft::{Raft, RaftConfig};
use quorum_scenarios::common::scripted;
use quorum_scenarios::Story;
use quorum_sim::{Latency, Sim, TraceEvent, What};
use quorum_zab::{Zab, ZabConfig};

fn main() {
    quorum_scenarios::example_main(compare);
}

/// One client, 3 nodes, constant 1 ms links, 0.2 ms fsync; the leader crashes at 1 s and restarts at 1.5 s.
fn workload() -> (Workload, FaultPlan) {
    let w = Workload {
        nodes: 3,
        clients: 1,
        keys: 100,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(300),
        latency: Latency::Constant(Duration::from_millis(1)),
        fsync: Duration::from_micros(200),
        ..Workload::default()
    };
    let plan = FaultPlan {
        kind: FaultKind::LeaderCrash,
        at: Duration::from_secs(1),
        until: Duration::from_millis(1500),
        ..FaultPlan::default()
    };
    (w, plan)
}

/// One write through Raft, from the client's request to the reply, without empty heartbeats.
fn one_raft_write() -> Vec<TraceEvent> {
    let mut cfg = scripted(3, 11);
    cfg.clients.count = 1;
    cfg.clients.keys = 10;
    cfg.duration = Duration::from_secs(1);
    let mut sim = Sim::<Raft>::new(cfg, RaftConfig::default());
    sim.run_until(Duration::from_secs(2), |s| s.leader().is_some());
    sim.run_for(Duration::from_millis(30));
    let from = sim.now().as_nanos();
    sim.start_workload();
    sim.run_for(Duration::from_millis(30));
    let events = sim.trace().events();
    // The first request the leader answered, and everything from it to the answer.
    let Some(reply) = events.iter().position(|e| {
        e.at_ns >= from && matches!(&e.what, What::Reply { result, .. } if !result.contains("NotLeader"))
    }) else {
        return Vec::new();
    };
    let What::Reply { node, .. } = events[reply].what else { return Vec::new() };
    let start = events[..reply]
        .iter()
        .rposition(|e| matches!(&e.what, What::Request { node: n, .. } if *n == node))
        .unwrap_or(reply);
    let empty_append = |e: &&TraceEvent| matches!(&e.what, What::Deliver { msg, .. } if msg.contains("entries: []"));
    events[start..=reply].iter().filter(|e| !empty_append(e)).cloned().collect()
}

fn line(r: &RunResult) -> String {
    format!(
        "{:<11} p50 {:>5.2} ms, p99 {:>6.2} ms, {:>4.1} messages per commit, back {} after the crash, {} violations",
        r.protocol,
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.msgs_per_commit,
        r.recovery_ms.map_or("never".to_string(), |ms| format!("{ms:.0} ms")),
        r.violations
    )
}

/// Basic Paxos, Multi-Paxos, Raft and Zab under the same light load and the same leader crash.
pub fn compare() -> Story {
    let mut story = Story::new("The four protocols side by side: one client, 1 ms links, a leader crash");
    let (w, plan) = workload();
    story.say(
        Instant::ZERO,
        "3 nodes, one closed-loop client writing, every link 1 ms, fsync 0.2 ms; at 1 s the leader (for Basic Paxos, the node the client uses) crashes, at 1.5 s it restarts",
    );
    let results = [
        run_sim::<Paxos>(&w, &plan, 1, PaxosConfig::default()),
        run_sim::<MultiPaxos>(&w, &plan, 1, MultiPaxosConfig::default()),
        run_sim::<Raft>(&w, &plan, 1, RaftConfig::default()),
        run_sim::<Zab>(&w, &plan, 1, ZabConfig::default()),
    ];
    for r in &results {
        story.say(Instant::ZERO + w.duration, line(r));
    }
    let fsync_ms = 0.2;
    let bound = 4.0 + fsync_ms;
    story.say(
        Instant::ZERO + w.duration,
        format!(
            "a leader-based write costs four one-way delays: client to leader, leader to followers, their acks back (after the fsync), answer to the client: {bound:.1} ms"
        ),
    );
    story.say(
        Instant::ZERO + w.duration,
        "Basic Paxos adds a Prepare/Promise round trip (and its fsync) before every Accept: about 2 ms more",
    );
    let recovery = |i: usize| results[i].recovery_ms.unwrap_or(f64::INFINITY);
    story.say(
        Instant::ZERO + w.duration,
        format!(
            "recovery counts from the crash to the first new log index committed. The followers see the crashed \
             leader's connection close and elect at once: a new Raft leader commits a no-op for its term ({:.0} ms) \
             and a new Multi-Paxos leader re-proposes its window ({:.0} ms). Zab establishes its epoch without a new \
             entry, so its first new index is the client's retry after the client's 100 ms timeout ({:.0} ms). \
             Basic Paxos has no leader to replace ({:.0} ms)",
            recovery(2),
            recovery(1),
            recovery(3),
            recovery(0)
        ),
    );
    story.check(
        "every leader-based protocol commits again within 150 ms of the crash, well under one election timeout \
         (150-300 ms) plus the client's timeout: the closed connection is taken as a hint",
        (1..=3).all(|i| recovery(i) < 150.0),
    );
    for r in &results[1..] {
        story.check(
            format!("{}: p50 {:.2} ms sits at the bound {bound:.1} ms", r.protocol, r.latency_ms.p50),
            (r.latency_ms.p50 - bound).abs() <= 0.5,
        );
    }
    let leader_p50 = results[1..].iter().map(|r| r.latency_ms.p50).fold(f64::INFINITY, f64::min);
    let paxos = &results[0];
    story.check(
        format!(
            "paxos: p50 {:.2} ms is about one round trip (2 ms) above the leader-based protocols",
            paxos.latency_ms.p50
        ),
        (1.5..=3.0).contains(&(paxos.latency_ms.p50 - leader_p50)),
    );
    story.check("every protocol recovered from the crash", results.iter().all(|r| r.recovery_ms.is_some()));
    story.check(
        "0 safety violations in all four runs (histories linearizable)",
        results.iter().all(|r| r.violations == 0),
    );
    story.set_events(one_raft_write(), 3);
    story
}
