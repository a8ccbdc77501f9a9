//! A tiny in-memory driver for a Raft cluster, for tests, examples and
//! micro-benchmarks: messages are delivered in FIFO order with no delay, disks
//! sync one batch per step, and time moves only when asked (timers fire when
//! the network is quiet). It honours the durability gate and crash semantics
//! (unsynced writes vanish) and checks Raft's invariants after every input.
//!
//! ```
//! use quorum_raft::{cluster::Cluster, RaftConfig};
//! use quorum_core::Duration;
//! let mut c = Cluster::new(3, RaftConfig::default(), 7);
//! assert!(c.run_until(Duration::from_secs(2), |c| c.leader().is_some()));
//! let leader = c.leader().unwrap();
//! c.propose(leader, b"x".to_vec()).unwrap();
//! c.settle();
//! assert_eq!(c.applied(leader).last().map(|e| e.index), Some(2));
//! assert!(c.violations().is_empty());
//! ```

use crate::{invariants, Message, ProposeError, Raft, RaftConfig};
use bytes::Bytes;
use quorum_core::{
    ClientId, Command, DurabilityGate, Duration, Effect, Effects, Entry, Init, Instant, Invariant, MemStorage, NodeId,
    NotLeader, Protocol, ReadId, Role, Storage,
};
use std::collections::{BTreeSet, VecDeque};

/// What a driver host keeps beside the protocol: disk, gate, applied entries.
#[derive(Debug, Default)]
struct Host {
    storage: MemStorage,
    gate: DurabilityGate<Message>,
    applied: Vec<Entry>,
    applied_index: u64,
    reads: Vec<(ReadId, Result<u64, NotLeader>)>,
    snapshots_installed: u64,
}

/// A drop rule: `(from, to, message) -> drop it?`.
pub type DropFilter = Box<dyn FnMut(NodeId, NodeId, &Message) -> bool>;

/// An in-memory Raft cluster with nodes `n1..=nN`.
pub struct Cluster {
    now: Instant,
    config: RaftConfig,
    seed: u64,
    members: Vec<NodeId>,
    rafts: Vec<Option<Raft>>,
    hosts: Vec<Host>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    drop_filter: Option<DropFilter>,
    invariants: Vec<Box<dyn Invariant<Raft>>>,
    violations: Vec<String>,
    next_client_seq: u64,
    restarts: u64,
    chaos: Option<Chaos>,
}

/// Random message loss, duplication and reordering.
struct Chaos {
    rng: quorum_core::Rng,
    loss: f64,
    duplicate: f64,
}

impl Cluster {
    /// `n` voters with ids 1..=n, all starting at time zero.
    pub fn new(n: u64, config: RaftConfig, seed: u64) -> Self {
        let members: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let mut c = Cluster {
            now: Instant::ZERO,
            config,
            seed,
            members: members.clone(),
            rafts: Vec::new(),
            hosts: Vec::new(),
            network: VecDeque::new(),
            blocked: BTreeSet::new(),
            drop_filter: None,
            invariants: invariants::all(),
            violations: Vec::new(),
            next_client_seq: 0,
            restarts: 0,
            chaos: None,
        };
        for id in members {
            c.hosts.push(Host::default());
            let raft = c.boot(id);
            c.rafts.push(Some(raft));
        }
        c
    }

    /// A cluster whose initial voters are `voters`, with `n` nodes in all:
    /// the others start outside the configuration, ready to be added.
    pub fn with_voters(n: u64, voters: &[u64], config: RaftConfig, seed: u64) -> Self {
        let mut c = Cluster::new(0, config, seed);
        c.members = voters.iter().map(|v| NodeId(*v)).collect();
        for id in 1..=n {
            c.hosts.push(Host::default());
            let raft = c.boot(NodeId(id));
            c.rafts.push(Some(raft));
        }
        c
    }

    fn boot(&mut self, id: NodeId) -> Raft {
        let stored = self.hosts[(id.0 - 1) as usize].storage.load().expect("memory storage loads");
        Raft::new(Init {
            id,
            members: self.members.clone(),
            config: self.config.clone(),
            stored,
            seed: self.seed.wrapping_add(self.restarts.wrapping_mul(1_000_003)),
            now: self.now,
        })
        .expect("a node restarts from what it stored")
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// A node, unless crashed.
    pub fn node(&self, id: NodeId) -> Option<&Raft> {
        self.rafts[(id.0 - 1) as usize].as_ref()
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.rafts.len() as u64).map(NodeId).collect()
    }

    /// The live leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.rafts.iter().flatten().filter(|r| r.status().role == Role::Leader).max_by_key(|r| r.term()).map(|r| r.id())
    }

    /// Entries a node's driver applied, in order (those folded into an installed snapshot are absent).
    pub fn applied(&self, id: NodeId) -> &[Entry] {
        &self.hosts[(id.0 - 1) as usize].applied
    }

    /// The last index a node's driver applied.
    pub fn applied_index(&self, id: NodeId) -> u64 {
        self.hosts[(id.0 - 1) as usize].applied_index
    }

    /// Answers to reads issued on a node.
    pub fn reads(&self, id: NodeId) -> &[(ReadId, Result<u64, NotLeader>)] {
        &self.hosts[(id.0 - 1) as usize].reads
    }

    /// Snapshots a node's driver installed from its leader.
    pub fn snapshots_installed(&self, id: NodeId) -> u64 {
        self.hosts[(id.0 - 1) as usize].snapshots_installed
    }

    /// Invariant violations seen so far (each checked after every input).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Runs `f` on a live node with an effects list, then carries out the effects.
    pub fn act<R>(&mut self, id: NodeId, f: impl FnOnce(&mut Raft, Instant, &mut Effects<Message>) -> R) -> R {
        let mut out = Effects::new();
        let now = self.now;
        let raft = self.rafts[(id.0 - 1) as usize].as_mut().expect("node is up");
        let r = f(raft, now, &mut out);
        self.after(id, out);
        r
    }

    /// Proposes a command carrying `data` on a node.
    pub fn propose(&mut self, id: NodeId, data: Vec<u8>) -> Result<u64, ProposeError> {
        self.next_client_seq += 1;
        let cmd = Command::new(ClientId(0), self.next_client_seq, data);
        self.act(id, |r, now, out| r.try_propose(now, cmd, out))
    }

    /// Issues a linearizable read on a node.
    pub fn read(&mut self, id: NodeId, read: ReadId) -> Result<(), quorum_core::ReadError> {
        self.act(id, |r, now, out| r.read(now, read, out))
    }

    /// Tells a node's Raft that its driver snapshotted everything it applied.
    pub fn snapshot(&mut self, id: NodeId) {
        let host = &self.hosts[(id.0 - 1) as usize];
        let index = host.applied_index;
        let data = Bytes::from(format!("state-machine-at-{index}").into_bytes());
        self.act(id, |r, now, out| r.on_snapshot(now, index, data, out));
    }

    fn after(&mut self, id: NodeId, mut out: Effects<Message>) {
        let host = &mut self.hosts[(id.0 - 1) as usize];
        let mut sends = Vec::new();
        for effect in out.drain() {
            match effect {
                Effect::Send { to, msg } => sends.push((to, msg)),
                Effect::SendDurable { to, msg } => sends.extend(host.gate.send(to, msg)),
                Effect::Persist(batch) => {
                    host.storage.stage(batch);
                    host.gate.write_issued();
                }
                Effect::Commit(entry) => {
                    if entry.index > host.applied_index {
                        assert_eq!(entry.index, host.applied_index + 1, "commits arrive in order without gaps");
                        host.applied_index = entry.index;
                        host.applied.push(entry);
                    }
                }
                Effect::InstallSnapshot(s) => {
                    host.applied_index = host.applied_index.max(s.index);
                    host.snapshots_installed += 1;
                }
                Effect::ReadReady { id, index } => host.reads.push((id, Ok(index))),
                Effect::ReadFailed { id, reason } => host.reads.push((id, Err(reason))),
            }
        }
        for (to, msg) in sends {
            self.enqueue(id, to, msg);
        }
        for inv in self.invariants.iter_mut() {
            if let Err(e) = inv.check(self.now, id, &self.rafts) {
                self.violations.push(format!("{}: {e}", inv.name()));
            }
        }
    }

    fn enqueue(&mut self, from: NodeId, to: NodeId, msg: Message) {
        if self.blocked.contains(&(from, to)) || to.0 == 0 || to.0 > self.rafts.len() as u64 {
            return;
        }
        if let Some(filter) = self.drop_filter.as_mut() {
            if filter(from, to, &msg) {
                return;
            }
        }
        if let Some(chaos) = self.chaos.as_mut() {
            if chaos.rng.chance(chaos.loss) {
                return;
            }
            if chaos.rng.chance(chaos.duplicate) {
                self.network.push_back((from, to, msg.clone()));
            }
        }
        self.network.push_back((from, to, msg));
    }

    /// Back to a perfect network (messages already queued stay queued).
    pub fn clear_chaos(&mut self) {
        self.chaos = None;
    }

    /// From now on, loses and duplicates messages with these probabilities and
    /// delivers them in random order (all decided by `seed`).
    pub fn set_chaos(&mut self, seed: u64, loss: f64, duplicate: f64) {
        self.chaos = Some(Chaos { rng: quorum_core::Rng::new(seed), loss, duplicate });
    }

    /// Carries out one pending disk sync or message delivery; false if there was none.
    pub fn step(&mut self) -> bool {
        if let Some(i) = self.hosts.iter().position(|h| h.storage.staged_len() > 0) {
            let id = NodeId(i as u64 + 1);
            let host = &mut self.hosts[i];
            let tag = host.storage.sync_next().expect("staged");
            let released = host.gate.write_durable();
            for (to, msg) in released {
                self.enqueue(id, to, msg);
            }
            if self.rafts[i].is_some() {
                self.act(id, |r, now, out| r.on_persisted(now, tag, out));
            }
            return true;
        }
        let pick = match self.chaos.as_mut() {
            Some(chaos) if !self.network.is_empty() => chaos.rng.index(self.network.len()),
            _ => 0,
        };
        let Some((from, to, msg)) = self.network.swap_remove_back(pick) else { return false };
        if self.rafts[(to.0 - 1) as usize].is_some() && !self.blocked.contains(&(from, to)) {
            self.act(to, |r, now, out| r.on_message(now, from, msg, out));
        }
        true
    }

    /// Steps until no message or write is pending (bounded, in case of a livelock).
    pub fn settle(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the cluster did not settle within a million steps");
    }

    /// Runs timers and traffic for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.settle();
            let next = self.rafts.iter().flatten().filter_map(|r| r.next_timer().map(|t| (t, r.id()))).min();
            match next {
                Some((t, id)) if t <= end => {
                    self.now = self.now.max(t);
                    self.act(id, |r, now, out| r.on_timer(now, out));
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Runs in 10 ms slices until `done` holds or `limit` passes; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.run_for(Duration::from_millis(10));
        }
        done(self)
    }

    /// Crashes a node: it loses unsynced writes and messages held for durability.
    pub fn crash(&mut self, id: NodeId) {
        let i = (id.0 - 1) as usize;
        self.rafts[i] = None;
        self.hosts[i].storage.crash();
        self.hosts[i].gate.crash();
    }

    /// Crashes a node and throws its disk away, as an operator who deletes a
    /// node's data directory does: it restarts with an empty log and no vote.
    /// (Raft assumes stable storage; a wiped node that votes again in a term it
    /// forgot is outside the model, so tests wipe only where no election runs.)
    pub fn wipe(&mut self, id: NodeId) {
        self.crash(id);
        let host = &mut self.hosts[(id.0 - 1) as usize];
        *host = Host::default();
    }

    /// Restarts a crashed node from its durable state.
    pub fn restart(&mut self, id: NodeId) {
        self.restarts += 1;
        let raft = self.boot(id);
        self.rafts[(id.0 - 1) as usize] = Some(raft);
    }

    /// Cuts every link between the groups (links inside a group stay up).
    pub fn partition(&mut self, groups: &[&[u64]]) {
        self.blocked.clear();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for x in a.iter() {
                        for y in b.iter() {
                            self.blocked.insert((NodeId(*x), NodeId(*y)));
                        }
                    }
                }
            }
        }
    }

    /// Cuts one node off from all others.
    pub fn isolate(&mut self, id: NodeId) {
        for other in self.ids() {
            if other != id {
                self.blocked.insert((id, other));
                self.blocked.insert((other, id));
            }
        }
    }

    /// Cuts the link from `from` to `to` only.
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Restores every link (the drop filter stays).
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Drops every message for which `filter(from, to, msg)` is true.
    pub fn set_drop_filter(&mut self, filter: impl FnMut(NodeId, NodeId, &Message) -> bool + 'static) {
        self.drop_filter = Some(Box::new(filter));
    }

    /// Removes the drop filter.
    pub fn clear_drop_filter(&mut self) {
        self.drop_filter = None;
    }
}
