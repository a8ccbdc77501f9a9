//! A small in-memory driver for a cluster of any protocol, for tests and
//! micro-benchmarks: messages are delivered in FIFO order with no delay (or,
//! with [`Cluster::set_chaos`], lost, duplicated and reordered), disks sync
//! one batch per step, and time moves only when asked (timers fire when the
//! network is quiet). It honours the durability gate and crash semantics
//! (unsynced writes vanish) and checks the protocol's invariants after every
//! input. Where [`Net`](super::Net) lets a test move each message by hand,
//! this one runs the traffic itself; the deterministic simulator
//! ([`Sim`](crate::Sim)) adds latency, clients and random faults.
//!
//! ```
//! use quorum_core::Duration;
//! use quorum_sim::baseline::{PrimaryBackup, PrimaryBackupConfig};
//! use quorum_sim::testkit::Cluster;
//! let mut c = Cluster::<PrimaryBackup>::new(3, PrimaryBackupConfig::default(), 7);
//! let primary = c.leader().expect("the primary leads from the start");
//! c.propose(primary, b"x".to_vec()).unwrap();
//! c.run_for(Duration::from_millis(50));
//! assert_eq!(c.applied(primary).len(), 1);
//! assert!(c.violations().is_empty());
//! ```

use crate::DropFilter;
use quorum_core::{
    Bytes, ClientId, Command, DurabilityGate, Duration, Effect, Effects, Entry, Init, Instant, Invariant, MemStorage,
    MembershipChange, NodeId, NotLeader, ProposeError, Protocol, ReadId, Role, Storage,
};
use std::collections::{BTreeSet, VecDeque};

/// What a driver host keeps beside the protocol: disk, gate, applied entries.
#[derive(Debug)]
struct Host<M> {
    storage: MemStorage,
    gate: DurabilityGate<M>,
    applied: Vec<Entry>,
    applied_index: u64,
    reads: Vec<(ReadId, Result<u64, NotLeader>)>,
    snapshots_installed: u64,
}

impl<M> Host<M> {
    fn new() -> Self {
        Host {
            storage: MemStorage::new(),
            gate: DurabilityGate::new(),
            applied: Vec::new(),
            applied_index: 0,
            reads: Vec::new(),
            snapshots_installed: 0,
        }
    }
}

/// An in-memory cluster with nodes `n1..=nN`.
pub struct Cluster<P: Protocol> {
    now: Instant,
    config: P::Config,
    seed: u64,
    members: Vec<NodeId>,
    nodes: Vec<Option<P>>,
    hosts: Vec<Host<P::Message>>,
    network: VecDeque<(NodeId, NodeId, P::Message)>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    drop_filter: Option<DropFilter<P::Message>>,
    invariants: Vec<Box<dyn Invariant<P>>>,
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

impl<P: Protocol> Cluster<P> {
    /// `n` voters with ids 1..=n, all starting at time zero.
    pub fn new(n: u64, config: P::Config, seed: u64) -> Self {
        let members: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let mut c = Cluster {
            now: Instant::ZERO,
            config,
            seed,
            members: members.clone(),
            nodes: Vec::new(),
            hosts: Vec::new(),
            network: VecDeque::new(),
            blocked: BTreeSet::new(),
            drop_filter: None,
            invariants: P::invariants(),
            violations: Vec::new(),
            next_client_seq: 0,
            restarts: 0,
            chaos: None,
        };
        for id in members {
            c.hosts.push(Host::new());
            let node = c.boot(id);
            c.nodes.push(Some(node));
        }
        c
    }

    /// A cluster whose initial voters are `voters`, with `n` nodes in all:
    /// the others start outside the configuration, ready to be added.
    pub fn with_voters(n: u64, voters: &[u64], config: P::Config, seed: u64) -> Self {
        let mut c = Cluster::new(0, config, seed);
        c.members = voters.iter().map(|v| NodeId(*v)).collect();
        for id in 1..=n {
            c.hosts.push(Host::new());
            let node = c.boot(NodeId(id));
            c.nodes.push(Some(node));
        }
        c
    }

    fn boot(&mut self, id: NodeId) -> P {
        let stored = self.hosts[(id.0 - 1) as usize].storage.load().expect("memory storage loads");
        P::new(Init {
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
    pub fn node(&self, id: NodeId) -> Option<&P> {
        self.nodes[(id.0 - 1) as usize].as_ref()
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.nodes.len() as u64).map(NodeId).collect()
    }

    /// The live leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        let statuses = self.nodes.iter().flatten().map(|n| n.status());
        statuses.filter(|s| s.role == Role::Leader).max_by_key(|s| s.term).map(|s| s.id)
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

    /// Fails the test with every invariant violation seen, if any.
    pub fn assert_clean(&self) {
        assert!(self.violations.is_empty(), "{:?}", self.violations);
    }

    /// Runs until some node leads (at most `limit` of virtual time), and
    /// returns it; fails the test if none does.
    pub fn elected(&mut self, limit: Duration) -> NodeId {
        assert!(self.run_until(limit, |c| c.leader().is_some()), "no leader within {limit:?}");
        self.leader().expect("a leader")
    }

    /// Asks node `id` (the leader, to succeed) for a membership change, as
    /// an operator does ([`Protocol::change_membership`]).
    pub fn change_membership(&mut self, id: NodeId, change: MembershipChange) -> Result<u64, String> {
        self.act(id, |node, now, out| node.change_membership(now, change, out))
    }

    /// The voters of the configuration in force at live node `id`, by number,
    /// in order (panics for a protocol whose members are fixed).
    pub fn voters(&self, id: NodeId) -> Vec<u64> {
        let node = self.node(id).expect("node is up");
        let conf = Protocol::membership(node).expect("the protocol's membership changes");
        let mut voters: Vec<u64> = conf.voters.iter().map(|v| v.0).collect();
        voters.sort_unstable();
        voters
    }

    /// Runs `f` on a live node with an effects list, then carries out the effects.
    pub fn act<R>(&mut self, id: NodeId, f: impl FnOnce(&mut P, Instant, &mut Effects<P::Message>) -> R) -> R {
        let mut out = Effects::new();
        let now = self.now;
        let node = self.nodes[(id.0 - 1) as usize].as_mut().expect("node is up");
        let r = f(node, now, &mut out);
        self.after(id, out);
        r
    }

    /// A fresh client command carrying `data` (client 0, the next sequence number).
    pub fn command(&mut self, data: Vec<u8>) -> Command {
        self.next_client_seq += 1;
        Command::new(ClientId(0), self.next_client_seq, data)
    }

    /// Proposes a command carrying `data` on a node.
    pub fn propose(&mut self, id: NodeId, data: Vec<u8>) -> Result<(), ProposeError> {
        let cmd = self.command(data);
        self.act(id, |node, now, out| node.propose(now, cmd, out))
    }

    /// Issues a linearizable read on a node.
    pub fn read(&mut self, id: NodeId, read: ReadId) -> Result<(), quorum_core::ReadError> {
        self.act(id, |node, now, out| node.read(now, read, out))
    }

    /// Tells a node that its driver snapshotted everything it applied.
    pub fn snapshot(&mut self, id: NodeId) {
        let host = &self.hosts[(id.0 - 1) as usize];
        let index = host.applied_index;
        let data = Bytes::from(format!("state-machine-at-{index}").into_bytes());
        self.act(id, |node, now, out| node.on_snapshot(now, index, data, out));
    }

    fn after(&mut self, id: NodeId, mut out: Effects<P::Message>) {
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
                other => unreachable!("an effect this driver does not know: {other:?}"),
            }
        }
        for (to, msg) in sends {
            self.enqueue(id, to, msg);
        }
        let nodes: Vec<Option<&P>> = self.nodes.iter().map(Option::as_ref).collect();
        for inv in self.invariants.iter_mut() {
            if let Err(e) = inv.check(self.now, id, &nodes) {
                self.violations.push(format!("{}: {e}", inv.name()));
            }
        }
    }

    fn enqueue(&mut self, from: NodeId, to: NodeId, msg: P::Message) {
        if self.blocked.contains(&(from, to)) || to.0 == 0 || to.0 > self.nodes.len() as u64 {
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
            if self.nodes[i].is_some() {
                self.act(id, |node, now, out| node.on_persisted(now, tag, out));
            }
            return true;
        }
        // FIFO unless chaos reorders (`swap_remove_back(0)` would move the
        // newest message to the front).
        let next = match self.chaos.as_mut() {
            Some(chaos) if !self.network.is_empty() => {
                let pick = chaos.rng.index(self.network.len());
                self.network.swap_remove_back(pick)
            }
            _ => self.network.pop_front(),
        };
        let Some((from, to, msg)) = next else { return false };
        if self.nodes[(to.0 - 1) as usize].is_some() && !self.blocked.contains(&(from, to)) {
            self.act(to, |node, now, out| node.on_message(now, from, msg, out));
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
            let next = self.nodes.iter().flatten().filter_map(|n| n.next_timer().map(|t| (t, n.status().id))).min();
            match next {
                Some((t, id)) if t <= end => {
                    self.now = self.now.max(t);
                    self.act(id, |node, now, out| node.on_timer(now, out));
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Runs in 10 ms slices until `done` holds or `limit` passes; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
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
        self.nodes[i] = None;
        self.hosts[i].storage.crash();
        self.hosts[i].gate.crash();
    }

    /// Crashes a node and throws its disk away, as an operator who deletes a
    /// node's data directory does: it restarts with an empty log and no vote.
    /// (Consensus assumes stable storage; a wiped node that votes again in a
    /// term it forgot is outside the model, so tests wipe only where no
    /// election runs.)
    pub fn wipe(&mut self, id: NodeId) {
        self.crash(id);
        let host = &mut self.hosts[(id.0 - 1) as usize];
        *host = Host::new();
    }

    /// Restarts a crashed node from its durable state.
    pub fn restart(&mut self, id: NodeId) {
        self.restarts += 1;
        let node = self.boot(id);
        self.nodes[(id.0 - 1) as usize] = Some(node);
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
    pub fn set_drop_filter(&mut self, filter: impl FnMut(NodeId, NodeId, &P::Message) -> bool + 'static) {
        self.drop_filter = Some(Box::new(filter));
    }

    /// Removes the drop filter.
    pub fn clear_drop_filter(&mut self) {
        self.drop_filter = None;
    }
}
