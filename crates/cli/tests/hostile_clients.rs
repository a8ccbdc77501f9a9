//! Hostile client requests against real `quorum node` processes (issue 18):
//! none may crash a node, and none may get a value proposed that the peers
//! could not replicate.

mod processes;

use processes::ProcCluster;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends `bytes` and returns what comes back before the peer closes (or 5 s pass).
fn poke(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.write_all(bytes);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

fn ping(cluster: &ProcCluster, node: u64) -> redis::RedisResult<String> {
    redis::cmd("PING").query(&mut cluster.try_client(node)?)
}

#[test]
fn a_deeply_nested_request_is_a_protocol_error_not_a_crash() {
    let cluster = ProcCluster::start("raft", 1);
    let mut request = b"*1\r\n".repeat(40_000);
    request.extend_from_slice(b"$4\r\nPING\r\n");
    let reply = poke(cluster.clients[&1], &request);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("-ERR Protocol error"), "reply {reply:?}; node log:\n{}", cluster.log(1));
    assert_eq!(ping(&cluster, 1).as_deref(), Ok("PONG"), "the node died; log:\n{}", cluster.log(1));
}

#[test]
fn oversized_bulk_and_array_lengths_are_refused_without_reserving_memory() {
    let cluster = ProcCluster::start("raft", 1);
    let reply = poke(cluster.clients[&1], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4294967296\r\n");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("-ERR Protocol error: invalid bulk length"), "{reply:?}");
    let reply = poke(cluster.clients[&1], b"*2000000000\r\n$3\r\nSET\r\n");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("-ERR Protocol error: invalid multibulk length"), "{reply:?}");
    assert_eq!(ping(&cluster, 1).as_deref(), Ok("PONG"));
}

#[test]
fn a_value_larger_than_a_peer_frame_is_refused_and_the_leader_keeps_its_term() {
    let cluster = ProcCluster::start("raft", 3);
    let leader = processes::wait_for_leader(&cluster);
    let term = cluster.info(leader, "term");
    let mut conn = cluster.client(leader);
    let big = vec![b'x'; 20 << 20];
    let err = redis::cmd("SET").arg("big").arg(&big[..]).query::<()>(&mut conn).unwrap_err();
    let text = err.to_string();
    // The size counted is the command's: "SET", the key and the value.
    let expected = format!("value too large: {} bytes, the limit is {}", (20 << 20) + 6, (16 << 20) - (64 << 10));
    assert!(text.contains(&expected), "{text}");
    // The connection carries on and nothing was proposed.
    let got: Option<Vec<u8>> = redis::cmd("GET").arg("big").query(&mut conn).unwrap();
    assert_eq!(got, None);
    let _: () = redis::cmd("SET").arg("after").arg("1").query(&mut conn).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(cluster.info(leader, "role"), "leader", "log:\n{}", cluster.log(leader));
    assert_eq!(cluster.info(leader, "term"), term, "an election followed the big SET");
    // A value just under the limit goes through.
    let fits = vec![b'y'; 8 << 20];
    let _: () = redis::cmd("SET").arg("fits").arg(&fits[..]).query(&mut conn).unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("fits").query(&mut conn).unwrap();
    assert_eq!(got.len(), fits.len());
}

/// A value grown past what a peer frame carries by commands that are each
/// small (`APPEND`, `SETRANGE`, or a transaction of several keys) is refused
/// like a large `SET`: the compare-and-set that would carry it is never
/// proposed, so the cluster keeps replicating. (Before, the leader put it in
/// its log, its followers refused the frame, and every later write waited
/// behind it for good.)
#[test]
fn a_value_grown_past_a_peer_frame_by_small_commands_is_refused_and_writes_go_on() {
    let frame = 256 << 10;
    let cluster = ProcCluster::start_with("raft", 3, &["--max-frame-bytes", &frame.to_string()]);
    let leader = processes::wait_for_leader(&cluster);
    let mut conn = cluster.client(leader);
    let chunk = vec![b'a'; 90 << 10];
    let mut refused = None;
    for _ in 0..4 {
        match redis::cmd("APPEND").arg("grow").arg(&chunk[..]).query::<i64>(&mut conn) {
            Ok(_) => {}
            Err(err) => {
                refused = Some(err.to_string());
                break;
            }
        }
    }
    let refused = refused.expect("APPEND grew a value past the frame limit without a word");
    assert!(refused.contains("value too large"), "{refused}");
    let far = redis::cmd("SETRANGE").arg("far").arg(frame).arg("x").query::<i64>(&mut conn).unwrap_err();
    assert!(far.to_string().contains("value too large"), "{far}");
    // The cluster still takes and replicates writes.
    let _: () = redis::cmd("SET").arg("after").arg("1").query(&mut conn).unwrap();
    for node in 1..=3 {
        processes::wait_until(&format!("node {node} applies the write after"), Duration::from_secs(10), || {
            cluster.info(node, "applied_index") == cluster.info(leader, "commit_index")
        });
    }
}
