//! One simulated cluster behind a browser tab, whatever its protocol: the
//! simulator's view of it (roles, logs, timers, what is on the wire) in the
//! shapes the page draws, and the learner's actions carried out on it.

use crate::protocols::{dispatch, WithProtocol};
use bytes::Bytes;
use quorum_core::{Duration, Instant, KvOp, NodeId, Payload};
use quorum_sim::{Flight, Latency, Sim, SimConfig, TraceEvent, Violation};
use serde::{Deserialize, Serialize};

/// Something the learner does to the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Action {
    /// Kill a node (it loses what it had not synced).
    Crash { node: u64 },
    /// Start a crashed node from its disk.
    Restart { node: u64 },
    /// Stop a node like SIGSTOP: it handles nothing until thawed.
    Freeze { node: u64 },
    /// Resume a frozen node.
    Thaw { node: u64 },
    /// Cut a node off from every other node.
    Isolate { node: u64 },
    /// Cut the link between two nodes, both ways.
    Cut { a: u64, b: u64 },
    /// Make the link between two nodes lose `percent` of its messages, both ways (0: no more).
    Lossy { a: u64, b: u64, percent: u64 },
    /// Restore the link between two nodes: no cut, no loss.
    HealLink { a: u64, b: u64 },
    /// Restore every link: no cuts, no lossy links.
    Heal,
    /// Slow every message to and from a node by `ms` milliseconds (0: back to normal).
    Slow { node: u64, ms: u64 },
    /// Make every fsync of a node's disk `ms` milliseconds slower (0: back to normal).
    SlowDisk { node: u64, ms: u64 },
    /// A client sends `SET key value` to a node.
    Write { node: u64, key: String, value: String },
    /// A client sends `GET key` to a node; `local` asks for a local read.
    Read { node: u64, key: String, local: bool },
}

impl Action {
    /// The nodes the action names.
    fn nodes(&self) -> Vec<u64> {
        match self {
            Action::Crash { node }
            | Action::Restart { node }
            | Action::Freeze { node }
            | Action::Thaw { node }
            | Action::Isolate { node }
            | Action::Slow { node, .. }
            | Action::SlowDisk { node, .. }
            | Action::Write { node, .. }
            | Action::Read { node, .. } => vec![*node],
            Action::Cut { a, b } | Action::Lossy { a, b, .. } | Action::HealLink { a, b } => vec![*a, *b],
            Action::Heal => vec![],
        }
    }
}

/// A node as the page draws it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeView {
    /// Its id, from 1.
    pub id: u64,
    /// Running (not crashed).
    pub up: bool,
    /// Stopped like SIGSTOP.
    pub frozen: bool,
    /// Extra delay on its messages, in milliseconds.
    pub slow_ms: u64,
    /// Extra time on each of its fsyncs, in milliseconds.
    pub slow_disk_ms: u64,
    /// Its role, as the protocol names it (`leader`, `follower`, ...).
    pub role: String,
    /// Raft term, ballot round or Zab epoch.
    pub term: u64,
    /// The leader it believes in.
    pub leader: Option<u64>,
    /// The highest index it knows committed.
    pub commit: u64,
    /// The highest index in its log.
    pub last_index: u64,
    /// How far its state machine has applied.
    pub applied: u64,
    /// When its protocol timer fires (virtual nanoseconds).
    pub timer_ns: Option<u64>,
    /// Its last few applied entries, oldest first, as `index: what`.
    pub log: Vec<String>,
    /// The tail of the log on its disk, committed or not, oldest first.
    pub disk: Vec<DiskEntry>,
}

/// An entry on a node's disk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiskEntry {
    /// Its index (slot).
    pub index: u64,
    /// Its term, ballot or zxid epoch and counter, as `major.minor`.
    pub stamp: String,
    /// What it carries.
    pub what: String,
}

/// How many entries of each node's disk a view lists.
const DISK_TAIL: usize = 10;

/// How many applied entries a node view lists.
const LOG_TAIL: usize = 6;

/// A simulated cluster of some protocol, as the viz server drives it.
pub trait World {
    /// Virtual time now, in nanoseconds.
    fn now_ns(&self) -> u64;
    /// Simulator events run so far (each may trace zero or more events).
    fn steps(&self) -> u64;
    /// The traced events so far.
    fn trace(&self) -> &[TraceEvent];
    /// Runs one simulator event; false if nothing is left to run.
    fn step(&mut self) -> bool;
    /// Runs every event up to `ns`, and moves the clock there.
    fn run_until_ns(&mut self, ns: u64);
    /// When the next event is due, if any.
    fn next_event_ns(&self) -> Option<u64>;
    /// Carries out an action; a node the cluster does not have is refused.
    fn apply(&mut self, action: &Action) -> Result<(), String>;
    /// Every node.
    fn nodes(&self) -> Vec<NodeView>;
    /// Every link that is cut, as (from, to).
    fn cuts(&self) -> Vec<(u64, u64)>;
    /// Every lossy link, as (a, b, percent lost), each pair once.
    fn lossy(&self) -> Vec<(u64, u64, u64)>;
    /// What is on the wire.
    fn flights(&self) -> Vec<Flight>;
    /// The safety checks that failed.
    fn violations(&self) -> &[Violation];
}

/// The simulated world a tab watches: no workload and no random faults (the
/// learner brings both), a full trace, and links slow enough to watch.
pub fn sim_config(nodes: usize, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(nodes, seed);
    c.clients.count = 0;
    c.network.latency = Latency::Uniform { min: Duration::from_millis(4), max: Duration::from_millis(12) };
    c.trace = true;
    c
}

/// A fresh cluster of `protocol`.
pub fn build(protocol: &str, nodes: usize, seed: u64) -> Result<Box<dyn World>, String> {
    use crate::protocols::{NAMES, PLANTED};
    if !NAMES.contains(&protocol) && !PLANTED.contains(&protocol) {
        return Err(format!(
            "unknown protocol '{protocol}': choose one of {} (or a checker demo: {})",
            NAMES.join(", "),
            PLANTED.join(", ")
        ));
    }
    if !(1..=9).contains(&nodes) {
        return Err(format!("a cluster of {nodes} nodes: choose 1 to 9"));
    }
    struct Build(SimConfig);
    impl WithProtocol for Build {
        type Output = Box<dyn World>;
        fn run<P: quorum_check::Checkable>(self, config: P::Config) -> Box<dyn World>
        where
            P::Config: Sync + quorum_core::settings::Tunables,
        {
            Box::new(Sim::<P>::new(self.0, config))
        }
    }
    dispatch(protocol, Build(sim_config(nodes, seed)))
}

fn show_payload(payload: &Payload) -> String {
    match payload {
        Payload::Noop => "no-op".into(),
        Payload::Command(c) => match KvOp::decode(&c.data) {
            Ok(op) => quorum_sim::lincheck::show_op(&op),
            Err(_) => format!("{} bytes", c.data.len()),
        },
        Payload::Membership(m) => format!("members {:?}", m.voters),
    }
}

impl<P: quorum_core::Protocol> World for Sim<P> {
    fn now_ns(&self) -> u64 {
        self.now().as_nanos()
    }

    fn steps(&self) -> u64 {
        self.events()
    }

    fn trace(&self) -> &[TraceEvent] {
        Sim::trace(self).events()
    }

    fn step(&mut self) -> bool {
        Sim::step(self)
    }

    fn run_until_ns(&mut self, ns: u64) {
        self.run_until_time(Instant::from_nanos(ns));
    }

    fn next_event_ns(&self) -> Option<u64> {
        self.next_event_at().map(Instant::as_nanos)
    }

    fn apply(&mut self, action: &Action) -> Result<(), String> {
        let n = self.members().len() as u64;
        if let Some(bad) = action.nodes().into_iter().find(|id| !(1..=n).contains(id)) {
            return Err(format!("there is no node {bad}: the nodes are 1 to {n}"));
        }
        match action {
            Action::Crash { node } => self.crash(NodeId(*node)),
            Action::Restart { node } => self.restart(NodeId(*node)),
            Action::Freeze { node } => self.freeze(NodeId(*node)),
            Action::Thaw { node } => self.thaw(NodeId(*node)),
            Action::Isolate { node } => self.partition(&[&[NodeId(*node)]]),
            Action::Cut { a, b } if a == b => return Err(format!("node {a} has no link to itself")),
            Action::Cut { a, b } => {
                self.cut_one_way(NodeId(*a), NodeId(*b));
                self.cut_one_way(NodeId(*b), NodeId(*a));
            }
            Action::Lossy { a, b, .. } if a == b => return Err(format!("node {a} has no link to itself")),
            Action::Lossy { a, b, percent } => {
                self.set_link_loss(NodeId(*a), NodeId(*b), (*percent).min(100) as f64 / 100.0);
            }
            Action::HealLink { a, b } => self.heal_link(NodeId(*a), NodeId(*b)),
            Action::Heal => self.heal(),
            Action::SlowDisk { node, ms } => {
                self.set_disk_delay(NodeId(*node), Duration::from_millis((*ms).min(10_000)));
            }
            Action::Slow { node, ms } => self.set_node_delay(NodeId(*node), Duration::from_millis((*ms).min(10_000))),
            Action::Write { node, key, value } => {
                let op = KvOp::Put { key: Bytes::from(key.clone()), value: Bytes::from(value.clone()) };
                self.submit(NodeId(*node), op, false);
            }
            Action::Read { node, key, local } => {
                self.submit(NodeId(*node), KvOp::Get { key: Bytes::from(key.clone()) }, *local);
            }
        }
        Ok(())
    }

    fn nodes(&self) -> Vec<NodeView> {
        self.members()
            .iter()
            .map(|&id| {
                let status = self.status(id);
                let log = self.committed(id);
                let tail = &log[log.len().saturating_sub(LOG_TAIL)..];
                NodeView {
                    id: id.0,
                    up: self.is_up(id),
                    frozen: self.is_frozen(id),
                    slow_ms: self.node_delay(id).as_nanos() / 1_000_000,
                    slow_disk_ms: self.disk_delay(id).as_nanos() / 1_000_000,
                    role: status.as_ref().map_or("crashed".into(), |s| s.role.to_string()),
                    term: status.as_ref().map_or(0, |s| s.term),
                    leader: status.as_ref().and_then(|s| s.leader.map(|l| l.0)),
                    commit: status.as_ref().map_or(0, |s| s.commit_index),
                    last_index: status.as_ref().map_or(0, |s| s.last_index),
                    applied: self.applied_index(id),
                    timer_ns: self.next_timer(id).map(Instant::as_nanos),
                    log: tail.iter().map(|e| format!("{}: {}", e.index, show_payload(&e.payload))).collect(),
                    disk: self
                        .disk_tail(id, DISK_TAIL)
                        .iter()
                        .map(|e| DiskEntry {
                            index: e.index,
                            stamp: format!("{}.{}", e.stamp.major, e.stamp.minor),
                            what: show_payload(&e.payload),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn cuts(&self) -> Vec<(u64, u64)> {
        let ids = self.members();
        let mut cuts = Vec::new();
        for &a in ids {
            for &b in ids {
                if a != b && self.is_cut(a, b) {
                    cuts.push((a.0, b.0));
                }
            }
        }
        cuts
    }

    fn lossy(&self) -> Vec<(u64, u64, u64)> {
        let ids = self.members();
        let mut lossy = Vec::new();
        for &a in ids {
            for &b in ids.iter().filter(|b| b.0 > a.0) {
                let p = self.link_loss(a, b);
                if p > 0.0 {
                    lossy.push((a.0, b.0, (p * 100.0).round() as u64));
                }
            }
        }
        lossy
    }

    fn flights(&self) -> Vec<Flight> {
        Sim::flights(self)
    }

    fn violations(&self) -> &[Violation] {
        Sim::violations(self)
    }
}
