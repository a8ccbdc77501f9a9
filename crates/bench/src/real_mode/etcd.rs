//! A 3-member etcd cluster, written to through its v3 JSON gateway (HTTP/1.1
//! with keep-alive: no generated gRPC code in our build).

use super::procs::{free_addr, on_path, Launch, Procs};
use super::{Connector, KvClient, System};
use base64::Engine;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const SETTINGS: &str =
    "etcd 3.4, heartbeat 30 ms, election timeout 150 ms, fsync on (its only mode), writes as POST /v3/kv/put";

pub(crate) struct Etcd {
    procs: Procs,
    clients: Vec<SocketAddr>,
}

impl Etcd {
    pub fn start(n: usize, seed: u64) -> Result<Etcd, String> {
        let program = on_path("etcd").ok_or("etcd is not installed (apt-get install etcd-server)")?;
        let mut procs = Procs::new("etcd", seed)?;
        let peers: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let clients: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let initial: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("e{}=http://{p}", i + 1)).collect();
        for i in 0..n {
            let (peer, client) = (format!("http://{}", peers[i]), format!("http://{}", clients[i]));
            let data = procs.dir().join(format!("e{}", i + 1));
            let args = [
                "--name",
                &format!("e{}", i + 1),
                "--data-dir",
                &data.to_string_lossy(),
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
                "--initial-cluster",
                &initial.join(","),
                "--initial-cluster-state",
                "new",
                "--heartbeat-interval",
                "30",
                "--election-timeout",
                "150",
                "--logger",
                "zap",
                "--log-level",
                "warn",
            ]
            .iter()
            .map(Into::into)
            .collect();
            let log = procs.dir().join(format!("e{}.log", i + 1));
            procs.add(Launch { program: program.clone(), args, log })?;
        }
        Ok(Etcd { procs, clients })
    }

    /// Member `i`'s `/v3/maintenance/status`, parsed.
    fn status(&self, i: usize) -> Option<serde_json::Value> {
        let mut http = Http::connect(self.clients[i], Duration::from_millis(300))?;
        let body = http.post("/v3/maintenance/status", "{}").ok()?;
        serde_json::from_slice(&body).ok()
    }
}

/// A uint64 that the gateway writes as a JSON string.
fn number(v: &serde_json::Value) -> Option<u64> {
    v.as_str()?.parse().ok()
}

impl System for Etcd {
    fn name(&self) -> &str {
        "etcd"
    }

    fn procs(&self) -> &Procs {
        &self.procs
    }

    fn procs_mut(&mut self) -> &mut Procs {
        &mut self.procs
    }

    fn leader(&self) -> Option<usize> {
        (0..self.clients.len()).find(|&i| {
            self.procs.is_up(i)
                && self.status(i).is_some_and(|s| {
                    let me = number(&s["header"]["member_id"]);
                    me.is_some() && me == number(&s["leader"])
                })
        })
    }

    fn term(&self) -> u64 {
        (0..self.clients.len())
            .filter(|&i| self.procs.is_up(i))
            .filter_map(|i| number(&self.status(i)?["raftTerm"]))
            .max()
            .unwrap_or(0)
    }

    fn connector(&self) -> Connector {
        let addrs = self.clients.clone();
        Arc::new(move |i, timeout| Http::connect(addrs[i], timeout).map(|h| Box::new(h) as Box<dyn KvClient>))
    }
}

/// The longest status or header line, and the largest body, we read.
const MAX_LINE: u64 = 8 << 10;
const MAX_BODY: usize = 1 << 20;

/// Just enough HTTP/1.1 for the gateway: POST with a JSON body on one
/// kept-alive connection, a response with a length or chunked.
struct Http {
    host: String,
    con: BufReader<TcpStream>,
}

impl Http {
    fn connect(addr: SocketAddr, timeout: Duration) -> Option<Http> {
        let stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
        stream.set_read_timeout(Some(timeout)).ok()?;
        stream.set_write_timeout(Some(timeout)).ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Http { host: addr.to_string(), con: BufReader::new(stream) })
    }

    /// Sends one request and returns the body of a 200 answer.
    fn post(&mut self, path: &str, body: &str) -> Result<Vec<u8>, String> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.con.get_mut().write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let status = self.line()?;
        let code = status.split_whitespace().nth(1).unwrap_or("");
        let (mut length, mut chunked) = (None, false);
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((&line, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                _ => {}
            }
        }
        if length.is_some_and(|n| n > MAX_BODY) {
            return Err(format!("a {}-byte answer", length.unwrap_or_default()));
        }
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let size = usize::from_str_radix(self.line()?.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| "a malformed chunk size".to_string())?;
                if body.len() + size > MAX_BODY {
                    return Err(format!("an answer over {MAX_BODY} bytes"));
                }
                let mut chunk = vec![0; size + 2];
                self.con.read_exact(&mut chunk).map_err(|e| e.to_string())?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
            body
        } else {
            let mut body = vec![0; length.ok_or("an answer without a length")?];
            self.con.read_exact(&mut body).map_err(|e| e.to_string())?;
            body
        };
        if code == "200" {
            Ok(body)
        } else {
            Err(format!("HTTP {code}: {}", String::from_utf8_lossy(&body)))
        }
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match (&mut self.con).take(MAX_LINE).read_line(&mut line) {
            Ok(0) => Err("the connection closed".into()),
            Ok(_) if !line.ends_with('\n') => Err(format!("a header line over {MAX_LINE} bytes")),
            Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl KvClient for Http {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64.encode(key), b64.encode(value));
        self.post("/v3/kv/put", &body).map(drop)
    }
}
