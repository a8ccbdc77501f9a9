//! One state of the model: every node's protocol struct and disk, the
//! messages in flight, and the ghost record the properties are checked
//! against; and the transitions out of it.
//!
//! There is no clock in the model's choices: any node's pending timer may fire
//! next, and firing it moves the world's time up to that timer's deadline
//! (never back). Messages are delivered in any order (per link in order for a
//! protocol that needs FIFO links), a disk syncs its oldest staged write when
//! the model says so, and a crash loses what was not synced.

use crate::Checkable;
use quorum_core::{
    ClientId, Command, DurabilityGate, Effect, Effects, Init, Instant, LinkKind, MemStorage, MembershipChange, NodeId,
    Payload, Protocol, Role,
};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

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
    /// An operator asks a leader to change the membership (a refusal is no step).
    Change {
        /// The leader asked.
        leader: NodeId,
        /// Add a learner, promote one, or remove a member.
        change: MembershipChange,
    },
    /// An operator replaces the disk of a node that does not vote in a
    /// leader's committed configuration: it stops (if up), comes back empty,
    /// and joins again knowing that leader's voters (`quorum node --join`).
    Wipe {
        /// The node whose disk is replaced.
        node: NodeId,
        /// The leader whose configuration says it does not vote.
        leader: NodeId,
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

/// A message in flight, with its fingerprint. The message is shared between
/// the worlds that hold it: cloning a world copies no message.
#[derive(Debug)]
struct InFlight<M> {
    from: NodeId,
    to: NodeId,
    msg: Arc<M>,
    hash: u64,
}

impl<M> Clone for InFlight<M> {
    fn clone(&self) -> Self {
        InFlight { from: self.from, to: self.to, msg: Arc::clone(&self.msg), hash: self.hash }
    }
}

impl<M: Hash> InFlight<M> {
    fn new(from: NodeId, to: NodeId, msg: M) -> Self {
        let mut h = hasher();
        (from, to, &msg).hash(&mut h);
        InFlight { from, to, msg: Arc::new(msg), hash: h.finish() }
    }
}

/// One node of a world: its protocol struct (`None` while crashed), its disk,
/// and the messages it holds until a write is durable.
struct Slot<P: Protocol> {
    node: Option<P>,
    disk: MemStorage,
    gate: DurabilityGate<P::Message>,
    /// The voters it boots knowing: the founding voters, or, after a wipe,
    /// the voters of the configuration it rejoins (shared: a step that
    /// copies the slot copies no list).
    join: Arc<[NodeId]>,
}

impl<P: Protocol + Clone> Clone for Slot<P> {
    fn clone(&self) -> Self {
        Slot { node: self.node.clone(), disk: self.disk.clone(), gate: self.gate.clone(), join: Arc::clone(&self.join) }
    }
}

impl<P: Protocol> Slot<P> {
    fn empty(join: Arc<[NodeId]>) -> Self {
        Slot { node: None, disk: MemStorage::new(), gate: DurabilityGate::new(), join }
    }
}

/// One state of the model. Worlds share the nodes they have in common: a
/// step copies only the node it changes (copy on write).
pub struct World<P: Protocol> {
    now: Instant,
    config: P::Config,
    slots: Vec<Arc<Slot<P>>>,
    network: Vec<InFlight<P::Message>>,
    /// Fingerprint of each slot (`None`: changed since last computed).
    slot_hashes: Vec<Option<u64>>,
    /// Ghost: the payload each index was applied with, by whichever node first.
    applied: BTreeMap<u64, Payload>,
    /// Ghost: the leader seen in each term (checked only where it applies).
    leaders: BTreeMap<u64, NodeId>,
    commands_issued: u32,
    crashes: u32,
    timers: u32,
    /// Operator actions taken: membership changes and wipes.
    changes: u32,
    restarts: u64,
    violation: Option<Violation>,
    /// The voters of the founding configuration (the nodes that are not spares).
    founders: Arc<[NodeId]>,
    /// Within a step, once the membership may have changed: the voters the
    /// acting node went by before it (an entry that changes the
    /// configuration is decided by the one before it).
    voters_before: Vec<NodeId>,
}

impl<P: Protocol> Clone for World<P> {
    fn clone(&self) -> Self {
        World {
            now: self.now,
            config: self.config.clone(),
            slots: self.slots.clone(),
            network: self.network.clone(),
            slot_hashes: self.slot_hashes.clone(),
            applied: self.applied.clone(),
            leaders: self.leaders.clone(),
            commands_issued: self.commands_issued,
            crashes: self.crashes,
            timers: self.timers,
            changes: self.changes,
            restarts: self.restarts,
            violation: self.violation.clone(),
            voters_before: Vec::new(),
            founders: Arc::clone(&self.founders),
        }
    }
}

impl<P: Checkable> World<P> {
    /// `n` fresh nodes with ids 1..=n.
    pub fn new(n: u64, config: P::Config) -> Self {
        World::with_spares(n, 0, config)
    }

    /// `voters` fresh nodes with ids 1..=voters, the founding configuration,
    /// and `spares` more after them that start outside it, knowing its
    /// voters (as `quorum node --join` starts), for an operator to add.
    pub fn with_spares(voters: u64, spares: u64, config: P::Config) -> Self {
        let n = voters + spares;
        let founders: Arc<[NodeId]> = (1..=voters).map(NodeId).collect();
        let mut world = World {
            now: Instant::ZERO,
            config,
            slots: (0..n).map(|_| Arc::new(Slot::empty(Arc::clone(&founders)))).collect(),
            network: Vec::new(),
            slot_hashes: vec![None; n as usize],
            applied: BTreeMap::new(),
            leaders: BTreeMap::new(),
            commands_issued: 0,
            crashes: 0,
            timers: 0,
            changes: 0,
            restarts: 0,
            violation: None,
            voters_before: Vec::new(),
            founders,
        };
        for id in world.members() {
            world.slot_mut(id).node = world.boot(id, &MemStorage::new());
        }
        world
    }

    /// Every slot's id, in the configuration or not.
    fn members(&self) -> Vec<NodeId> {
        (1..=self.slots.len() as u64).map(NodeId).collect()
    }

    fn boot(&mut self, id: NodeId, disk: &MemStorage) -> Option<P> {
        let init = Init {
            id,
            members: self.slot(id).join.to_vec(),
            config: self.config.clone(),
            stored: disk.durable().to_stored(),
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

    fn slot(&self, id: NodeId) -> &Slot<P> {
        &self.slots[(id.0 - 1) as usize]
    }

    /// The node's slot, copied first if another world shares it.
    fn slot_mut(&mut self, id: NodeId) -> &mut Slot<P> {
        let i = (id.0 - 1) as usize;
        self.slot_hashes[i] = None;
        Arc::make_mut(&mut self.slots[i])
    }

    /// The virtual time (the latest timer fired so far).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The nodes' protocol structs (`None`: crashed), node 1 first.
    pub fn nodes(&self) -> impl Iterator<Item = Option<&P>> {
        self.slots.iter().map(|s| s.node.as_ref())
    }

    fn live(&self) -> impl Iterator<Item = &P> {
        self.slots.iter().filter_map(|s| s.node.as_ref())
    }

    /// How many indexes some node applied.
    pub fn applied_count(&self) -> usize {
        self.applied.len()
    }

    /// True once some node was a leader.
    pub fn had_leader(&self) -> bool {
        !self.leaders.is_empty() || self.live().any(|p| p.status().role == Role::Leader)
    }

    /// The highest term, ballot round or epoch any live node is in.
    pub fn max_term(&self) -> u64 {
        self.live().map(|p| p.status().term).max().unwrap_or(0)
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
        for (i, slot) in self.slots.iter().enumerate() {
            let id = NodeId(i as u64 + 1);
            match &slot.node {
                Some(p) => {
                    if p.next_timer().is_some() && self.timers < limits.timers {
                        actions.push(Action::Timer(id));
                    }
                    if slot.disk.staged_len() > 0 {
                        actions.push(Action::Sync(id));
                    }
                    if self.crashes < limits.crashes {
                        actions.push(Action::Crash(id));
                    }
                    if self.commands_issued < limits.commands {
                        actions.push(Action::Propose { node: id, command: self.commands_issued });
                    }
                    if self.changes < limits.changes {
                        self.operator_actions(id, p, &mut actions);
                    }
                }
                None => actions.push(Action::Restart(id)),
            }
        }
        actions
    }

    /// What an operator may do through `leader`, if it leads with a
    /// membership: add each node outside its configuration as a learner,
    /// promote each learner, remove each member (itself too, not the last
    /// voter); and, once its configuration is committed, replace the disk of
    /// any node that does not vote in it. `quorum sim --churn` keeps at most
    /// one node out, so no old configuration can have a majority of nodes
    /// that forgot their votes; here several may be out, so a disk is
    /// replaced only while every node is up and none counts it as a voter.
    fn operator_actions(&self, leader: NodeId, p: &P, actions: &mut Vec<Action>) {
        let Some(conf) = p.membership().filter(|_| p.status().role == Role::Leader) else { return };
        let votes_somewhere = |id: NodeId| {
            self.slots
                .iter()
                .any(|s| s.node.as_ref().is_none_or(|n| n.membership().is_none_or(|c| c.voters.contains(&id))))
        };
        for id in self.members() {
            let change = if conf.learners.contains(&id) {
                MembershipChange::Promote(id)
            } else if !conf.voters.contains(&id) {
                MembershipChange::AddLearner { node: id, address: None }
            } else if conf.voters.len() > 1 {
                MembershipChange::Remove(id)
            } else {
                continue;
            };
            actions.push(Action::Change { leader, change });
            if conf.learners.contains(&id) {
                actions.push(Action::Change { leader, change: MembershipChange::Remove(id) });
            }
            if !conf.voters.contains(&id) && id != leader && p.membership_committed() && !votes_somewhere(id) {
                actions.push(Action::Wipe { node: id, leader });
            }
        }
    }

    /// The fingerprint of the message in flight at `index` (its sender,
    /// receiver and content).
    pub fn message_fingerprint(&self, index: usize) -> u64 {
        self.network[index].hash
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
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply_inner(action)));
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
        self.voters_before.clear();
        if self.changes > 0 {
            let acting = match *action {
                Action::Deliver { index, .. } => Some(self.network[index].to),
                Action::Timer(id) | Action::Sync(id) | Action::Propose { node: id, .. } => Some(id),
                Action::Change { leader, .. } => Some(leader),
                Action::Crash(_) | Action::Restart(_) | Action::Wipe { .. } => None,
            };
            if let Some(id) = acting.filter(|&id| self.slot(id).node.is_some()) {
                self.voters_before = self.voters_at(id);
            }
        }
        match *action {
            Action::Deliver { index, .. } => {
                let m = self.network.remove(index);
                if self.slot(m.to).node.is_none() {
                    return true;
                }
                let msg = Arc::unwrap_or_clone(m.msg);
                let node = self.slot_mut(m.to).node.as_mut().expect("checked live");
                node.on_message(now, m.from, msg, &mut out);
                self.after(m.to, out);
            }
            Action::Timer(id) => {
                self.timers += 1;
                let at = self.slot(id).node.as_ref().and_then(|p| p.next_timer()).expect("listed only with a timer");
                self.now = self.now.max(at);
                let now = self.now;
                let node = self.slot_mut(id).node.as_mut().expect("timers fire on live nodes");
                node.on_timer(now, &mut out);
                self.after(id, out);
            }
            Action::Sync(id) => {
                let slot = self.slot_mut(id);
                let tag = slot.disk.sync_next().expect("listed only with a staged write");
                let released = slot.gate.write_durable();
                slot.node.as_mut().expect("disks sync on live nodes").on_persisted(now, tag, &mut out);
                for (to, msg) in released {
                    self.network.push(InFlight::new(id, to, msg));
                }
                self.after(id, out);
            }
            Action::Crash(id) => {
                self.crashes += 1;
                self.crash(id);
            }
            Action::Restart(id) => {
                self.restarts += 1;
                let disk = self.slot(id).disk.clone();
                let node = self.boot(id, &disk);
                self.slot_mut(id).node = node;
            }
            Action::Propose { node: id, command } => {
                let cmd = Command::new(ClientId(u64::from(command) + 1), 1, format!("v{command}").into_bytes());
                let node = self.slot_mut(id).node.as_mut().expect("proposals go to live nodes");
                if node.propose(now, cmd, &mut out).is_err() {
                    return false;
                }
                self.commands_issued += 1;
                self.after(id, out);
            }
            Action::Change { leader, ref change } => {
                let node = self.slot_mut(leader).node.as_mut().expect("changes go to live leaders");
                if node.change_membership(now, change.clone(), &mut out).is_err() {
                    return false;
                }
                self.changes += 1;
                self.after(leader, out);
            }
            Action::Wipe { node: id, leader } => {
                self.changes += 1;
                let voters = self.slot(leader).node.as_ref().and_then(|p| p.membership()).expect("listed by a leader");
                let voters: Arc<[NodeId]> = voters.voters.as_slice().into();
                if self.slot(id).node.is_some() {
                    self.crash(id);
                }
                *self.slot_mut(id) = Slot::empty(voters);
                self.restarts += 1;
                let node = self.boot(id, &MemStorage::new());
                self.slot_mut(id).node = node;
            }
        }
        true
    }

    /// The node stops: unsynced writes and the messages held for them are
    /// lost, its connections break (what was in flight to or from it is
    /// lost), and its peers are told (as the runtime tells them).
    fn crash(&mut self, id: NodeId) {
        let now = self.now;
        let slot = self.slot_mut(id);
        slot.node = None;
        slot.disk.crash();
        slot.gate.crash();
        self.network.retain(|m| m.from != id && m.to != id);
        for peer in self.members() {
            if self.slot(peer).node.is_none() {
                continue;
            }
            let mut out = Effects::new();
            self.slot_mut(peer).node.as_mut().expect("checked live").on_link_down(now, id, &mut out);
            self.after(peer, out);
        }
    }

    /// Carries out a node's effects and checks what they reveal.
    fn after(&mut self, id: NodeId, mut out: Effects<P::Message>) {
        for effect in out.drain() {
            match effect {
                Effect::Send { to, msg } => self.network.push(InFlight::new(id, to, msg)),
                Effect::SendDurable { to, msg } => {
                    if let Some((to, msg)) = self.slot_mut(id).gate.send(to, msg) {
                        self.network.push(InFlight::new(id, to, msg));
                    }
                }
                Effect::Persist(batch) => {
                    let slot = self.slot_mut(id);
                    slot.disk.stage(batch);
                    slot.gate.write_issued();
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
                        // Applying means a client may have been answered: a
                        // majority of the voters' disks must hold the entry
                        // already, or a crash of the others could take it
                        // back. The voters the node goes by now, or before
                        // this step (the configuration that decided a change).
                        let holds = |v: &&NodeId| self.slot(**v).disk.durable().holds(entry.index, &entry.payload);
                        let voters = self.voters_at(id);
                        let holders = voters.iter().filter(holds).count();
                        let decided_before = !self.voters_before.is_empty()
                            && self.voters_before.iter().filter(holds).count() > self.voters_before.len() / 2;
                        if holders <= voters.len() / 2 && !decided_before {
                            let detail = format!(
                                "{id} applied {:?} at index {} while only {holders} of {} voters' disks held it",
                                entry.payload,
                                entry.index,
                                voters.len()
                            );
                            self.fail("applied entries are durable on a majority", detail);
                        }
                        self.applied.insert(entry.index, entry.payload);
                    }
                },
                Effect::InstallSnapshot(_) | Effect::ReadReady { .. } | Effect::ReadFailed { .. } => {}
                other => unreachable!("an effect this driver does not know: {other:?}"),
            }
        }
    }

    /// The voters of the configuration `id` goes by (every node, for a
    /// protocol whose membership is fixed).
    fn voters_at(&self, id: NodeId) -> Vec<NodeId> {
        match self.slot(id).node.as_ref().and_then(|p| p.membership()) {
            Some(conf) => conf.voters.clone(),
            None => self.members(),
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
        let leading: Vec<_> = self.live().map(|p| p.status()).filter(|s| s.role == Role::Leader).collect();
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
    ///
    /// They were written for the simulator, which shows them every step, and
    /// some learn from one node what they check at another (Zab's integrity
    /// notes what the leader proposed, then checks what followers delivered).
    /// Shown one state, node by node, such an invariant can fail on a
    /// follower only because it has not looked at the leader yet. So a
    /// failure counts only if a fresh invariant fails again whichever node it
    /// is shown first.
    pub fn check_invariants(&mut self) {
        let nodes: Vec<Option<&P>> = self.nodes().collect();
        let n = nodes.len() as u64;
        // The first failure of a fresh set of invariants shown the nodes
        // from `first` on, round the ring.
        let look = |first: u64| {
            let order: Vec<NodeId> = (0..n).map(|k| NodeId((first - 1 + k) % n + 1)).collect();
            P::invariants().into_iter().filter(|inv| inv.judges_one_state()).find_map(|mut inv| {
                inv.founders(&self.founders);
                let e = order.iter().find_map(|&id| inv.check(self.now, id, &nodes).err())?;
                Some(format!("{}: {e}", inv.name()))
            })
        };
        let failed = look(1).filter(|_| (2..=n).all(|first| look(first).is_some()));
        if let Some(detail) = failed {
            self.fail("protocol invariants", detail);
        }
    }

    /// A 64-bit fingerprint of everything that decides the future: the nodes,
    /// disks, held and in-flight messages (as a multiset unless links are
    /// FIFO), the ghost record and the bound counters.
    pub fn fingerprint(&mut self) -> u64 {
        for (slot, cached) in self.slots.iter().zip(&mut self.slot_hashes) {
            if cached.is_none() {
                let mut h = hasher();
                (&slot.node, &slot.disk, &slot.gate, &slot.join).hash(&mut h);
                *cached = Some(h.finish());
            }
        }
        let mut h = hasher();
        self.now.hash(&mut h);
        self.slot_hashes.hash(&mut h);
        let mut msgs: Vec<u64> = self.network.iter().map(|m| m.hash).collect();
        if P::LINKS != LinkKind::Fifo {
            msgs.sort_unstable();
        }
        msgs.hash(&mut h);
        (&self.applied, &self.leaders).hash(&mut h);
        (self.commands_issued, self.crashes, self.timers, self.changes, self.restarts).hash(&mut h);
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
    /// Operator actions: membership changes and disk replacements.
    pub changes: u32,
}

/// The hasher of fingerprints: fast on many small writes, of good quality,
/// and seeded the same in every run (so searches are repeatable).
fn hasher() -> impl Hasher {
    foldhash::quality::FixedState::with_seed(0x9e37_79b9_7f4a_7c15).build_hasher()
}
