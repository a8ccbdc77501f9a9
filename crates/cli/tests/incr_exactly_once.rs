//! Counters under kill -9 of the leader, as real processes: 20 clients run
//! `INCR` on 10 counters while the leader (for Basic Paxos, a proposer the
//! clients use) dies. Every acknowledged increment must be counted exactly
//! once: the replies for one counter are all different (no two increments
//! read the same old value), and each final value lies between the number
//! acknowledged and that plus the number whose outcome is unknown (an error
//! or a broken connection). A node retries a command with the same client
//! and sequence number, and the state machine answers a repeat from its
//! session table, so a retry after a leader change neither loses nor doubles.

mod processes;

use processes::{wait_for_leader, wait_until, ProcCluster};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 20;
const COUNTERS: u64 = 10;

#[derive(Default)]
struct Tally {
    /// The values `INCR` answered, per counter.
    acked: BTreeMap<u64, Vec<i64>>,
    /// Increments whose outcome is unknown, per counter.
    unknown: BTreeMap<u64, u64>,
}

fn client(addrs: Vec<SocketAddr>, first: usize, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>, acks: Arc<AtomicU64>) {
    let mut server = first;
    let mut conn: Option<redis::Connection> = None;
    let mut n = first as u64;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            conn = processes::connect_round_robin(&addrs, &mut server);
            if conn.is_none() {
                continue;
            }
        }
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let counter = (n >> 33) % COUNTERS;
        let reply: redis::RedisResult<i64> =
            redis::cmd("INCR").arg(format!("c{counter}")).query(conn.as_mut().unwrap());
        let mut t = tally.lock().unwrap();
        match reply {
            Ok(value) => {
                t.acked.entry(counter).or_default().push(value);
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                *t.unknown.entry(counter).or_default() += 1;
                drop(t);
                conn = None;
                server += 1;
            }
        }
    }
}

fn counters_survive_kill_9(protocol: &str) {
    let mut cluster = ProcCluster::start(protocol, 3);
    let victim = if protocol == "paxos" { 1 } else { wait_for_leader(&cluster) };
    let addrs: Vec<SocketAddr> = cluster.clients.values().copied().collect();
    let (stop, tally, acks) = (Arc::new(AtomicBool::new(false)), Arc::default(), Arc::new(AtomicU64::new(0)));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (addrs, stop, tally, acks) = (addrs.clone(), stop.clone(), Arc::clone(&tally), acks.clone());
            std::thread::spawn(move || client(addrs, i, stop, tally, acks))
        })
        .collect();
    wait_until("increments are acknowledged", Duration::from_secs(15), || acks.load(Ordering::Relaxed) >= 300);
    cluster.kill9(victim);
    let at_kill = acks.load(Ordering::Relaxed);
    wait_until("increments flow again", Duration::from_secs(20), || acks.load(Ordering::Relaxed) >= at_kill + 300);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    let survivor = (1..=3).find(|i| *i != victim).unwrap();
    let mut conn = cluster.client(survivor);
    let tally = tally.lock().unwrap();
    let (mut acked_total, mut unknown_total) = (0, 0);
    for counter in 0..COUNTERS {
        let final_value: Option<i64> = redis::cmd("GET").arg(format!("c{counter}")).query(&mut conn).unwrap();
        let final_value = final_value.unwrap_or(0);
        let mut acked = tally.acked.get(&counter).cloned().unwrap_or_default();
        let unknown = tally.unknown.get(&counter).copied().unwrap_or(0) as i64;
        acked.sort_unstable();
        let doubled: Vec<_> = acked.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        assert!(doubled.is_empty(), "{protocol} c{counter}: two increments answered the same values {doubled:?}");
        let count = acked.len() as i64;
        assert!(
            count <= final_value && final_value <= count + unknown,
            "{protocol} c{counter}: {count} increments acknowledged, {unknown} unknown, final value {final_value}"
        );
        assert!(
            acked.last().is_none_or(|&top| top <= final_value),
            "{protocol} c{counter}: an answer above the final value"
        );
        acked_total += count;
        unknown_total += unknown;
    }
    eprintln!("{protocol}: {acked_total} increments acknowledged, {unknown_total} unknown, all counted once");
}

#[test]
fn raft_counters_count_every_acknowledged_increment_once_across_kill_9() {
    counters_survive_kill_9("raft");
}

#[test]
fn multipaxos_counters_count_every_acknowledged_increment_once_across_kill_9() {
    counters_survive_kill_9("multipaxos");
}

#[test]
fn zab_counters_count_every_acknowledged_increment_once_across_kill_9() {
    counters_survive_kill_9("zab");
}

#[test]
fn paxos_counters_count_every_acknowledged_increment_once_across_kill_9() {
    counters_survive_kill_9("paxos");
}
