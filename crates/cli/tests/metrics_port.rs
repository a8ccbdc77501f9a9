//! The metrics port of real `quorum node` processes: /health, /ready (false
//! until a leader is known, true again after the leader is killed and another
//! is elected), and /metrics in the Prometheus text format.

mod processes;

use processes::{free_addr, wait_until, Proc, BIN};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One HTTP GET: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: quorum\r\n\r\n").as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    Some((code, text.split_once("\r\n\r\n")?.1.to_string()))
}

/// The value of an unlabelled sample in a /metrics page.
fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in\n{page}"))
}

#[test]
fn a_raft_node_behind_the_cluster_is_ready_only_once_it_has_caught_up() {
    ready_only_once_caught_up("raft");
}

#[test]
fn a_multipaxos_node_behind_the_cluster_is_ready_only_once_it_has_caught_up() {
    ready_only_once_caught_up("multipaxos");
}

#[test]
fn a_zab_node_behind_the_cluster_is_ready_only_once_it_has_caught_up() {
    ready_only_once_caught_up("zab");
}

/// A node that joins a cluster 32 MB ahead of it is not ready until it has
/// applied what the cluster had committed when it started: each /metrics
/// page shows `quorum_ready` and `quorum_applied_index` from one view, so the
/// first ready page must show the node caught up.
fn ready_only_once_caught_up(protocol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let peers: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let clients: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let metrics: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let peers_arg = peers.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect::<Vec<_>>().join(",");
    let start = |i: usize| start_node(protocol, dir.path(), i, &peers_arg, clients[i - 1], metrics[i - 1]);
    let _nodes = [start(1), start(2)];
    for addr in &metrics[..2] {
        wait_until("nodes 1 and 2 are ready", Duration::from_secs(15), || {
            get(*addr, "/ready").is_some_and(|r| r.0 == 200)
        });
    }
    let mut conn = redis::Client::open(format!("redis://{}/", clients[0])).unwrap().get_connection().unwrap();
    let value = vec![b'v'; 8 << 10];
    for batch in 0..40 {
        let mut pipe = redis::pipe();
        for i in 0..100 {
            pipe.cmd("SET").arg(format!("k{batch}-{i}")).arg(&value).ignore();
        }
        let () = pipe.query(&mut conn).unwrap();
    }
    let committed =
        (0..2).map(|i| sample(&get(metrics[i], "/metrics").unwrap().1, "quorum_commit_index")).fold(0.0, f64::max);
    assert!(committed >= 4000.0, "{protocol}: the cluster committed {committed} entries");
    let _late = start(3);
    let started = std::time::Instant::now();
    let mut not_ready_pages = 0;
    loop {
        assert!(started.elapsed() < Duration::from_secs(30), "{protocol}: node 3 never became ready");
        let Some((_, page)) = get(metrics[2], "/metrics") else { continue };
        if sample(&page, "quorum_ready") == 1.0 {
            let applied = sample(&page, "quorum_applied_index");
            assert!(
                applied >= committed,
                "{protocol}: node 3 said ready at applied index {applied}, {committed} were committed before it started \
                 ({not_ready_pages} not-ready pages before)"
            );
            break;
        }
        not_ready_pages += 1;
    }
    assert!(not_ready_pages > 0, "{protocol}: node 3 was ready at its first answer");
}

fn start_node(
    protocol: &str,
    dir: &std::path::Path,
    i: usize,
    peers_arg: &str,
    client: SocketAddr,
    metrics: SocketAddr,
) -> Proc {
    let log = std::fs::File::create(dir.join(format!("n{i}.log"))).unwrap();
    Proc(
        Command::new(BIN)
            .args(["node", "--protocol", protocol, "--id", &i.to_string(), "--peers", peers_arg])
            .args(["--client", &client.to_string(), "--metrics", &metrics.to_string()])
            .arg("--data-dir")
            .arg(dir.join(format!("n{i}")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn ready_follows_the_leader_and_metrics_count_what_the_node_did() {
    let dir = tempfile::tempdir().unwrap();
    let peers: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let clients: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let metrics: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let peers_arg = peers.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect::<Vec<_>>().join(",");
    let start = |i: usize| start_node("raft", dir.path(), i, &peers_arg, clients[i - 1], metrics[i - 1]);
    // Alone, a node is alive and not ready: no leader can be elected.
    let mut nodes = vec![start(1)];
    wait_until("node 1 answers /health", Duration::from_secs(10), || get(metrics[0], "/health").is_some());
    assert_eq!(get(metrics[0], "/health").unwrap(), (200, "ok\n".to_string()));
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = get(metrics[0], "/ready").unwrap();
    assert_eq!((code, body.as_str()), (503, "not ready: no leader known\n"));
    nodes.push(start(2));
    nodes.push(start(3));
    for addr in &metrics {
        wait_until("every node is ready", Duration::from_secs(15), || get(*addr, "/ready").is_some_and(|r| r.0 == 200));
    }
    let mut conn = redis::Client::open(format!("redis://{}/", clients[0])).unwrap().get_connection().unwrap();
    for i in 0..20 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query(&mut conn).unwrap();
    }
    let leader =
        (0..3).find(|&i| get(metrics[i], "/metrics").unwrap().1.contains("role=\"leader\"")).expect("a leader");
    let page = get(metrics[leader], "/metrics").unwrap().1;
    assert!(sample(&page, "quorum_proposals_total") >= 20.0, "{page}");
    assert!(sample(&page, "quorum_commit_latency_seconds_count") >= 20.0, "{page}");
    assert!(sample(&page, "quorum_fsync_latency_seconds_count") >= 1.0, "{page}");
    assert!(sample(&page, "quorum_applied_index") >= 20.0, "{page}");
    assert!(sample(&page, "quorum_ready") == 1.0, "{page}");
    let sent: f64 = page
        .lines()
        .filter(|l| l.starts_with("quorum_peer_sent_messages_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(sent >= 20.0, "a leader that committed 20 writes sent {sent} messages:\n{page}");
    assert_eq!(get(metrics[leader], "/nope").unwrap().0, 404);

    // kill -9 the leader: the others see the leader change and become ready again.
    let follower = (leader + 1) % 3;
    let before = sample(&get(metrics[follower], "/metrics").unwrap().1, "quorum_leader_changes_total");
    drop(nodes.remove(leader));
    wait_until("a new leader is known", Duration::from_secs(15), || {
        let page = get(metrics[follower], "/metrics").unwrap().1;
        sample(&page, "quorum_leader_changes_total") > before && get(metrics[follower], "/ready").unwrap().0 == 200
    });
}
