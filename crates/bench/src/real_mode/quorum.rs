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
}

/// A cluster of `quorum node` processes.
pub(crate) struct QuorumCluster {
    protocol: String,
    procs: Procs,
    clients: Vec<SocketAddr>,
    /// Each node's `--metrics` address (peer traffic counts).
    metrics: Vec<SocketAddr>,
}

impl QuorumCluster {
    pub fn start(opts: &RealOptions, n: usize, seed: u64) -> Result<QuorumCluster, String> {
        let mut procs = Procs::new(&opts.protocol, seed)?;
        let peers: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let clients: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let metrics: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let peer_list: Vec<String> = peers.iter().enumerate().map(|(j, p)| format!("{}={p}", j + 1)).collect();
        for (i, client) in clients.iter().enumerate() {
            let mut args: Vec<std::ffi::OsString> =
                ["node", "--protocol", &opts.protocol, "--id", &(i + 1).to_string()].iter().map(Into::into).collect();
            args.extend(["--peers".into(), peer_list.join(",").into(), "--client".into(), client.to_string().into()]);
            args.extend(["--metrics".into(), metrics[i].to_string().into()]);
            args.extend(["--data-dir".into(), procs.dir().join(format!("n{}", i + 1)).into_os_string()]);
            if opts.no_fsync {
                args.push("--unsafe-no-fsync".into());
            }
            let log = procs.dir().join(format!("n{}.log", i + 1));
            procs.add(Launch { program: opts.exe.clone(), args, log })?;
        }
        Ok(QuorumCluster { protocol: opts.protocol.clone(), procs, clients, metrics })
    }

    fn info(&self, i: usize) -> Option<String> {
        let mut con = connect(self.clients[i], Duration::from_millis(300))?;
        redis::cmd("INFO").query::<String>(&mut con).ok()
    }
}

impl System for QuorumCluster {
    fn name(&self) -> &str {
        &self.protocol
    }

    fn procs(&self) -> &Procs {
        &self.procs
    }

    fn procs_mut(&mut self) -> &mut Procs {
        &mut self.procs
    }

    fn leader(&self) -> Option<usize> {
        (0..self.clients.len())
            .find(|i| self.procs.is_up(*i) && self.info(*i).is_some_and(|s| s.contains("role:leader")))
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
