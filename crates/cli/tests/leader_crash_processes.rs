//! Raft as real processes: kill -9 the leader under load, a new leader takes
//! over with every acknowledged write, and the killed node catches up.

mod processes;

use processes::{wait_until, Load, ProcCluster};
use redis::Commands;
use std::time::Duration;

fn leader(cluster: &ProcCluster, except: Option<u64>) -> Option<u64> {
    cluster
        .procs
        .keys()
        .copied()
        .filter(|i| Some(*i) != except)
        .find(|i| cluster.try_client(*i).is_ok() && cluster.info(*i, "role") == "leader")
}

#[test]
fn kill_9_the_raft_leader_under_load_a_new_leader_keeps_every_acknowledged_write_and_the_old_one_catches_up() {
    let mut cluster = ProcCluster::start("raft", 3);
    let mut first = None;
    wait_until("a leader is elected", Duration::from_secs(10), || {
        first = leader(&cluster, None);
        first.is_some()
    });
    let old = first.unwrap();
    let old_term: u64 = cluster.info(old, "term").parse().unwrap();
    let via = if old == 1 { 2 } else { 1 };
    let load = Load::start(cluster.clients[&via], "w");
    wait_until("writes are acknowledged", Duration::from_secs(10), || load.acked_count() >= 100);

    cluster.kill9(old);
    let mut new = None;
    wait_until("a new leader is elected", Duration::from_secs(10), || {
        new = leader(&cluster, Some(old));
        new.is_some()
    });
    let new = new.unwrap();
    assert!(cluster.info(new, "term").parse::<u64>().unwrap() > old_term);
    let at_failover = load.acked_count();
    wait_until("writes flow through the new leader", Duration::from_secs(10), || {
        load.acked_count() >= at_failover + 100
    });
    // Every write acknowledged before and after the crash is there.
    let acked = load.finish();
    let survivor = if new == via { 6 - old - new } else { via };
    let mut conn = cluster.client(survivor);
    for n in &acked {
        let v: Option<u64> = conn.get(format!("w{n}")).unwrap();
        assert_eq!(v, Some(*n), "acknowledged write w{n} lost in the failover");
    }

    cluster.start_node(old);
    cluster.wait_ready(old);
    let commit: u64 = cluster.info(new, "commit_index").parse().unwrap();
    wait_until("the old leader catches up", Duration::from_secs(10), || {
        cluster.info(old, "applied_index").parse::<u64>().unwrap_or(0) >= commit
    });
    assert_eq!(cluster.info(old, "role"), "follower");
    assert!(cluster.info(old, "keys").parse::<usize>().unwrap() >= acked.len());
}
