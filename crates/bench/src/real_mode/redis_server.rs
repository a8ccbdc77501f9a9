//! One durable redis: the append-only file synced before every reply
//! (`appendfsync always`), no replication. What one machine's disk allows
//! a single server, without consensus.

use super::procs::{free_addr, on_path, Launch, Procs};
use super::quorum::resp_connector;
use super::{Connector, System};
use std::net::SocketAddr;

pub(crate) const SETTINGS: &str = "redis 7, one server, appendonly yes, appendfsync always, no snapshots";

pub(crate) struct Redis {
    procs: Procs,
    addr: SocketAddr,
}

impl Redis {
    pub fn start(seed: u64) -> Result<Redis, String> {
        let program = on_path("redis-server").ok_or("redis-server is not installed (apt-get install redis-server)")?;
        let mut procs = Procs::new("redis", seed)?;
        let addr = free_addr()?;
        let args = [
            "--port",
            &addr.port().to_string(),
            "--bind",
            "127.0.0.1",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
            "--dir",
        ]
        .iter()
        .map(Into::into)
        .chain([procs.dir().as_os_str().to_owned()])
        .collect();
        let log = procs.dir().join("redis.log");
        procs.add(Launch { program, args, log })?;
        Ok(Redis { procs, addr })
    }
}

impl System for Redis {
    fn name(&self) -> &str {
        "redis"
    }

    fn procs(&self) -> &Procs {
        &self.procs
    }

    fn procs_mut(&mut self) -> &mut Procs {
        &mut self.procs
    }

    fn leader(&self) -> Option<usize> {
        None
    }

    fn term(&self) -> u64 {
        0
    }

    fn connector(&self) -> Connector {
        resp_connector(vec![self.addr])
    }

    fn fails_over(&self) -> bool {
        false
    }
}
