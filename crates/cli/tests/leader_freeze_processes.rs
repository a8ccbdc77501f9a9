//! A leader frozen with SIGSTOP keeps its connections open: nothing but
//! silence tells the others it is gone. A write sent through a follower
//! must be answered once they elect a new leader, not when the request the
//! follower forwarded to the frozen one reaches its deadline (2 s).

mod processes;

use processes::{wait_for_leader, ProcCluster};
use std::time::{Duration, Instant};

fn signal(cluster: &ProcCluster, i: u64, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child, not yet reaped.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(cluster.procs[&i].0.id() as libc::pid_t, sig);
    }
}

fn a_write_through_a_follower_is_answered_soon_after_the_leader_freezes(protocol: &str) {
    let cluster = ProcCluster::start(protocol, 3);
    let leader = wait_for_leader(&cluster);
    let follower = (1..=3).find(|i| *i != leader).expect("three nodes");
    let mut conn = cluster.client(follower);
    // The follower knows the leader: this write is forwarded to it.
    let () = redis::cmd("SET").arg("before").arg("1").query(&mut conn).expect("a write before the freeze");
    signal(&cluster, leader, libc::SIGSTOP);
    let started = Instant::now();
    let during: redis::RedisResult<()> = redis::cmd("SET").arg("during").arg("2").query(&mut conn);
    let took = started.elapsed();
    let read: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("during").query(&mut conn);
    signal(&cluster, leader, libc::SIGCONT);
    during.unwrap_or_else(|e| panic!("{protocol}: the write sent while the leader was frozen failed: {e}"));
    assert!(
        took < Duration::from_millis(1500),
        "{protocol}: the write waited {took:?} for a frozen leader, though a new one is elected in a few hundred ms"
    );
    assert_eq!(read.expect("a read after the new election"), Some("2".to_string()));
}

#[test]
fn raft_answers_a_forwarded_write_once_a_new_leader_is_elected() {
    a_write_through_a_follower_is_answered_soon_after_the_leader_freezes("raft");
}

#[test]
fn multipaxos_answers_a_forwarded_write_once_a_new_leader_is_elected() {
    a_write_through_a_follower_is_answered_soon_after_the_leader_freezes("multipaxos");
}

#[test]
fn zab_answers_a_forwarded_write_once_a_new_leader_is_elected() {
    a_write_through_a_follower_is_answered_soon_after_the_leader_freezes("zab");
}
