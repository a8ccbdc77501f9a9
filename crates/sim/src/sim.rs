//! The simulator: one event loop over virtual time.

use crate::client::{Answer, Client, Request};
use crate::clock::Clock;
use crate::config::SimConfig;
use crate::faults::FaultEvent;
use crate::history::Operation;
use crate::host::Host;
use crate::network::Network;
use crate::queue::EventQueue;
use crate::report::{Metrics, Report, Violation};
use crate::trace::{Trace, What};
use crate::Workload;
use quorum_core::{
    Command, Duration, Effects, Entry, Instant, Invariant, KvStore, NodeId, NotLeader, ProposeError, Protocol, Rng,
    Role, Status,
};

/// Everything that can happen at an instant. A `Timer` is a wake-up for a
/// node's protocol timer, queued for `at`: it fires the timer if due by then,
/// else queues a wake-up for the deadline (`Sim::arm_timer`).
pub(crate) enum Event<M> {
    Deliver { from: usize, to: usize, msg: M, epoch: u64, sent: Instant },
    LinkDown { node: usize, peer: usize, incarnation: u64 },
    Timer { node: usize, incarnation: u64, at: Instant },
    DiskSynced { node: usize, incarnation: u64 },
    Request { node: usize, req: Request },
    Answer { node: usize, client: usize, seq: u64, answer: Answer, sent: Instant },
    ClientRetry { client: usize, seq: u64, attempt: u32, retarget: bool },
    ClientNext { client: usize },
    Arrival,
    Fault(FaultEvent),
    Operate,
    EndOfLoad,
}

/// A drop filter for crafted schedules: return true to drop the message.
pub type DropFilter<M> = Box<dyn FnMut(NodeId, NodeId, &M) -> bool>;

thread_local! {
    /// The seed and virtual time of the event this thread is running, for
    /// log lines written while a simulation runs (see [`sim_clock`]).
    static SIM_CLOCK: std::cell::Cell<Option<(u64, Instant)>> = const { std::cell::Cell::new(None) };
}

/// The seed and virtual time of the simulated event this thread is running,
/// if it is running one: a log formatter stamps events with it.
pub fn sim_clock() -> Option<(u64, Instant)> {
    SIM_CLOCK.with(|c| c.get())
}

/// A deterministic simulation of one cluster running protocol `P`.
///
/// Build it with [`Sim::new`], then either call [`Sim::run`] for a whole
/// configured run (workload, faults, drain, final checks) or script a scenario
/// with [`Sim::run_for`], [`Sim::crash`], [`Sim::partition`], [`Sim::propose`]
/// and friends, inspecting nodes with [`Sim::node`] and [`Sim::status`].
/// Protocol-specific actions (membership changes, leadership transfer) run
/// through [`Sim::act`], or at random times through an operator
/// ([`Sim::set_operator`]).
///
/// `W` is the replicated state machine and its client workload: the
/// key-value store by default, or any [`Workload`] of yours.
pub struct Sim<P: Protocol, W: Workload = KvStore> {
    pub(crate) config: SimConfig,
    pub(crate) protocol_config: P::Config,
    pub(crate) now: Instant,
    pub(crate) rng: Rng,
    pub(crate) queue: EventQueue<Event<P::Message>>,
    pub(crate) protos: Vec<Option<P>>,
    pub(crate) hosts: Vec<Host<P::Message, W>>,
    pub(crate) members: Vec<NodeId>,
    pub(crate) net: Network,
    pub(crate) clients: Vec<Client<W::Op>>,
    pub(crate) history: Vec<Operation<W::Op, W::Output>>,
    pub(crate) invariants: Vec<Box<dyn Invariant<P>>>,
    /// For each log index, the payload fingerprint applied there first, and by whom.
    pub(crate) applied_at: Vec<Option<(u64, NodeId)>>,
    /// Log indexes whose command was acknowledged to a client.
    pub(crate) acked: Vec<bool>,
    pub(crate) violations: Vec<Violation>,
    pub(crate) trace: Trace,
    pub(crate) metrics: Metrics,
    pub(crate) out: Effects<P::Message>,
    pub(crate) encode_buf: Vec<u8>,
    pub(crate) events: u64,
    pub(crate) drop_filter: Option<DropFilter<P::Message>>,
    pub(crate) load_running: bool,
    pub(crate) next_read_id: u64,
    /// Cumulative probabilities of the keys (empty: uniform).
    pub(crate) key_cdf: Vec<f64>,
    pub(crate) last_proposer: Option<NodeId>,
    pub(crate) operator: Option<crate::operator::OperatorSlot<P, W>>,
    /// The committed log and what each answer said, for the session check.
    pub(crate) sessions: crate::session::SessionLog,
    /// The committed log replayed, to check snapshots and final states against.
    pub(crate) reference: crate::reference::Reference<W>,
}

impl<P: Protocol, W: Workload> Sim<P, W> {
    /// A cluster of `config.nodes` fresh nodes at time zero. No workload or
    /// faults run until [`Sim::run`] or [`Sim::start_workload`].
    pub fn new(config: SimConfig, protocol_config: P::Config) -> Self {
        let mut rng = Rng::new(config.seed);
        let n = config.nodes;
        let kind = config.network.links.unwrap_or(P::LINKS);
        let members: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
        // Clocks from a stream of their own, so that the main one is unchanged.
        let mut clock_rng = Rng::new(config.seed ^ 0xC10C_5EED_C10C_5EED);
        let clocks: Vec<Clock> = (0..n).map(|_| Clock::random(&mut clock_rng, &config.clocks)).collect();
        let mut sim = Sim {
            net: Network::new(n, kind, &config.network),
            trace: Trace::new(config.trace),
            hosts: (0..n).map(|i| Host::new(members[i], rng.fork(i as u64), clocks[i])).collect(),
            protos: (0..n).map(|_| None).collect(),
            members,
            now: Instant::ZERO,
            queue: EventQueue::new(),
            clients: Vec::new(),
            history: Vec::new(),
            invariants: P::invariants(),
            applied_at: Vec::new(),
            acked: Vec::new(),
            violations: Vec::new(),
            metrics: Metrics::default(),
            out: Effects::new(),
            encode_buf: Vec::new(),
            events: 0,
            drop_filter: None,
            load_running: false,
            next_read_id: 0,
            key_cdf: Vec::new(),
            last_proposer: None,
            operator: None,
            sessions: Default::default(),
            reference: Default::default(),
            rng,
            config,
            protocol_config,
        };
        for i in 0..n {
            sim.boot(i);
        }
        sim
    }

    /// The run's settings.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The protocol state of a live node (`None` while it is crashed).
    pub fn node(&self, id: NodeId) -> Option<&P> {
        self.protos.get(self.index(id))?.as_ref()
    }

    /// Status of a live node.
    pub fn status(&self, id: NodeId) -> Option<Status> {
        self.node(id).map(|p| p.status())
    }

    /// The live leader with the highest term, if any node thinks it leads.
    pub fn leader(&self) -> Option<NodeId> {
        self.protos
            .iter()
            .flatten()
            .map(|p| p.status())
            .filter(|s| s.role == Role::Leader)
            .max_by_key(|s| (s.term, s.id))
            .map(|s| s.id)
    }

    /// Every node's id. Which of them vote is the protocol's business: with
    /// membership changes ([`Sim::act`]) some may be learners or removed.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// True if the node is up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.node(id).is_some()
    }

    /// Entries the node has applied since it last (re)started, in index order.
    /// After a snapshot install the list restarts above the snapshot.
    pub fn committed(&self, id: NodeId) -> &[Entry] {
        &self.hosts[self.index(id)].applied
    }

    /// The last `n` entries on node `id`'s disk (synced, not only staged),
    /// oldest first: its log tail, committed or not (a Raft log, a Zab
    /// history, the slots a Paxos acceptor accepted).
    pub fn disk_tail(&self, id: NodeId, n: usize) -> Vec<Entry> {
        self.hosts[self.index(id)].storage.durable().last_entries(n).into_iter().cloned().collect()
    }

    /// The highest index the node has applied.
    pub fn applied_index(&self, id: NodeId) -> u64 {
        self.hosts[self.index(id)].applied_index
    }

    /// The node's state machine.
    pub fn state(&self, id: NodeId) -> &W {
        &self.hosts[self.index(id)].state
    }

    /// Safety violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The trace (events are kept only with `config.trace`; the hash always).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Counters and latencies so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The client history so far.
    pub fn history(&self) -> &[Operation<W::Op, W::Output>] {
        &self.history
    }

    /// Drops every message for which `filter(from, to, msg)` returns true, until cleared.
    pub fn set_drop_filter(&mut self, filter: impl FnMut(NodeId, NodeId, &P::Message) -> bool + 'static) {
        self.drop_filter = Some(Box::new(filter));
    }

    /// Removes the drop filter.
    pub fn clear_drop_filter(&mut self) {
        self.drop_filter = None;
    }

    /// Adds `delay` to every message to or from `id` (a slow node).
    pub fn set_node_delay(&mut self, id: NodeId, delay: Duration) {
        let i = self.index(id);
        self.net.set_extra_delay(i, delay);
    }

    /// Hands a command to a node as if a client had sent it (no reply is tracked).
    pub fn propose(&mut self, id: NodeId, cmd: Command) -> Result<(), ProposeError> {
        let i = self.index(id);
        let now = self.local_now(i);
        let mut out = std::mem::take(&mut self.out);
        let result = match self.protos[i].as_mut() {
            Some(p) => p.propose(now, cmd, &mut out),
            None => Err(NotLeader { leader_hint: None }.into()),
        };
        self.out = out;
        self.after_step(i);
        result
    }

    /// When the next event is due, if any is.
    pub fn next_event_at(&self) -> Option<Instant> {
        self.queue.peek_time()
    }

    /// Runs one event. Returns false when nothing is left to run.
    pub fn step(&mut self) -> bool {
        let Some((at, event)) = self.queue.pop() else { return false };
        debug_assert!(at >= self.now, "time went backwards");
        self.now = at;
        SIM_CLOCK.with(|c| c.set(Some((self.config.seed, at))));
        self.events += 1;
        self.dispatch(event);
        true
    }

    /// Runs every event up to and including `deadline`, then sets the clock to it.
    pub fn run_until_time(&mut self, deadline: Instant) {
        while self.queue.peek_time().is_some_and(|t| t <= deadline) && self.events < self.config.max_events {
            self.step();
        }
        self.now = self.now.max(deadline);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until_time(self.now + d);
    }

    /// Runs until `cond` holds (checked after every event) or `limit` passes.
    /// Returns whether `cond` held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let deadline = self.now + limit;
        loop {
            if cond(self) {
                return true;
            }
            match self.queue.peek_time() {
                Some(t) if t <= deadline && self.events < self.config.max_events => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return cond(self);
                }
            }
        }
    }

    /// Starts the configured workload and fault plan from now on.
    pub fn start_workload(&mut self) {
        let start = self.now;
        self.load_running = true;
        if let crate::config::KeyDistribution::Zipf(s) = self.config.clients.key_distribution {
            let weights: Vec<f64> = (1..=self.config.clients.keys.max(1)).map(|k| 1.0 / (k as f64).powf(s)).collect();
            let total: f64 = weights.iter().sum();
            let mut acc = 0.0;
            self.key_cdf = weights
                .iter()
                .map(|w| {
                    acc += w / total;
                    acc
                })
                .collect();
        }
        if self.config.clients.rate.is_some() {
            self.queue.push(start, Event::Arrival);
        } else {
            for c in 0..self.config.clients.count {
                self.clients.push(Client::new(c, self.config.nodes));
                // Stagger the clients a little so they do not all fire at one instant.
                let jitter = Duration::from_micros(self.rng.range(0, 1000));
                self.queue.push(start + jitter, Event::ClientNext { client: c });
            }
        }
        self.schedule_faults(start);
        self.schedule_operator();
        self.queue.push(start + self.config.duration, Event::EndOfLoad);
    }

    /// A whole run: workload and faults for `duration`, then heal, restart
    /// everything and drain for `drain`, then the final checks.
    pub fn run(mut self) -> Report<W::Op, W::Output> {
        let started = std::time::Instant::now();
        self.start_workload();
        let half_drain = Duration::from_nanos(self.config.drain.as_nanos() / 2);
        let mark = self.now + self.config.duration + half_drain;
        let end = self.now + self.config.duration + self.config.drain;
        // Halfway through the drain, the furthest any node has applied: what
        // every node must have reached by the end (commits made later, by an
        // election in the drain, may still be on their way).
        self.run_until_time(mark);
        let target = self.furthest_applied();
        self.run_until_time(end);
        if self.events >= self.config.max_events {
            let detail = format!("stopped after {} events at {}: a livelock or message storm", self.events, self.now);
            self.violation("event budget", detail);
        } else {
            self.check_final_states(target);
        }
        self.finish(started.elapsed())
    }

    pub(crate) fn index(&self, id: NodeId) -> usize {
        let i = id.0.checked_sub(1).expect("node ids start at 1") as usize;
        assert!(i < self.hosts.len(), "no node {id} in a cluster of {}", self.hosts.len());
        i
    }

    pub(crate) fn violation(&mut self, check: &str, detail: String) {
        if !self.checking() {
            return; // forged messages may make a node do anything: see `checking`
        }
        tracing::warn!(check, %detail, at = %self.now, "safety violation");
        self.trace.record(self.now, || What::Violation { check: check.to_string(), detail: detail.clone() });
        self.violations.push(Violation { at: self.now, check: check.to_string(), detail });
    }

    /// Freezes a node like a stopped process (SIGSTOP): it handles nothing —
    /// no messages, timers or disk completions — but its connections stay open,
    /// so only timeouts can tell. Everything addressed to it waits for [`Sim::thaw`].
    pub fn freeze(&mut self, id: NodeId) {
        let i = self.index(id);
        self.hosts[i].frozen = true;
        self.trace.mix_u64s(&[12, self.now.as_nanos(), id.0]);
        self.trace.record(self.now, || What::Partition { cut: format!("{id} frozen") });
    }

    /// Resumes a frozen node; what waited for it is handled now: first the
    /// messages, requests and disk completions, in order, then the timers
    /// that fell due while it slept. A resumed process finds its sockets
    /// readable and its timers expired at once, and may well read first;
    /// this order is the hard one, because a node may act on what arrived
    /// before its own timers tell it how long it was away.
    pub fn thaw(&mut self, id: NodeId) {
        let i = self.index(id);
        if !self.hosts[i].frozen {
            return;
        }
        self.hosts[i].frozen = false;
        self.trace.mix_u64s(&[13, self.now.as_nanos(), id.0]);
        self.trace.record(self.now, || What::Partition { cut: format!("{id} thawed") });
        let (timers, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.hosts[i].held).into_iter().partition(|e| matches!(e, Event::Timer { .. }));
        for event in rest.into_iter().chain(timers) {
            self.queue.push(self.now, event);
        }
    }

    /// Whether node `id` is frozen ([`Sim::freeze`]).
    pub fn is_frozen(&self, id: NodeId) -> bool {
        self.hosts[self.index(id)].frozen
    }

    /// When node `id`'s protocol timer fires next, in true (simulated) time:
    /// the election or heartbeat deadline a picture draws.
    pub fn next_timer(&self, id: NodeId) -> Option<Instant> {
        let host = &self.hosts[self.index(id)];
        host.timer_at.map(|at| host.clock.true_time(at))
    }

    /// How many timer wake-ups wait in the event queue, for all nodes
    /// together: a few per node, however often its deadline moves later.
    pub fn timer_wakeups_queued(&self) -> usize {
        self.queue.iter().filter(|(_, e)| matches!(e, Event::Timer { .. })).count()
    }

    /// The node that most recently accepted a client command (who to crash in
    /// a leaderless protocol).
    pub fn last_proposer(&self) -> Option<NodeId> {
        self.last_proposer
    }

    fn target_node(event: &Event<P::Message>) -> Option<usize> {
        match event {
            Event::Deliver { to, .. } => Some(*to),
            Event::LinkDown { node, .. }
            | Event::Timer { node, .. }
            | Event::DiskSynced { node, .. }
            | Event::Request { node, .. } => Some(*node),
            _ => None,
        }
    }

    fn dispatch(&mut self, event: Event<P::Message>) {
        if let Some(node) = Self::target_node(&event) {
            if self.hosts[node].frozen {
                self.hosts[node].held.push(event);
                return;
            }
        }
        match event {
            Event::Deliver { from, to, msg, epoch, sent } => self.deliver(from, to, msg, epoch, sent),
            Event::LinkDown { node, peer, incarnation } => self.link_down(node, peer, incarnation),
            Event::Timer { node, incarnation, at } => self.timer(node, incarnation, at),
            Event::DiskSynced { node, incarnation } => self.disk_synced(node, incarnation),
            Event::Request { node, req } => self.request(node, req),
            Event::Answer { node, client, seq, answer, .. } => self.answer(node, client, seq, answer),
            Event::ClientRetry { client, seq, attempt, retarget } => self.client_retry(client, seq, attempt, retarget),
            Event::ClientNext { client } => self.client_next(client),
            Event::Arrival => self.arrival(),
            Event::Fault(f) => self.fault(f),
            Event::Operate => self.operate(),
            Event::EndOfLoad => self.end_of_load(),
        }
    }
}

impl<P: Protocol> Sim<P> {
    /// The node's key-value store.
    pub fn kv(&self, id: NodeId) -> &KvStore {
        self.state(id)
    }
}
