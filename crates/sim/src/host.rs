//! The driver half of a simulated node: its disk, durability gate, state
//! machine, waiting clients and timer, and how the simulator carries out the
//! effects its protocol emits.

use crate::client::{Answer, Request};
use crate::config::{DriverBug, ReadPath};
use crate::network::Fate;
use crate::reference::bytes_fingerprint;
use crate::report::ConfigChange;
use crate::session::Served;
use crate::sim::{Event, Sim};
use crate::trace::What;
use crate::Workload;
use quorum_core::{
    ClientId, DurabilityGate, Duration, Effect, Entry, Init, Instant, MemStorage, NodeId, Payload, ProposeError,
    Protocol, ReadError, ReadId, Rng, Role,
};
use std::collections::HashMap;

/// A read waiting for the protocol, then for the state machine to catch up.
pub(crate) struct PendingRead {
    pub(crate) client: usize,
    pub(crate) seq: u64,
    /// The query to answer from the state machine.
    pub(crate) query: bytes::Bytes,
    /// Serve once the state machine has applied this (`None`: the protocol has not said yet).
    pub(crate) index: Option<u64>,
    /// A local read: served from this node's state, not confirmed by the protocol.
    pub(crate) local: bool,
    /// For a local read, the highest index its client had seen.
    pub(crate) floor: u64,
}

pub(crate) struct Host<M, W> {
    pub(crate) id: NodeId,
    pub(crate) rng: Rng,
    pub(crate) storage: MemStorage,
    pub(crate) gate: DurabilityGate<M>,
    /// Writes staged but not yet covered by a running fsync.
    pub(crate) unsynced: usize,
    /// Writes covered by the fsync in progress (0: the disk is idle).
    pub(crate) syncing: usize,
    pub(crate) incarnation: u64,
    /// The protocol's timer deadline, on the node's own clock.
    pub(crate) timer_at: Option<Instant>,
    /// The earliest wake-up queued for this incarnation's timer, in true
    /// time (`Sim::arm_timer`).
    pub(crate) timer_queued: Option<Instant>,
    pub(crate) state: W,
    pub(crate) applied_index: u64,
    pub(crate) applied: Vec<Entry>,
    pub(crate) last_snapshot: u64,
    pub(crate) waiting: HashMap<(ClientId, u64), usize>,
    pub(crate) reads: HashMap<ReadId, PendingRead>,
    pub(crate) last_role: Option<(Role, u64, Option<NodeId>)>,
    /// The node's own clock (it survives restarts: same machine).
    pub(crate) clock: crate::clock::Clock,
    /// A frozen node handles nothing; events for it wait in `held`.
    pub(crate) frozen: bool,
    pub(crate) held: Vec<crate::sim::Event<M>>,
    /// The voters a wiped node learns of when it boots, as `quorum node
    /// --join` learns them from a running member (`None`: the founding
    /// members, which every node starts with).
    pub(crate) join_voters: Option<Vec<NodeId>>,
    /// Added to every fsync of this node's disk (`Sim::set_disk_delay`).
    pub(crate) slow_disk: Duration,
}

impl<M, W: Default> Host<M, W> {
    pub(crate) fn new(id: NodeId, rng: Rng, clock: crate::clock::Clock) -> Self {
        Host {
            id,
            rng,
            clock,
            storage: MemStorage::new(),
            gate: DurabilityGate::new(),
            unsynced: 0,
            syncing: 0,
            incarnation: 0,
            timer_at: None,
            timer_queued: None,
            state: W::default(),
            applied_index: 0,
            applied: Vec::new(),
            last_snapshot: 0,
            waiting: HashMap::new(),
            reads: HashMap::new(),
            last_role: None,
            frozen: false,
            held: Vec::new(),
            join_voters: None,
            slow_disk: Duration::ZERO,
        }
    }
}

/// A fingerprint of a payload, to compare what nodes applied at an index.
fn fingerprint(payload: &Payload) -> u64 {
    bytes_fingerprint(&postcard::to_allocvec(payload).expect("payloads serialize"))
}

impl<P: Protocol, W: Workload> Sim<P, W> {
    /// The time on node `i`'s own clock.
    pub(crate) fn local_now(&self, i: usize) -> Instant {
        self.hosts[i].clock.local(self.now)
    }

    /// Starts (or restarts) node `i` from what its disk holds.
    pub(crate) fn boot(&mut self, i: usize) {
        let stored = self.hosts[i].storage.durable().to_stored();
        let host = &mut self.hosts[i];
        host.state = W::default();
        host.applied_index = 0;
        host.last_snapshot = 0;
        host.applied.clear();
        if let Some(snap) = &stored.snapshot {
            if let Err(e) = host.state.restore(&snap.data) {
                let detail = format!("node {} could not restore its own snapshot: {e}", host.id);
                self.violation("snapshot", detail);
            }
            let id = self.hosts[i].id;
            self.check_snapshot(id, "restored", snap.index, &snap.data);
            let host = &mut self.hosts[i];
            host.applied_index = snap.index;
            host.last_snapshot = snap.index;
        }
        let host = &mut self.hosts[i];
        let init = Init {
            id: host.id,
            members: host.join_voters.clone().unwrap_or_else(|| self.members.clone()),
            config: self.protocol_config.clone(),
            stored,
            seed: host.rng.next_u64(),
            now: host.clock.local(self.now),
        };
        match P::new(init) {
            Ok(p) => self.protos[i] = Some(p),
            Err(e) => {
                let detail = format!("node {} cannot restart from its own durable state: {e}", self.hosts[i].id);
                self.violation("restart", detail);
                return;
            }
        }
        self.after_step(i);
    }

    /// Crashes node `id`: unsynced writes, held messages and volatile state are lost.
    pub fn crash(&mut self, id: NodeId) {
        self.crash_noticed_late(id, Duration::ZERO);
    }

    /// Crashes node `id` as a machine crashes: its peers hear of their
    /// broken links `late` after one network delay, not at once (see
    /// `FaultConfig::late_link_down`).
    pub fn crash_noticed_late(&mut self, id: NodeId, late: Duration) {
        let i = self.index(id);
        if self.protos[i].is_none() {
            return;
        }
        self.protos[i] = None;
        let host = &mut self.hosts[i];
        let staged = host.storage.staged_len();
        let keep =
            if staged > 0 && host.rng.chance(self.config.disk.torn_tail) { host.rng.index(staged + 1) } else { 0 };
        host.storage.crash_keeping(keep);
        self.metrics.torn_tails += u64::from(keep > 0);
        host.gate.crash();
        host.unsynced = 0;
        host.syncing = 0;
        host.incarnation += 1;
        host.timer_queued = None;
        host.timer_at = None;
        host.waiting.clear();
        host.reads.clear();
        host.last_role = None;
        host.frozen = false;
        host.held.clear();
        self.trace.mix_u64s(&[1, self.now.as_nanos(), id.0]);
        self.trace.record(self.now, || What::Crash { node: id.0 });
        // A killed process's sockets close: every peer's connection to it
        // breaks, and the peers notice, whatever kind of link the protocol assumes.
        for peer in 0..self.hosts.len() {
            if peer != i {
                self.net.break_link(i, peer);
                self.notify_link_down(peer, i, late);
            }
        }
    }

    /// Crashes node `id` and throws its disk away, as an operator who
    /// replaces a machine's disk does. Restarted, it comes back empty and
    /// joins the running cluster of `voters`, as `quorum node --join` does.
    /// A wiped voter would forget its votes, which no protocol here survives
    /// (consensus assumes stable storage): wipe only nodes that do not vote.
    pub fn wipe(&mut self, id: NodeId, voters: Vec<NodeId>) {
        self.crash(id);
        let i = self.index(id);
        let host = &mut self.hosts[i];
        host.storage = MemStorage::new();
        host.gate = DurabilityGate::new();
        host.join_voters = Some(voters);
        self.metrics.wipes += 1;
        self.trace.mix_u64s(&[3, self.now.as_nanos(), id.0]);
        self.trace.record(self.now, || What::Wipe { node: id.0 });
    }

    /// Restarts a crashed node from its durable state.
    pub fn restart(&mut self, id: NodeId) {
        let i = self.index(id);
        if self.protos[i].is_some() {
            return;
        }
        self.trace.mix_u64s(&[2, self.now.as_nanos(), id.0]);
        self.trace.record(self.now, || What::Restart { node: id.0 });
        self.boot(i);
    }

    /// Breaks the connection between two nodes; on fifo links, tells the live ends.
    pub(crate) fn break_link(&mut self, a: usize, b: usize) {
        if self.net.break_link(a, b) {
            self.notify_link_down(a, b, Duration::ZERO);
            self.notify_link_down(b, a, Duration::ZERO);
        }
    }

    /// Tells `node`, if it is up, that its connection to `peer` broke (after
    /// one network delay, and `late` more).
    fn notify_link_down(&mut self, node: usize, peer: usize, late: Duration) {
        if self.protos[node].is_some() {
            let at = self.now + self.net.sample(&mut self.rng) + late;
            let incarnation = self.hosts[node].incarnation;
            self.queue.push(at, Event::LinkDown { node, peer, incarnation });
        }
    }

    pub(crate) fn link_down(&mut self, node: usize, peer: usize, incarnation: u64) {
        if self.hosts[node].incarnation != incarnation {
            return;
        }
        let now = self.local_now(node);
        let mut out = std::mem::take(&mut self.out);
        if let Some(p) = self.protos[node].as_mut() {
            self.trace.mix_u64s(&[3, now.as_nanos(), node as u64, peer as u64]);
            self.trace.record(now, || What::LinkDown { node: node as u64 + 1, peer: peer as u64 + 1 });
            p.on_link_down(now, NodeId(peer as u64 + 1), &mut out);
        }
        self.out = out;
        self.after_step(node);
    }

    pub(crate) fn deliver(&mut self, from: usize, to: usize, msg: P::Message, epoch: u64, sent: Instant) {
        let (from_id, to_id) = (NodeId(from as u64 + 1), NodeId(to as u64 + 1));
        let refused = if self.protos[to].is_none() { Err("crashed") } else { self.net.deliverable(from, to, epoch) };
        if let Err(reason) = refused {
            self.trace.mix_u64s(&[4, self.now.as_nanos(), from as u64, to as u64]);
            self.trace.record(self.now, || What::Drop {
                from: from_id.0,
                to: to_id.0,
                msg: format!("{msg:?}"),
                reason: reason.to_string(),
            });
            return;
        }
        self.trace.mix_u64s(&[5, self.now.as_nanos(), from as u64, to as u64]);
        self.trace.record(self.now, || What::Deliver {
            from: from_id.0,
            to: to_id.0,
            msg: format!("{msg:?}"),
            sent_ns: sent.as_nanos(),
        });
        let now = self.local_now(to);
        let mut out = std::mem::take(&mut self.out);
        if let Some(p) = self.protos[to].as_mut() {
            p.on_message(now, from_id, msg, &mut out);
        }
        self.out = out;
        self.after_step(to);
    }

    pub(crate) fn timer(&mut self, node: usize, incarnation: u64, at: Instant) {
        let host = &mut self.hosts[node];
        if host.incarnation != incarnation {
            return;
        }
        if host.timer_queued == Some(at) {
            host.timer_queued = None;
        }
        let Some(deadline) = host.timer_at.map(|local| host.clock.true_time(local)) else { return };
        if deadline > self.now {
            // The deadline moved on since this wake-up was queued.
            self.arm_timer(node);
            return;
        }
        host.timer_at = None;
        let now = self.local_now(node);
        let mut out = std::mem::take(&mut self.out);
        if let Some(p) = self.protos[node].as_mut() {
            p.on_timer(now, &mut out);
        }
        self.out = out;
        self.after_step(node);
    }

    /// The fsync in progress finished: every write it covered is durable.
    pub(crate) fn disk_synced(&mut self, node: usize, incarnation: u64) {
        if self.hosts[node].incarnation != incarnation {
            return;
        }
        let count = std::mem::take(&mut self.hosts[node].syncing);
        let mut last_tag = None;
        for _ in 0..count {
            let host = &mut self.hosts[node];
            last_tag = host.storage.sync_next();
            for (to, msg) in host.gate.write_durable() {
                self.net_send(node, to, msg);
            }
        }
        let tag = last_tag.expect("an fsync completed with nothing to sync");
        let now = self.local_now(node);
        let mut out = std::mem::take(&mut self.out);
        if let Some(p) = self.protos[node].as_mut() {
            p.on_persisted(now, tag, &mut out);
        }
        self.out = out;
        self.start_sync_if_idle(node);
        self.after_step(node);
    }

    /// Group commit: one fsync covers every write staged when it starts.
    fn start_sync_if_idle(&mut self, node: usize) {
        let host = &mut self.hosts[node];
        if host.syncing == 0 && host.unsynced > 0 {
            host.syncing = std::mem::take(&mut host.unsynced);
            let incarnation = host.incarnation;
            let took = self.config.disk.fsync + host.slow_disk;
            self.queue.push(self.now + took, Event::DiskSynced { node, incarnation });
        }
    }

    /// Carries out the effects of the step node `i` just took, then runs the
    /// checks and re-arms its timer. Effects that feed back into the protocol
    /// (a snapshot) loop until the protocol asks for nothing more.
    pub(crate) fn after_step(&mut self, i: usize) {
        let mut out = std::mem::take(&mut self.out);
        loop {
            for effect in out.drain() {
                self.apply_effect(i, effect);
            }
            if !self.maybe_snapshot(i, &mut out) {
                break;
            }
        }
        self.out = out;
        self.start_sync_if_idle(i);
        self.check_invariants(i);
        self.track_role(i);
        self.arm_timer(i);
    }

    fn apply_effect(&mut self, i: usize, effect: Effect<P::Message>) {
        match effect {
            Effect::Send { to, msg } => {
                let host = &self.hosts[i];
                if P::vouches_for_disk(&msg) && host.gate.outstanding() > 0 {
                    let detail = format!(
                        "{} sent {msg:?} to {to} while writes issued before it were not yet durable (it must go with send_durable)",
                        host.id
                    );
                    self.violation("durable sends", detail);
                }
                self.net_send(i, to, msg)
            }
            Effect::SendDurable { to, msg } => {
                if let Some((to, msg)) = self.hosts[i].gate.send(to, msg) {
                    self.net_send(i, to, msg);
                }
            }
            Effect::Persist(batch) => {
                let host = &mut self.hosts[i];
                host.gate.write_issued();
                host.storage.stage(batch);
                host.unsynced += 1;
            }
            Effect::Commit(entry) => self.apply_entry(i, entry),
            Effect::InstallSnapshot(snap) => {
                self.check_snapshot(self.hosts[i].id, "installed", snap.index, &snap.data);
                let host = &mut self.hosts[i];
                if snap.index > host.applied_index {
                    if let Err(e) = host.state.restore(&snap.data) {
                        let detail = format!("node {} got an unreadable snapshot: {e}", host.id);
                        self.violation("snapshot", detail);
                        return;
                    }
                    host.applied_index = snap.index;
                    host.last_snapshot = snap.index;
                    host.applied.clear();
                    self.serve_ready_reads(i);
                }
            }
            Effect::ReadReady { id, index } => {
                if let Some(read) = self.hosts[i].reads.get_mut(&id) {
                    read.index = Some(index);
                }
                self.serve_ready_reads(i);
            }
            Effect::ReadFailed { id, reason } => {
                if let Some(read) = self.hosts[i].reads.remove(&id) {
                    self.reply(i, read.client, read.seq, Answer::NotLeader(reason.leader_hint));
                }
            }
            other => unreachable!("an effect this driver does not know: {other:?}"),
        }
    }

    /// Applies one committed entry and checks it against what other nodes applied there.
    fn apply_entry(&mut self, i: usize, entry: Entry) {
        let host = &self.hosts[i];
        let id = host.id;
        let index = entry.index;
        if index <= host.applied_index {
            // Re-emitted below a snapshot or a second time: already applied,
            // and it must be what the cluster applied there.
            let fp = fingerprint(&entry.payload);
            if let Some((applied, by)) = self.applied_at.get(index as usize).copied().flatten() {
                if applied != fp {
                    let detail = format!(
                        "{id} was handed {:?} again at index {index}, which it had applied, but {by} applied something else there",
                        entry.payload
                    );
                    self.violation("re-delivered entry", detail);
                }
            }
            return;
        }
        if index != host.applied_index + 1 {
            let detail = format!("{id} was handed index {index} to apply after {}: a gap", host.applied_index);
            self.violation("in-order apply", detail);
            return;
        }
        let fp = fingerprint(&entry.payload);
        let slot = index as usize;
        if self.applied_at.len() <= slot {
            self.applied_at.resize(slot + 1, None);
            self.acked.resize(slot + 1, false);
        }
        match self.applied_at[slot] {
            None => {
                self.applied_at[slot] = Some((fp, id));
                self.sessions.record_commit(index, &entry.payload);
                self.metrics.commits += 1;
                // A configuration not made from the one in force is void
                // (`Membership::follows`): it changes nobody's membership.
                let in_force = self.metrics.config_changes.last().map_or(0, |c| c.membership.epoch);
                match &entry.payload {
                    Payload::Membership(membership) if in_force.checked_add(1) == Some(membership.epoch) => {
                        let change =
                            ConfigChange { at: self.now, index, stamp: entry.stamp, membership: membership.clone() };
                        self.metrics.config_changes.push(change);
                    }
                    _ => {}
                }
                if self.metrics.first_applied.len() <= slot {
                    self.metrics.first_applied.resize(slot + 1, Instant::ZERO);
                }
                self.metrics.first_applied[slot] = self.now;
            }
            Some((other_fp, other)) if other_fp != fp => {
                let detail = format!(
                    "{id} applied {:?} at index {index}, but {other} applied something else there",
                    entry.payload
                );
                if self.acked[slot] {
                    // The first command there was acknowledged to its client.
                    self.violation("acknowledged write lost", detail.clone());
                }
                self.violation("state machine safety", detail);
            }
            Some(_) => {}
        }
        self.trace.mix_u64s(&[6, index, fp, i as u64]);
        self.trace.record(self.now, || What::Commit { node: id.0, index, entry: format!("{:?}", entry.payload) });
        let host = &mut self.hosts[i];
        host.applied_index = index;
        if let Payload::Command(cmd) = &entry.payload {
            let response = host.state.apply(index, cmd);
            if let Some(client) = host.waiting.remove(&cmd.id()) {
                self.acked[slot] = true;
                self.reply(i, client, cmd.seq, Answer::Ok { response, zxid: index, served: Served::Log });
            }
        }
        self.hosts[i].applied.push(entry);
        self.serve_ready_reads(i);
    }

    /// A snapshot a node installs or restores must hold the state the
    /// committed log gives at its index.
    fn check_snapshot(&mut self, id: NodeId, how: &str, index: u64, data: &[u8]) {
        let expected = self.reference.state_at(self.sessions.committed(), index);
        let detail = match expected {
            Ok(fp) if fp == bytes_fingerprint(data) => return,
            Ok(_) => format!(
                "{id} {how} a snapshot at index {index} that differs from the committed log replayed to {index}"
            ),
            Err(why) => format!("{id} {how} a snapshot at index {index}: {why}"),
        };
        self.violation("snapshot", detail);
    }

    /// Answers reads whose index the state machine has reached.
    fn serve_ready_reads(&mut self, i: usize) {
        let applied = self.hosts[i].applied_index;
        let ready: Vec<ReadId> = self.hosts[i]
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|idx| idx <= applied))
            .map(|(id, _)| *id)
            .collect();
        let mut ready = ready;
        ready.sort_unstable(); // HashMap order is not deterministic
        for id in ready {
            let read = self.hosts[i].reads.remove(&id).expect("listed above");
            let response = self.hosts[i].state.query(&read.query);
            debug_assert!(
                !read.local
                    || applied >= read.floor
                    || matches!(
                        self.config.driver_bug,
                        Some(DriverBug::LocalReadIgnoresSession | DriverBug::LocalReadClaimsSession)
                    ),
                "a local read is served only once the node reached the client's last seen index"
            );
            let served = if read.local { Served::LocalRead } else { Served::Read };
            let mut zxid = applied;
            if read.local && self.config.driver_bug == Some(DriverBug::LocalReadClaimsSession) {
                zxid = zxid.max(read.floor); // planted: claims a state it has not reached
            }
            self.reply(i, read.client, read.seq, Answer::Ok { response, zxid, served });
        }
    }

    /// The driver's snapshot policy: every `snapshot_every` applied entries.
    fn maybe_snapshot(&mut self, i: usize, out: &mut quorum_core::Effects<P::Message>) -> bool {
        let Some(every) = self.config.snapshot_every else { return false };
        let host = &mut self.hosts[i];
        if host.applied_index < host.last_snapshot + every {
            return false;
        }
        host.last_snapshot = host.applied_index;
        let (index, data) = (host.applied_index, host.state.snapshot());
        let now = self.local_now(i);
        match self.protos[i].as_mut() {
            Some(p) => {
                p.on_snapshot(now, index, data, out);
                true
            }
            None => false,
        }
    }

    /// Hands a message to the network.
    pub(crate) fn net_send(&mut self, from: usize, to: quorum_core::NodeId, msg: P::Message) {
        let Some(to_i) = to.0.checked_sub(1).map(|i| i as usize).filter(|i| *i < self.hosts.len()) else {
            // No such node (an id a forged message put in the sender's head):
            // the runtime has no address for it either.
            return self.trace_drop(from, to, &msg, || "no such node".into());
        };
        let mut buf = std::mem::take(&mut self.encode_buf);
        buf.clear();
        buf = postcard::to_extend(&msg, buf).expect("protocol messages must serialize");
        self.metrics.messages += 1;
        self.metrics.bytes += buf.len() as u64;
        self.trace.mix(&buf);
        let size = buf.len();
        self.encode_buf = buf;
        let limit = self.net.max_message_bytes;
        if size > limit {
            // The runtime's receiver refuses a frame over its limit and closes
            // the connection: the message is lost, and so is the link.
            self.metrics.oversized += 1;
            if self.metrics.oversized == 1 {
                // Every message must fit: a retry sends the same bytes again,
                // so the link never carries it (a livelock, not a lost message).
                let what: String = format!("{msg:?}").chars().take(120).collect();
                let detail =
                    format!("n{} sent n{} {size} bytes, over the {limit}-byte frame limit: {what}", from + 1, to.0);
                self.violation("frame limit", detail);
            }
            self.trace_drop(from, to, &msg, || format!("{size} bytes, over the frame limit of {limit}"));
            return self.break_link(from, to_i);
        }
        let corrupt = self.config.network.corrupt;
        let msg = if corrupt > 0.0 && self.rng.chance(corrupt) {
            let Some(forged) = self.corrupted() else {
                self.trace_drop(from, to, &msg, || "corrupted in flight: undecodable, the link breaks".into());
                return self.break_link(from, to_i);
            };
            self.trace_drop(from, to, &msg, || format!("corrupted in flight, delivered as {forged:?}"));
            forged
        } else {
            msg
        };
        if let Some(filter) = self.drop_filter.as_mut() {
            if filter(NodeId(from as u64 + 1), to, &msg) {
                return self.trace_drop(from, to, &msg, || "dropped by the scenario".into());
            }
        }
        match self.net.send(self.now, from, to_i, &mut self.rng) {
            Fate::Deliver { at, again, epoch } => {
                if let Some(again) = again {
                    let copy = Event::Deliver { from, to: to_i, msg: msg.clone(), epoch, sent: self.now };
                    self.queue.push(again, copy);
                }
                self.queue.push(at, Event::Deliver { from, to: to_i, msg, epoch, sent: self.now });
            }
            Fate::Dropped(reason) => self.trace_drop(from, to, &msg, || reason.to_string()),
            Fate::Broke => {
                self.trace_drop(from, to, &msg, || "connection reset".into());
                self.break_link(from, to_i);
            }
        }
    }

    /// Records in the trace that `msg` from node index `from` to `to` was not delivered, and why.
    fn trace_drop(&mut self, from: usize, to: NodeId, msg: &P::Message, reason: impl FnOnce() -> String) {
        self.trace.record(self.now, || What::Drop {
            from: from as u64 + 1,
            to: to.0,
            msg: format!("{msg:?}"),
            reason: reason(),
        });
    }

    /// The message just encoded (in `encode_buf`), with a few bytes changed
    /// or its tail cut off, decoded again: `None` if it no longer decodes.
    fn corrupted(&mut self) -> Option<P::Message> {
        let mut bytes = self.encode_buf.clone();
        if bytes.is_empty() {
            return None;
        }
        if self.rng.chance(0.2) {
            bytes.truncate(self.rng.index(bytes.len()));
        } else {
            for _ in 0..=self.rng.index(3) {
                let at = self.rng.index(bytes.len());
                // Edge values as often as random ones: varints of 0, 1 and
                // the largest, and lengths that claim more than is there.
                bytes[at] = match self.rng.index(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => bytes[at].wrapping_add(1),
                    _ => self.rng.next_u64() as u8,
                };
            }
        }
        postcard::from_bytes(&bytes).ok()
    }

    /// Whether the safety checks run: not when messages are corrupted
    /// (`NetworkConfig::corrupt`), which crash-tolerant protocols do not guard against.
    pub(crate) fn checking(&self) -> bool {
        self.config.network.corrupt == 0.0
    }

    fn check_invariants(&mut self, i: usize) {
        if self.invariants.is_empty() || !self.checking() {
            return;
        }
        let id = NodeId(i as u64 + 1);
        let mut invariants = std::mem::take(&mut self.invariants);
        let nodes: Vec<Option<&P>> = self.protos.iter().map(Option::as_ref).collect();
        let mut failed = Vec::new();
        for inv in invariants.iter_mut() {
            if let Err(detail) = inv.check(self.now, id, &nodes) {
                failed.push((inv.name(), detail));
            }
        }
        self.invariants = invariants;
        for (name, detail) in failed {
            self.violation(name, detail);
        }
    }

    fn track_role(&mut self, i: usize) {
        let Some(p) = self.protos[i].as_ref() else { return };
        let s = p.status();
        let now_role = Some((s.role, s.term, s.leader));
        if self.hosts[i].last_role != now_role {
            // A leader of a (node, term) pair not seen before: a restarted node
            // resuming the same term (a fixed primary) is not a new election.
            let seen = self.metrics.leader_changes.iter().any(|(_, id, t)| *id == s.id && *t == s.term);
            if s.role == Role::Leader && !seen {
                self.metrics.elections += 1;
                self.metrics.leader_changes.push((self.now, s.id, s.term));
            }
            self.hosts[i].last_role = now_role;
            self.trace.record(self.now, || What::Role {
                node: s.id.0,
                role: s.role.to_string(),
                term: s.term,
                leader: s.leader.map(|l| l.0),
            });
        }
    }

    /// Makes sure a wake-up is queued no later than the protocol's timer
    /// deadline. A deadline that moves later (an election timer reset by
    /// every heartbeat) queues nothing: the wake-up already queued finds the
    /// deadline not yet due and queues one for it then. So a node has a
    /// few wake-ups in the queue (one per move earlier, until it passes), not
    /// one per reset, and the queue stays small under load.
    fn arm_timer(&mut self, i: usize) {
        let next = self.protos[i].as_ref().and_then(|p| p.next_timer());
        let host = &mut self.hosts[i];
        host.timer_at = next;
        let Some(local) = next else { return };
        let at = host.clock.true_time(local).max(self.now);
        if host.timer_queued.is_none_or(|queued| at < queued) {
            host.timer_queued = Some(at);
            let incarnation = host.incarnation;
            self.queue.push(at, Event::Timer { node: i, incarnation, at });
        }
    }

    /// A client's request reached node `i`.
    pub(crate) fn request(&mut self, i: usize, req: Request) {
        let now = self.local_now(i);
        let Some(p) = self.protos[i].as_mut() else { return };
        let cmd = req.cmd;
        if let Some(response) = self.hosts[i].state.cached_response(cmd.client, cmd.seq) {
            let zxid = self.hosts[i].applied_index;
            self.reply(i, req.client, cmd.seq, Answer::Ok { response, zxid, served: Served::Log });
            return;
        }
        let mut read_query = req.read_query;
        if let (Some(query), Some(floor)) = (&read_query, req.local_floor) {
            match p.local_read(now) {
                Ok(()) => return self.local_read(i, req.client, cmd.seq, query.clone(), floor),
                Err(ReadError::NotLeader(nl)) => {
                    return self.reply(i, req.client, cmd.seq, Answer::NotLeader(nl.leader_hint));
                }
                Err(ReadError::Busy { .. }) => return self.reply(i, req.client, cmd.seq, Answer::Busy),
                // No local reads here: serve it like any other read.
                Err(ReadError::Unsupported) if self.config.clients.reads == ReadPath::Log => read_query = None,
                Err(ReadError::Unsupported) => {}
            }
        }
        let mut out = std::mem::take(&mut self.out);
        if let Some(query) = read_query {
            self.next_read_id += 1;
            let id = self.next_read_id;
            match p.read(now, id, &mut out) {
                Ok(()) => {
                    let read =
                        PendingRead { client: req.client, seq: cmd.seq, query, index: None, local: false, floor: 0 };
                    self.hosts[i].reads.insert(id, read);
                    self.out = out;
                    self.after_step(i);
                    return;
                }
                Err(refusal @ (ReadError::NotLeader(_) | ReadError::Busy { .. })) => {
                    self.out = out;
                    let answer = match refusal {
                        ReadError::NotLeader(nl) => Answer::NotLeader(nl.leader_hint),
                        _ => Answer::Busy,
                    };
                    self.reply(i, req.client, cmd.seq, answer);
                    self.after_step(i);
                    return;
                }
                Err(ReadError::Unsupported) => {}
            }
        }
        let id = cmd.id();
        let seq = cmd.seq;
        match p.propose(now, cmd, &mut out) {
            Ok(()) => {
                self.last_proposer = Some(self.hosts[i].id);
                self.hosts[i].waiting.insert(id, req.client);
            }
            Err(ProposeError::NotLeader(nl)) => self.reply(i, req.client, seq, Answer::NotLeader(nl.leader_hint)),
            Err(ProposeError::Busy { .. }) => self.reply(i, req.client, seq, Answer::Busy),
        }
        self.out = out;
        self.after_step(i);
    }

    /// A local read reached node `i`, which may serve it: it waits until the
    /// state machine has applied the client's last seen index (ZooKeeper's
    /// rule: a server behind the client's last zxid must not answer it).
    fn local_read(&mut self, i: usize, client: usize, seq: u64, query: bytes::Bytes, floor: u64) {
        let wait_for = match self.config.driver_bug {
            Some(DriverBug::LocalReadIgnoresSession | DriverBug::LocalReadClaimsSession) => 0,
            Some(DriverBug::RetryWithNewSeq) | None => floor,
        };
        self.next_read_id += 1;
        let read = PendingRead { client, seq, query, index: Some(wait_for), local: true, floor };
        self.hosts[i].reads.insert(self.next_read_id, read);
        self.serve_ready_reads(i);
    }

    /// Sends an answer from node `i` back to a client.
    pub(crate) fn reply(&mut self, i: usize, client: usize, seq: u64, answer: Answer) {
        let at = self.now + self.net.sample(&mut self.rng);
        self.queue.push(at, Event::Answer { node: i, client, seq, answer, sent: self.now });
    }
}
