//! The node driver: one task that owns the protocol.
//!
//! Every input — a peer message, a timer, a client request, a write made
//! durable — is handed to the protocol, and the [`Effects`] it returns are
//! carried out in order:
//!
//! - `Send` leaves at once; `SendDurable` waits in a [`DurabilityGate`] until
//!   every write issued before it is on disk (Raft thesis §3.8).
//! - `Persist` goes to the storage thread, which group-commits whatever is
//!   queued with one fsync while this task goes on: the leader's own write runs
//!   in parallel with sending the same entries to followers (thesis §10.2.1).
//! - `Commit` is applied to the state machine, any [`Service`] ([`KvStore`] by
//!   default), skipping indexes already applied (a restarted node may be
//!   handed its snapshot's entries again), and the client waiting on that
//!   `(client, seq)` is answered with `apply`'s bytes.
//! - `ReadReady { index }` answers a query once the state machine has applied `index`.
//!
//! Client requests that arrive together are proposed together, so their
//! entries share messages and fsyncs. Every 50 ms the leader also proposes
//! what the state machine asks for its upkeep (`upkeep.rs`: expired keys).
//! Every `snapshot_every` applied entries the state machine is snapshotted
//! and handed to the protocol (`on_snapshot`).

mod handle;
mod membership;
mod requests;
mod upkeep;

pub use handle::{AdminAction, NodeHandle, NodeStatus, Request};
pub use upkeep::unix_millis;

use crate::metrics::{NodeMetrics, NodeView};
use crate::service::Service;
use crate::storage_thread::{Durable, StorageThread};
use crate::tcp::PeerDirectory;
use crate::wire::{Outcome, Wire};
use quorum_core::Role;
use quorum_core::{
    Bytes, ClientId, DurabilityGate, Effect, Effects, Entry, Incoming, Init, InitError, Instant, KvStore, NodeId,
    Payload, Protocol, ReadId, Storage, StorageError, Transport,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

/// Client requests drained from the queue before the effects are carried out.
const MAX_REQUESTS_PER_STEP: usize = 512;
/// Client requests queued for the node task before clients wait.
const REQUEST_QUEUE: usize = 8192;
/// How long a stopping leader waits for its leadership to pass to a peer.
const HAND_OFF_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings of a node driver.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Every voting member, this node included.
    pub members: Vec<NodeId>,
    /// Snapshot the state machine every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// A follower forwards client requests to the leader (`true`) or answers
    /// with a redirect naming it (`false`).
    pub forward: bool,
    /// Answer queries (GET) from the local state without the protocol (not linearizable).
    pub local_reads: bool,
    /// A request not answered within this time gets a retryable error.
    pub request_timeout: Duration,
    /// Client addresses of peers, for redirects (filled by the transport).
    pub directory: PeerDirectory,
    /// Peer addresses of the founding members (`--peers`), for `QUORUM MEMBERS`.
    pub peer_addresses: BTreeMap<NodeId, String>,
    /// Seed for the protocol's random choices.
    pub seed: u64,
}

impl NodeConfig {
    /// Defaults for everything but the membership.
    pub fn new(id: NodeId, members: Vec<NodeId>) -> Self {
        NodeConfig {
            id,
            members,
            snapshot_every: 10_000,
            forward: true,
            local_reads: false,
            request_timeout: Duration::from_secs(2),
            directory: PeerDirectory::default(),
            peer_addresses: BTreeMap::new(),
            seed: id.0,
        }
    }
}

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage failed; running on could lose acknowledged data.
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    /// The snapshot in storage is not a valid image of the state machine.
    #[error("snapshot cannot be restored: {0}")]
    Snapshot(String),
    /// The protocol refused to start from what storage recovered.
    #[error("cannot start: {0}")]
    Init(#[from] InitError),
    /// The transport closed.
    #[error("the peer transport closed")]
    TransportClosed,
}

/// Who waits for an answer.
enum Waiter {
    /// A client connected to this node.
    Local(oneshot::Sender<Outcome>),
    /// A client of a follower that forwarded the request here.
    Remote { from: NodeId, id: u64 },
}

/// A query waiting for the protocol's `ReadReady`.
struct PendingRead {
    query: Bytes,
    client: ClientId,
    seq: u64,
    waiter: Waiter,
    deadline: tokio::time::Instant,
}

/// A running node: the protocol, its storage, its transport and its state
/// machine `M`, the key-value store unless the embedding program brings its own.
pub struct Node<P: Protocol, T, M = KvStore> {
    config: NodeConfig,
    protocol: P,
    transport: T,
    storage: StorageThread,
    durable_rx: mpsc::UnboundedReceiver<Durable>,
    requests: mpsc::Receiver<Request>,
    machine: M,
    applied: u64,
    last_snapshot: u64,
    gate: DurabilityGate<P::Message>,
    out: Effects<P::Message>,
    queue: VecDeque<Effect<P::Message>>,
    epoch: tokio::time::Instant,
    pending: HashMap<(ClientId, u64), (Waiter, tokio::time::Instant)>,
    reads: HashMap<ReadId, PendingRead>,
    ready_reads: BTreeMap<u64, Vec<(Bytes, Waiter)>>,
    forwards: HashMap<u64, (NodeId, oneshot::Sender<Outcome>, tokio::time::Instant)>,
    next_id: u64,
    metrics: Arc<NodeMetrics>,
    view: watch::Sender<NodeView>,
    /// Membership changes proposed here, waiting to commit.
    changes: Vec<membership::PendingChange>,
    /// The peer addresses of the configuration last seen (see `meet_new_members`).
    addresses_seen: Vec<(NodeId, String)>,
}

impl<P, T, M> Node<P, T, M>
where
    P: Protocol,
    T: Transport<Wire<P::Message>>,
    M: Service,
{
    /// Recovers a node from `storage`, with an empty state machine, and prepares it to run.
    pub fn new<S: Storage + Send + 'static>(
        config: NodeConfig,
        protocol_config: P::Config,
        transport: T,
        storage: S,
    ) -> Result<(Self, NodeHandle), NodeError>
    where
        M: Default,
    {
        Self::with_machine(config, protocol_config, transport, storage, M::default())
    }

    /// Recovers a node from `storage` around `machine` (empty: the snapshot in
    /// storage, if any, replaces its state) and prepares it to run.
    pub fn with_machine<S: Storage + Send + 'static>(
        config: NodeConfig,
        protocol_config: P::Config,
        transport: T,
        storage: S,
        mut machine: M,
    ) -> Result<(Self, NodeHandle), NodeError> {
        let stored = storage.load()?;
        let mut applied = 0;
        if let Some(snapshot) = &stored.snapshot {
            machine.restore(&snapshot.data).map_err(|e| NodeError::Snapshot(e.to_string()))?;
            applied = snapshot.index;
        }
        info!(id = %config.id, protocol = P::NAME, entries = stored.entries.len(), applied, "node recovered");
        let epoch = tokio::time::Instant::now();
        let init = Init {
            id: config.id,
            members: config.members.clone(),
            config: protocol_config,
            stored,
            seed: config.seed,
            now: Instant::ZERO,
        };
        let protocol = P::new(init)?;
        let metrics = Arc::new(NodeMetrics::default());
        let (storage, durable_rx) = StorageThread::spawn(storage, metrics.clone());
        let (tx, requests) = mpsc::channel(REQUEST_QUEUE);
        let (view, view_rx) = watch::channel(view_of::<P>(&protocol, applied));
        let handle = NodeHandle { id: config.id, tx, view: view_rx, metrics: metrics.clone() };
        let node = Node {
            config,
            protocol,
            transport,
            storage,
            durable_rx,
            requests,
            machine,
            applied,
            last_snapshot: applied,
            gate: DurabilityGate::new(),
            out: Effects::new(),
            queue: VecDeque::new(),
            epoch,
            pending: HashMap::new(),
            reads: HashMap::new(),
            ready_reads: BTreeMap::new(),
            forwards: HashMap::new(),
            next_id: 1,
            metrics,
            view,
            changes: Vec::new(),
            addresses_seen: Vec::new(),
        };
        Ok((node, handle))
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
    }

    fn timer_deadline(&self) -> Option<tokio::time::Instant> {
        let at = self.protocol.next_timer()?;
        Some(self.epoch + Duration::from_nanos(at.as_nanos()))
    }

    /// Runs until `shutdown` completes or the node fails. On `shutdown` a
    /// leader first hands leadership to an up-to-date peer where its protocol
    /// can (`Protocol::hand_off`), for at most `HAND_OFF_TIMEOUT`, so that
    /// the cluster does not wait out an election timeout; then whoever still
    /// waits on this node is told to retry.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        tokio::pin!(shutdown);
        let mut sweep = tokio::time::interval(Duration::from_millis(50));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut handing_off: Option<tokio::time::Instant> = None;
        loop {
            let timer = self.timer_deadline();
            tokio::select! {
                _ = &mut shutdown, if handing_off.is_none() => {
                    let now = self.now();
                    if !self.protocol.hand_off(now, &mut self.out) {
                        break;
                    }
                    info!(id = %self.config.id, "stopping: handing leadership to a peer first");
                    handing_off = Some(tokio::time::Instant::now() + HAND_OFF_TIMEOUT);
                }
                _ = tokio::time::sleep_until(handing_off.unwrap_or_else(far_future)), if handing_off.is_some() => {
                    warn!(id = %self.config.id, "stopping: leadership not handed off within {HAND_OFF_TIMEOUT:?}");
                    break;
                }
                durable = self.durable_rx.recv() => {
                    let tags = durable.ok_or(StorageError::Io {
                        context: "storage thread stopped".into(),
                        source: std::io::ErrorKind::BrokenPipe.into(),
                    })??;
                    self.on_durable(tags);
                }
                incoming = self.transport.recv() => match incoming {
                    Some(incoming) => self.on_incoming(incoming).await,
                    None => return Err(NodeError::TransportClosed),
                },
                request = self.requests.recv() => {
                    let Some(request) = request else { break };
                    self.on_request(request).await;
                    for _ in 1..MAX_REQUESTS_PER_STEP {
                        match self.requests.try_recv() {
                            Ok(request) => self.on_request(request).await,
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => {
                    let now = self.now();
                    if self.protocol.next_timer().is_some_and(|at| at <= now) {
                        self.protocol.on_timer(now, &mut self.out);
                    }
                }
                _ = sweep.tick() => {
                    self.expire_requests().await;
                    self.propose_upkeep().await;
                }
            }
            self.carry_out().await?;
            self.answer_changes();
            self.meet_new_members();
            let view = view_of::<P>(&self.protocol, self.applied);
            let (role, leader) = (view.role, view.leader);
            self.watch_leadership(role).await;
            self.watch_forwards(leader);
            self.publish_view(view);
            if handing_off.is_some() && role != Role::Leader {
                info!(id = %self.config.id, ?leader, "stopping: leadership handed off");
                break;
            }
        }
        // Whoever still waits here learns at once to go elsewhere.
        self.tell_waiting_to_retry("node is shutting down").await;
        info!(id = %self.config.id, "node stopped");
        Ok(())
    }

    fn on_durable(&mut self, tags: Vec<u64>) {
        let Some(&last) = tags.last() else { return };
        for _ in &tags {
            for (to, msg) in self.gate.write_durable() {
                self.queue.push_back(Effect::Send { to, msg });
            }
        }
        let now = self.now();
        self.protocol.on_persisted(now, last, &mut self.out);
    }

    async fn on_incoming(&mut self, incoming: Incoming<Wire<P::Message>>) {
        let now = self.now();
        match incoming {
            Incoming::Message(from, Wire::Protocol(msg)) => self.protocol.on_message(now, from, msg, &mut self.out),
            Incoming::Message(from, Wire::Forward { id, client, seq, op }) => {
                self.execute(client, seq, op, Waiter::Remote { from, id }).await;
            }
            Incoming::Message(_, Wire::ForwardReply { id, outcome }) => {
                if let Some((_, reply, _)) = self.forwards.remove(&id) {
                    let _ = reply.send(outcome);
                }
            }
            Incoming::LinkDown(peer) => {
                debug!(%peer, "link down");
                self.fail_forwards_to(peer);
                self.protocol.on_link_down(now, peer, &mut self.out);
            }
        }
    }

    async fn send(&mut self, to: NodeId, msg: Wire<P::Message>) {
        if let Err(e) = self.transport.send(to, msg).await {
            debug!(%to, error = %e, "send failed");
        }
    }

    /// Carries out every pending effect, in order, including effects of the
    /// protocol calls made while doing so (`on_snapshot`).
    async fn carry_out(&mut self) -> Result<(), NodeError> {
        loop {
            self.queue.extend(self.out.drain());
            let Some(effect) = self.queue.pop_front() else { return Ok(()) };
            match effect {
                Effect::Send { to, msg } => self.send(to, Wire::Protocol(msg)).await,
                Effect::SendDurable { to, msg } => {
                    if let Some((to, msg)) = self.gate.send(to, msg) {
                        self.send(to, Wire::Protocol(msg)).await;
                    }
                }
                Effect::Persist(batch) => {
                    self.gate.write_issued();
                    if !self.storage.write(batch) {
                        return Err(StorageError::Io {
                            context: "storage thread stopped".into(),
                            source: std::io::ErrorKind::BrokenPipe.into(),
                        }
                        .into());
                    }
                }
                Effect::Commit(entry) => self.apply(entry).await,
                Effect::InstallSnapshot(snapshot) if snapshot.index <= self.applied => {
                    debug!(index = snapshot.index, applied = self.applied, "ignoring a snapshot older than the state");
                }
                Effect::InstallSnapshot(snapshot) => {
                    self.machine.restore(&snapshot.data).map_err(|e| NodeError::Snapshot(e.to_string()))?;
                    self.applied = snapshot.index;
                    self.last_snapshot = self.last_snapshot.max(snapshot.index);
                    info!(index = snapshot.index, "installed a snapshot from the leader");
                    self.release_reads().await;
                }
                Effect::ReadReady { id, index } => self.read_ready(id, index).await,
                Effect::ReadFailed { id, reason } => self.read_failed(id, reason.leader_hint).await,
                other => unreachable!("an effect this driver does not know: {other:?}"),
            }
        }
    }

    async fn apply(&mut self, entry: Entry) {
        if entry.index <= self.applied {
            return; // already in the state machine (from a snapshot, or a re-delivery after restart)
        }
        assert_eq!(entry.index, self.applied + 1, "commits must arrive in index order without gaps");
        self.applied = entry.index;
        NodeMetrics::bump(&self.metrics.applied_entries);
        if let Payload::Command(cmd) = &entry.payload {
            let response = self.machine.apply(entry.index, cmd);
            if let Some((waiter, deadline)) = self.pending.remove(&cmd.id()) {
                // The request arrived `request_timeout` before its deadline.
                let waited = self.config.request_timeout.saturating_sub(deadline - tokio::time::Instant::now());
                self.metrics.commit_latency.observe(waited);
                self.answer(waiter, Outcome::Done(response)).await;
            }
        }
        self.release_reads().await;
        if self.config.snapshot_every > 0 && self.applied - self.last_snapshot >= self.config.snapshot_every {
            self.snapshot_now();
        }
    }

    /// Snapshots the state machine at the applied index and hands it to the
    /// protocol (which may compact its log); says what it did.
    fn snapshot_now(&mut self) -> String {
        self.last_snapshot = self.applied;
        let data = self.machine.snapshot();
        let bytes = data.len();
        debug!(index = self.applied, bytes, "snapshotting the state machine");
        NodeMetrics::bump(&self.metrics.snapshots);
        self.metrics.snapshot_bytes.store(bytes as u64, std::sync::atomic::Ordering::Relaxed);
        let now = self.now();
        self.protocol.on_snapshot(now, self.applied, data, &mut self.out);
        format!("snapshot of {bytes} bytes at index {}", self.applied)
    }

    async fn answer(&mut self, waiter: Waiter, outcome: Outcome) {
        match waiter {
            Waiter::Local(reply) => {
                let _ = reply.send(outcome);
            }
            Waiter::Remote { from, id } => self.send(from, Wire::ForwardReply { id, outcome }).await,
        }
    }

    /// A leader that lost its role cannot promise to answer what it was
    /// waiting on: tell those clients to retry (the state machine deduplicates
    /// retries). The role before this step is the one last published.
    async fn watch_leadership(&mut self, role: Role) {
        let was_leader = self.view.borrow().role == Role::Leader;
        if was_leader && role != Role::Leader {
            warn!(id = %self.config.id, "lost leadership; waiting clients are told to retry");
            self.tell_waiting_to_retry("leadership changed").await;
        }
    }

    /// Requests forwarded to a node that no longer leads in our view may
    /// never be answered (it may be frozen, or cut off with its links still
    /// up): their clients retry now, through whoever leads, instead of at
    /// the forward's deadline. The leader before this step is the one last
    /// published; a retry carries the same client and sequence number, so it
    /// is applied once even if the old leader answers after all.
    fn watch_forwards(&mut self, leader: Option<u64>) {
        let former = self.view.borrow().leader;
        if let Some(former) = former.filter(|f| Some(*f) != leader) {
            self.fail_forwards_to(NodeId(former));
        }
    }

    /// Answers every proposal and unconfirmed read waiting here with a retry.
    /// Reads already confirmed (`ReadReady`) stay: they are served once applied.
    async fn tell_waiting_to_retry(&mut self, why: &str) {
        let pending: Vec<_> = self.pending.drain().map(|(_, (w, _))| w).collect();
        let reads: Vec<_> = self.reads.drain().map(|(_, r)| r.waiter).collect();
        for waiter in pending.into_iter().chain(reads) {
            self.answer(waiter, Outcome::Retry(why.into())).await;
        }
    }
}

impl<P, T, M> Node<P, T, M>
where
    P: Protocol,
    T: Transport<Wire<P::Message>>,
    M: Service,
{
    /// Publishes the node's view to its watchers when it changed, counting
    /// leader changes and elections on the way.
    fn publish_view(&mut self, new: NodeView) {
        let metrics = &self.metrics;
        self.view.send_if_modified(|old| {
            if *old == new {
                return false;
            }
            if old.leader != new.leader && new.leader.is_some() {
                NodeMetrics::bump(&metrics.leader_changes);
            }
            if old.role != Role::Candidate && new.role == Role::Candidate {
                NodeMetrics::bump(&metrics.elections);
            }
            *old = new;
            true
        });
    }
}

fn view_of<P: Protocol>(protocol: &P, applied: u64) -> NodeView {
    let status = protocol.status();
    NodeView {
        protocol: P::NAME,
        role: status.role,
        term: status.term,
        leader: status.leader.map(|l| l.0),
        commit_index: status.commit_index,
        leader_commit: status.leader_commit,
        applied_index: applied,
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(3600)
}
