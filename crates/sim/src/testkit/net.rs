//! A hand-driven network for tests and examples: no clock advances unless
//! asked, no message moves unless delivered, so a test can craft the exact
//! schedule a paper's figure describes (an Accept overtaken by a Prepare, a
//! proposer crashing between its Accepts). Disks are instant: a write is
//! durable as soon as it is issued, and `on_persisted` follows at once.
//! The deterministic simulator (`quorum-sim`) is the tool for random schedules.

use quorum_core::{
    Command, Duration, Effect, Effects, Entry, Init, Instant, MemStorage, NodeId, Protocol, Stamp, Storage,
};
use std::collections::VecDeque;

/// A message on its way.
#[derive(Clone, Debug)]
pub struct Envelope<M> {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The message.
    pub msg: M,
}

/// A cluster of protocol nodes on a hand-driven network.
pub struct Net<P: Protocol> {
    /// `nodes[i]` is node `i + 1`; `None` while crashed.
    pub nodes: Vec<Option<P>>,
    storage: Vec<MemStorage>,
    config: P::Config,
    /// The current time.
    pub now: Instant,
    /// Messages sent and not yet delivered, oldest first.
    pub in_flight: VecDeque<Envelope<P::Message>>,
    /// What each node has committed, by index (re-emissions after a restart are checked, not appended).
    pub committed: Vec<Vec<Entry>>,
    /// Messages delivered so far.
    pub delivered: u64,
    /// What the network saw, kept only after [`Net::record`].
    pub recorded: Option<Recorded<P::Message>>,
    seed: u64,
    boots: u64,
}

/// Every effect each node produced and every message delivered, in order.
#[derive(Clone, Debug)]
pub struct Recorded<M> {
    /// `(node, effect)`, as the node emitted it.
    pub effects: Vec<(NodeId, Effect<M>)>,
    /// Messages delivered (to live nodes).
    pub delivered: Vec<Envelope<M>>,
}

impl<P: Protocol> Net<P> {
    /// `n` fresh nodes with ids 1..=n.
    pub fn new(n: u64, config: P::Config, seed: u64) -> Self {
        let mut net = Net::from_nodes((0..n).map(|_| None).collect(), config, Instant::ZERO);
        net.seed = seed;
        for id in 1..=n {
            let node = net.boot(NodeId(id));
            net.nodes[Self::index(NodeId(id))] = Some(node);
        }
        net
    }

    /// A network of nodes a test built and brought to some state by hand
    /// (`nodes[i]` is node `i + 1`, `None` for one that is down), at time
    /// `now`. Their disks start empty here: a node restarted later boots
    /// from what it writes from now on.
    pub fn from_nodes(nodes: Vec<Option<P>>, config: P::Config, now: Instant) -> Self {
        let n = nodes.len();
        Net {
            nodes,
            storage: vec![MemStorage::new(); n],
            config,
            now,
            in_flight: VecDeque::new(),
            committed: vec![Vec::new(); n],
            delivered: 0,
            recorded: None,
            seed: 0,
            boots: 0,
        }
    }

    /// From now on, keeps every effect and every delivered message in
    /// [`Net::recorded`].
    pub fn record(&mut self) {
        self.recorded = Some(Recorded { effects: Vec::new(), delivered: Vec::new() });
    }

    fn boot(&mut self, id: NodeId) -> P {
        self.boots += 1;
        let members = (1..=self.storage.len() as u64).map(NodeId).collect();
        let stored = self.storage[Self::index(id)].load().expect("memory storage loads");
        let seed = self.seed.wrapping_mul(1000).wrapping_add(self.boots * 31 + id.0);
        P::new(Init { id, members, config: self.config.clone(), stored, seed, now: self.now })
            .expect("a node restarts from what it stored")
    }

    fn index(id: NodeId) -> usize {
        (id.0 - 1) as usize
    }

    /// The node, if up.
    pub fn node(&self, id: NodeId) -> Option<&P> {
        self.nodes[Self::index(id)].as_ref()
    }

    /// The node, mutably, if up.
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut P> {
        self.nodes[Self::index(id)].as_mut()
    }

    /// Runs `input` on node `id` (if up) and carries out its effects.
    pub fn with_node<R>(
        &mut self,
        id: NodeId,
        input: impl FnOnce(&mut P, Instant, &mut Effects<P::Message>) -> R,
    ) -> Option<R> {
        let now = self.now;
        let mut out = Effects::new();
        let result = input(self.nodes[Self::index(id)].as_mut()?, now, &mut out);
        self.carry_out(id, out);
        Some(result)
    }

    fn carry_out(&mut self, id: NodeId, out: Effects<P::Message>) {
        let mut pending = VecDeque::from([out]);
        while let Some(mut out) = pending.pop_front() {
            let mut tags = Vec::new();
            for effect in out.drain() {
                if let Some(recorded) = self.recorded.as_mut() {
                    recorded.effects.push((id, effect.clone()));
                }
                match effect {
                    Effect::Send { to, msg } | Effect::SendDurable { to, msg } => {
                        self.in_flight.push_back(Envelope { from: id, to, msg })
                    }
                    Effect::Persist(batch) => {
                        tags.push(batch.tag);
                        self.storage[Self::index(id)].write(&[batch]).expect("memory storage writes");
                    }
                    Effect::Commit(entry) => self.record_commit(id, entry),
                    // The snapshot's entries stay unknown here (placeholders), later commits continue after it.
                    Effect::InstallSnapshot(_) => {}
                    Effect::ReadReady { .. } | Effect::ReadFailed { .. } => {}
                    other => unreachable!("an effect this driver does not know: {other:?}"),
                }
            }
            for tag in tags {
                let now = self.now;
                let mut next = Effects::new();
                if let Some(node) = self.nodes[Self::index(id)].as_mut() {
                    node.on_persisted(now, tag, &mut next);
                }
                pending.push_back(next);
            }
        }
    }

    fn record_commit(&mut self, id: NodeId, entry: Entry) {
        let log = &mut self.committed[Self::index(id)];
        let index = entry.index as usize;
        if index <= log.len() {
            let known = &mut log[index - 1];
            if known.stamp == Stamp::ZERO {
                *known = entry;
            } else if known.payload != entry.payload {
                panic!("{id} re-committed index {index} with a different value: {entry:?} vs {known:?}");
            }
            return;
        }
        while log.len() + 1 < index {
            // Covered by a snapshot: unknown here, filled with a placeholder of the right index.
            let missing = log.len() as u64 + 1;
            log.push(Entry::noop(missing, Stamp::ZERO));
        }
        log.push(entry);
    }

    /// Proposes `cmd` at node `id`.
    pub fn propose(&mut self, id: NodeId, cmd: Command) -> Result<(), quorum_core::ProposeError> {
        self.with_node(id, |node, now, out| node.propose(now, cmd, out)).expect("proposing at a crashed node")
    }

    /// Delivers the in-flight message at `position`. Returns false if there is none.
    pub fn deliver_at(&mut self, position: usize) -> bool {
        let Some(env) = self.in_flight.remove(position) else { return false };
        self.delivered += 1;
        if let Some(recorded) = self.recorded.as_mut().filter(|_| self.nodes[Self::index(env.to)].is_some()) {
            recorded.delivered.push(env.clone());
        }
        self.with_node(env.to, |node, now, out| node.on_message(now, env.from, env.msg, out));
        true
    }

    /// Delivers the oldest message matching `pick`. Returns false if there is none.
    pub fn deliver_first(&mut self, pick: impl Fn(&Envelope<P::Message>) -> bool) -> bool {
        match self.in_flight.iter().position(pick) {
            Some(position) => self.deliver_at(position),
            None => false,
        }
    }

    /// Drops every in-flight message matching `pick`; returns how many.
    pub fn drop_where(&mut self, pick: impl Fn(&Envelope<P::Message>) -> bool) -> usize {
        let before = self.in_flight.len();
        self.in_flight.retain(|env| !pick(env));
        before - self.in_flight.len()
    }

    /// The earliest timer of a live node.
    pub fn next_timer(&self) -> Option<Instant> {
        self.nodes.iter().flatten().filter_map(|n| n.next_timer()).min()
    }

    /// Advances time to the earliest timer (never backwards) and fires every timer due.
    /// Returns false when no node has a timer.
    pub fn fire_timers(&mut self) -> bool {
        let Some(at) = self.next_timer() else { return false };
        self.now = self.now.max(at);
        for i in 0..self.nodes.len() {
            let id = NodeId(i as u64 + 1);
            let due = self.node(id).and_then(|n| n.next_timer()).is_some_and(|t| t <= self.now);
            if due {
                self.with_node(id, |node, now, out| node.on_timer(now, out));
            }
        }
        true
    }

    /// Delivers everything in order, then fires timers, until `deadline` or until
    /// `done` holds. Returns whether `done` held.
    pub fn run_until(&mut self, deadline: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let end = self.now + deadline;
        loop {
            if done(self) {
                return true;
            }
            if self.deliver_at(0) {
                continue;
            }
            let Some(at) = self.next_timer() else { return done(self) };
            if at > end {
                return done(self);
            }
            self.fire_timers();
        }
    }

    /// Crashes node `id`: it loses everything but its storage.
    pub fn crash(&mut self, id: NodeId) {
        self.nodes[Self::index(id)] = None;
    }

    /// Restarts a crashed node from its storage.
    pub fn restart(&mut self, id: NodeId) {
        assert!(self.node(id).is_none(), "{id} is up");
        let node = self.boot(id);
        self.nodes[Self::index(id)] = Some(node);
    }

    /// Panics unless every two nodes' committed logs agree where both have an entry.
    pub fn assert_logs_agree(&self) {
        for a in &self.committed {
            for b in &self.committed {
                for (x, y) in a.iter().zip(b.iter()).filter(|(x, y)| x.stamp != Stamp::ZERO && y.stamp != Stamp::ZERO) {
                    assert_eq!(x.payload, y.payload, "logs disagree at index {}", x.index);
                }
            }
        }
    }
}
