//! Every protocol as real processes: kill -9 the node serving writes under
//! load (the leader, or for leaderless Basic Paxos the proposer the client
//! uses), and check that the cluster goes on with every acknowledged write,
//! and that the killed node restarts and catches up from its fsync'd log.

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

fn term(cluster: &ProcCluster, node: u64) -> u64 {
    cluster.info(node, "term").parse().unwrap()
}

/// Kills `victim` under a write load, then checks every acknowledged write on
/// `survivor`, restarts the victim and waits until it has applied everything.
fn crash_under_load_then_catch_up(
    cluster: &mut ProcCluster,
    load: Load,
    victim: u64,
    survivor: u64,
    new_leader: impl Fn(&ProcCluster) -> bool,
) {
    wait_until("writes are acknowledged", Duration::from_secs(10), || load.acked_count() >= 100);
    cluster.kill9(victim);
    wait_until("the cluster has recovered", Duration::from_secs(10), || new_leader(cluster));
    let at_failover = load.acked_count();
    wait_until("writes flow again", Duration::from_secs(10), || load.acked_count() >= at_failover + 100);

    let acked = load.finish();
    let mut conn = cluster.client(survivor);
    for n in &acked {
        let v: Option<u64> = conn.get(format!("w{n}")).unwrap();
        assert_eq!(v, Some(*n), "acknowledged write w{n} lost after the crash");
    }

    cluster.start_node(victim);
    cluster.wait_ready(victim);
    let commit: u64 = cluster.info(survivor, "commit_index").parse().unwrap();
    let caught_up = || cluster.info(victim, "applied_index").parse::<u64>().unwrap_or(0) >= commit;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !caught_up() {
        if std::time::Instant::now() > deadline {
            let info: String = redis::cmd("INFO").query(&mut cluster.client(victim)).unwrap();
            panic!(
                "the killed node did not catch up to {commit}:\n{info}\n{}\nSURVIVOR\n{}",
                cluster.log(victim),
                cluster.log(survivor)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(cluster.info(victim, "keys").parse::<usize>().unwrap() >= acked.len());
}

/// Leader-based protocols: the load goes through a follower (which forwards),
/// the leader dies, a new one with a higher term or epoch takes over.
fn kill_9_the_leader(protocol: &str) {
    let mut cluster = ProcCluster::start(protocol, 3);
    let mut first = None;
    wait_until("a leader is elected", Duration::from_secs(10), || {
        first = leader(&cluster, None);
        first.is_some()
    });
    let old = first.unwrap();
    let old_term = term(&cluster, old);
    let via = if old == 1 { 2 } else { 1 };
    let third = 6 - old - via;
    let load = Load::start(&[cluster.clients[&via], cluster.clients[&third]], "w");
    crash_under_load_then_catch_up(&mut cluster, load, old, via, |c| {
        leader(c, Some(old)).is_some_and(|new| term(c, new) > old_term)
    });
    let role = cluster.info(old, "role");
    assert_eq!(role, "follower", "the restarted old leader must rejoin as a follower:\n{}", cluster.log(old));
}

#[test]
fn raft_leader_killed_with_sigkill_under_load_keeps_every_acknowledged_write() {
    kill_9_the_leader("raft");
}

#[test]
fn multipaxos_leader_killed_with_sigkill_under_load_keeps_every_acknowledged_write() {
    kill_9_the_leader("multipaxos");
}

#[test]
fn zab_leader_killed_with_sigkill_under_load_keeps_every_acknowledged_write() {
    kill_9_the_leader("zab");
}

/// Basic Paxos has no leader: the client's own proposer dies and the client
/// fails over to another node, which proposes in the next slots.
#[test]
fn paxos_proposer_killed_with_sigkill_under_load_keeps_every_acknowledged_write() {
    let mut cluster = ProcCluster::start("paxos", 3);
    let load = Load::start(&[cluster.clients[&1], cluster.clients[&2]], "w");
    crash_under_load_then_catch_up(&mut cluster, load, 1, 2, |_| true);
}
