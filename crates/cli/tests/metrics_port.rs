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
fn ready_follows_the_leader_and_metrics_count_what_the_node_did() {
    let dir = tempfile::tempdir().unwrap();
    let peers: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let clients: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let metrics: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let peers_arg = peers.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect::<Vec<_>>().join(",");
    let start = |i: usize| {
        let log = std::fs::File::create(dir.path().join(format!("n{i}.log"))).unwrap();
        Proc(
            Command::new(BIN)
                .args(["node", "--protocol", "raft", "--id", &i.to_string(), "--peers", &peers_arg])
                .args(["--client", &clients[i - 1].to_string(), "--metrics", &metrics[i - 1].to_string()])
                .arg("--data-dir")
                .arg(dir.path().join(format!("n{i}")))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
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
