//! Running a workload and a fault plan against real processes on loopback:
//! `quorum node` clusters (TCP between peers, fsync'd write-ahead logs, clients
//! speaking the Redis protocol), and, as reference rows beside them, 3-node
//! etcd and ZooKeeper and one durable redis, started from their packages. A
//! crash is `kill -9` of the process; a freeze is `SIGSTOP` (its connections
//! stay open) and `SIGCONT` to thaw. Every system is driven by the same
//! client loop (`clients.rs`), and every run's history is checked for
//! linearizability; only the wire protocol of a request differs.

mod clients;
mod etcd;
mod http;
mod procs;
mod quorum;
mod reconfigure;
mod redis_server;
mod zookeeper;

use crate::metrics::{summarize, MembershipRun, RunData, RunResult};
use crate::workload::{FaultKind, FaultPlan, Workload};
use clients::{answer_times, final_reads, history_of, in_client_order, start_clients, written_keys};
use procs::Procs;
use quorum_core::{Instant, NodeId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use quorum::RealOptions;

/// A cluster under test, started from real processes.
pub(crate) trait System {
    /// The row's name.
    fn name(&self) -> &str;
    /// The member processes.
    fn procs(&self) -> &Procs;
    /// The member processes, to kill, stop or restart.
    fn procs_mut(&mut self) -> &mut Procs;
    /// The member that says it leads, if any.
    fn leader(&self) -> Option<usize>;
    /// The highest term, epoch or ballot round a member reports (counts elections).
    fn term(&self) -> u64;
    /// Opens client connections.
    fn connector(&self) -> Connector;
    /// Whether there is a leader to lose (a single server has none).
    fn fails_over(&self) -> bool {
        true
    }
    /// How long the same load runs, unmeasured, before the run (a JVM's JIT).
    fn warm_up(&self) -> Duration {
        Duration::ZERO
    }
    /// Member `i`'s peer traffic so far, if it counts it.
    fn traffic(&self, _i: usize) -> Option<Traffic> {
        None
    }
    /// The cluster, if its membership can be changed while it runs
    /// (`--fault reconfigure`): quorum's own nodes only.
    fn reconfigurable(&mut self) -> Option<&mut quorum::QuorumCluster> {
        None
    }
}

/// Messages and bytes a member has written to its peers since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    pub messages: u64,
    pub bytes: u64,
}

impl std::ops::Add for Traffic {
    type Output = Traffic;
    fn add(self, o: Traffic) -> Traffic {
        Traffic { messages: self.messages + o.messages, bytes: self.bytes + o.bytes }
    }
}

impl std::ops::Sub for Traffic {
    type Output = Traffic;
    fn sub(self, o: Traffic) -> Traffic {
        Traffic { messages: self.messages.saturating_sub(o.messages), bytes: self.bytes.saturating_sub(o.bytes) }
    }
}

/// The cluster's peer traffic over a run: what every member wrote between
/// the start and the end, counting a member killed on the way (once or, under
/// chaos, many times) by what each of its processes wrote before it died
/// plus what its last process wrote.
struct TrafficCount {
    /// Per member: its counters when its current process began to count
    /// (at the start of the load, or zero for one started since).
    since: Vec<Option<Traffic>>,
    /// Per member: what its killed processes wrote.
    banked: Vec<Option<Traffic>>,
}

impl TrafficCount {
    fn start(system: &dyn System) -> TrafficCount {
        let since: Vec<_> = (0..system.procs().len()).map(|i| system.traffic(i)).collect();
        TrafficCount { banked: vec![Some(Traffic::default()); since.len()], since }
    }

    fn before_kill(&mut self, system: &dyn System, victim: usize) {
        // A process restarted a moment ago may not serve its metrics yet
        // (chaos with more than one member down can strike it at once).
        let mut now = system.traffic(victim);
        for _ in 0..10 {
            if now.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            now = system.traffic(victim);
        }
        self.banked[victim] = match (self.banked[victim], now, self.since[victim]) {
            (Some(banked), Some(now), Some(since)) => Some(banked + (now - since)),
            _ => None,
        };
        self.since[victim] = Some(Traffic::default());
    }

    /// The total, if every member answered every time.
    fn end(self, system: &dyn System) -> Option<Traffic> {
        let mut total = Traffic::default();
        for (i, (since, banked)) in self.since.into_iter().zip(self.banked).enumerate() {
            total = total + banked? + (system.traffic(i)? - since?);
        }
        Some(total)
    }
}

/// Opens a connection to member `i`, with this timeout for connecting and for each request.
pub(crate) type Connector = Arc<dyn Fn(usize, Duration) -> Option<Box<dyn KvClient>> + Send + Sync>;

/// One client connection: a write, answered once it is durable and committed.
pub(crate) trait KvClient {
    /// Sets `key` to `value`.
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), String>;
    /// Reads `key` (`None`: absent), as linearizably as the system offers.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
}

/// A production system to measure beside quorum, from its Debian package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// etcd 3.4 (`etcd-server`): 3 members, heartbeat 30 ms, election 150 ms; its JSON gateway.
    Etcd,
    /// ZooKeeper 3.8 (`zookeeper`): 3 servers, tickTime 50 ms, syncLimit 3; its binary protocol.
    Zookeeper,
    /// One redis 7 (`redis-server`) with `appendfsync always`: durable, not replicated.
    Redis,
}

impl Reference {
    /// Every reference, in the order reports list them.
    pub const ALL: [Reference; 3] = [Reference::Etcd, Reference::Zookeeper, Reference::Redis];

    /// The row's name.
    pub fn name(self) -> &'static str {
        match self {
            Reference::Etcd => "etcd",
            Reference::Zookeeper => "zookeeper",
            Reference::Redis => "redis",
        }
    }

    /// Whether its server is installed here; if not, what to install.
    pub fn installed(self) -> Result<(), String> {
        let (found, package) = match self {
            Reference::Etcd => (procs::on_path("etcd").is_some(), "etcd-server"),
            Reference::Zookeeper => (zookeeper::installed(), "zookeeper"),
            Reference::Redis => (procs::on_path("redis-server").is_some(), "redis-server"),
        };
        if found {
            Ok(())
        } else {
            Err(format!("{} is not installed (apt-get install {package})", self.name()))
        }
    }

    /// How it is configured, for reports.
    pub fn settings(self) -> &'static str {
        match self {
            Reference::Etcd => etcd::SETTINGS,
            Reference::Zookeeper => zookeeper::SETTINGS,
            Reference::Redis => redis_server::SETTINGS,
        }
    }
}

impl std::str::FromStr for Reference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Reference::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown reference '{s}': choose etcd, zookeeper or redis"))
    }
}

fn sleep_until(t: std::time::Instant) {
    let now = std::time::Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Runs one protocol's processes under a workload and fault plan.
pub fn run_real(w: &Workload, plan: &FaultPlan, seed: u64, opts: &RealOptions) -> Result<RunResult, String> {
    check_plan(plan)?;
    let mut cluster = quorum::QuorumCluster::start(opts, w.nodes, seed)?;
    run_system(&mut cluster, w, plan, seed)
}

/// Runs a reference system (etcd and ZooKeeper with `w.nodes` members, one
/// redis) under the same workload and fault plan. A single redis has no
/// leader to lose: it runs without the fault.
pub fn run_reference(w: &Workload, plan: &FaultPlan, seed: u64, reference: Reference) -> Result<RunResult, String> {
    check_plan(plan)?;
    if plan.kind == FaultKind::Reconfigure {
        return Err(
            "--fault reconfigure changes the membership of quorum's own clusters, not of the reference systems".into(),
        );
    }
    reference.installed()?;
    match reference {
        Reference::Etcd => run_system(&mut etcd::Etcd::start(w.nodes, seed)?, w, plan, seed),
        Reference::Zookeeper => run_system(&mut zookeeper::ZooKeeper::start(w.nodes, seed)?, w, plan, seed),
        Reference::Redis => run_system(&mut redis_server::Redis::start(seed)?, w, plan, seed),
    }
}

fn check_plan(plan: &FaultPlan) -> Result<(), String> {
    if plan.kind == FaultKind::LeaderPartition {
        return Err("--fault leader-partition needs network namespaces; real mode supports leader-crash, \
                    leader-freeze, follower-crash and none"
            .into());
    }
    Ok(())
}

/// Waits until a write succeeds through some member (forwarded to a leader if needed).
fn wait_ready(system: &mut dyn System, limit: Duration) -> Result<(), String> {
    let connect = system.connector();
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        for i in 0..system.procs().len() {
            if let Some(mut con) = connect(i, Duration::from_millis(500)) {
                if con.put("quorum-bench-ready", b"1").is_ok() {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    system.procs_mut().keep();
    Err(format!(
        "{} accepted no write within {limit:?}; its logs are in {}",
        system.name(),
        system.procs().dir().display()
    ))
}

/// Stops the clients and keeps the processes' logs: the run failed with `why`.
fn abandon(system: &mut dyn System, stop: &AtomicBool, threads: Vec<std::thread::JoinHandle<()>>, why: &str) -> String {
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| drop(t.join()));
    system.procs_mut().keep();
    format!("{}: {why}; its logs are in {}", system.name(), system.procs().dir().display())
}

fn run_system(system: &mut dyn System, w: &Workload, plan: &FaultPlan, seed: u64) -> Result<RunResult, String> {
    wait_ready(system, Duration::from_secs(30))?;
    if !system.warm_up().is_zero() {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = start_clients(system, w, "warm-up:", &stop, &Arc::new(Mutex::new(Vec::new())));
        std::thread::sleep(system.warm_up());
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().for_each(|t| drop(t.join()));
    }
    let members = system.procs().len();
    let term_before = system.term();
    let mut traffic = TrafficCount::start(system);
    let stop = Arc::new(AtomicBool::new(false));
    let records = Arc::new(Mutex::new(Vec::new()));
    let start = std::time::Instant::now();
    let threads = start_clients(system, w, "", &stop, &records);
    let mut fault = None;
    let mut victim_note = None;
    let mut changes = None;
    if plan.kind == FaultKind::Reconfigure {
        sleep_until(start + plan.at.to_std());
        let made = match system.reconfigurable() {
            Some(cluster) => reconfigure::run(cluster),
            None => Err(format!("{} cannot change its membership here", system.name())),
        };
        match made {
            Ok(outcome) => changes = Some(outcome),
            Err(why) => return Err(abandon(system, &stop, threads, &why)),
        }
    } else if plan.kind == FaultKind::Chaos && system.fails_over() {
        sleep_until(start + plan.at.to_std());
        match chaos(system, &mut traffic, start + plan.until.to_std(), plan.most_down, seed) {
            Ok(note) => victim_note = Some(note),
            Err(why) => return Err(abandon(system, &stop, threads, &why)),
        }
    } else if plan.kind != FaultKind::None && system.fails_over() {
        sleep_until(start + plan.at.to_std());
        let leader = system.leader();
        let victim = match (plan.kind, leader) {
            (FaultKind::FollowerCrash, l) => (0..members).rev().find(|i| Some(*i) != l).unwrap_or(0),
            (_, Some(l)) => l,
            (_, None) => 0,
        };
        victim_note = Some(match (plan.kind, leader) {
            (FaultKind::FollowerCrash, _) => format!("n{} (a follower)", victim + 1),
            (_, Some(_)) => format!("n{} (the leader)", victim + 1),
            (_, None) => format!("n{} (no leader reported: node 1)", victim + 1),
        });
        match plan.kind {
            FaultKind::LeaderCrash | FaultKind::FollowerCrash => {
                traffic.before_kill(system, victim);
                system.procs_mut().kill(victim)
            }
            FaultKind::LeaderFreeze => system.procs().signal(victim, "-STOP"),
            _ => unreachable!("checked above"),
        }
        // Stamped once the signal is delivered: starting `kill` takes a few
        // milliseconds in which the victim still serves.
        fault = Some((std::time::Instant::now(), victim));
        sleep_until(start + plan.until.to_std());
        match plan.kind {
            FaultKind::LeaderCrash | FaultKind::FollowerCrash => system.procs_mut().spawn(victim)?,
            FaultKind::LeaderFreeze => system.procs().signal(victim, "-CONT"),
            _ => unreachable!("checked above"),
        }
    }
    sleep_until(start + w.duration.to_std());
    stop.store(true, Ordering::Relaxed);
    let stopped = std::time::Instant::now();
    for t in threads {
        let _ = t.join();
    }
    // Terms, epochs and ballot rounds each count elections, but only where
    // someone leads: Basic Paxos raises its round on every proposal and has
    // no leader to elect (the simulator counts 0 for it too).
    let elections = match system.leader() {
        Some(_) => system.term().saturating_sub(term_before),
        None => 0,
    };
    let traffic = traffic.end(system);
    let since = |t: std::time::Instant| Instant::from_nanos(t.saturating_duration_since(start).as_nanos() as u64 + 1);
    let mut records = in_client_order(std::mem::take(&mut *records.lock().expect("record lock")));
    records.push(final_reads(system, &written_keys(&records), Duration::from_secs(30)).map_err(|why| {
        system.procs_mut().keep();
        format!("{}: {why}; its logs are in {}", system.name(), system.procs().dir().display())
    })?);
    let history = history_of(&records, w.value_size, since);
    let verdict = quorum_sim::lincheck::check(&history).err().map(|v| v.to_string());
    let mut result = summarize(&RunData {
        protocol: system.name(),
        mode: "real",
        seed,
        history: &history,
        start: Instant::from_nanos(0),
        warmup: w.warmup,
        duration: w.duration,
        fault: fault.map(|(at, v)| (since(at), NodeId(v as u64 + 1))),
        messages: traffic.map_or(0, |t| t.messages),
        bytes: traffic.map_or(0, |t| t.bytes),
        // Every acknowledged write of the run (warm-up included, as the
        // traffic is), each one committed entry.
        commits: history.iter().filter(|op| !op.op.is_read() && op.completed_at().is_some()).count() as u64,
        elections,
        violations: usize::from(verdict.is_some()),
        victim: victim_note,
        first_applied: &[],
    });
    result.checked_ops = Some(history.len() as u64);
    if let Some(why) = &verdict {
        eprintln!("{}: the clients' history is not linearizable: {why}", system.name());
    }
    result.violation = verdict;
    result.membership = changes.map(|outcome| match outcome {
        reconfigure::Outcome::Refused(why) => MembershipRun { refused: Some(why), changes: Vec::new() },
        reconfigure::Outcome::Done(windows) => {
            let acked = answer_times(&records, stopped);
            MembershipRun { refused: None, changes: reconfigure::costs(&windows, acked, stopped) }
        }
    });
    if traffic.is_none() {
        // Not counted (a reference system, or a member's metrics did not answer).
        result.msgs_per_commit = f64::NAN;
        result.bytes_per_commit = f64::NAN;
    }
    Ok(result)
}

/// `--fault chaos`: until `until`, members drawn at random (leader or not)
/// are killed with kill -9 or frozen with SIGSTOP, and restarted or thawed
/// 50 to 400 ms later. At most `most_down` are down at once: the next strike
/// comes 50 to 300 ms after the last one, or after a member came back if
/// `most_down` were down. With the default of one, three members always
/// have a majority up; with more than a minority the cluster stalls until
/// they are back, which tests what survives a kill of most of it. At `until`
/// every member still down is brought back. Returns what it did, for the
/// report.
fn chaos(
    system: &mut dyn System,
    traffic: &mut TrafficCount,
    until: std::time::Instant,
    most_down: usize,
    seed: u64,
) -> Result<String, String> {
    use std::time::Instant;
    let mut rng = quorum_core::Rng::new(seed ^ 0xc4a0_5eed);
    let members = system.procs().len();
    let most_down = most_down.clamp(1, members);
    let (mut kills, mut freezes, mut most_at_once) = (0, 0, 0);
    let mut hit = vec![0u32; members];
    let ms = |rng: &mut quorum_core::Rng, lo: u64, hi: u64| Duration::from_millis(rng.range(lo, hi));
    // The members down: when each comes back, which, and whether it was killed.
    let mut down: Vec<(Instant, usize, bool)> = Vec::new();
    let mut ready_from = Instant::now();
    let mut gap = Duration::ZERO;
    loop {
        let now = Instant::now();
        let ending = now >= until;
        // Bring back, earliest first, those whose time has come (all of them at the end).
        down.sort_by_key(|d| d.0);
        while let Some(&(_, victim, killed)) = down.first().filter(|d| ending || d.0 <= now) {
            let was_full = down.len() == most_down;
            down.remove(0);
            if killed {
                system.procs_mut().spawn(victim)?;
            } else {
                system.procs().signal(victim, "-CONT");
            }
            if was_full {
                ready_from = ready_from.max(Instant::now());
            }
        }
        if ending {
            break;
        }
        let strike_at = ready_from + gap;
        if down.len() < most_down && now >= strike_at {
            let up: Vec<usize> = (0..members).filter(|m| !down.iter().any(|d| d.1 == *m)).collect();
            let victim = up[rng.index(up.len())];
            hit[victim] += 1;
            let back_at = Instant::now() + ms(&mut rng, 50, 400);
            let killed = rng.chance(0.5);
            if killed {
                kills += 1;
                traffic.before_kill(system, victim);
                system.procs_mut().kill(victim);
            } else {
                freezes += 1;
                system.procs().signal(victim, "-STOP");
            }
            down.push((back_at, victim, killed));
            most_at_once = most_at_once.max(down.len());
            gap = ms(&mut rng, 50, 300);
            ready_from = Instant::now();
            continue;
        }
        let mut wake = until;
        if let Some(d) = down.iter().map(|d| d.0).min() {
            wake = wake.min(d);
        }
        if down.len() < most_down {
            wake = wake.min(strike_at);
        }
        std::thread::sleep(wake.saturating_duration_since(now));
    }
    let per_member: Vec<String> = hit.iter().enumerate().map(|(i, n)| format!("n{} {n}", i + 1)).collect();
    let mut at_once = crate::workload::at_a_time(most_down);
    if most_down > 1 {
        at_once += &format!(" ({most_at_once} reached)");
    }
    Ok(format!("{at_once}, {} times ({kills} kill -9, {freezes} SIGSTOP: {})", kills + freezes, per_member.join(", ")))
}

/// The default place of the `quorum` binary: the running executable.
pub fn current_exe() -> Result<std::path::PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the quorum executable: {e}"))
}
