//! A real 3-node cluster with TLS: certificates from `quorum certs`, mutual
//! TLS between the nodes, TLS on the client ports (a rustls client here, and
//! `redis-cli --tls` when it is installed).

mod processes;

use processes::{free_addr, wait_until, Proc, BIN};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// One RESP command over TLS, answered by one read.
fn tls_command(ca: &Path, addr: SocketAddr, args: &[&str]) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)] // ring's provider: see quorum_runtime::tls
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    tls.write_all(request.as_bytes())?;
    tls.flush()?;
    let mut buf = [0u8; 512];
    let n = tls.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn a_tls_cluster_serves_tls_clients_and_its_peers_commit_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = Command::new(BIN).args(["certs", "--nodes", "3", "--out"]).arg(&certs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = Command::new(BIN).args(["certs", "--nodes", "3", "--out"]).arg(&certs).output().unwrap();
    assert!(!again.status.success(), "certificates must never be overwritten");
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));

    let peers: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let clients: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let peers_arg = peers.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect::<Vec<_>>().join(",");
    let log = |i: usize| dir.path().join(format!("n{i}.log"));
    let nodes: Vec<Proc> = (1..=3)
        .map(|i| {
            let stderr = std::fs::File::create(log(i)).unwrap();
            let mut node = Command::new(BIN);
            node.args(["node", "--protocol", "raft", "--id", &i.to_string(), "--peers", &peers_arg])
                .args(["--client", &clients[i - 1].to_string()])
                .arg("--data-dir")
                .arg(dir.path().join(format!("n{i}")));
            let (cert, key, ca) =
                (certs.join(format!("node-{i}.pem")), certs.join(format!("node-{i}-key.pem")), certs.join("ca.pem"));
            if i == 3 {
                // Node 3 takes its files from the environment instead of flags.
                node.env("QUORUM_TLS_CERT", cert).env("QUORUM_TLS_KEY", key).env("QUORUM_TLS_CA", ca);
            } else {
                node.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key).arg("--tls-ca").arg(ca);
            }
            let child = node.stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
            Proc(child)
        })
        .collect();
    let ca = certs.join("ca.pem");
    let logs = || (1..=3).map(|i| std::fs::read_to_string(log(i)).unwrap_or_default()).collect::<Vec<_>>().join("\n");
    for addr in &clients {
        wait_until("every node answers PING over TLS", Duration::from_secs(15), || {
            tls_command(&ca, *addr, &["PING"]).is_ok_and(|r| r == "+PONG\r\n")
        });
    }
    // A write needs a quorum of peers talking over mutual TLS (forwarded from any node).
    let mut written = String::new();
    wait_until("a write commits", Duration::from_secs(20), || {
        written = tls_command(&ca, clients[0], &["SET", "k", "over-tls"]).unwrap_or_default();
        written == "+OK\r\n"
    });
    let read = tls_command(&ca, clients[2], &["GET", "k"]).unwrap();
    assert_eq!(read, "$8\r\nover-tls\r\n", "{}", logs());

    // Plain text to a TLS client port gets no answer.
    let mut plain = TcpStream::connect(clients[1]).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = plain.read(&mut buf).unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).contains("PONG"), "a plain-text client was answered");

    match Command::new("redis-cli").arg("--version").output() {
        Ok(v) if v.status.success() => {
            let out = Command::new("redis-cli")
                .args(["--tls", "--cacert"])
                .arg(&ca)
                .args(["-h", "127.0.0.1", "-p", &clients[1].port().to_string(), "GET", "k"])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "over-tls",
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        _ => println!("SKIPPED the redis-cli --tls part: redis-cli is not installed"),
    }

    // New certificates from a new CA, put in place of the old files; SIGHUP.
    let hangup = |proc: &Proc| {
        // SAFETY: kill(2) on our own child, not yet reaped.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(proc.0.id() as libc::pid_t, libc::SIGHUP);
        }
    };
    let fresh = dir.path().join("fresh");
    let out = Command::new(BIN).args(["certs", "--nodes", "3", "--out"]).arg(&fresh).output().unwrap();
    assert!(out.status.success());
    // First a broken set: refused, and the node keeps serving with what it had.
    std::fs::write(certs.join("node-2.pem"), "not a certificate").unwrap();
    hangup(&nodes[1]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tls_command(&ca, clients[1], &["GET", "k"]).unwrap(), "$8\r\nover-tls\r\n");
    assert!(std::fs::read_to_string(log(2)).unwrap().contains("TLS certificates not reloaded"));
    for name in
        ["ca.pem", "node-1.pem", "node-1-key.pem", "node-2.pem", "node-2-key.pem", "node-3.pem", "node-3-key.pem"]
    {
        std::fs::copy(fresh.join(name), certs.join(name)).unwrap();
    }
    for node in &nodes {
        hangup(node);
    }
    wait_until("new connections use the new certificates", Duration::from_secs(10), || {
        tls_command(&certs.join("ca.pem"), clients[0], &["GET", "k"]).is_ok_and(|r| r == "$8\r\nover-tls\r\n")
    });
    // The cluster still commits (open peer links keep their old sessions).
    let mut written = String::new();
    wait_until("a write commits after the reload", Duration::from_secs(20), || {
        written = tls_command(&certs.join("ca.pem"), clients[2], &["SET", "k2", "renewed"]).unwrap_or_default();
        written == "+OK\r\n"
    });
}
