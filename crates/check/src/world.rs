//! One state of the model: every node's protocol struct and disk, the
//! messages in flight, and the ghost record the properties are checked
//! against; and the transitions out of it.
//!
//! There is no clock in the model's choices: any node's pending timer may fire
//! next, and firing it moves the world's time up to that timer's deadline
//! (never back). Messages are delivered in any order (per link in order for a
//! protocol that needs FIFO links), a disk syncs its oldest staged write when
//! the model says so, and a crash loses what was not synced.

use quorum_core::{
    ClientId, Command, DurabilityGate, Effect, Effects, Init, Instant, LinkKind, MemStorage, NodeId, Payload, Protocol,
    Role,
};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};

/// What may happen next in a world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deliver the in-flight message at this position (its label is for people).
    Deliver {
        /// Position in the world's list of messages in flight.
        index: usize,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The message, as `Debug` prints it.
        label: String,
    },
    /// The node's pending timer fires.
    Timer(NodeId),
    /// The node's disk makes its oldest staged write durable.
    Sync(NodeId),
    /// The node crashes: unsynced writes and messages waiting for them are lost.
    Crash(NodeId),
    /// A crashed node starts again from its durable state.
    Restart(NodeId),
    /// A client proposes command number `command` at this node.
    Propose {
        /// Where.
        node: NodeId,
        /// Which of the bounded set of commands (0-based).
        command: u32,
    },
}

/// What the properties found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property.
    pub property: &'static str,
    /// What exactly.
    pub detail: String,
}

/// A message in flight, with its fingerprint.
#[derive(Clone, Debug)]
struct InFlight<M> {
    from: NodeId,
    to: NodeId,
    msg: M,
    hash: u64,
}

impl<M: Debug> InFlight<M> {
    fn new(from: NodeId, to: NodeId, msg: M) -> Self {
        let mut h = DefaultHasher::new();
        (from, to).hash(&mut h);
        debug_hash(&msg, &mut h);
        InFlight { from, to, msg, hash: h.finish() }
    }
}

/// One state of the model.
#[derive(Clone)]
pub struct World<P: Protocol> {
    now: Instant,
    config: P::Config,
    nodes: Vec<Option<P>>,
    disks: Vec<MemStorage>,
    gates: Vec<DurabilityGate<P::Message>>,
    network: Vec<InFlight<P::Message>>,
    /// Fingerprint of each node's struct, disk and held messages (`None`:
    /// changed since last computed).
    node_hashes: Vec<Option<u64>>,
    /// Ghost: the payload each index was applied with, by whichever node first.
    applied: BTreeMap<u64, Payload>,
    /// Ghost: the leader seen in each term (checked only where it applies).
    leaders: BTreeMap<u64, NodeId>,
    commands_issued: u32,
    crashes: u32,
    timers: u32,
    restarts: u64,
    violation: Option<Violation>,
}

impl<P: Protocol + Debug> World<P> {
    /// `n` fresh nodes with ids 1..=n.
    pub fn new(n: u64, config: P::Config) -> Self {
        let mut world = World {
            now: Instant::ZERO,
            config,
            nodes: Vec::new(),
            disks: vec![MemStorage::new(); n as usize],
            gates: (0..n).map(|_| DurabilityGate::new()).collect(),
            network: Vec::new(),
            node_hashes: vec![None; n as usize],
            applied: BTreeMap::new(),
            leaders: BTreeMap::new(),
            commands_issued: 0,
            crashes: 0,
            timers: 0,
            restarts: 0,
            violation: None,
        };
        for id in 1..=n {
            let node = world.boot(NodeId(id));
            world.nodes.push(node);
        }
        world
    }

    fn members(&self) -> Vec<NodeId> {
        (1..=self.disks.len() as u64).map(NodeId).collect()
    }

    fn boot(&mut self, id: NodeId) -> Option<P> {
        let stored = self.disks[(id.0 - 1) as usize].durable().to_stored();
        let init = Init {
            id,
            members: self.members(),
            config: self.config.clone(),
            stored,
            seed: id.0.wrapping_mul(0x9e37_79b9).wrapping_add(self.restarts),
            now: self.now,
        };
        match P::new(init) {
            Ok(p) => Some(p),
            Err(e) => {
                self.fail("restart", format!("{id} cannot start from its own durable state: {e}"));
                None
            }
        }
    }

    /// The virtual time (the latest timer fired so far).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The live nodes' protocol structs (`None`: crashed).
    pub fn nodes(&self) -> &[Option<P>] {
        &self.nodes
    }

    /// How many indexes some node applied.
    pub fn applied_count(&self) -> usize {
        self.applied.len()
    }

    /// True once some node was a leader.
    pub fn had_leader(&self) -> bool {
        !self.leaders.is_empty() || self.nodes.iter().flatten().any(|p| p.status().role == Role::Leader)
    }

    /// The highest term, ballot round or epoch any live node is in.
    pub fn max_term(&self) -> u64 {
        self.nodes.iter().flatten().map(|p| p.status().term).max().unwrap_or(0)
    }

    /// Crashes so far.
    pub fn crashes(&self) -> u32 {
        self.crashes
    }

    /// What went wrong in the last step, if anything.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    fn fail(&mut self, property: &'static str, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation { property, detail });
        }
    }

    /// Every action possible here, within the bounds on commands, crashes
    /// and timer firings.
    pub fn actions(&self, limits: &Limits) -> Vec<Action> {
        let mut actions = Vec::new();
        let fifo = P::LINKS == LinkKind::Fifo;
        for (index, m) in self.network.iter().enumerate() {
            // Over FIFO links only the oldest message of each link may arrive.
            if fifo && self.network[..index].iter().any(|o| o.from == m.from && o.to == m.to) {
                continue;
            }
            actions.push(Action::Deliver { index, from: m.from, to: m.to, label: String::new() });
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let id = NodeId(i as u64 + 1);
            match node {
                Some(p) => {
                    if p.next_timer().is_some() && self.timers < limits.timers {
                        actions.push(Action::Timer(id));
                    }
                    if self.disks[i].staged_len() > 0 {
                        actions.push(Action::Sync(id));
                    }
                    if self.crashes < limits.crashes {
                        actions.push(Action::Crash(id));
                    }
                    if self.commands_issued < limits.commands {
                        actions.push(Action::Propose { node: id, command: self.commands_issued });
                    }
                }
                None => actions.push(Action::Restart(id)),
            }
        }
        actions
    }

    /// The action with its message label filled in (labels are made only
    /// for the steps of a path, not for every action tried).
    pub fn labelled(&self, action: Action) -> Action {
        match action {
            Action::Deliver { index, from, to, .. } => {
                Action::Deliver { index, from, to, label: format!("{:?}", self.network[index].msg) }
            }
            other => other,
        }
    }

    /// Carries out one action. Returns false if it turned out to be a no-op
    /// (a proposal the node refused), which the explorer does not count as a
    /// step. A panic in protocol code is recorded as a violation.
    pub fn apply(&mut self, action: &Action) -> bool {
        let action = action.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply_inner(&action)));
        match outcome {
            Ok(changed) => changed,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic without a message".into());
                self.fail("no panic", text);
                true
            }
        }
    }

    fn apply_inner(&mut self, action: &Action) -> bool {
        let mut out = Effects::new();
        let now = self.now;
        match *action {
            Action::Deliver { index, .. } => {
                let m = self.network.remove(index);
                let Some(node) = self.nodes[(m.to.0 - 1) as usize].as_mut() else { return true };
                node.on_message(now, m.from, m.msg, &mut out);
                self.after(m.to, out);
            }
            Action::Timer(id) => {
                let node = self.nodes[(id.0 - 1) as usize].as_mut().expect("timers fire on live nodes");
                let at = node.next_timer().expect("listed only with a timer");
                self.timers += 1;
                self.now = self.now.max(at);
                node.on_timer(self.now, &mut out);
                self.after(id, out);
            }
            Action::Sync(id) => {
                let i = (id.0 - 1) as usize;
                let tag = self.disks[i].sync_next().expect("listed only with a staged write");
                for (to, msg) in self.gates[i].write_durable() {
                    self.network.push(InFlight::new(id, to, msg));
                }
                let node = self.nodes[i].as_mut().expect("disks sync on live nodes");
                node.on_persisted(now, tag, &mut out);
                self.after(id, out);
            }
            Action::Crash(id) => {
                let i = (id.0 - 1) as usize;
                self.crashes += 1;
                self.node_hashes[i] = None;
                self.nodes[i] = None;
                self.disks[i].crash();
                self.gates[i].crash();
                // Its connections break: what was in flight to or from it is lost,
                // and its peers are told (as the runtime tells them).
                self.network.retain(|m| m.from != id && m.to != id);
                for peer in self.members() {
                    let Some(node) = self.nodes[(peer.0 - 1) as usize].as_mut() else { continue };
                    let mut out = Effects::new();
                    node.on_link_down(now, id, &mut out);
                    self.after(peer, out);
                }
            }
            Action::Restart(id) => {
                self.restarts += 1;
                let node = self.boot(id);
                self.nodes[(id.0 - 1) as usize] = node;
                self.node_hashes[(id.0 - 1) as usize] = None;
            }
            Action::Propose { node: id, command } => {
                let node = self.nodes[(id.0 - 1) as usize].as_mut().expect("proposals go to live nodes");
                let cmd = Command::new(ClientId(u64::from(command) + 1), 1, format!("v{command}").into_bytes());
                if node.propose(now, cmd, &mut out).is_err() {
                    return false;
                }
                self.commands_issued += 1;
                self.after(id, out);
            }
        }
        true
    }

    /// Carries out a node's effects and checks what they reveal.
    fn after(&mut self, id: NodeId, mut out: Effects<P::Message>) {
        let i = (id.0 - 1) as usize;
        self.node_hashes[i] = None;
        for effect in out.drain() {
            match effect {
                Effect::Send { to, msg } => self.network.push(InFlight::new(id, to, msg)),
                Effect::SendDurable { to, msg } => {
                    if let Some((to, msg)) = self.gates[i].send(to, msg) {
                        self.network.push(InFlight::new(id, to, msg));
                    }
                }
                Effect::Persist(batch) => {
                    self.disks[i].stage(batch);
                    self.gates[i].write_issued();
                }
                Effect::Commit(entry) => match self.applied.get(&entry.index) {
                    Some(p) if *p != entry.payload => {
                        let detail = format!(
                            "{id} applied {:?} at index {} where {:?} was applied before",
                            entry.payload, entry.index, p
                        );
                        self.fail("applied prefixes agree", detail);
                    }
                    Some(_) => {}
                    None => {
                        self.applied.insert(entry.index, entry.payload);
                    }
                },
                Effect::InstallSnapshot(_) | Effect::ReadReady { .. } | Effect::ReadFailed { .. } => {}
            }
        }
    }

    /// Checks the properties that look at the state as a whole: at most one
    /// leader per term (if `one_leader_per_term`), and the protocol's own
    /// invariants (each run fresh on this one state).
    pub fn check_state(&mut self, one_leader_per_term: bool) {
        self.record_leaders(one_leader_per_term);
        self.check_invariants();
    }

    /// Notes who leads which term (ghost state, part of the fingerprint),
    /// failing "one leader per term" if two nodes led the same one.
    pub fn record_leaders(&mut self, one_leader_per_term: bool) {
        if !one_leader_per_term {
            return;
        }
        let leading: Vec<_> =
            self.nodes.iter().flatten().map(|p| p.status()).filter(|s| s.role == Role::Leader).collect();
        for s in leading {
            match self.leaders.get(&s.term) {
                Some(other) if *other != s.id => {
                    let detail = format!("{} and {} both led term {}", other, s.id, s.term);
                    self.fail("one leader per term", detail);
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(s.term, s.id);
                }
            }
        }
    }

    /// Runs the protocol's own invariants, fresh, on this one state.
    pub fn check_invariants(&mut self) {
        for mut inv in P::invariants() {
            for id in self.members() {
                if let Err(e) = inv.check(self.now, id, &self.nodes) {
                    let detail = format!("{}: {e}", inv.name());
                    self.fail("protocol invariants", detail);
                }
            }
        }
    }

    /// A 64-bit fingerprint of everything that decides the future: the nodes,
    /// disks, held and in-flight messages (as a multiset unless links are
    /// FIFO), the ghost record and the bound counters.
    pub fn fingerprint(&mut self) -> u64 {
        for i in 0..self.nodes.len() {
            if self.node_hashes[i].is_none() {
                let mut h = DefaultHasher::new();
                debug_hash(&self.nodes[i], &mut h);
                debug_hash(&self.disks[i], &mut h);
                debug_hash(&self.gates[i], &mut h);
                self.node_hashes[i] = Some(h.finish());
            }
        }
        let mut h = DefaultHasher::new();
        self.now.as_nanos().hash(&mut h);
        self.node_hashes.hash(&mut h);
        let mut msgs: Vec<u64> = self.network.iter().map(|m| m.hash).collect();
        if P::LINKS != LinkKind::Fifo {
            msgs.sort_unstable();
        }
        msgs.hash(&mut h);
        debug_hash(&self.applied, &mut h);
        debug_hash(&self.leaders, &mut h);
        (self.commands_issued, self.crashes, self.timers, self.restarts).hash(&mut h);
        h.finish()
    }
}

/// The bounds on the choices the environment makes along one path.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Client commands proposed.
    pub commands: u32,
    /// Crashes.
    pub crashes: u32,
    /// Timer firings (each moves time on, so without a bound every
    /// heartbeat would make new states).
    pub timers: u32,
}

/// Hashes what `Debug` prints, piece by piece, without building a string.
struct HashWriter<'a>(&'a mut DefaultHasher);

impl std::fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

fn debug_hash(value: &impl Debug, h: &mut DefaultHasher) {
    use std::fmt::Write;
    let _ = write!(HashWriter(h), "{value:?}");
    h.write_u8(0xff);
}
