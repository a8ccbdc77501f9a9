//! A fixed-leader replication protocol, small enough to check by eye, used to
//! test the runtime before the real protocols land.
//!
//! The lowest member is leader forever. It appends a proposal to its log, writes
//! it, and sends it to followers at once (its own write runs in parallel). A
//! follower appends what extends its log, writes it, and acknowledges with a
//! *durable* send. An entry is committed once a majority holds it durably (the
//! leader counts itself after `on_persisted`). With one leader that never
//! changes there are no conflicting entries, so this is safe; it is not live
//! if the leader dies, which is fine for a test.
//!
//! Reads: every committed entry is in the leader's log (no other leader can
//! exist), so `read` answers `ReadReady` at the leader's last index at once.

use quorum_core::{Bytes, Duration};
use quorum_core::{
    Command, Effects, Entry, Init, InitError, Instant, Log, Majority, NodeId, NotLeader, Payload, ProposeError,
    Protocol, ReadError, ReadId, Role, Snapshot, Stamp, Status, WriteBatch,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

const HEARTBEAT: Duration = Duration::from_millis(20);
const MAX_ENTRIES_PER_MESSAGE: usize = 256;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    Append { prev: u64, entries: Vec<Entry>, commit: u64 },
    Ack { last: u64 },
    Nack { last: u64 },
    Snap { snapshot: Snapshot },
}

pub struct FixedLeader {
    id: NodeId,
    leader: NodeId,
    members: Vec<NodeId>,
    log: Log,
    commit: u64,
    next_tag: u64,
    /// Leader: writes in flight (tag, last index they cover).
    in_flight: VecDeque<(u64, u64)>,
    durable_last: u64,
    matched: BTreeMap<NodeId, u64>,
    next: BTreeMap<NodeId, u64>,
    snapshot: Option<Snapshot>,
    heartbeat_at: Instant,
}

impl FixedLeader {
    fn is_leader(&self) -> bool {
        self.id == self.leader
    }

    fn write(&mut self, mut batch: WriteBatch, out: &mut Effects<Msg>) {
        self.next_tag += 1;
        batch.tag = self.next_tag;
        let last = self.log.last_index();
        self.in_flight.push_back((batch.tag, last));
        out.persist(batch);
    }

    fn send_to(&mut self, peer: NodeId, out: &mut Effects<Msg>) {
        let next = self.next[&peer];
        if next <= self.log.offset() {
            if let Some(snapshot) = &self.snapshot {
                out.send(peer, Msg::Snap { snapshot: snapshot.clone() });
                self.next.insert(peer, snapshot.index + 1);
            }
            return;
        }
        let entries = self.log.slice(next, self.log.last_index(), MAX_ENTRIES_PER_MESSAGE);
        self.next.insert(peer, next + entries.len() as u64);
        out.send(peer, Msg::Append { prev: next - 1, entries, commit: self.commit });
    }

    fn advance_commit(&mut self, out: &mut Effects<Msg>) {
        let mut acked: Vec<u64> = self.matched.values().copied().collect();
        acked.push(self.durable_last);
        let quorum_index = Majority::of(self.members.len()).reached_by_quorum(acked);
        self.commit_to(quorum_index, out);
    }

    fn commit_to(&mut self, index: u64, out: &mut Effects<Msg>) {
        let index = index.min(self.log.last_index());
        while self.commit < index {
            self.commit += 1;
            let entry = self.log.get(self.commit).expect("committed entries are held").clone();
            out.commit(entry);
        }
    }

    fn on_append(&mut self, prev: u64, entries: Vec<Entry>, commit: u64, out: &mut Effects<Msg>) {
        if prev > self.log.last_index() {
            out.send(self.leader, Msg::Nack { last: self.log.last_index() });
            return;
        }
        let fresh: Vec<Entry> = entries.into_iter().filter(|e| e.index > self.log.last_index()).collect();
        if !fresh.is_empty() {
            for e in &fresh {
                self.log.append(e.clone());
            }
            self.write(WriteBatch { entries: fresh, ..Default::default() }, out);
        }
        out.send_durable(self.leader, Msg::Ack { last: self.log.last_index() });
        self.commit_to(commit, out);
    }

    fn on_snap(&mut self, snapshot: Snapshot, out: &mut Effects<Msg>) {
        if snapshot.index > self.log.last_index() {
            self.log = Log::new(snapshot.index, snapshot.stamp);
            self.commit = self.commit.max(snapshot.index);
            self.write(WriteBatch { snapshot: Some(snapshot.clone()), ..Default::default() }, out);
            out.install_snapshot(snapshot.clone());
            self.snapshot = Some(snapshot);
        }
        out.send_durable(self.leader, Msg::Ack { last: self.log.last_index() });
    }
}

impl Protocol for FixedLeader {
    type Message = Msg;
    type Config = ();
    const NAME: &'static str = "fixed-leader";

    fn new(init: Init<()>) -> Result<Self, InitError> {
        let (offset, stamp) = init.stored.snapshot.as_ref().map_or((0, Stamp::ZERO), |s| (s.index, s.stamp));
        let log = Log::recover(offset, stamp, init.stored.entries).map_err(|e| InitError::corrupt("log", e))?;
        let leader = init.members[0];
        let peers = init.members.iter().copied().filter(|m| *m != init.id);
        let last = log.last_index();
        Ok(FixedLeader {
            id: init.id,
            leader,
            members: init.members.clone(),
            commit: offset,
            next_tag: 0,
            in_flight: VecDeque::new(),
            durable_last: last,
            matched: peers.clone().map(|p| (p, 0)).collect(),
            next: peers.map(|p| (p, last + 1)).collect(),
            snapshot: init.stored.snapshot,
            heartbeat_at: init.now,
            log,
        })
    }

    fn on_message(&mut self, _now: Instant, from: NodeId, msg: Msg, out: &mut Effects<Msg>) {
        match msg {
            Msg::Append { prev, entries, commit } if from == self.leader => self.on_append(prev, entries, commit, out),
            Msg::Snap { snapshot } if from == self.leader => self.on_snap(snapshot, out),
            Msg::Ack { last } if self.is_leader() => {
                let matched = self.matched.entry(from).or_default();
                *matched = (*matched).max(last);
                let next = self.next.entry(from).or_default();
                *next = (*next).max(last + 1);
                self.advance_commit(out);
            }
            Msg::Nack { last } if self.is_leader() => {
                self.next.insert(from, last + 1);
                self.send_to(from, out);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Effects<Msg>) {
        self.heartbeat_at = now + HEARTBEAT;
        if self.is_leader() {
            for peer in self.next.keys().copied().collect::<Vec<_>>() {
                // Entries never sent (after a snapshot, say) go with the heartbeat.
                self.send_to(peer, out);
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.is_leader().then_some(self.heartbeat_at)
    }

    fn propose(&mut self, _now: Instant, cmd: Command, out: &mut Effects<Msg>) -> Result<(), ProposeError> {
        if !self.is_leader() {
            return Err(NotLeader { leader_hint: Some(self.leader) }.into());
        }
        let entry = Entry { index: self.log.last_index() + 1, stamp: Stamp::new(1, 0), payload: Payload::Command(cmd) };
        self.log.append(entry.clone());
        self.write(WriteBatch { entries: vec![entry.clone()], ..Default::default() }, out);
        for peer in self.next.keys().copied().collect::<Vec<_>>() {
            if self.next[&peer] == entry.index {
                self.send_to(peer, out);
            }
        }
        Ok(())
    }

    fn read(&mut self, _now: Instant, id: ReadId, out: &mut Effects<Msg>) -> Result<(), ReadError> {
        if !self.is_leader() {
            return Err(ReadError::NotLeader(NotLeader { leader_hint: Some(self.leader) }));
        }
        // Everything committed is in the leader's log (it is the only leader), but
        // its commit index restarts low after a crash: wait for the whole log.
        out.read_ready(id, self.log.last_index());
        Ok(())
    }

    fn on_persisted(&mut self, _now: Instant, tag: u64, out: &mut Effects<Msg>) {
        while self.in_flight.front().is_some_and(|(t, _)| *t <= tag) {
            let (_, last) = self.in_flight.pop_front().expect("checked");
            self.durable_last = self.durable_last.max(last);
        }
        if self.is_leader() {
            self.advance_commit(out);
        }
    }

    fn on_snapshot(&mut self, _now: Instant, index: u64, data: Bytes, out: &mut Effects<Msg>) {
        let stamp = self.log.stamp_at(index).unwrap_or(Stamp::new(1, 0));
        let snapshot = Snapshot { index, stamp, meta: Bytes::new(), data };
        self.log.compact_to(index, stamp);
        self.write(WriteBatch { snapshot: Some(snapshot.clone()), ..Default::default() }, out);
        self.snapshot = Some(snapshot);
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: if self.is_leader() { Role::Leader } else { Role::Follower },
            term: 1,
            leader: Some(self.leader),
            commit_index: self.commit,
            leader_commit: Some(self.commit),
            last_index: self.log.last_index(),
        }
    }
}
