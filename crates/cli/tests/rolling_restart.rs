//! A rolling restart of a real 3-node Raft cluster under load: each node in
//! turn gets SIGTERM (the leader among them) and comes back. A stopping
//! leader hands leadership to an up-to-date follower first, so no write
//! that was acknowledged is lost and the client never waits as long as an
//! election timeout.

mod processes;

use processes::{wait_for_leader, Load, ProcCluster};
use std::time::Duration;

/// Raft's default lower election timeout: what a crashed leader costs at least.
const ELECTION_TIMEOUT_MIN: Duration = Duration::from_millis(150);

#[test]
fn a_rolling_restart_under_load_loses_nothing_and_waits_less_than_an_election_timeout() {
    let mut cluster = ProcCluster::start("raft", 3);
    let leader = wait_for_leader(&cluster);
    let clients: Vec<_> = cluster.clients.values().copied().collect();
    let load = Load::start(&clients, "roll");
    std::thread::sleep(Duration::from_millis(500));
    // Followers first, then the leader last: every node is restarted once.
    let mut order: Vec<u64> = (1..=3).filter(|i| *i != leader).collect();
    order.push(leader);
    let mut gaps = Vec::new();
    for i in order {
        let before = load.acked_count();
        let was_leader = cluster.info(i, "role") == "leader";
        let took = cluster.stop(i);
        std::thread::sleep(Duration::from_millis(300));
        gaps.push((i, was_leader, took, load.max_gap()));
        cluster.start_node(i);
        cluster.wait_ready(i);
        std::thread::sleep(Duration::from_millis(500));
        assert!(load.acked_count() > before, "no write was acknowledged while node {i} restarted");
    }
    let max_gap = load.max_gap();
    let acked = load.finish();
    println!("restarts (node, was leader, SIGTERM to exit, longest gap so far): {gaps:?}");
    println!("{} writes acknowledged; longest time between two: {max_gap:?}", acked.len());
    assert!(gaps.iter().any(|(_, was_leader, _, _)| *was_leader), "the leader was restarted too");
    let mut conn = cluster.client(wait_for_leader(&cluster));
    for n in &acked {
        let v: Option<u64> = redis::cmd("GET").arg(format!("roll{n}")).query(&mut conn).unwrap();
        assert_eq!(v, Some(*n), "acknowledged write roll{n} was lost");
    }
    assert!(cluster.log(leader).contains("leadership handed off"), "{}", cluster.log(leader));
    assert!(max_gap < ELECTION_TIMEOUT_MIN, "the client waited {max_gap:?}, an election timeout or more");
}
