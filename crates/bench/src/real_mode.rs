//! Running a workload and a fault plan against real `quorum node` processes on
//! loopback (TCP between peers, fsync'd write-ahead logs), with clients
//! speaking the Redis protocol. A crash is `kill -9` of the process; a freeze is
//! `SIGSTOP` (its connections stay open) and `SIGCONT` to thaw.

use crate::metrics::{summarize, RunData, RunResult};
use crate::workload::{FaultKind, FaultPlan, Workload};
use quorum_core::{ClientId, Instant, KvOp, KvResult, NodeId};
use quorum_sim::{Operation, Outcome};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Where the `quorum` binary is and which protocol to start.
#[derive(Clone, Debug)]
pub struct RealOptions {
    /// The `quorum` executable (the one running the benchmark).
    pub exe: PathBuf,
    /// Protocol name as `quorum node --protocol` takes it.
    pub protocol: String,
}

/// One node process, killed when dropped.
struct NodeProc {
    child: Option<Child>,
    peer: SocketAddr,
    client: SocketAddr,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Cluster {
    opts: RealOptions,
    dir: PathBuf,
    nodes: Vec<NodeProc>,
}

fn free_addr() -> Result<SocketAddr, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    l.local_addr().map_err(|e| e.to_string())
}

impl Cluster {
    fn start(opts: &RealOptions, n: usize, seed: u64) -> Result<Cluster, String> {
        let dir = std::env::temp_dir().join(format!("quorum-bench-{}-{}-{seed}", opts.protocol, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut nodes = Vec::new();
        for _ in 0..n {
            nodes.push(NodeProc { child: None, peer: free_addr()?, client: free_addr()? });
        }
        let mut c = Cluster { opts: opts.clone(), dir, nodes };
        for i in 0..n {
            c.spawn(i)?;
        }
        Ok(c)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let peers: Vec<String> = self.nodes.iter().enumerate().map(|(j, p)| format!("{}={}", j + 1, p.peer)).collect();
        let log = std::fs::File::create(self.dir.join(format!("n{}.log", i + 1))).map_err(|e| e.to_string())?;
        let child = Command::new(&self.opts.exe)
            .args(["node", "--protocol", &self.opts.protocol, "--id", &(i + 1).to_string()])
            .args(["--peers", &peers.join(","), "--client", &self.nodes[i].client.to_string()])
            .arg("--data-dir")
            .arg(self.dir.join(format!("n{}", i + 1)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.opts.exe.display()))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill(); // SIGKILL: the process's sockets close at once
            let _ = c.wait();
        }
    }

    fn signal(&self, i: usize, sig: &str) {
        if let Some(c) = &self.nodes[i].child {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }

    /// The node whose INFO says it leads, if any.
    fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|i| {
            self.nodes[*i].child.is_some() && info(self.nodes[*i].client).is_some_and(|s| s.contains("role:leader"))
        })
    }

    fn term(&self) -> u64 {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].child.is_some())
            .filter_map(|i| info(self.nodes[i].client))
            .filter_map(|s| s.lines().find_map(|l| l.strip_prefix("term:").and_then(|t| t.trim().parse().ok())))
            .max()
            .unwrap_or(0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn connect(addr: SocketAddr, timeout: std::time::Duration) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let con = client.get_connection_with_timeout(timeout).ok()?;
    con.set_read_timeout(Some(timeout)).ok()?;
    con.set_write_timeout(Some(timeout)).ok()?;
    Some(con)
}

fn info(addr: SocketAddr) -> Option<String> {
    let mut con = connect(addr, std::time::Duration::from_millis(300))?;
    redis::cmd("INFO").query::<String>(&mut con).ok()
}

/// Waits until a write succeeds through node 1 (forwarded to a leader if needed).
fn wait_ready(c: &Cluster, limit: std::time::Duration) -> Result<(), String> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        for n in &c.nodes {
            if let Some(mut con) = connect(n.client, std::time::Duration::from_millis(500)) {
                if redis::cmd("SET").arg("quorum-bench-ready").arg("1").query::<()>(&mut con).is_ok() {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(format!(
        "the {} cluster accepted no write within {limit:?}; node logs are in {}",
        c.opts.protocol,
        c.dir.display()
    ))
}

/// One client's record: (invoked, completed, answering node) per successful write.
type Record = Vec<(std::time::Instant, std::time::Instant, usize)>;

fn client_loop(id: usize, addrs: Vec<SocketAddr>, w: Workload, stop: Arc<AtomicBool>, out: Arc<Mutex<Vec<Record>>>) {
    let mut record = Record::new();
    let mut target = id % addrs.len();
    let mut con = None;
    let value = vec![b'v'; w.value_size];
    let mut rng = quorum_core::Rng::new(id as u64 + 1);
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = con.as_mut() else {
            con = connect(addrs[target], std::time::Duration::from_millis(100));
            if con.is_none() {
                target = (target + 1) % addrs.len();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            continue;
        };
        let key = format!("k{}", rng.range(0, w.keys.max(1) as u64));
        let invoked = std::time::Instant::now();
        match redis::cmd("SET").arg(&key).arg(&value[..]).query::<()>(c) {
            Ok(()) => record.push((invoked, std::time::Instant::now(), target)),
            Err(_) => {
                // The node died, hung, or has no leader to forward to: try the next one.
                con = None;
                target = (target + 1) % addrs.len();
            }
        }
    }
    out.lock().expect("record lock").push(record);
}

fn sleep_until(t: std::time::Instant) {
    let now = std::time::Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Runs one protocol's processes under a workload and fault plan.
pub fn run_real(w: &Workload, plan: &FaultPlan, seed: u64, opts: &RealOptions) -> Result<RunResult, String> {
    if plan.kind == FaultKind::LeaderPartition {
        return Err("--fault leader-partition needs network namespaces; real mode supports leader-crash, \
                    leader-freeze, follower-crash and none"
            .into());
    }
    let mut cluster = Cluster::start(opts, w.nodes, seed)?;
    wait_ready(&cluster, std::time::Duration::from_secs(15))?;
    let term_before = cluster.term();
    let addrs: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.client).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let records = Arc::new(Mutex::new(Vec::new()));
    let start = std::time::Instant::now();
    let threads: Vec<_> = (0..w.clients.max(1))
        .map(|id| {
            let (addrs, w, stop, records) = (addrs.clone(), w.clone(), stop.clone(), records.clone());
            std::thread::spawn(move || client_loop(id, addrs, w, stop, records))
        })
        .collect();
    let mut fault = None;
    let mut victim_note = None;
    if plan.kind != FaultKind::None {
        sleep_until(start + plan.at.to_std());
        let leader = cluster.leader();
        let victim = match (plan.kind, leader) {
            (FaultKind::FollowerCrash, l) => (0..w.nodes).rev().find(|i| Some(*i) != l).unwrap_or(0),
            (_, Some(l)) => l,
            (_, None) => 0,
        };
        victim_note = Some(match (plan.kind, leader) {
            (FaultKind::FollowerCrash, _) => format!("n{} (a follower)", victim + 1),
            (_, Some(_)) => format!("n{} (the leader)", victim + 1),
            (_, None) => format!("n{} (no leader reported: node 1)", victim + 1),
        });
        match plan.kind {
            FaultKind::LeaderCrash | FaultKind::FollowerCrash => cluster.kill(victim),
            FaultKind::LeaderFreeze => cluster.signal(victim, "-STOP"),
            _ => unreachable!("checked above"),
        }
        // Stamped once the signal is delivered: starting `kill` takes a few
        // milliseconds in which the victim still serves.
        fault = Some((std::time::Instant::now(), victim));
        sleep_until(start + plan.until.to_std());
        match plan.kind {
            FaultKind::LeaderCrash | FaultKind::FollowerCrash => cluster.spawn(victim)?,
            FaultKind::LeaderFreeze => cluster.signal(victim, "-CONT"),
            _ => unreachable!("checked above"),
        }
    }
    sleep_until(start + w.duration.to_std());
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    // Terms, epochs and ballot rounds each count elections, but only where
    // someone leads: Basic Paxos raises its round on every proposal and has
    // no leader to elect (the simulator counts 0 for it too).
    let elections = match cluster.leader() {
        Some(_) => cluster.term().saturating_sub(term_before),
        None => 0,
    };
    drop(cluster);
    let since = |t: std::time::Instant| Instant::from_nanos(t.saturating_duration_since(start).as_nanos() as u64 + 1);
    let mut history = Vec::new();
    for (c, record) in records.lock().expect("record lock").iter().enumerate() {
        for (seq, (invoked, done, node)) in record.iter().enumerate() {
            history.push(Operation {
                client: ClientId(c as u64),
                seq: seq as u64,
                op: KvOp::Put { key: Default::default(), value: Default::default() },
                invoked: since(*invoked),
                outcome: Outcome::Ok { at: since(*done), result: KvResult::Done },
                answered_by: Some(NodeId(*node as u64 + 1)),
            });
        }
    }
    let mut result = summarize(&RunData {
        protocol: &opts.protocol,
        mode: "real",
        seed,
        history: &history,
        start: Instant::from_nanos(0),
        warmup: w.warmup,
        duration: w.duration,
        fault: fault.map(|(at, v)| (since(at), NodeId(v as u64 + 1))),
        messages: 0,
        bytes: 0,
        commits: 0,
        elections,
        violations: 0,
        victim: victim_note,
        first_applied: &[],
    });
    // Peer traffic is not counted in real mode.
    result.msgs_per_commit = f64::NAN;
    result.bytes_per_commit = f64::NAN;
    Ok(result)
}

/// The default place of the `quorum` binary: the running executable.
pub fn current_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the quorum executable: {e}"))
}
