//! Protocol costs without the network: one committed command per protocol,
//! Raft's and Multi-Paxos's commit paths with one proposal at a time and 64
//! at once (Multi-Paxos with and without its Accept pipeline limit), the wire codec, and the
//! write-ahead log with and without fsync.
//!
//! Run with `cargo bench --bench protocols`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use quorum::core::{ClientId, Command, Duration, Entry, NodeId, Payload, Protocol, Stamp, Storage, WriteBatch};
use quorum::multipaxos::{MultiPaxos, MultiPaxosConfig};
use quorum::raft::{Append, Message, Raft, RaftConfig};
use quorum::sim::testkit::Cluster;
use quorum::sim::{Latency, Sim, SimConfig};

const COMMANDS: u64 = 100;

/// A cluster in the simulator with zero link delay and zero fsync time: what is
/// left is the protocols' own work (and the driver's), per committed command.
fn committed_in_memory<P: Protocol>() -> u64 {
    let mut cfg = SimConfig::new(3, 1);
    cfg.clients.count = 0;
    cfg.network.latency = Latency::Constant(Duration::ZERO);
    cfg.disk.fsync = Duration::ZERO;
    cfg.snapshot_every = None;
    let mut sim = Sim::<P>::new(cfg, P::Config::default());
    sim.run_until(Duration::from_secs(2), |s| s.leader().is_some());
    let node = sim.leader().unwrap_or(NodeId(1));
    let start = sim.applied_index(node);
    for seq in 1..=COMMANDS {
        sim.propose(node, Command::new(ClientId(1), seq, Bytes::from_static(b"0123456789abcdef"))).expect("accepted");
        sim.run_until(Duration::from_secs(1), |s| s.applied_index(node) > start + seq - 1);
    }
    assert!(sim.applied_index(node) >= start + COMMANDS, "every command committed");
    sim.applied_index(node)
}

fn per_protocol(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit_in_memory_3_nodes");
    g.throughput(Throughput::Elements(COMMANDS));
    g.bench_function("paxos", |b| b.iter(committed_in_memory::<quorum::paxos::Paxos>));
    g.bench_function("multipaxos", |b| b.iter(committed_in_memory::<quorum::multipaxos::MultiPaxos>));
    g.bench_function("raft", |b| b.iter(committed_in_memory::<quorum::raft::Raft>));
    g.bench_function("zab", |b| b.iter(committed_in_memory::<quorum::zab::Zab>));
    g.finish();
}

/// An in-memory cluster: `batch` proposals, then deliver until all commit.
fn commits<P: Protocol>(batch: u64) -> impl FnMut(&mut Cluster<P>) {
    move |cluster: &mut Cluster<P>| {
        let leader = cluster.leader().expect("a leader");
        let target = cluster.applied_index(leader) + batch;
        for _ in 0..batch {
            cluster.propose(leader, b"0123456789abcdef".to_vec()).expect("the leader accepts");
        }
        cluster.settle();
        assert!(cluster.applied_index(leader) >= target);
    }
}

/// `batch` proposals at once, then every message delivered until all commit.
fn proposals_in_batches<P: Protocol>(c: &mut Criterion, group: &str, config: P::Config) {
    let mut g = c.benchmark_group(group);
    for batch in [1u64, 64] {
        g.throughput(Throughput::Elements(batch));
        g.bench_function(format!("proposals_in_batches_of_{batch}"), |b| {
            let mut cluster = Cluster::<P>::new(3, config.clone(), 7);
            assert!(cluster.run_until(Duration::from_secs(2), |c| c.leader().is_some()));
            let mut step = commits::<P>(batch);
            b.iter(|| step(&mut cluster));
        });
    }
    g.finish();
}

fn batching(c: &mut Criterion) {
    proposals_in_batches::<Raft>(c, "raft_3_nodes_in_memory", RaftConfig::default());
    // Accepts behind a pipeline limit (the default, 8 batches in flight)
    // against one Accept per command as it comes (a limit the window never reaches).
    proposals_in_batches::<MultiPaxos>(c, "multipaxos_3_nodes_in_memory", MultiPaxosConfig::default());
    let unbatched = MultiPaxosConfig::default().with(|c| c.max_accepts_in_flight = c.window);
    proposals_in_batches::<MultiPaxos>(c, "multipaxos_3_nodes_in_memory_one_accept_per_command", unbatched);
}

fn append_message() -> Message {
    let entries = (1..=16)
        .map(|i| Entry {
            index: i,
            stamp: Stamp::new(3, 0),
            payload: Payload::Command(Command::new(ClientId(1), i, Bytes::from(vec![7u8; 128]))),
        })
        .collect();
    Message::Append(Append { term: 3, prev_index: 0, prev_term: 0, entries, commit: 0, round: 1 })
}

fn codec(c: &mut Criterion) {
    let msg = append_message();
    let bytes = postcard::to_allocvec(&msg).unwrap();
    let mut g = c.benchmark_group("codec_raft_append_16x128B");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| b.iter(|| postcard::to_allocvec(&msg).unwrap()));
    g.bench_function("decode", |b| b.iter(|| postcard::from_bytes::<Message>(&bytes).unwrap()));
    g.finish();
}

fn wal(c: &mut Criterion) {
    let batch = |tag| WriteBatch {
        tag,
        entries: vec![Entry {
            index: tag,
            stamp: Stamp::new(1, 0),
            payload: Payload::Command(Command::new(ClientId(1), tag, Bytes::from(vec![1u8; 128]))),
        }],
        ..Default::default()
    };
    let mut g = c.benchmark_group("wal_append_one_128B_entry");
    g.throughput(Throughput::Elements(1));
    for sync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = quorum_runtime::Wal::open(dir.path()).unwrap();
        wal.set_unsafe_no_sync(!sync);
        let mut tag = 0;
        g.bench_function(if sync { "with_fsync" } else { "without_fsync" }, |b| {
            b.iter_batched(
                || {
                    tag += 1;
                    batch(tag)
                },
                |w| wal.write(&[w]).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, per_protocol, batching, codec, wal);
criterion_main!(benches);
