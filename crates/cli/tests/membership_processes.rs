//! Issue 17: membership changes on a live cluster of real processes, driven
//! by `quorum node --join` and `quorum admin add | promote | remove`, under
//! write load: a fourth node joins as a learner, catches up and is promoted,
//! the original leader is removed, then a second original member is replaced
//! the same way. No acknowledged write may be lost: at the end every key
//! acknowledged reads back from every member, each serving from its own state
//! (`--local-reads`). Prints the time from "add" to the learner caught up and
//! the longest gap between acknowledged writes during each change.

mod processes;

use processes::{wait_for_leader, wait_until, Load, ProcCluster, BIN};
use std::process::Command;
use std::time::{Duration, Instant};

/// `quorum admin --node <node i's client port> ARGS`: exit status and output.
fn admin(cluster: &ProcCluster, i: u64, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["admin", "--node", &cluster.clients[&i].to_string()])
        .args(args)
        .output()
        .expect("quorum admin runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs an admin command through node `via` until it succeeds (a change is
/// refused while the previous one commits, or while a learner catches up).
fn admin_until_done(cluster: &ProcCluster, via: u64, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, text) = admin(cluster, via, args);
        if ok {
            return text;
        }
        let retryable = ["not committed yet", "has not caught up", "TRYAGAIN", "no leader"];
        assert!(retryable.iter().any(|r| text.contains(r)), "quorum admin {args:?} failed: {text}");
        assert!(Instant::now() < deadline, "quorum admin {args:?} still refused after 30 s: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn number(cluster: &ProcCluster, i: u64, field: &str) -> u64 {
    cluster.info(i, field).parse().unwrap_or(0)
}

/// The voters and learners node `i` reports.
fn members(cluster: &ProcCluster, i: u64) -> String {
    admin(cluster, i, &["members"]).1
}

/// Adds node `new` through node `via` and promotes it; returns the time from
/// the add to the learner having applied what the leader had committed.
fn join_and_promote(cluster: &mut ProcCluster, new: u64, via: u64) -> Duration {
    cluster.add_joiner(new, via);
    let peer = cluster.peers[&new].to_string();
    let started = Instant::now();
    let said = admin_until_done(cluster, via, &["add", &new.to_string(), &peer]);
    assert!(said.contains("committed"), "{said}");
    let leader = wait_for_leader(cluster);
    let target = number(cluster, leader, "commit_index");
    wait_until(&format!("learner {new} catches up"), Duration::from_secs(30), || {
        number(cluster, new, "applied_index") >= target
    });
    let caught_up = started.elapsed();
    let said = admin_until_done(cluster, via, &["promote", &new.to_string()]);
    assert!(said.contains("committed"), "{said}");
    caught_up
}

/// Removes `gone` through `via`, waits until the cluster has a leader that
/// is not `gone`, and stops it.
fn remove(cluster: &mut ProcCluster, gone: u64, via: u64) {
    let said = admin_until_done(cluster, via, &["remove", &gone.to_string()]);
    assert!(said.contains("committed"), "{said}");
    wait_until(&format!("a leader other than {gone}"), Duration::from_secs(10), || {
        cluster.procs.keys().any(|&i| i != gone && cluster.try_client(i).is_ok() && cluster.info(i, "role") == "leader")
    });
    cluster.stop(gone);
}

/// The longest gap between acknowledged writes from `from` on.
fn gap_since(load: &Load, from: Instant) -> Duration {
    let at = load.acked_at.lock().unwrap();
    let after: Vec<Instant> = at.iter().copied().filter(|t| *t >= from).collect();
    let first = at.iter().copied().rev().find(|t| *t < from);
    first.into_iter().chain(after).collect::<Vec<_>>().windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

#[test]
fn raft_grows_replaces_its_leader_and_a_member_under_load() {
    grows_replaces_its_leader_and_a_member_under_load("raft");
}

#[test]
fn multipaxos_grows_replaces_its_leader_and_a_member_under_load() {
    grows_replaces_its_leader_and_a_member_under_load("multipaxos");
}

#[test]
fn zab_grows_replaces_its_leader_and_a_member_under_load() {
    grows_replaces_its_leader_and_a_member_under_load("zab");
}

fn grows_replaces_its_leader_and_a_member_under_load(protocol: &str) {
    let mut cluster = ProcCluster::start_with(protocol, 3, &["--local-reads"]);
    let first_leader = wait_for_leader(&cluster);
    let addrs: Vec<_> = cluster.clients.values().copied().collect();
    let load = Load::start(&addrs, "m");
    wait_until("some writes are acknowledged", Duration::from_secs(10), || load.acked_count() > 1500);
    let via = (1..=3).find(|i| *i != first_leader).unwrap();
    let second = (1..=3).find(|i| *i != first_leader && *i != via).unwrap();

    // A fourth node joins, catches up as a learner, votes; the leader leaves.
    let change = Instant::now();
    let caught_up_4 = join_and_promote(&mut cluster, 4, via);
    let gap_add_4 = gap_since(&load, change);
    let change = Instant::now();
    remove(&mut cluster, first_leader, via);
    let gap_remove_leader = gap_since(&load, change);

    // A fifth replaces a second original member.
    let change = Instant::now();
    let caught_up_5 = join_and_promote(&mut cluster, 5, via);
    let gap_add_5 = gap_since(&load, change);
    let change = Instant::now();
    remove(&mut cluster, second, via);
    let gap_remove_member = gap_since(&load, change);

    wait_until("more writes after the changes", Duration::from_secs(10), || load.acked_count() > 2500);
    let acked = load.finish();
    let expected = format!("{via} voter");
    for i in [via, 4, 5] {
        let m = members(&cluster, i);
        assert!(m.contains(&expected) && m.contains("4 voter") && m.contains("5 voter"), "node {i}: {m}");
        assert!(!m.contains(&format!("{first_leader} ")) && !m.contains(&format!("{second} ")), "node {i}: {m}");
    }
    // Every member has applied what the leader committed, then serves every
    // acknowledged key from its own state.
    let leader = wait_for_leader(&cluster);
    let committed = number(&cluster, leader, "commit_index");
    for i in [via, 4, 5] {
        wait_until(&format!("node {i} applies the committed log"), Duration::from_secs(10), || {
            number(&cluster, i, "applied_index") >= committed
        });
        let mut conn = cluster.client(i);
        for n in &acked {
            let value: Option<u64> = redis::cmd("GET").arg(format!("m{n}")).query(&mut conn).unwrap();
            assert_eq!(value, Some(*n), "node {i} lost acknowledged write m{n}");
        }
    }
    eprintln!(
        "{protocol}: {} writes acknowledged; learner 4 caught up {caught_up_4:?} after its add, learner 5 {caught_up_5:?}; \
         longest gap between acknowledged writes: add+promote 4 {gap_add_4:?}, remove leader {first_leader} \
         {gap_remove_leader:?}, add+promote 5 {gap_add_5:?}, remove {second} {gap_remove_member:?}",
        acked.len()
    );
}

#[test]
fn unsafe_or_meaningless_changes_are_refused_with_the_reason() {
    let cluster = ProcCluster::start("raft", 3);
    let leader = wait_for_leader(&cluster);
    let refused = |args: &[&str], why: &str| {
        let (ok, text) = admin(&cluster, leader, args);
        assert!(!ok && text.contains(why), "quorum admin {args:?}: expected '{why}', got: {text}");
    };
    refused(&["add", "2", "127.0.0.1:9"], "2 is a member already");
    refused(&["promote", "1"], "1 is a voter already");
    refused(&["promote", "9"], "9 has not caught up");
    refused(&["remove", "9"], "9 is not a member");
    refused(&["add", "9", "x".repeat(300).as_str()], "must be ip:port");
    refused(&["add", "9", "localhost:7009"], "must be ip:port");
    let before = members(&cluster, leader);
    // A node of a protocol with fixed members cannot join.
    let out = Command::new(BIN)
        .args(["node", "--protocol", "paxos", "--id", "9", "--peers", "9=127.0.0.1:1", "--client", "127.0.0.1:2"])
        .args(["--data-dir", "/nonexistent", "--join", &cluster.clients[&leader].to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("paxos has no membership changes"), "{out:?}");
    assert_eq!(members(&cluster, leader), before, "a refused change changed the members");
    // A follower names the leader, and `quorum admin` follows it.
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let (ok, text) = admin(&cluster, follower, &["promote", "1"]);
    assert!(!ok && text.contains("is not the leader; asking") && text.contains("1 is a voter already"), "{text}");
}
