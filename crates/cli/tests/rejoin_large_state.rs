//! A node that lost its disk rejoins a cluster holding more state than one
//! peer frame can carry (issue 12 item 6): 3 real `quorum node` processes get
//! more than 64 MiB of values, node 3 is stopped, its data directory wiped, and
//! it is started again; it must catch up (through a snapshot or sync larger
//! than the 16 MiB frame limit, so it has to travel in pieces) and serve every
//! value from its own state (`--local-reads`).
//!
//! One test per protocol: Raft and Multi-Paxos stream snapshots in pieces,
//! Zab streams its sync (DIFF/SNAP) in chunks, and Basic Paxos, which keeps no
//! snapshot, answers catch-up requests with values bounded by bytes.

mod processes;

use processes::ProcCluster;
use std::time::{Duration, Instant};

/// 170 values of 400 KB: 68 MB of state.
const VALUES: usize = 170;
const VALUE_BYTES: usize = 400 * 1000;

fn value(i: usize) -> Vec<u8> {
    let mut v = vec![b'a' + (i % 26) as u8; VALUE_BYTES];
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    v
}

/// Writes through whichever node answers, following `-MOVED` is not needed:
/// followers forward to their leader.
fn write_all(cluster: &ProcCluster) {
    let mut conn = cluster.client(1);
    for i in 0..VALUES {
        let mut tries = 0;
        loop {
            match redis::cmd("SET").arg(format!("k{i}")).arg(value(i)).query::<()>(&mut conn) {
                Ok(()) => break,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 50, "SET k{i} keeps failing: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    if e.is_io_error() {
                        conn = cluster.client(1);
                    }
                }
            }
        }
    }
}

fn applied(cluster: &ProcCluster, node: u64) -> u64 {
    cluster
        .try_client(node)
        .ok()
        .and_then(|mut c| {
            let info: String = redis::cmd("INFO").query(&mut c).ok()?;
            info.lines().find_map(|l| l.strip_prefix("applied_index:")).and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn wipe_and_rejoin(protocol: &str) {
    let started = Instant::now();
    // Snapshots every 20 entries: the rejoining node is sent a snapshot (or a
    // sync) of the whole 68 MB state, well over the 16 MiB frame limit.
    let mut cluster =
        ProcCluster::start_with(protocol, 3, &["--snapshot-every", "20", "--local-reads", "--unsafe-no-fsync"]);
    write_all(&cluster);
    let written = Instant::now();
    cluster.kill9(3);
    std::fs::remove_dir_all(cluster.data_dir(3)).unwrap();
    // A few more writes, so the others move on while node 3 is gone.
    let mut conn = cluster.client(1);
    let _: () = redis::cmd("SET").arg("after").arg("1").query(&mut conn).unwrap();
    let target = applied(&cluster, 1).max(applied(&cluster, 2));
    cluster.start_node(3);
    cluster.wait_ready(3);
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied(&cluster, 3) < target {
        if Instant::now() > deadline {
            let log = cluster.log(3);
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{protocol}: the wiped node applied {} of {target} after 60 s; node 3's last log lines:\n{}",
                applied(&cluster, 3),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut local = cluster.client(3);
    for i in 0..VALUES {
        let got: Option<Vec<u8>> = redis::cmd("GET").arg(format!("k{i}")).query(&mut local).unwrap();
        assert!(got.as_deref() == Some(&value(i)[..]), "node 3 serves a wrong k{i} after rejoining");
    }
    eprintln!(
        "{protocol}: {VALUES} x {VALUE_BYTES} B written in {:?}, rejoined and checked in {:?}",
        written - started,
        written.elapsed()
    );
}

/// This one failed in 2 of 4 runs before the leader learned to replicate
/// below the match index it remembered for a follower (the wiped node came
/// back empty and was probed just above its old match index forever; see
/// `crates/raft/tests/wiped_follower.rs`).
#[test]
fn raft_node_with_a_wiped_disk_rejoins_68_mb_of_state() {
    wipe_and_rejoin("raft");
}

#[test]
fn paxos_node_with_a_wiped_disk_rejoins_68_mb_of_state() {
    wipe_and_rejoin("paxos");
}

#[test]
fn multipaxos_node_with_a_wiped_disk_rejoins_68_mb_of_state() {
    wipe_and_rejoin("multipaxos");
}

#[test]
fn zab_node_with_a_wiped_disk_rejoins_68_mb_of_state() {
    wipe_and_rejoin("zab");
}
