//! Primary-backup with a fixed primary that commits on a majority and never fails over.
//!
//! The first member is the primary forever. It appends a command to its log,
//! makes it durable, and only then replicates it; backups append entries in
//! index order, make them durable, and acknowledge. An entry is committed once
//! a majority (the primary included) holds it durably.
//!
//! Why this is safe without epochs or elections: the primary only ever sends
//! entries that are already on its own disk, so a crash cannot make it forget
//! an entry a backup holds, and its log only grows. Every backup's log is
//! therefore a prefix of the primary's durable log, and the commit point, a
//! majority's prefix, never changes its contents.
//!
//! When the primary is down, the cluster is unavailable: that is the price of
//! having no election, and what the real protocols are measured against.
//!
//! [`PlantedBug`] variants break the protocol on purpose so that tests can show
//! the simulator's checkers catch each kind of bug.

use bytes::Bytes;
use quorum_core::{
    Duration, Effects, Entry, Init, InitError, Instant, Log, Majority, NodeId, NotLeader, Payload, ProposeError,
    Protocol, ReadError, ReadId, Role, Snapshot, Stamp, Status, WriteBatch,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// A deliberate bug, for testing the checkers.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum PlantedBug {
    /// The primary commits (and so acknowledges) a command as soon as it
    /// arrives: before it is durable anywhere, let alone on a majority.
    AckBeforeMajority,
    /// Backups append entries in arrival order at their own next index, so
    /// under reordering two nodes apply different commands at one index.
    DivergentApply,
    /// Every node serves reads from its own state at once, without asking the
    /// primary: a lagging backup answers with stale data.
    StaleLocalRead,
    /// A backup hands its state machine each committed entry's predecessor
    /// once more, as a no-op: an index it applied, delivered again with other
    /// contents. Applying nothing twice, only the re-delivery check sees it.
    RedeliverAsNoop,
    /// A backup installs the last snapshot its driver gave it as if it covered
    /// the backup's commit point: a snapshot labelled with a later index than
    /// its contents.
    SnapshotAhead,
    /// A backup that restarted keeps appending and acknowledging but never
    /// applies again: safe, but it never catches up.
    StuckAfterRestart,
}

/// Settings.
#[derive(Clone, Debug, Hash)]
pub struct PrimaryBackupConfig {
    /// How often the primary resends what is unacknowledged and the commit point.
    pub heartbeat: Duration,
    /// Most entries in one message.
    pub max_batch: usize,
    /// A planted bug, or `None` for the correct protocol.
    pub bug: Option<PlantedBug>,
}

fn check_primary_backup(config: &PrimaryBackupConfig) -> Result<(), String> {
    quorum_core::settings::check_rules(&[
        (config.heartbeat.as_nanos() > 0, "heartbeat_ms must be positive"),
        (config.max_batch > 0, "max_batch must be positive"),
    ])
}

quorum_core::tunables!(PrimaryBackupConfig, check = check_primary_backup, {
    heartbeat: ms "how often the primary resends what is unacknowledged and the commit point",
    max_batch: value "most entries in one message",
});

impl Default for PrimaryBackupConfig {
    fn default() -> Self {
        PrimaryBackupConfig { heartbeat: Duration::from_millis(20), max_batch: 64, bug: None }
    }
}

/// Messages between primary and backups.
#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub enum PbMessage {
    /// Entries to append (possibly none: a heartbeat) and the commit point.
    Replicate {
        /// Consecutive entries.
        entries: Vec<Entry>,
        /// The primary's commit index.
        commit: u64,
    },
    /// The backup durably holds every entry up to `last`.
    Ack {
        /// Its last index.
        last: u64,
    },
}

/// One node of the primary-backup baseline.
#[derive(Clone, Debug, Hash)]
pub struct PrimaryBackup {
    id: NodeId,
    members: Vec<NodeId>,
    primary: NodeId,
    config: PrimaryBackupConfig,
    log: Log,
    /// The highest index durable on this node.
    durable: u64,
    commit: u64,
    /// Writes in flight: (tag, last index they cover).
    in_flight: VecDeque<(u64, u64)>,
    next_tag: u64,
    /// Primary only: highest index each member holds durably (by position in `members`).
    matched: Vec<u64>,
    /// Primary only: highest index sent to each member.
    sent: Vec<u64>,
    heartbeat_due: Option<Instant>,
    /// DivergentApply only: commands already appended.
    seen: BTreeSet<(quorum_core::ClientId, u64)>,
    /// SnapshotAhead only: the last snapshot the driver handed over.
    snapshot: Option<Bytes>,
    /// StuckAfterRestart only: this node started from a non-empty disk.
    restarted: bool,
}

impl PrimaryBackup {
    fn is_primary(&self) -> bool {
        self.id == self.primary
    }

    fn position(&self, id: NodeId) -> usize {
        self.members.iter().position(|m| *m == id).expect("message from a non-member")
    }

    fn persist(&mut self, entries: Vec<Entry>, out: &mut Effects<PbMessage>) {
        self.next_tag += 1;
        self.in_flight.push_back((self.next_tag, self.log.last_index()));
        out.persist(WriteBatch { tag: self.next_tag, entries, ..Default::default() });
    }

    /// Commits up to `index` (never beyond what this node holds), in order.
    fn commit_to(&mut self, index: u64, out: &mut Effects<PbMessage>) {
        let target = index.min(self.log.last_index());
        if self.bug_on_backup(PlantedBug::StuckAfterRestart) && self.restarted {
            return;
        }
        while self.commit < target {
            self.commit += 1;
            let entry = self.log.get(self.commit).expect("committed entries are in the log").clone();
            out.commit(entry);
            if self.bug_on_backup(PlantedBug::RedeliverAsNoop) && self.commit > 1 {
                out.commit(Entry::noop(self.commit - 1, Stamp::new(1, 0)));
            }
        }
        if self.bug_on_backup(PlantedBug::SnapshotAhead) && self.commit > 0 {
            if let Some(data) = self.snapshot.take() {
                let stamp = Stamp::new(1, 0);
                out.install_snapshot(Snapshot { index: self.commit, stamp, meta: Bytes::new(), data });
            }
        }
    }

    fn bug_on_backup(&self, bug: PlantedBug) -> bool {
        self.config.bug == Some(bug) && !self.is_primary()
    }

    /// Primary: the highest index a majority holds durably.
    fn majority_match(&self) -> u64 {
        let mut m = self.matched.clone();
        m[self.position(self.id)] = self.durable;
        Majority::of(self.members.len()).reached_by_quorum(m)
    }

    /// Primary: sends each backup what it has not been sent, up to `upto`.
    fn replicate_new(&mut self, upto: u64, out: &mut Effects<PbMessage>) {
        for b in 0..self.members.len() {
            let to = self.members[b];
            if to == self.id || self.sent[b] >= upto {
                continue;
            }
            let entries = self.log.slice(self.sent[b] + 1, upto, self.config.max_batch);
            self.sent[b] = entries.last().map_or(self.sent[b], |e| e.index);
            out.send(to, PbMessage::Replicate { entries, commit: self.commit });
        }
    }

    /// Primary: resends from each backup's acknowledged point (covers lost messages).
    fn heartbeat(&mut self, out: &mut Effects<PbMessage>) {
        let limit =
            if self.config.bug == Some(PlantedBug::AckBeforeMajority) { self.log.last_index() } else { self.durable };
        for b in 0..self.members.len() {
            let to = self.members[b];
            if to == self.id {
                continue;
            }
            let entries = self.log.slice(self.matched[b] + 1, limit, self.config.max_batch);
            self.sent[b] = self.sent[b].max(entries.last().map_or(0, |e| e.index));
            out.send(to, PbMessage::Replicate { entries, commit: self.commit });
        }
    }

    fn on_replicate(&mut self, entries: Vec<Entry>, commit: u64, out: &mut Effects<PbMessage>) {
        let mut appended = Vec::new();
        for e in entries {
            if self.config.bug == Some(PlantedBug::DivergentApply) {
                let Payload::Command(cmd) = &e.payload else { continue };
                if self.seen.insert(cmd.id()) {
                    let e = Entry { index: self.log.last_index() + 1, ..e };
                    self.log.append(e.clone());
                    appended.push(e);
                }
                continue;
            }
            if e.index <= self.log.last_index() {
                continue; // already held: the primary's log never changes an entry
            }
            if e.index != self.log.last_index() + 1 {
                break; // a gap: an earlier message was lost; the heartbeat resends
            }
            self.log.append(e.clone());
            appended.push(e);
        }
        if !appended.is_empty() {
            self.persist(appended, out);
        }
        // Durable send: the ack leaves only once the append above is on disk.
        out.send_durable(self.primary, PbMessage::Ack { last: self.log.last_index() });
        self.commit_to(commit, out);
    }

    fn on_ack(&mut self, from: NodeId, last: u64, out: &mut Effects<PbMessage>) {
        let b = self.position(from);
        self.matched[b] = self.matched[b].max(last.min(self.log.last_index()));
        self.sent[b] = self.sent[b].max(self.matched[b]);
        if self.config.bug != Some(PlantedBug::AckBeforeMajority) {
            let m = self.majority_match();
            self.commit_to(m, out);
        }
    }
}

impl Protocol for PrimaryBackup {
    type Message = PbMessage;
    type Config = PrimaryBackupConfig;
    const NAME: &'static str = "primary-backup";

    fn new(init: Init<PrimaryBackupConfig>) -> Result<Self, InitError> {
        InitError::check_member(init.id, &init.members)?;
        let log = Log::recover(0, Stamp::ZERO, init.stored.entries).map_err(|e| InitError::corrupt("log", e))?;
        let n = init.members.len();
        let durable = log.last_index();
        let is_primary = init.id == init.members[0];
        Ok(PrimaryBackup {
            id: init.id,
            primary: init.members[0],
            members: init.members,
            log,
            durable,
            commit: 0,
            in_flight: VecDeque::new(),
            next_tag: 0,
            matched: vec![0; n],
            sent: vec![0; n],
            heartbeat_due: is_primary.then_some(init.now),
            seen: BTreeSet::new(),
            snapshot: None,
            restarted: durable > 0,
            config: init.config,
        })
    }

    fn on_message(&mut self, _now: Instant, from: NodeId, msg: PbMessage, out: &mut Effects<PbMessage>) {
        match msg {
            PbMessage::Replicate { entries, commit } if !self.is_primary() => self.on_replicate(entries, commit, out),
            PbMessage::Ack { last } if self.is_primary() => self.on_ack(from, last, out),
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Effects<PbMessage>) {
        if self.is_primary() {
            self.heartbeat(out);
            self.heartbeat_due = Some(now + self.config.heartbeat);
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.heartbeat_due
    }

    fn propose(
        &mut self,
        _now: Instant,
        cmd: quorum_core::Command,
        out: &mut Effects<PbMessage>,
    ) -> Result<(), ProposeError> {
        if !self.is_primary() {
            return Err(NotLeader { leader_hint: Some(self.primary) }.into());
        }
        let entry = Entry { index: self.log.last_index() + 1, stamp: Stamp::new(1, 0), payload: Payload::Command(cmd) };
        self.log.append(entry.clone());
        self.persist(vec![entry], out);
        if self.config.bug == Some(PlantedBug::AckBeforeMajority) {
            let last = self.log.last_index();
            self.replicate_new(last, out);
            self.commit_to(last, out);
        }
        Ok(())
    }

    fn read(&mut self, _now: Instant, id: ReadId, out: &mut Effects<PbMessage>) -> Result<(), ReadError> {
        if self.config.bug == Some(PlantedBug::StaleLocalRead) {
            out.read_ready(id, self.commit);
            return Ok(());
        }
        Err(ReadError::Unsupported)
    }

    /// Any node may answer a local read: each applies only committed entries,
    /// in order, so its state is a committed prefix (sequentially consistent).
    fn local_read(&self, _now: Instant) -> Result<(), ReadError> {
        Ok(())
    }

    fn on_persisted(&mut self, _now: Instant, tag: u64, out: &mut Effects<PbMessage>) {
        while self.in_flight.front().is_some_and(|(t, _)| *t <= tag) {
            let (_, last) = self.in_flight.pop_front().expect("checked");
            self.durable = self.durable.max(last);
        }
        if self.is_primary() && self.config.bug != Some(PlantedBug::AckBeforeMajority) {
            let durable = self.durable;
            self.replicate_new(durable, out);
            let m = self.majority_match();
            self.commit_to(m, out);
        }
    }

    fn on_snapshot(&mut self, _now: Instant, _index: u64, data: Bytes, _out: &mut Effects<PbMessage>) {
        // The baseline keeps its whole log: it has no catch-up by snapshot.
        if self.config.bug == Some(PlantedBug::SnapshotAhead) {
            self.snapshot = Some(data);
        }
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: if self.is_primary() { Role::Leader } else { Role::Follower },
            term: 1,
            leader: Some(self.primary),
            commit_index: self.commit,
            leader_commit: Some(self.commit),
            last_index: self.log.last_index(),
        }
    }
}
