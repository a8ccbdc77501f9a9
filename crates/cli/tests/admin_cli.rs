//! `quorum admin` against real nodes: status, a leadership transfer that the
//! cluster follows, a snapshot, and a clear refusal where the protocol has
//! no transfer.

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
    let cluster = ProcCluster::start("raft", 3);
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
    let cluster = ProcCluster::start("zab", 3);
    let (ok, _, err) = admin(&cluster, 1, &["transfer-leader", "2"]);
    assert!(!ok && err.contains("this protocol has no leadership transfer"), "{err}");
}
