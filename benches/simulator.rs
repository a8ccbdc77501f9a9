//! Simulator speed: events per second with the primary-backup baseline on 5
//! nodes, and the linearizability checker on a 10,000-operation history over
//! 100 keys from 10 concurrent clients, and on 1,000,000-operation histories
//! over 100 keys from 500 concurrent clients (puts and reads, decided by the
//! register check; and with compare-and-sets and deletes, by the search).
//!
//! Run with `cargo bench --bench simulator`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorum::core::{ClientId, Duration, Instant, KvOp, KvResult, Rng};
use quorum::sim::baseline::PrimaryBackup;
use quorum::sim::{lincheck, Faults, Operation, Outcome, Sim, SimConfig};

fn sim_config() -> SimConfig {
    let mut c = SimConfig::new(5, 1).with_faults(Faults::All);
    c.duration = Duration::from_secs(1);
    c.clients.count = 10;
    c
}

fn simulator_events(c: &mut Criterion) {
    let events = Sim::<PrimaryBackup>::new(sim_config(), Default::default()).run().events;
    let mut group = c.benchmark_group("simulator");
    group.throughput(Throughput::Elements(events));
    group.bench_function("primary_backup_5_nodes_1s_all_faults", |b| {
        b.iter(|| Sim::<PrimaryBackup>::new(sim_config(), Default::default()).run())
    });
    group.finish();
}

/// A linearizable history: 10 clients, each with one operation at a time,
/// against a single register per key; each operation takes effect at a random
/// point inside its interval, and results are computed from that order.
fn history(ops: usize, keys: u64, clients: usize) -> Vec<Operation> {
    let mut rng = Rng::new(9);
    let mut store: std::collections::HashMap<u64, Bytes> = Default::default();
    let mut free_at = vec![0u64; clients];
    // (effect time, client, key, op, invoked, completed)
    let mut planned = Vec::new();
    for i in 0..ops {
        let c = i % clients;
        let invoked = free_at[c] + rng.range(0, 50);
        let effect = invoked + rng.range(1, 100);
        let completed = effect + rng.range(1, 100);
        free_at[c] = completed + 1;
        let key = rng.range(0, keys);
        planned.push((effect, c, key, invoked, completed, i));
    }
    planned.sort();
    let mut out = Vec::new();
    for (_, c, key, invoked, completed, i) in planned {
        let k = Bytes::from(format!("k{key}"));
        let (op, result) = if rng.chance(0.5) {
            (KvOp::Get { key: k.clone() }, KvResult::Value(store.get(&key).cloned()))
        } else {
            let v = Bytes::from(format!("v{i}"));
            store.insert(key, v.clone());
            (KvOp::Put { key: k, value: v }, KvResult::Done)
        };
        out.push(Operation {
            client: ClientId(c as u64),
            seq: i as u64,
            op,
            invoked: Instant::from_nanos(invoked * 1000),
            outcome: Outcome::Ok { at: Instant::from_nanos(completed * 1000), result },
            answered_by: None,
        });
    }
    out
}

fn linearizability_checker(c: &mut Criterion) {
    let h = history(10_000, 100, 10);
    assert!(lincheck::check(&h).is_ok(), "the generated history is linearizable by construction");
    let mut group = c.benchmark_group("lincheck");
    group.throughput(Throughput::Elements(h.len() as u64));
    group.bench_function("10k_ops_100_keys_10_clients", |b| b.iter(|| lincheck::check(&h)));
    group.finish();
}

/// 1,000,000 operations from 500 clients on 100 keys, a few never answered:
/// puts and reads only (`cas_and_deletes` false), or the simulator's mix
/// with 10 % compare-and-sets and 5 % deletes.
fn large_history(cas_and_deletes: bool) -> Vec<Operation> {
    let cfg = lincheck::gen::GenConfig {
        clients: 500,
        keys: 100,
        ops: 1_000_000,
        read_ratio: if cas_and_deletes { 0.4 } else { 0.5 },
        cas_ratio: if cas_and_deletes { 0.1 } else { 0.0 },
        delete_ratio: if cas_and_deletes { 0.05 } else { 0.0 },
        unknown_ratio: 0.0002,
        max_gap: 1_000,
        max_latency: 5_000,
        fault: None,
    };
    lincheck::gen::history(1, &cfg)
}

fn linearizability_checker_large(c: &mut Criterion) {
    let h = large_history(false);
    let decided = lincheck::check_with(&h, lincheck::Method::Auto).expect("linearizable by construction");
    assert_eq!(decided.by_search, 0, "every key is decided by the register check");
    let mut group = c.benchmark_group("lincheck");
    group.sample_size(10);
    group.throughput(Throughput::Elements(h.len() as u64));
    group.bench_function("1m_ops_100_keys_500_clients", |b| b.iter(|| lincheck::check(&h)));
    // Deletes and failed compare-and-sets send every key to the search.
    let h = large_history(true);
    let decided = lincheck::check_with(&h, lincheck::Method::Auto).expect("linearizable by construction");
    assert_eq!(decided.by_register, 0, "every key has deletes: the search decides it");
    group.bench_function("1m_ops_100_keys_500_clients_cas_and_deletes", |b| b.iter(|| lincheck::check(&h)));
    group.finish();
}

criterion_group!(benches, simulator_events, linearizability_checker, linearizability_checker_large);
criterion_main!(benches);
