//! `quorum node` processes, and the Redis-protocol client that every
//! system speaking RESP (quorum, and the durable redis reference) shares.

use super::http::Http;
use super::procs::{free_addr, Launch, Procs};
use super::{Connector, KvClient, System, Traffic};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the `quorum` binary is and which protocol to start.
#[derive(Clone, Debug)]
pub struct RealOptions {
    /// The `quorum` executable (the one running the benchmark).
    pub exe: PathBuf,
    /// Protocol name as `quorum node --protocol` takes it.
    pub protocol: String,
    /// Start the nodes with `--unsafe-no-fsync` (to measure what the disk
    /// costs; never for data that matters).
    pub no_fsync: bool,
    /// Start the nodes with `--local-reads` (each serves GET from its own
    /// copy: not linearizable, which the run's history check shows).
    pub local_reads: bool,
}

/// A cluster of `quorum node` processes. Member `i` is node `i + 1`; the
/// founders come first, nodes that joined later after them.
pub(crate) struct QuorumCluster {
    opts: RealOptions,
    procs: Procs,
    /// Each node's peer address.
    peers: Vec<SocketAddr>,
    clients: Vec<SocketAddr>,
    /// Each node's `--metrics` address (peer traffic counts).
    metrics: Vec<SocketAddr>,
}

impl QuorumCluster {
    pub fn start(opts: &RealOptions, n: usize, seed: u64) -> Result<QuorumCluster, String> {
        let procs = Procs::new(&opts.protocol, seed)?;
        let peers: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let clients: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let metrics: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let peer_list: Vec<String> = peers.iter().enumerate().map(|(j, p)| format!("{}={p}", j + 1)).collect();
        let mut cluster = QuorumCluster { opts: opts.clone(), procs, peers, clients, metrics };
        for i in 0..n {
            cluster.launch(i, peer_list.join(","), None)?;
        }
        Ok(cluster)
    }

    /// Starts member `i` with these `--peers` (and `--join`, for a node that
    /// joins a running cluster through a member's client address).
    fn launch(&mut self, i: usize, peers: String, join: Option<SocketAddr>) -> Result<(), String> {
        let opts = &self.opts;
        let mut args: Vec<std::ffi::OsString> =
            ["node", "--protocol", &opts.protocol, "--id", &(i + 1).to_string()].iter().map(Into::into).collect();
        args.extend(["--peers".into(), peers.into(), "--client".into(), self.clients[i].to_string().into()]);
        if let Some(through) = join {
            args.extend(["--join".into(), through.to_string().into()]);
        }
        args.extend(["--metrics".into(), self.metrics[i].to_string().into()]);
        args.extend(["--data-dir".into(), self.procs.dir().join(format!("n{}", i + 1)).into_os_string()]);
        if opts.no_fsync {
            args.push("--unsafe-no-fsync".into());
        }
        if opts.local_reads {
            args.push("--local-reads".into());
        }
        let log = self.procs.dir().join(format!("n{}.log", i + 1));
        self.procs.add(Launch { program: opts.exe.clone(), args, log })
    }

    /// Starts a new, empty node that joins through member `via` (it waits,
    /// silent, until a change adds it); returns its member index.
    pub fn add_joiner(&mut self, via: usize) -> Result<usize, String> {
        let i = self.procs.len();
        self.peers.push(free_addr()?);
        self.clients.push(free_addr()?);
        self.metrics.push(free_addr()?);
        self.launch(i, format!("{}={}", i + 1, self.peers[i]), Some(self.clients[via]))?;
        Ok(i)
    }

    /// Member `i`'s peer address.
    pub fn peer_addr(&self, i: usize) -> SocketAddr {
        self.peers[i]
    }

    /// A number from member `i`'s `INFO` (`commit_index`, `applied_index`).
    pub fn info_number(&self, i: usize, field: &str) -> Option<u64> {
        let info = self.info(i)?;
        let prefix = format!("{field}:");
        info.lines().find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.trim().parse().ok()))
    }

    /// `QUORUM words...` on member `i`: its answer, or its error (prefixed
    /// `connection:` when the member could not be asked at all).
    pub fn quorum_command(&self, i: usize, words: &[&str]) -> Result<String, String> {
        let mut con = connect(self.clients[i], Duration::from_secs(10))
            .ok_or_else(|| format!("connection: n{} is down", i + 1))?;
        let mut cmd = redis::cmd("QUORUM");
        for w in words {
            cmd.arg(*w);
        }
        cmd.query::<String>(&mut con).map_err(|e| {
            if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                format!("connection: {e}")
            } else {
                match (e.code(), e.detail()) {
                    (Some(code), Some(detail)) => format!("{code} {detail}"),
                    _ => e.to_string(),
                }
            }
        })
    }

    /// The running member that says it leads, other than `not`.
    pub fn leader_other_than(&self, not: Option<usize>) -> Option<usize> {
        (0..self.clients.len())
            .filter(|i| Some(*i) != not)
            .find(|i| self.procs.is_up(*i) && self.info(*i).is_some_and(|s| s.contains("role:leader")))
    }

    fn info(&self, i: usize) -> Option<String> {
        let mut con = connect(self.clients[i], Duration::from_millis(300))?;
        redis::cmd("INFO").query::<String>(&mut con).ok()
    }
}

impl System for QuorumCluster {
    fn name(&self) -> &str {
        &self.opts.protocol
    }

    fn procs(&self) -> &Procs {
        &self.procs
    }

    fn procs_mut(&mut self) -> &mut Procs {
        &mut self.procs
    }

    fn leader(&self) -> Option<usize> {
        self.leader_other_than(None)
    }

    fn term(&self) -> u64 {
        (0..self.clients.len())
            .filter(|i| self.procs.is_up(*i))
            .filter_map(|i| self.info(i))
            .filter_map(|s| s.lines().find_map(|l| l.strip_prefix("term:").and_then(|t| t.trim().parse().ok())))
            .max()
            .unwrap_or(0)
    }

    fn connector(&self) -> Connector {
        resp_connector(self.clients.clone())
    }

    fn reconfigurable(&mut self) -> Option<&mut QuorumCluster> {
        Some(self)
    }

    fn traffic(&self, i: usize) -> Option<Traffic> {
        if !self.procs.is_up(i) {
            return None;
        }
        let mut http = Http::connect(self.metrics[i], Duration::from_millis(500))?;
        let text = String::from_utf8(http.get("/metrics").ok()?).ok()?;
        Some(peer_traffic(&text))
    }
}

/// Sums the per-peer sent counters of a Prometheus page.
fn peer_traffic(metrics: &str) -> Traffic {
    let sum = |name: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{')))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    Traffic { messages: sum("quorum_peer_sent_messages_total"), bytes: sum("quorum_peer_sent_bytes_total") }
}

/// Connects to one of `addrs` by index, speaking RESP.
pub(crate) fn resp_connector(addrs: Vec<SocketAddr>) -> Connector {
    Arc::new(move |i, timeout| connect(addrs[i], timeout).map(|con| Box::new(Resp(con)) as Box<dyn KvClient>))
}

struct Resp(redis::Connection);

impl KvClient for Resp {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        redis::cmd("SET").arg(key).arg(value).query::<()>(&mut self.0).map_err(|e| e.to_string())
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        redis::cmd("GET").arg(key).query::<Option<Vec<u8>>>(&mut self.0).map_err(|e| e.to_string())
    }
}

pub(crate) fn connect(addr: SocketAddr, timeout: Duration) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let con = client.get_connection_with_timeout(timeout).ok()?;
    con.set_read_timeout(Some(timeout)).ok()?;
    con.set_write_timeout(Some(timeout)).ok()?;
    Some(con)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_traffic_sums_every_peer_and_nothing_else() {
        let page = "# TYPE quorum_peer_sent_messages_total counter\n\
                    quorum_peer_sent_messages_total{peer=\"2\"} 10\n\
                    quorum_peer_sent_messages_total{peer=\"3\"} 5\n\
                    quorum_peer_sent_bytes_total{peer=\"2\"} 1000\n\
                    quorum_peer_sent_bytes_total{peer=\"3\"} 24\n\
                    quorum_peer_sent_messages_totally_else 99\n";
        assert_eq!(peer_traffic(page), Traffic { messages: 15, bytes: 1024 });
    }
}
