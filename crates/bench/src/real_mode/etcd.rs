//! A 3-member etcd cluster, written to through its v3 JSON gateway (HTTP/1.1
//! with keep-alive: no generated gRPC code in our build).

use super::http::Http;
use super::procs::{free_addr, on_path, Launch, Procs};
use super::{Connector, KvClient, System};
use base64::Engine;
use std::net::SocketAddr;
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

impl KvClient for Http {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        // Keys and values travel base64-encoded in the gateway's JSON.
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64.encode(key), b64.encode(value));
        self.post("/v3/kv/put", &body).map(drop)
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        // A range read of one key; etcd serves it linearizably unless asked
        // for `serializable`.
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = self.post("/v3/kv/range", &format!(r#"{{"key":"{}"}}"#, b64.encode(key)))?;
        let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        match answer["kvs"].get(0) {
            None => Ok(None),
            Some(kv) => {
                // The gateway leaves out empty fields: a missing value is an empty one.
                let value = kv["value"].as_str().unwrap_or("");
                b64.decode(value).map(Some).map_err(|e| format!("a value that is not base64: {e}"))
            }
        }
    }
}
