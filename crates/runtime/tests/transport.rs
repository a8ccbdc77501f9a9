//! The TCP peer transport: delivery, link-down reports, and strangers refused
//! without harm to the node.

mod common;

use quorum_core::{Incoming, NodeId, Transport};
use quorum_runtime::tcp::{read_frame, write_frame, Hello, HelloReply, PeerDirectory};
use quorum_runtime::tls::{DevCerts, Tls};
use quorum_runtime::{TcpConfig, TcpTransport};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::net::{TcpListener, TcpStream};

/// Log lines captured from the current thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `test` on a single-threaded runtime with logs captured.
fn with_logs<F: std::future::Future<Output = ()>>(test: impl FnOnce(Logs) -> F) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(test(logs));
}

struct Pair {
    addrs: BTreeMap<NodeId, SocketAddr>,
}

impl Pair {
    fn new() -> Pair {
        Pair { addrs: [(NodeId(1), common::free_addr()), (NodeId(2), common::free_addr())].into() }
    }

    async fn start(&self, id: u64, cluster: &str, protocol: &str) -> TcpTransport<String> {
        self.start_with(id, cluster, protocol, None).await
    }

    async fn start_with(&self, id: u64, cluster: &str, protocol: &str, tls: Option<Tls>) -> TcpTransport<String> {
        let mut config = TcpConfig::new(NodeId(id), cluster, protocol, self.addrs.clone());
        config.tls = tls;
        config.max_frame_bytes = 1024;
        config.client_addr = format!("client-of-{id}");
        let listener = TcpListener::bind(self.addrs[&NodeId(id)]).await.unwrap();
        TcpTransport::start(listener, config, PeerDirectory::default()).unwrap()
    }
}

async fn recv(t: &mut TcpTransport<String>) -> Incoming<String> {
    tokio::time::timeout(Duration::from_secs(5), t.recv()).await.expect("nothing arrived").expect("open")
}

/// Sends until one message arrives (the first sends race the connection).
async fn deliver(from: &TcpTransport<String>, to: &mut TcpTransport<String>, from_id: u64, to_id: u64) {
    for attempt in 0..200 {
        from.send(NodeId(to_id), format!("hello {attempt}")).await.unwrap();
        while let Ok(Some(got)) = tokio::time::timeout(Duration::from_millis(25), to.recv()).await {
            match got {
                Incoming::LinkDown(_) => continue, // left over from earlier connections
                Incoming::Message(NodeId(f), _) => {
                    assert_eq!(f, from_id);
                    return;
                }
            }
        }
    }
    panic!("no message from n{from_id} reached n{to_id}");
}

#[test]
fn messages_arrive_in_order_and_a_broken_link_is_reported() {
    with_logs(|_| async {
        let pair = Pair::new();
        let a = pair.start(1, "c", "p").await;
        let mut b = pair.start(2, "c", "p").await;
        deliver(&a, &mut b, 1, 2).await;
        for i in 0..100 {
            a.send(NodeId(2), format!("m{i}")).await.unwrap();
        }
        for i in 0..100 {
            assert_eq!(recv(&mut b).await, Incoming::Message(NodeId(1), format!("m{i}")));
        }
        assert_eq!(b.client_addr_of(NodeId(1)).as_deref(), Some("client-of-1"));
        drop(a);
        assert_eq!(recv(&mut b).await, Incoming::LinkDown(NodeId(1)));
    });
}

#[test]
fn a_peer_that_comes_up_is_dialled_at_once_not_after_the_backoff_built_up_while_it_was_down() {
    with_logs(|_| async {
        let pair = Pair::new();
        let mut config = TcpConfig::new(NodeId(1), "c", "p", pair.addrs.clone());
        config.backoff_min = Duration::from_millis(200);
        config.backoff_max = Duration::from_secs(30);
        let listener = TcpListener::bind(pair.addrs[&NodeId(1)]).await.unwrap();
        let mut a: TcpTransport<String> = TcpTransport::start(listener, config, PeerDirectory::default()).unwrap();
        // n2 is down: n1's dialer fails at 0, 0.2, 0.6 and 1.4 s, then sleeps 1.6 s.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let b = pair.start(2, "c", "p").await;
        let up = tokio::time::Instant::now();
        deliver(&b, &mut a, 2, 1).await; // n2 dials n1: n1 now knows n2 is up
        let mut b = b;
        deliver(&a, &mut b, 1, 2).await;
        let waited = up.elapsed();
        assert!(waited < Duration::from_millis(800), "n1 reached n2 only after {waited:?}: it waited out its backoff");
    });
}

#[test]
fn a_peer_from_another_cluster_is_refused_with_a_log_line_saying_why() {
    with_logs(|logs| async move {
        let pair = Pair::new();
        let stranger = pair.start(1, "other-cluster", "p").await;
        let mut b = pair.start(2, "our-cluster", "p").await;
        for _ in 0..20 {
            stranger.send(NodeId(2), "let me in".into()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(tokio::time::timeout(Duration::from_millis(100), b.recv()).await.is_err(), "a stranger got through");
        let text = logs.text();
        assert!(text.contains("peer is in cluster 'other-cluster', this node is in cluster 'our-cluster'"), "{text}");
        assert!(text.contains("peer refused our handshake"), "{text}");
    });
}

#[test]
fn a_peer_running_another_protocol_is_refused() {
    with_logs(|logs| async move {
        let pair = Pair::new();
        let zab = pair.start(1, "c", "zab").await;
        let _raft = pair.start(2, "c", "raft").await;
        for _ in 0..20 {
            zab.send(NodeId(2), "hi".into()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let text = logs.text();
        assert!(text.contains("peer runs protocol 'zab' version 1, this node runs 'raft' version 1"), "{text}");
    });
}

async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a refusal reply, then the close
            Err(_) => return false,
        }
    }
}

#[test]
fn garbage_and_oversized_frames_close_that_connection_and_never_the_node() {
    with_logs(|logs| async move {
        let pair = Pair::new();
        let a = pair.start(1, "c", "p").await;
        let mut b = pair.start(2, "c", "p").await;
        let b_addr = pair.addrs[&NodeId(2)];

        let mut garbage = TcpStream::connect(b_addr).await.unwrap();
        garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        assert!(closed_by_peer(&mut garbage).await, "garbage must close the connection");

        // A peer that shakes hands correctly, then sends a frame over the limit.
        let mut rogue = TcpStream::connect(b_addr).await.unwrap();
        let hello = Hello {
            magic: 0x5152_4d31,
            cluster_id: "c".into(),
            from: 1,
            to: 2,
            protocol: "p".into(),
            version: 1,
            client_addr: String::new(),
        };
        write_frame(&mut rogue, &hello).await.unwrap();
        let reply: HelloReply = read_frame(&mut rogue, 4096, &mut Vec::new()).await.unwrap();
        assert!(matches!(reply, HelloReply::Accepted { .. }), "{reply:?}");
        rogue.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
        assert!(closed_by_peer(&mut rogue).await, "an oversized frame must close the connection");
        assert_eq!(recv(&mut b).await, Incoming::LinkDown(NodeId(1)));

        // A frame that does not decode as a message.
        let mut rogue = TcpStream::connect(b_addr).await.unwrap();
        write_frame(&mut rogue, &hello).await.unwrap();
        let _: HelloReply = read_frame(&mut rogue, 4096, &mut Vec::new()).await.unwrap();
        rogue.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
        assert!(closed_by_peer(&mut rogue).await, "a malformed frame must close the connection");

        // The node still talks to its real peer.
        deliver(&a, &mut b, 1, 2).await;
        let text = logs.text();
        assert!(text.contains("refused a peer connection"), "{text}");
        assert!(text.contains("exceeds the limit of 1024 bytes"), "{text}");
        assert!(text.contains("frame does not decode"), "{text}");
        let counts = b.counters().info();
        assert!(counts.contains("refused_peer_connections:1\r\n"), "{counts}");
        assert!(counts.contains("bad_peer_frames:2\r\n"), "{counts}");
    });
}

fn hello(from: u64, to: u64, client_addr: &str) -> Hello {
    Hello {
        magic: 0x5152_4d31,
        cluster_id: "c".into(),
        from,
        to,
        protocol: "p".into(),
        version: 1,
        client_addr: client_addr.into(),
    }
}

#[test]
fn an_impostor_claiming_a_members_id_changes_nothing_the_node_hands_out_and_is_not_silent() {
    with_logs(|logs| async move {
        let pair = Pair::new();
        let mut a = pair.start(1, "c", "p").await;
        let mut b = pair.start(2, "c", "p").await;
        deliver(&a, &mut b, 1, 2).await;
        deliver(&b, &mut a, 2, 1).await;
        assert_eq!(b.client_addr_of(NodeId(1)).as_deref(), Some("client-of-1"));

        // Someone who knows the cluster id dials n2 claiming to be n1.
        let mut impostor = TcpStream::connect(pair.addrs[&NodeId(2)]).await.unwrap();
        write_frame(&mut impostor, &hello(1, 2, "evil:6379")).await.unwrap();
        let _: HelloReply = read_frame(&mut impostor, 4096, &mut Vec::new()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The client address n2 hands out for n1 is the one n1 gave when n2 dialled n1's own address.
        assert_eq!(b.client_addr_of(NodeId(1)).as_deref(), Some("client-of-1"));
        let text = logs.text();
        assert!(text.contains("a second inbound link claims to be n1"), "{text}");
        // At least the impostor's replacement of n1's link (n1 may already have replaced it back).
        assert!(!b.counters().info().contains("replaced_peer_links:0\r\n"));
        // The real n1 dials again and closes the impostor's link in turn.
        drop(impostor);
        deliver(&a, &mut b, 1, 2).await;
    });
}

#[test]
fn a_handshake_claiming_the_nodes_own_id_is_refused_as_such() {
    with_logs(|logs| async move {
        let pair = Pair::new();
        let _b = pair.start(2, "c", "p").await;
        let mut rogue = TcpStream::connect(pair.addrs[&NodeId(2)]).await.unwrap();
        write_frame(&mut rogue, &hello(2, 2, "")).await.unwrap();
        let reply: HelloReply = read_frame(&mut rogue, 4096, &mut Vec::new()).await.unwrap();
        assert!(
            matches!(&reply, HelloReply::Refused { reason } if reason.contains("claims this node's own id n2")),
            "{reply:?}"
        );
        assert!(logs.text().contains("claims this node's own id"));
    });
}

#[test]
fn peers_with_certificates_from_the_cluster_ca_talk_over_tls() {
    with_logs(|_| async {
        let certs = DevCerts::generate([1, 2], &[]).unwrap();
        let pair = Pair::new();
        let mut a = pair.start_with(1, "c", "p", Some(certs.tls(1).unwrap())).await;
        let mut b = pair.start_with(2, "c", "p", Some(certs.tls(2).unwrap())).await;
        deliver(&a, &mut b, 1, 2).await;
        deliver(&b, &mut a, 2, 1).await;
        for i in 0..100 {
            a.send(NodeId(2), format!("m{i}")).await.unwrap();
        }
        for i in 0..100 {
            assert_eq!(recv(&mut b).await, Incoming::Message(NodeId(1), format!("m{i}")));
        }
        assert_eq!(b.client_addr_of(NodeId(1)).as_deref(), Some("client-of-1"));
    });
}

/// Dials `to` over TLS with `tls`'s client settings, expecting the server to be `node-<to>`.
async fn tls_dial(tls: &Tls, addr: SocketAddr, to: u64) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tls.peer_connector().connect(Tls::server_name(NodeId(to)), tcp).await
}

#[test]
fn a_peer_without_a_certificate_from_the_cluster_ca_is_refused_before_the_handshake() {
    with_logs(|logs| async move {
        let certs = DevCerts::generate([1, 2], &[]).unwrap();
        let foreign = DevCerts::generate([1], &[]).unwrap();
        let pair = Pair::new();
        let mut b = pair.start_with(2, "c", "p", Some(certs.tls(2).unwrap())).await;
        let b_addr = pair.addrs[&NodeId(2)];

        // A node of the right cluster id but another CA: its TLS handshake fails.
        let outsider = pair.start_with(1, "c", "p", Some(foreign.tls(1).unwrap())).await;
        for _ in 0..20 {
            outsider.send(NodeId(2), "let me in".into()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(tokio::time::timeout(Duration::from_millis(100), b.recv()).await.is_err(), "an outsider got through");
        drop(outsider);

        // Plain TCP speaking the quorum handshake: not TLS, closed unanswered.
        let mut plain = TcpStream::connect(b_addr).await.unwrap();
        write_frame(&mut plain, &hello(1, 2, "")).await.unwrap();
        assert!(closed_by_peer(&mut plain).await);
        let text = logs.text();
        assert!(text.contains("refused a peer connection: TLS handshake failed"), "{text}");
        assert!(!text.contains("inbound peer link up"), "{text}");
    });
}

#[test]
fn a_peer_whose_certificate_names_another_node_is_refused() {
    with_logs(|logs| async move {
        let certs = DevCerts::generate([1, 2, 3], &[]).unwrap();
        let pair = Pair::new();
        let _b = pair.start_with(2, "c", "p", Some(certs.tls(2).unwrap())).await;
        // Node 3's certificate is signed by the cluster CA, but it claims to be n1.
        let mut rogue = tls_dial(&certs.tls(3).unwrap(), pair.addrs[&NodeId(2)], 2).await.unwrap();
        write_frame(&mut rogue, &hello(1, 2, "evil:6379")).await.unwrap();
        rogue.flush().await.unwrap();
        let reply: HelloReply = read_frame(&mut rogue, 4096, &mut Vec::new()).await.unwrap();
        let expected = "the dialer claims to be n1 but its certificate is not for node-1";
        assert!(matches!(&reply, HelloReply::Refused { reason } if reason.contains(expected)), "{reply:?}");
        assert!(logs.text().contains(expected));
    });
}

#[test]
fn a_dialer_refuses_a_listener_whose_certificate_names_another_node() {
    with_logs(|logs| async move {
        let certs = DevCerts::generate([1, 2, 3], &[]).unwrap();
        let pair = Pair::new();
        // Whoever listens at n2's address holds node 3's certificate.
        let mut b = pair.start_with(2, "c", "p", Some(certs.tls(3).unwrap())).await;
        let a = pair.start_with(1, "c", "p", Some(certs.tls(1).unwrap())).await;
        for _ in 0..20 {
            a.send(NodeId(2), "for n2 only".into()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(tokio::time::timeout(Duration::from_millis(100), b.recv()).await.is_err(), "sent to the wrong node");
        let text = logs.text();
        assert!(text.contains("TLS handshake with peer failed"), "{text}");
    });
}

#[test]
fn stalled_handshakes_are_capped_and_the_node_recovers_when_they_go() {
    with_logs(|_| async {
        let pair = Pair::new();
        let mut b = pair.start(2, "c", "p").await;
        let b_addr = pair.addrs[&NodeId(2)];
        let mut stalled = Vec::new();
        for _ in 0..64 {
            let mut s = TcpStream::connect(b_addr).await.unwrap();
            s.write_all(&[0, 0]).await.unwrap(); // half a length prefix, then nothing
            stalled.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut one_more = TcpStream::connect(b_addr).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), one_more.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "a 65th stalled handshake was kept: {read:?}");
        drop(stalled);
        let a = pair.start(1, "c", "p").await;
        deliver(&a, &mut b, 1, 2).await;
    });
}
