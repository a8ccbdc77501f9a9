//! # quorum-zab: ZooKeeper Atomic Broadcast
//!
//! Zab (Junqueira, Reed, Serafini, DSN 2011; Medeiros 2012 on ZooKeeper's
//! implementation) is a primary-backup protocol: one leader orders every
//! state change as a *transaction* with a zxid `(epoch, counter)`, and
//! followers log them in zxid order over FIFO links. A leader's term is an
//! *epoch*; a new leader goes through four phases:
//!
//! 0. **Fast Leader Election** (`election.rs`): LOOKING nodes
//!    exchange votes `(epoch, last zxid, id)` in logical rounds and adopt the
//!    best one; a node settles once a quorum agrees with its vote and no better
//!    vote arrives within `finalize_wait`. A node that joins an ensemble which
//!    already has a leader learns it from the FOLLOWING/LEADING peers' answers.
//! 1. **Discovery** (`discovery.rs`): followers send
//!    FOLLOWERINFO (CEPOCH) with their accepted epoch; the leader proposes
//!    NEWEPOCH `e` = max + 1; a follower persists `acceptedEpoch = e` and answers
//!    ACKEPOCH (durably) with its current epoch and history.
//! 2. **Synchronization** (`sync.rs`): per follower, DIFF, TRUNC or
//!    SNAP, then NEWLEADER. The follower persists the synchronised history and
//!    `currentEpoch = e` in *one* write and answers ACK(NEWLEADER) once it is
//!    durable. A quorum of those acks *establishes* the epoch: the leader's
//!    history is committed and UPTODATE tells the followers.
//! 3. **Broadcast** (`broadcast.rs`): PROPOSAL, ACK (sent only
//!    once the proposal is durable), COMMIT, strictly in zxid order, batched and
//!    pipelined. A follower that joins later goes through phases 1–2 with the
//!    running leader, which then streams it every later proposal.
//!
//! Durable state: `acceptedEpoch` (with the leader it was promised to) and
//! `currentEpoch` in the hard state, the history as log entries (TRUNC is a
//! `truncate_from`), and the latest snapshot, which compacts the history and is
//! what SNAP sends. A restarted node recovers all of it from `Init::stored`,
//! starts LOOKING, and re-learns what is committed from the leader it joins.
//!
//! ## Why it is safe
//!
//! - *One leader per epoch.* An epoch is established by a quorum of ACKEPOCH,
//!   and a node acknowledges NEWEPOCH(e) only if `e` is above its accepted epoch,
//!   or equal to it *and from the same leader* (the promise is durable, with the
//!   leader's id). Two quorums intersect, so two leaders never both gather one.
//! - *A new epoch starts from every committed transaction.* A transaction is
//!   committed once a quorum holds it durably. The ACKEPOCH quorum intersects
//!   that quorum, and ACKEPOCH reports a history that is durable (it leaves
//!   after every earlier write). Histories are ranked by `(currentEpoch, last
//!   zxid)`: a node with current epoch `e` holds epoch `e`'s initial history
//!   (which holds everything committed before `e`) followed by a prefix of the
//!   epoch-`e` leader's proposals, so the top-ranked history of a quorum holds
//!   every committed transaction. We do what ZooKeeper does: the leader keeps
//!   leading only if its own rank is at least that of every follower in its
//!   ACKEPOCH quorum, otherwise it goes back to LOOKING (FLE then prefers the
//!   more up-to-date node). This check does not rely on FLE: any elected node
//!   is safe, FLE only makes it likely to succeed.
//! - *Followers never hold a history that mixes epochs wrongly.* Synchronisation
//!   data is applied only at NEWLEADER, in one atomic write together with
//!   `currentEpoch` (the cause of ZooKeeper bugs ZOOKEEPER-4643/4646 was
//!   updating the epoch and the history in separate steps). TRUNC and DIFF are
//!   computed from a summary of the follower's whole history, not guessed from
//!   its last zxid, and the follower checks that the leader's view matches
//!   (and starts over if not). The sync is streamed in bounded chunks with a
//!   window of acknowledged ones, so no message outgrows a transport frame.
//! - *Peers are not trusted.* A message that breaks these expectations (a gap,
//!   a zxid out of order, an ACK of something never proposed...) is dropped,
//!   logged and counted, and the session reset: a follower goes LOOKING, a
//!   leader forgets the learner and sends RESET. Assertions guard only the
//!   node's own state.
//! - *Order.* Proposals travel over one FIFO link per follower and carry
//!   consecutive indexes; a gap, a broken link (`on_link_down`) or silence
//!   sends the follower back to LOOKING and through synchronisation again: it
//!   never skips a zxid. A leader commits index `i` once a quorum acknowledged
//!   it durably in the current epoch, and commits in index order.
//!
//! ## Reads
//!
//! ZooKeeper's documentation says it plainly: reads are served by whichever
//! server a client is connected to, and are *not* linearizable unless the
//! client calls `sync` first. The three read paths here, weakest first:
//!
//! - **Local reads** ([`Protocol::local_read`], ZooKeeper's plain `getData`):
//!   *sequentially consistent*, not linearizable. The node the client reaches
//!   answers from its own state machine, a committed prefix that may lag the
//!   leader, so it may miss a write another client has already been told is
//!   done. Zab only decides whether this node serves clients at all (an
//!   established leader, or a follower that got UPTODATE); the driver answers
//!   once its state machine has applied the client's last seen zxid, as a
//!   ZooKeeper server refuses a client that has seen more than it has. So a
//!   client reads its own writes and never sees an older state after a
//!   newer one, even when it moves to another server.
//! - **`sync` followed by a read** ([`Protocol::read`]): linearizable.
//!   The leader takes its commit index as the read point, confirms with a
//!   quorum of its followers (a ping round sent after the read arrived) that it
//!   is still their leader, and answers `ReadReady { index }`. On a follower
//!   the read is forwarded to the leader as SYNC and answered the same way.
//! - **Through the log** (propose a GET): linearizable, at the cost of a write.
//!
//! The simulator checks each for what it promises: `sync` and log reads go to
//! the linearizability checker with the writes; local reads are kept out of it
//! and checked per client instead (answered at an index at least every index
//! the client saw before, with the value the committed log holds there).
//!
//! ## Using it
//!
//! [`Zab`] is a [`quorum_core::Protocol`]: a driver (the simulator, the tokio
//! runtime) feeds it messages, timers and durability notices. In the simulator:
//!
//! ```
//! use quorum_core::{ClientId, Command, Duration, NodeId};
//! use quorum_sim::{Sim, SimConfig};
//! use quorum_zab::{Zab, ZabConfig};
//!
//! let mut cfg = SimConfig::new(3, 42);
//! cfg.clients.count = 0;
//! let mut sim = Sim::<Zab>::new(cfg, ZabConfig::default());
//! assert!(sim.run_until(Duration::from_secs(1), |s| s.leader().is_some()));
//! let leader = sim.leader().unwrap();
//! let zab = sim.node(leader).unwrap();
//! assert_eq!(zab.established_epoch(), Some(1));
//! sim.propose(leader, Command::new(ClientId(1), 1, &b"set x"[..])).unwrap();
//! assert!(sim.run_until(Duration::from_secs(1), |s| s.applied_index(NodeId(1)) == 1));
//! ```
#![deny(missing_docs)]

mod broadcast;
mod config;
mod discovery;
mod election;
#[cfg(test)]
mod hostile_tests;
mod invariants;
mod membership;
mod message;
mod read;
mod state;
mod sync;
#[cfg(test)]
mod testkit;

pub use config::{PlantedBug, ZabConfig};
pub use invariants::{
    Agreement, GlobalPrimaryOrder, Integrity, LocalPrimaryOrder, OneEstablishedLeaderPerEpoch, PrimaryIntegrity,
    TotalOrder,
};
pub use message::{HistorySummary, Message, Notification, PeerState, Vote, Zxid};

use quorum_core::{
    Command, Configs, Effects, Entry, Init, InitError, Instant, Invariant, LinkKind, Log, Membership, MembershipChange,
    NodeId, ProposeError, Protocol, ReadError, ReadId, Role, Snapshot, SnapshotMeta, Status, WriteBatch, WriteQueue,
};
use state::{Election, HardState, LeaderPhase, State};
use std::collections::BTreeMap;
use tracing::{debug, trace, warn};

/// A 64-bit finaliser (splitmix64's) for mixing boot facts into a nonce.
struct Rng64;

impl Rng64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The effects one step of a handler appends to (its outbox).
pub(crate) type Out = Effects<Message>;

/// What a write changes durably, kept until the driver reports it persisted.
#[derive(Copy, Clone, Debug, Hash)]
struct WriteMark {
    last_index: u64,
    hard: HardState,
}

/// One Zab node.
#[derive(Clone, Debug, Hash)]
pub struct Zab {
    id: NodeId,
    /// The configurations in this node's history, newest (in force) last:
    /// one takes effect as soon as its entry is in the history (`membership.rs`).
    configs: Configs,
    config: ZabConfig,
    rng: quorum_core::Rng,
    /// acceptedEpoch (with its leader) and currentEpoch, as last written.
    hard: HardState,
    /// The history: every transaction this node logged, after its snapshot.
    log: Log,
    /// The latest snapshot (its point is the log's offset), sent by SNAP.
    snapshot: Option<Snapshot>,
    /// The highest committed index handed to the driver in this incarnation.
    commit_index: u64,
    state: State,
    election: Election,
    /// FOLLOWERINFO received while LOOKING, used if this node becomes leader.
    early_infos: BTreeMap<NodeId, (u64, u64, u64)>,
    /// The highest epoch a follower told this node, as its leader, it had
    /// promised to another leader: the next epoch it proposes goes above it
    /// even if that follower is not among the first to answer.
    epoch_floor: u64,
    /// The last follower session id (one per attempt to follow a leader). It
    /// starts at a nonce drawn at boot, so a restarted node never reuses the
    /// session ids of its previous incarnation (issue 12 item 5).
    session: u64,
    /// Messages from peers dropped because they broke the protocol's
    /// expectations (see [`Zab::dropped_messages`]).
    dropped: u64,
    /// Writes in flight, each with what it makes durable.
    writes: WriteQueue<WriteMark>,
    /// What is known durable: the state as of the last persisted write.
    durable_index: u64,
    durable_hard: HardState,
}

impl Zab {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's history (after its snapshot).
    pub fn history(&self) -> &Log {
        &self.log
    }

    /// The highest committed index this node knows.
    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    /// The epoch this node last promised to (acceptedEpoch).
    pub fn accepted_epoch(&self) -> u64 {
        self.hard.accepted_epoch
    }

    /// The epoch of the last NEWLEADER this node accepted (currentEpoch).
    pub fn current_epoch(&self) -> u64 {
        self.hard.current_epoch
    }

    /// The epoch this node leads, if it is an established leader.
    pub fn established_epoch(&self) -> Option<u64> {
        match &self.state {
            State::Leading(l) if l.phase == LeaderPhase::Broadcast => l.epoch,
            _ => None,
        }
    }

    /// The last index of the initial history of the epoch this node leads.
    pub fn established_index(&self) -> Option<u64> {
        match &self.state {
            State::Leading(l) if l.phase == LeaderPhase::Broadcast => Some(l.established_index),
            _ => None,
        }
    }

    /// The node's FLE state as others see it.
    pub fn peer_state(&self) -> PeerState {
        match self.state {
            State::Looking => PeerState::Looking,
            State::Following(_) => PeerState::Following,
            State::Leading(_) => PeerState::Leading,
        }
    }

    /// Every other member of the configuration in force, voter or learner.
    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let conf = self.configs.current();
        conf.voters.iter().chain(&conf.learners).copied().filter(move |m| *m != self.id)
    }

    /// This node's own FLE vote.
    /// A node that does not vote never proposes itself: it starts from a
    /// vote for a voter that ranks below every real one, and takes up the
    /// first better vote it hears.
    ///
    /// Votes are adopted by rank whatever the configurations say: nodes
    /// whose histories differ may disagree on who votes, and a node that
    /// ignored a vote for a node it does not count as a voter could split
    /// the election for good. FLE only picks a candidate; the candidate
    /// counts its own quorum in discovery, which is what keeps histories safe.
    fn own_vote(&self) -> Vote {
        if !self.may_lead() {
            let first = self.configs.current().voters.first().copied().unwrap_or(self.id);
            return Vote { leader: first, zxid: Zxid::ZERO, epoch: 0 };
        }
        Vote { leader: self.id, zxid: self.log.last_stamp(), epoch: self.hard.current_epoch }
    }

    /// How many peer messages this node dropped because they broke the
    /// protocol's expectations (wrong epoch, a gap, a sync that does not
    /// connect, an ACK of something never proposed...).
    pub fn dropped_messages(&self) -> u64 {
        self.dropped
    }

    /// A session nonce for this boot, without touching storage: the seed
    /// (drawn afresh for every start by the simulator and the CLI), the
    /// start-up time and the recovered state, mixed. The election's random
    /// stream is left alone.
    fn boot_nonce(&self, seed: u64, now: Instant) -> u64 {
        let mut rng = quorum_core::Rng::new(seed ^ 0x5e55_10a5_b007_0001);
        let mix = [now.as_nanos(), self.hard.accepted_epoch, self.hard.current_epoch, self.log.last_index()]
            .iter()
            .fold(rng.next_u64(), |acc, x| Rng64::mix(acc ^ x));
        // Leave room for many sessions in this boot without wrapping into 0.
        mix & !0xffff_ffff | 0x1_0000_0000
    }

    /// Drops a peer message that breaks the protocol's expectations: counted
    /// and logged, never trusted. Zab assumes FIFO links, so the caller then
    /// resets the session with that peer (a follower starts over from
    /// LOOKING; a leader drops the learner and tells it to rejoin).
    pub(crate) fn reject(&mut self, from: NodeId, kind: &'static str, why: &str) {
        self.dropped += 1;
        warn!(node = self.id.0, from = from.0, kind, why, "dropped a message that breaks the protocol");
    }

    /// Starts a write batch with the next tag.
    fn batch(&mut self) -> WriteBatch {
        WriteBatch::new(self.writes.issue())
    }

    /// Issues a write and remembers what it will make durable.
    fn persist(&mut self, mut batch: WriteBatch, out: &mut Effects<Message>) {
        if batch.hard_state.is_some() {
            batch.hard_state = Some(self.hard.encode());
        }
        if batch.is_empty() {
            return;
        }
        assert!(self.hard.accepted_epoch >= self.hard.current_epoch, "acceptedEpoch >= currentEpoch");
        if let Some(prev) = self.writes.waiting().next_back() {
            assert!(prev.hard.current_epoch <= self.hard.current_epoch, "currentEpoch never decreases");
            assert!(prev.hard.accepted_epoch <= self.hard.accepted_epoch, "acceptedEpoch never decreases");
        }
        self.writes.hold(batch.tag, WriteMark { last_index: self.log.last_index(), hard: self.hard });
        out.persist(batch);
    }

    /// Writes the hard state as it is now.
    fn persist_hard_state(&mut self, out: &mut Effects<Message>) {
        let mut batch = self.batch();
        batch.hard_state = Some(self.hard.encode());
        self.persist(batch, out);
    }

    /// Hands every entry up to `index` to the driver, in order, once each.
    fn advance_commit(&mut self, index: u64, out: &mut Effects<Message>) {
        let index = index.min(self.log.last_index());
        assert!(self.commit_index >= self.log.offset(), "everything compacted was committed");
        while self.commit_index < index {
            let next = self.commit_index + 1;
            let entry: Entry = self.log.get(next).cloned().expect("committed entries are held until compacted");
            assert_eq!(entry.index, next, "commits leave in index order");
            out.commit(entry);
            self.commit_index = next;
        }
    }

    /// This node's follower state, if it follows `from` in `epoch` (and, if
    /// given, is in `phase`): a message from anyone else, or of another epoch
    /// or phase, is stale and ignored.
    pub(crate) fn following(
        &mut self,
        from: NodeId,
        epoch: u64,
        phase: Option<state::FollowerPhase>,
    ) -> Option<&mut state::Following> {
        let State::Following(f) = &mut self.state else { return None };
        let current = from == f.leader && epoch == f.epoch && phase.is_none_or(|p| p == f.phase);
        current.then_some(&mut **f)
    }

    /// This node's leader state, if it leads `epoch`: a message about any
    /// other epoch is stale and ignored.
    pub(crate) fn leading(&mut self, epoch: u64) -> Option<&mut state::Leading> {
        let State::Leading(l) = &mut self.state else { return None };
        (l.epoch == Some(epoch)).then_some(&mut **l)
    }

    /// Changes role; every path out of a role goes through here or `become_looking`.
    fn set_state(&mut self, state: State) {
        self.state = state;
    }
}

impl Protocol for Zab {
    type Message = Message;
    type Config = ZabConfig;

    const NAME: &'static str = "zab";
    const LINKS: LinkKind = LinkKind::Fifo;

    fn seed_snapshot(members: &[NodeId], index: u64, data: bytes::Bytes) -> Option<Snapshot> {
        let meta = SnapshotMeta { membership: Membership { voters: members.to_vec(), ..Membership::default() } };
        Some(Snapshot { meta: meta.encode(), ..Snapshot::seed(index, data) })
    }

    fn new(init: Init<ZabConfig>) -> Result<Self, InitError> {
        let hard: HardState = init.stored.decode_hard_state()?;
        if hard.accepted_epoch < hard.current_epoch {
            let detail = format!("acceptedEpoch {} is below currentEpoch {}", hard.accepted_epoch, hard.current_epoch);
            return Err(InitError::corrupt("hard state", detail));
        }
        let (offset, offset_stamp) = init.stored.snapshot.as_ref().map_or((0, Zxid::ZERO), |s| (s.index, s.stamp));
        let log =
            Log::recover(offset, offset_stamp, init.stored.entries).map_err(|e| InitError::corrupt("history", e))?;
        // Zxids increase along a history, and no entry is of an epoch this
        // node never promised (the sync and broadcast paths rely on both).
        let mut prev = log.offset_stamp();
        for e in log.iter() {
            if e.stamp <= prev || e.stamp.major > hard.accepted_epoch {
                let detail = format!(
                    "entry {} has zxid {:?} after {prev:?} (accepted epoch {})",
                    e.index, e.stamp, hard.accepted_epoch
                );
                return Err(InitError::corrupt("history", detail));
            }
            prev = e.stamp;
        }
        let configs = membership::recover(&init.members, init.stored.snapshot.as_ref(), &log)?;
        let mut zab = Zab {
            id: init.id,
            configs,
            rng: quorum_core::Rng::new(init.seed),
            hard,
            log,
            snapshot: init.stored.snapshot,
            commit_index: offset,
            state: State::Looking,
            election: Election {
                round: 0,
                vote: Vote { leader: init.id, zxid: Zxid::ZERO, epoch: 0 },
                received: BTreeMap::new(),
                out_of_election: BTreeMap::new(),
                finalize_at: None,
                resend_at: init.now,
                resend_ticks: 1,
            },
            config: init.config,
            early_infos: BTreeMap::new(),
            epoch_floor: 0,
            session: 0,
            dropped: 0,
            writes: WriteQueue::new(),
            durable_index: 0,
            durable_hard: hard,
        };
        zab.durable_index = zab.log.last_index();
        zab.session =
            if zab.config.planted(PlantedBug::SessionsFromZero) { 0 } else { zab.boot_nonce(init.seed, init.now) };
        let mut out = Effects::new();
        zab.become_looking(init.now, &mut out);
        // Nothing can be sent before the driver runs us: the first votes leave
        // at once from the first timer.
        zab.election.resend_at = init.now;
        Ok(zab)
    }

    fn on_message(&mut self, now: Instant, from: NodeId, msg: Message, out: &mut Effects<Message>) {
        // Messages from outside our configuration are read too: our history
        // may be behind the one that added the sender. Each handler decides
        // what a stranger may do (a leader takes no FOLLOWERINFO from one,
        // FLE counts only voters).
        if from == self.id {
            return;
        }
        let _step = tracing::debug_span!("zab", node = self.id.0, epoch = self.hard.current_epoch).entered();
        trace!(from = from.0, kind = msg.kind(), "receive");
        match msg {
            Message::Notification(n) => self.on_notification(now, from, n, out),
            Message::FollowerInfo { session, accepted_epoch, accepted_leader } => {
                self.on_follower_info(now, from, session, accepted_epoch, accepted_leader, out)
            }
            Message::NewEpoch { session, epoch } => self.on_new_epoch(now, from, session, epoch, out),
            Message::AckEpoch { session, epoch, current_epoch, summary } => {
                self.on_ack_epoch(now, from, (session, epoch), current_epoch, summary, out)
            }
            Message::Diff { .. }
            | Message::Trunc { .. }
            | Message::Snap { .. }
            | Message::SnapChunk { .. }
            | Message::SyncEntries { .. } => self.on_sync_data(now, from, msg, out),
            Message::SyncAck { session, epoch, received } => {
                self.on_sync_ack(now, from, (session, epoch), received, out)
            }
            Message::NewLeader { epoch, last_index, last_zxid } => {
                self.on_new_leader(now, from, epoch, last_index, last_zxid, out)
            }
            Message::AckNewLeader { session, epoch, index } => {
                self.on_ack_new_leader(now, from, (session, epoch), index, out)
            }
            Message::UpToDate { epoch, commit } => self.on_up_to_date(now, from, epoch, commit, out),
            Message::Proposal { epoch, entries } => self.on_proposal(now, from, epoch, entries, out),
            Message::Ack { epoch, index } => self.on_ack(now, from, epoch, index, out),
            Message::Commit { epoch, index } => self.on_commit(now, from, epoch, index, out),
            Message::Ping { epoch, round, commit } => self.on_ping(now, from, epoch, round, commit, out),
            Message::PingAck { epoch, round } => self.on_ping_ack(now, from, epoch, round, out),
            Message::Reset { epoch } => self.on_reset(now, from, epoch, out),
            Message::Transfer { epoch, to } => self.on_transfer(now, from, epoch, to, out),
            Message::SyncRequest { epoch, read } => self.on_sync_request(now, from, epoch, read, out),
            Message::SyncReply { epoch, read, index } => self.on_sync_reply(now, from, epoch, read, index, out),
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Effects<Message>) {
        let _step = tracing::debug_span!("zab", node = self.id.0, epoch = self.hard.current_epoch).entered();
        match &self.state {
            State::Looking => self.election_timer(now, out),
            State::Following(_) => self.follower_timer(now, out),
            State::Leading(_) => self.leader_timer(now, out),
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        match &self.state {
            State::Looking => {
                let resend = self.election.resend_at;
                Some(self.election.finalize_at.map_or(resend, |f| f.min(resend)))
            }
            State::Following(f) => Some(match f.phase {
                state::FollowerPhase::Broadcast => f.last_heard + self.config.sync_limit(),
                _ => f.deadline,
            }),
            State::Leading(l) => {
                let mut t = l.ping.next;
                if l.phase != LeaderPhase::Broadcast {
                    t = t.min(l.deadline);
                }
                if let Some(b) = l.batch_deadline {
                    t = t.min(b);
                }
                Some(t)
            }
        }
    }

    fn propose(&mut self, now: Instant, cmd: Command, out: &mut Effects<Message>) -> Result<(), ProposeError> {
        self.leader_propose(now, cmd, out)
    }

    fn read(&mut self, now: Instant, id: ReadId, out: &mut Effects<Message>) -> Result<(), ReadError> {
        self.start_read(now, id, out)
    }

    fn local_read(&self, _now: Instant) -> Result<(), ReadError> {
        self.may_read_locally()
    }

    fn on_persisted(&mut self, now: Instant, tag: u64, out: &mut Effects<Message>) {
        for w in self.writes.persisted(tag) {
            self.durable_index = w.last_index;
            assert!(w.hard.current_epoch >= self.durable_hard.current_epoch, "currentEpoch never moves back");
            self.durable_hard = w.hard;
        }
        if let State::Leading(_) = self.state {
            self.leader_on_durable(now, out);
        }
    }

    fn on_link_down(&mut self, now: Instant, peer: NodeId, out: &mut Effects<Message>) {
        debug!(node = self.id.0, peer = peer.0, "link down");
        self.early_infos.remove(&peer);
        match &mut self.state {
            // The leader's stream to us may have lost messages: re-synchronise.
            State::Following(f) if f.leader == peer => self.become_looking(now, out),
            State::Leading(l) => {
                l.learners.remove(&peer);
                l.reads.retain(|r| !matches!(r.origin, state::ReadOrigin::Forwarded(p, _) if p == peer));
            }
            _ => {}
        }
    }

    fn on_snapshot(&mut self, now: Instant, index: u64, data: bytes::Bytes, out: &mut Effects<Message>) {
        self.take_snapshot(now, index, data, out);
    }

    fn change_membership(
        &mut self,
        now: Instant,
        change: MembershipChange,
        out: &mut Effects<Message>,
    ) -> Result<u64, String> {
        self.change(now, &change, out).map_err(|e| e.to_string())
    }

    fn membership(&self) -> Option<&Membership> {
        Some(self.configs.current())
    }

    fn membership_committed(&self) -> bool {
        Zab::membership_committed(self)
    }

    fn transfer_to(&mut self, now: Instant, target: NodeId, out: &mut Effects<Message>) -> Result<(), String> {
        self.transfer_leadership(now, target, out).map_err(|e| e.to_string())
    }

    fn hand_off(&mut self, now: Instant, out: &mut Effects<Message>) -> bool {
        match self.best_successor() {
            Some(to) => self.transfer_leadership(now, to, out).is_ok(),
            None => false,
        }
    }

    /// ACKEPOCH (the follower's acceptedEpoch promise), ACK of NEWLEADER
    /// (its history is the new epoch's) and ACK of a proposal (it is logged).
    fn vouches_for_disk(msg: &Message) -> bool {
        matches!(msg, Message::AckEpoch { .. } | Message::AckNewLeader { .. } | Message::Ack { .. })
    }

    fn status(&self) -> Status {
        let (role, leader) = match &self.state {
            State::Looking if !self.is_voter() => (Role::Learner, None),
            State::Looking => (Role::Candidate, None),
            State::Following(f) if !self.is_voter() => (Role::Learner, Some(f.leader)),
            State::Following(f) => (Role::Follower, Some(f.leader)),
            State::Leading(l) if l.phase == LeaderPhase::Broadcast => (Role::Leader, Some(self.id)),
            State::Leading(_) => (Role::Candidate, None),
        };
        Status {
            id: self.id,
            role,
            term: self.hard.current_epoch,
            leader,
            commit_index: self.commit_index,
            // A follower learns the leader's commit point with UPTODATE, at
            // the end of synchronisation.
            leader_commit: match &self.state {
                State::Following(f) if !f.up_to_date => None,
                _ => leader.map(|_| self.commit_index),
            },
            last_index: self.log.last_index(),
        }
    }

    fn invariants() -> Vec<Box<dyn Invariant<Self>>> {
        invariants::all()
    }
}
