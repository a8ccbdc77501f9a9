//! `quorum node` and `quorum cluster` as real processes on 127.0.0.1, driven
//! with a Redis client: replication, kill -9 under load, restart and catch-up,
//! and strangers on both ports refused while the cluster serves.

mod processes;

use processes::{free_addr, wait_until, Load, Proc, ProcCluster, BIN};
use quorum_runtime::tcp::{encode_frame, Hello};
use redis::Commands;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const PROTOCOL: &str = "primary-backup";

/// Three nodes with writes `w0, w1, ...` flowing through node `through`:
/// once `acked` are acknowledged, node `victim` is killed with SIGKILL.
fn kill9_under_load(through: u64, acked: usize, victim: u64) -> (ProcCluster, Load) {
    let mut cluster = ProcCluster::start(PROTOCOL, 3);
    let load = Load::start(&[cluster.clients[&through]], "w");
    wait_until("some writes are acknowledged", Duration::from_secs(10), || load.acked_count() >= acked);
    cluster.kill9(victim);
    (cluster, load)
}

fn get(cluster: &ProcCluster, node: u64, key: &str) -> Option<u64> {
    cluster.client(node).get(key).unwrap()
}

#[test]
fn three_processes_write_through_one_node_and_read_through_another() {
    let cluster = ProcCluster::start(PROTOCOL, 3);
    let mut via_2 = cluster.client(2);
    for i in 0..30u64 {
        let _: () = via_2.set(format!("k{i}"), i).unwrap();
    }
    let mut via_3 = cluster.client(3);
    for i in 0..30u64 {
        let v: Option<u64> = via_3.get(format!("k{i}")).unwrap();
        assert_eq!(v, Some(i));
    }
    assert_eq!(cluster.info(1, "role"), "leader");
    assert_eq!(cluster.info(3, "leader"), "1");
}

#[test]
fn a_backup_killed_with_sigkill_under_load_restarts_and_catches_up() {
    let (mut cluster, load) = kill9_under_load(1, 50, 3);
    let at_kill = load.acked_count();
    wait_until("writes go on with one backup down", Duration::from_secs(10), || load.acked_count() >= at_kill + 50);
    cluster.start_node(3);
    cluster.wait_ready(3);
    let acked = load.finish();
    let commit: u64 = cluster.info(1, "commit_index").parse().unwrap();
    wait_until("the restarted backup applied everything", Duration::from_secs(10), || {
        cluster.info(3, "applied_index").parse::<u64>().unwrap_or(0) >= commit
    });
    assert!(cluster.info(3, "keys").parse::<usize>().unwrap() >= acked.len());
    for n in acked.iter().step_by(7) {
        assert_eq!(get(&cluster, 3, &format!("w{n}")), Some(*n), "acknowledged write w{n} lost");
    }
}

#[test]
fn every_acknowledged_write_survives_a_sigkill_of_the_leader() {
    // Load through a follower, so the client keeps its connection across the crash.
    let (mut cluster, load) = kill9_under_load(2, 100, 1);
    std::thread::sleep(Duration::from_millis(200));
    // The primary-backup baseline has no failover: the primary must come back.
    cluster.start_node(1);
    cluster.wait_ready(1);
    let before = load.acked_count();
    wait_until("writes flow again", Duration::from_secs(15), || load.acked_count() >= before + 50);
    let acked = load.finish();
    let mut conn = cluster.client(3);
    for n in &acked {
        let v: Option<u64> = conn.get(format!("w{n}")).unwrap();
        assert_eq!(v, Some(*n), "acknowledged write w{n} lost after the leader's crash");
    }
}

/// Sends `bytes` and returns what comes back before the peer closes (or 3 s pass).
fn poke(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    stream.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

#[test]
fn strangers_on_the_peer_and_client_ports_are_refused_while_the_cluster_serves() {
    let cluster = ProcCluster::start(PROTOCOL, 3);
    let peer_1 = cluster.peers[&1];

    // Garbage on the peer port.
    poke(peer_1, b"\x00\x00\x00\x05hello, is this a web server?");
    // A peer that shakes hands, then sends a frame far over the limit.
    let hello = Hello {
        magic: 0x5152_4d31,
        cluster_id: "quorum".into(),
        from: 2,
        to: 1,
        protocol: PROTOCOL.into(),
        version: 1,
        client_addr: String::new(),
    };
    let mut bytes = Vec::new();
    encode_frame(&hello, &mut bytes).unwrap();
    bytes.extend_from_slice(&(1u32 << 31).to_be_bytes());
    poke(peer_1, &bytes);
    // Garbage on the client port.
    let reply = poke(cluster.clients[&1], b"\x16\x03\x01\x02\x00 TLS hello?\r\n");
    assert!(String::from_utf8_lossy(&reply).starts_with("-ERR Protocol error"), "{reply:?}");

    // A node of another cluster, posing as node 2, dials node 1.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger_peers = format!("1={peer_1},2={}", free_addr());
    let stranger = Proc(
        Command::new(BIN)
            .args(["node", "--protocol", PROTOCOL, "--id", "2", "--cluster-id", "someone-else"])
            .args(["--peers", &stranger_peers, "--client", &free_addr().to_string()])
            .arg("--data-dir")
            .arg(stranger_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("node 1 logs why it refused the stranger", Duration::from_secs(10), || {
        cluster.log(1).contains("peer is in cluster 'someone-else', this node is in cluster 'quorum'")
    });
    drop(stranger);

    let log = cluster.log(1);
    assert!(log.contains("refused a peer connection"), "{log}");
    assert!(log.contains("exceeds the limit"), "{log}");
    // The cluster never stopped serving.
    let mut conn = cluster.client(3);
    let _: () = conn.set("after", 1).unwrap();
    assert_eq!(get(&cluster, 2, "after"), Some(1));
}

#[test]
fn quorum_cluster_starts_nodes_serves_and_stops_them_on_sigterm() {
    // Three consecutive free ports for peers and three for clients.
    // Successive `free_addr` calls hand out successive ports, each once per
    // process: six in a row that are all free are this test's alone.
    let base = loop {
        let ports: Vec<u16> = (0..6).map(|_| free_addr().port()).collect();
        if ports.windows(2).all(|w| w[1] == w[0] + 1) {
            break ports[0];
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Proc(
        Command::new(BIN)
            .args(["cluster", "--protocol", PROTOCOL, "--nodes", "3"])
            .args(["--peer-port", &base.to_string(), "--client-port", &(base + 3).to_string()])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = |i: u16| format!("redis://127.0.0.1:{}/", base + 3 + i);
    let connect = |i: u16| -> redis::RedisResult<redis::Connection> {
        redis::Client::open(url(i))?.get_connection_with_timeout(Duration::from_millis(500))
    };
    wait_until("the cluster serves", Duration::from_secs(10), || {
        connect(2).and_then(|mut c| redis::cmd("SET").arg("k").arg("v").query::<()>(&mut c)).is_ok()
    });
    let v: String = connect(0).unwrap().get("k").unwrap();
    assert_eq!(v, "v");
    let mut out = String::new();
    let status = Command::new("kill").args(["-TERM", &cluster.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    wait_until("quorum cluster exits", Duration::from_secs(10), || cluster.0.try_wait().unwrap().is_some());
    cluster.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains(&format!("node 1: client 127.0.0.1:{}", base + 3)), "{out}");
    wait_until("every node stopped", Duration::from_secs(5), || (0..3).all(|i| connect(i).is_err()));
}
