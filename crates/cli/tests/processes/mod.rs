//! Real `quorum node` processes on 127.0.0.1, killed on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_quorum");

/// A free 127.0.0.1 address (see `free_loopback_addr` for why not port 0).
pub fn free_addr() -> SocketAddr {
    quorum_runtime::tcp::free_loopback_addr().unwrap()
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct ProcCluster {
    pub protocol: String,
    pub peers: BTreeMap<u64, SocketAddr>,
    pub clients: BTreeMap<u64, SocketAddr>,
    pub dir: tempfile::TempDir,
    pub procs: BTreeMap<u64, Proc>,
    /// Extra `quorum node` flags for every node.
    pub extra_args: Vec<String>,
    /// Nodes started with `--join`, and the client address they join through.
    pub joined_through: BTreeMap<u64, SocketAddr>,
}

impl ProcCluster {
    pub fn start(protocol: &str, n: u64) -> ProcCluster {
        ProcCluster::start_with(protocol, n, &[])
    }

    /// A cluster whose nodes all get `extra_args`.
    pub fn start_with(protocol: &str, n: u64, extra_args: &[&str]) -> ProcCluster {
        let mut cluster = ProcCluster::unstarted(protocol, n, extra_args);
        cluster.start_all();
        cluster
    }

    /// Addresses and a directory for a cluster whose nodes are not running
    /// yet (`data_dir` may be prepared before `start_all`).
    pub fn unstarted(protocol: &str, n: u64, extra_args: &[&str]) -> ProcCluster {
        ProcCluster {
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            protocol: protocol.to_string(),
            peers: (1..=n).map(|i| (i, free_addr())).collect(),
            clients: (1..=n).map(|i| (i, free_addr())).collect(),
            dir: tempfile::tempdir().unwrap(),
            procs: BTreeMap::new(),
            joined_through: BTreeMap::new(),
        }
    }

    /// Starts node `i` with `--join` through node `through`'s client port
    /// (it knows only its own peer address) and waits until it answers.
    pub fn add_joiner(&mut self, i: u64, through: u64) {
        self.peers.insert(i, free_addr());
        self.clients.insert(i, free_addr());
        self.joined_through.insert(i, self.clients[&through]);
        self.start_node(i);
        self.wait_ready(i);
    }

    /// Starts every node and waits until each answers.
    pub fn start_all(&mut self) {
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for &i in &ids {
            self.start_node(i);
        }
        for &i in &ids {
            self.wait_ready(i);
        }
    }

    /// `--peers` of the founding members (not the nodes that joined later).
    pub fn peers_arg(&self) -> String {
        let founders = self.peers.iter().filter(|(i, _)| !self.joined_through.contains_key(i));
        founders.map(|(i, a)| format!("{i}={a}")).collect::<Vec<_>>().join(",")
    }

    pub fn data_dir(&self, i: u64) -> PathBuf {
        self.dir.path().join(format!("n{i}"))
    }

    pub fn log_path(&self, i: u64) -> PathBuf {
        self.dir.path().join(format!("n{i}.log"))
    }

    pub fn log(&self, i: u64) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    pub fn start_node(&mut self, i: u64) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(i)).unwrap();
        let peers = match self.joined_through.get(&i) {
            Some(_) => format!("{i}={}", self.peers[&i]),
            None => self.peers_arg(),
        };
        let join: Vec<String> =
            self.joined_through.get(&i).map(|a| vec!["--join".into(), a.to_string()]).unwrap_or_default();
        let child = Command::new(BIN)
            .args(["node", "--protocol", &self.protocol, "--id", &i.to_string(), "--peers", &peers])
            .args(join)
            .args(["--client", &self.clients[&i].to_string()])
            .args(&self.extra_args)
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("n{i}")))
            // QUORUM_TEST_LOG=debug shows the nodes' protocol decisions in a failing test's output.
            .env("RUST_LOG", std::env::var("QUORUM_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.procs.insert(i, Proc(child));
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self, i: u64) {
        drop(self.procs.remove(&i).expect("running"));
    }

    /// SIGTERM, as an operator stops a node: waits for it to exit and
    /// returns how long that took; panics unless it exits with 0 within 10 s.
    pub fn stop(&mut self, i: u64) -> Duration {
        let mut proc = self.procs.remove(&i).expect("running");
        let started = Instant::now();
        // SAFETY: kill(2) on our own child, not yet reaped.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(proc.0.id() as libc::pid_t, libc::SIGTERM);
        }
        loop {
            if let Some(status) = proc.0.try_wait().unwrap() {
                assert!(status.success(), "node {i} exited with {status} after SIGTERM; log:\n{}", self.log(i));
                return started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(10), "node {i} did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn wait_ready(&self, i: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = self.try_client(i) {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "node {i} did not come up; log:\n{}", self.log(i));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn try_client(&self, i: u64) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://{}/", self.clients[&i]))?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(conn)
    }

    pub fn client(&self, i: u64) -> redis::Connection {
        self.try_client(i).unwrap()
    }

    pub fn info(&self, i: u64, field: &str) -> String {
        let info: String = redis::cmd("INFO").query(&mut self.client(i)).unwrap();
        info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_default().to_string()
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection to `addrs[*server % len]` for a client that moves round
/// robin: on failure it moves `server` on, pauses briefly and answers `None`.
pub fn connect_round_robin(addrs: &[SocketAddr], server: &mut usize) -> Option<redis::Connection> {
    let addr = addrs[*server % addrs.len()];
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let conn = client.get_connection_with_timeout(Duration::from_millis(500)).ok();
    match &conn {
        Some(c) => c.set_read_timeout(Some(Duration::from_secs(10))).unwrap(),
        None => {
            *server += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    conn
}

/// A client writing `w<n> = n` in a loop, remembering what was acknowledged.
/// It talks to the first address and moves to the next one (round robin)
/// whenever its connection breaks, as a client with a list of servers would.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub acked: Arc<Mutex<Vec<u64>>>,
    /// When each write was acknowledged, in order.
    pub acked_at: Arc<Mutex<Vec<Instant>>>,
    pub errors: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(addrs: &[SocketAddr], prefix: &'static str) -> Load {
        let addrs = addrs.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let acked_at = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let (s, a, e, at) = (stop.clone(), acked.clone(), errors.clone(), acked_at.clone());
        let thread = std::thread::spawn(move || {
            let mut conn = None;
            let mut n = 0u64;
            let mut server = 0;
            while !s.load(Ordering::Relaxed) {
                if conn.is_none() {
                    conn = connect_round_robin(&addrs, &mut server);
                    if conn.is_none() {
                        continue;
                    }
                }
                n += 1;
                let result: redis::RedisResult<()> =
                    redis::cmd("SET").arg(format!("{prefix}{n}")).arg(n).query(conn.as_mut().unwrap());
                match result {
                    Ok(()) => {
                        a.lock().unwrap().push(n);
                        at.lock().unwrap().push(Instant::now());
                    }
                    Err(err) => {
                        e.fetch_add(1, Ordering::Relaxed);
                        if err.is_io_error() || err.is_unrecoverable_error() {
                            conn = None;
                            server += 1;
                        }
                    }
                }
            }
        });
        Load { stop, acked, acked_at, errors, thread: Some(thread) }
    }

    /// The longest time between two acknowledged writes so far.
    pub fn max_gap(&self) -> Duration {
        let at = self.acked_at.lock().unwrap();
        at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }

    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the load and returns what was acknowledged.
    pub fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.acked.lock().unwrap().clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The node that says it is the leader, once one does (10 s at most).
pub fn wait_for_leader(cluster: &ProcCluster) -> u64 {
    let mut leader = None;
    wait_until("a leader is elected", Duration::from_secs(10), || {
        leader = cluster
            .procs
            .keys()
            .copied()
            .find(|i| cluster.try_client(*i).is_ok() && cluster.info(*i, "role") == "leader");
        leader.is_some()
    });
    leader.unwrap()
}
