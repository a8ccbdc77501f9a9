//! `quorum admin` against real nodes: status, a leadership transfer that the
//! cluster follows (Raft, Zab), a snapshot, and a clear refusal where the
//! protocol has no transfer.

mod processes;

use processes::{wait_for_leader, wait_until, ProcCluster, BIN};
use std::process::Command;
use std::time::Duration;

fn admin(cluster: &ProcCluster, node: u64, words: &[&str]) -> (bool, String, String) {
    let out =
        Command::new(BIN).args(["admin", "--node", &cluster.clients[&node].to_string()]).args(words).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_operator_moves_raft_leadership_and_takes_a_snapshot() {
    moves_leadership_and_takes_a_snapshot("raft");
}

#[test]
fn an_operator_moves_zab_leadership_and_takes_a_snapshot() {
    moves_leadership_and_takes_a_snapshot("zab");
}

fn moves_leadership_and_takes_a_snapshot(protocol: &str) {
    let cluster = ProcCluster::start(protocol, 3);
    let leader = wait_for_leader(&cluster);
    let target = (1..=3).find(|i| *i != leader).unwrap();
    let (ok, status, _) = admin(&cluster, target, &["status"]);
    assert!(ok && status.contains("role:follower") && status.contains(&format!("leader:{leader}")), "{status}");
    let (ok, said, err) = admin(&cluster, leader, &["transfer-leader", &target.to_string()]);
    assert!(ok, "{said}{err}");
    assert!(said.contains(&format!("transferring leadership to n{target}")), "{said}");
    wait_until("the target leads", Duration::from_secs(5), || cluster.info(target, "role") == "leader");
    let (ok, said, err) = admin(&cluster, target, &["snapshot"]);
    assert!(ok && said.starts_with("snapshot of "), "{said}{err}");
    // A follower cannot transfer what it does not hold.
    let (ok, _, err) = admin(&cluster, leader, &["transfer-leader", &leader.to_string()]);
    assert!(!ok && err.contains("ERR"), "{err}");
}

#[test]
fn a_protocol_without_transfer_says_so() {
    let cluster = ProcCluster::start("paxos", 3);
    let (ok, _, err) = admin(&cluster, 1, &["transfer-leader", "2"]);
    assert!(!ok && err.contains("this protocol has no leadership transfer"), "{err}");
}

#[test]
fn a_backup_taken_under_load_restores_into_a_new_cluster_with_every_acknowledged_write() {
    let cluster = ProcCluster::start("raft", 3);
    let leader = wait_for_leader(&cluster);
    let clients: Vec<_> = cluster.clients.values().copied().collect();
    let load = processes::Load::start(&clients, "b");
    // A hash and keys with deadlines must come back as they were.
    let mut setup = cluster.client(leader);
    let _: () =
        redis::cmd("HSET").arg("profile").arg("name").arg("ada").arg("visits").arg(3).query(&mut setup).unwrap();
    let _: () = redis::cmd("SET").arg("session").arg("s1").arg("EX").arg(3600).query(&mut setup).unwrap();
    let _: () = redis::cmd("EXPIRE").arg("profile").arg(7200).query(&mut setup).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Everything acknowledged before the backup is asked for must be in it.
    let acked_before: Vec<u64> = load.acked.lock().unwrap().clone();
    let file = cluster.dir.path().join("cluster.backup");
    let (ok, said, err) = admin(&cluster, leader, &["backup", file.to_str().unwrap()]);
    assert!(ok && said.starts_with("backup of "), "{said}{err}");
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let (ok, _, err) = admin(&cluster, follower, &["backup", "/nonexistent/never"]);
    assert!(!ok && err.contains("take backups on the leader"), "{err}");
    let (ok, _, err) = admin(&cluster, leader, &["backup", file.to_str().unwrap()]);
    assert!(!ok && err.contains("never overwritten"), "{err}");
    drop(load);
    assert!(acked_before.len() > 10, "the load wrote {} keys", acked_before.len());

    // A new cluster, of another protocol.
    let fresh = ProcCluster::start("zab", 3);
    let out = Command::new(BIN)
        .args(["restore"])
        .arg(&file)
        .args(["--node", &fresh.clients[&2].to_string()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.starts_with("restored "), "{said}");
    let mut conn = fresh.client(1);
    for n in &acked_before {
        let v: Option<u64> = redis::cmd("GET").arg(format!("b{n}")).query(&mut conn).unwrap();
        assert_eq!(v, Some(*n), "acknowledged write b{n} is not in the restored cluster");
    }
    let profile: Vec<(String, String)> = redis::cmd("HGETALL").arg("profile").query(&mut conn).unwrap();
    assert_eq!(profile, [("name".to_string(), "ada".to_string()), ("visits".to_string(), "3".to_string())]);
    for (key, most) in [("session", 3600), ("profile", 7200)] {
        let ttl: i64 = redis::cmd("TTL").arg(key).query(&mut conn).unwrap();
        assert!((most - 60..=most).contains(&ttl), "{key}: TTL {ttl}, set to {most} s before the backup");
    }
    // A damaged backup is refused before anything is written.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let damaged = cluster.dir.path().join("damaged.backup");
    std::fs::write(&damaged, bytes).unwrap();
    let out = Command::new(BIN)
        .args(["restore"])
        .arg(&damaged)
        .args(["--node", &fresh.clients[&1].to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("damaged"));

    // Or seeded into the data directories of a new cluster, as a snapshot.
    for protocol in ["raft", "multipaxos", "zab"] {
        restores_into_new_data_dirs(protocol, &file, &acked_before);
    }
    let (ok, _, err) = restore(&file, &["--data-dir", "/tmp/never", "--protocol", "paxos", "--members", "1,2,3"]);
    assert!(!ok && err.contains("paxos keeps no snapshots"), "{err}");
    let (ok, _, err) = restore(&file, &["--data-dir", "/tmp/never", "--protocol", "raft", "--members", "1,2,1"]);
    assert!(!ok && err.contains("names node 1 twice"), "{err}");
    let (ok, _, err) = restore(&file, &["--data-dir", "/tmp/never"]);
    assert!(!ok && err.contains("--protocol"), "{err}");
}

fn restore(file: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).arg("restore").arg(file).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Seeds three data directories from the backup, starts a `protocol` cluster
/// on them, and checks that it serves every acknowledged write, takes new
/// ones, and keeps both across a restart.
fn restores_into_new_data_dirs(protocol: &str, file: &std::path::Path, acked: &[u64]) {
    let mut cluster = ProcCluster::unstarted(protocol, 3, &[]);
    let mut args = vec!["--protocol", protocol, "--members", "1,2,3"];
    let dirs: Vec<String> = (1..=3).map(|i| cluster.data_dir(i).to_str().unwrap().to_string()).collect();
    for dir in &dirs {
        args.extend(["--data-dir", dir]);
    }
    let (ok, said, err) = restore(file, &args);
    assert!(ok && said.matches("seeded ").count() == 3, "{protocol}: {said}{err}");
    let (ok, _, err) = restore(file, &args);
    assert!(!ok && err.contains("is not empty"), "{protocol}: {err}");
    cluster.start_all();
    wait_for_leader(&cluster);
    let check = |cluster: &ProcCluster, node: u64| {
        let mut conn = cluster.client(node);
        for n in acked {
            let v: Option<u64> = redis::cmd("GET").arg(format!("b{n}")).query(&mut conn).unwrap();
            assert_eq!(v, Some(*n), "{protocol}: acknowledged write b{n} is not in the restored cluster");
        }
        let v: Option<String> = redis::cmd("GET").arg("after-restore").query(&mut conn).unwrap();
        assert_eq!(v.as_deref(), Some("yes"), "{protocol}: a write after the restore is lost");
    };
    let () = redis::cmd("SET").arg("after-restore").arg("yes").query(&mut cluster.client(2)).unwrap();
    check(&cluster, 3);
    cluster.stop(3);
    cluster.start_node(3);
    cluster.wait_ready(3);
    check(&cluster, 3);
}
