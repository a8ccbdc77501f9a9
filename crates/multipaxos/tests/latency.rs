//! Light-load client latency, Basic Paxos against Multi-Paxos, in the
//! simulator with constant 1 ms one-way links (clients included) and a 0.2 ms
//! fsync. Basic Paxos pays Phase 1 for every command; Multi-Paxos does not,
//! so it should be about one round trip (2 ms) faster.

use quorum_core::Duration;
use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig};
use quorum_paxos::{Paxos, PaxosConfig};
use quorum_sim::{Latency, Metrics, Sim, SimConfig};

fn light_load(nodes: usize) -> SimConfig {
    let mut c = SimConfig::new(nodes, 42);
    c.network.latency = Latency::Constant(Duration::from_millis(1));
    c.clients.count = 1;
    c.clients.think_time = Duration::from_millis(5);
    c.duration = Duration::from_secs(3);
    c
}

fn median_ms(metrics: &Metrics) -> f64 {
    let mut l: Vec<f64> = metrics.latencies.iter().map(|d| d.as_millis_f64()).collect();
    assert!(l.len() > 100, "enough samples: {}", l.len());
    l.sort_by(|a, b| a.total_cmp(b));
    l[l.len() / 2]
}

#[test]
fn multipaxos_saves_one_round_trip_over_basic_paxos_at_light_load() {
    for nodes in [3, 5] {
        let paxos = Sim::<Paxos>::new(light_load(nodes), PaxosConfig::default()).run();
        let multi = Sim::<MultiPaxos>::new(light_load(nodes), MultiPaxosConfig::default()).run();
        assert!(paxos.violations.is_empty() && multi.violations.is_empty());
        let (p, m) = (median_ms(&paxos.metrics), median_ms(&multi.metrics));
        let per_commit = |r: &quorum_sim::Report| r.metrics.messages as f64 / r.metrics.commits as f64;
        println!(
            "{nodes} nodes: median client latency basic paxos {p:.2} ms ({:.1} msgs/commit), multi-paxos {m:.2} ms ({:.1} msgs/commit)",
            per_commit(&paxos),
            per_commit(&multi)
        );
        // Client round trip 2 ms + Multi-Paxos: one round trip 2 ms + one fsync.
        assert!(m < 5.0, "{nodes} nodes: multi-paxos median {m} ms");
        assert!(p - m >= 1.8, "{nodes} nodes: basic paxos {p} ms should be a round trip slower than {m} ms");
    }
}
