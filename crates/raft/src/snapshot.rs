//! Log compaction and InstallSnapshot (§7), with the snapshot sent in chunks.
//!
//! The driver snapshots its state machine and calls `on_snapshot(index, data)`;
//! Raft folds its log up to `index` into a [`Snapshot`] whose `meta` holds the
//! membership in force there, and persists it. A follower that needs entries
//! the leader no longer holds receives the snapshot chunk by chunk (stop and
//! wait, resent on each heartbeat until answered), then hands it to its driver
//! with `Effect::InstallSnapshot` and keeps any log suffix that follows it.

use crate::message::{Message, SnapshotChunk, SnapshotReply};
use crate::node::{IncomingSnapshot, State};
use crate::progress::ReplicationMode;
use crate::Out;
use crate::Raft;
use bytes::Bytes;
use quorum_core::{Configs, SnapshotMeta};
use quorum_core::{Instant, Log, Membership, NodeId, Snapshot, Stamp};

impl Raft {
    /// The driver applied everything up to `index` and snapshotted it: compact.
    pub(crate) fn compact(&mut self, index: u64, data: Bytes) {
        if index <= self.log.offset() {
            return;
        }
        if index > self.applied {
            tracing::warn!(node = self.id.0, index, applied = self.applied, "snapshot past the applied index ignored");
            return;
        }
        let stamp = self.log.stamp_at(index).expect("applied entries above the offset are held");
        let meta = SnapshotMeta { membership: self.configs.at(index).clone() }.encode();
        self.log.compact_to(index, stamp);
        self.configs.compact(index);
        let snapshot = Snapshot { index, stamp, meta, data };
        tracing::debug!(node = self.id.0, index, "log compacted");
        self.pending.snapshot = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
    }

    /// Leader: switch `to` to snapshot mode and send the first chunk.
    pub(crate) fn start_snapshot(&mut self, now: Instant, to: NodeId, out: &mut Out) {
        let index = self.snapshot.as_ref().expect("a compacted log has a snapshot").index;
        let pr = self.lead.progress.get_mut(&to).expect("a member");
        pr.mode = ReplicationMode::Snapshot { index, offset: 0 };
        pr.inflight.clear();
        pr.last_progress = now;
        tracing::debug!(node = self.id.0, %to, index, "sending snapshot");
        self.send_snapshot_chunk(to, out);
    }

    /// Leader: (re)sends the chunk `to` expects next.
    pub(crate) fn send_snapshot_chunk(&mut self, to: NodeId, out: &mut Out) {
        let snap = self.snapshot.as_ref().expect("snapshot mode needs a snapshot");
        let pr = self.lead.progress.get_mut(&to).expect("a member");
        let ReplicationMode::Snapshot { index, mut offset } = pr.mode else { return };
        if index != snap.index {
            // A newer snapshot replaced the one being sent: start it over.
            offset = 0;
            pr.mode = ReplicationMode::Snapshot { index: snap.index, offset };
        }
        let len = snap.data.len() as u64;
        let start = offset.min(len);
        let end = (start + self.config.snapshot_chunk_bytes as u64).min(len);
        let chunk = SnapshotChunk {
            term: self.term,
            index: snap.index,
            index_term: snap.stamp.major,
            meta: snap.meta.clone(),
            offset: start,
            data: snap.data.slice(start as usize..end as usize),
            done: end == len,
            round: self.lead.round,
        };
        out.send(to, Message::Snapshot(chunk));
    }

    /// Leader: a follower answered a chunk.
    pub(crate) fn on_snapshot_reply(&mut self, now: Instant, from: NodeId, reply: SnapshotReply, out: &mut Out) {
        if self.state != State::Leader {
            return;
        }
        if reply.round > self.lead.round {
            return self.drop_malformed(from, "an answer to a heartbeat round not yet sent");
        }
        if reply.done && reply.index > self.log.last_index() {
            return self.drop_malformed(from, "a snapshot installed past the leader's log");
        }
        let Some(pr) = self.lead.progress.get_mut(&from) else { return };
        if reply.round < pr.min_round {
            return; // from before it was made a voter: maybe from a process since wiped
        }
        pr.recent_active = true;
        pr.acked_round = pr.acked_round.max(reply.round);
        let ReplicationMode::Snapshot { index, .. } = pr.mode else { return };
        if reply.done {
            pr.on_success(reply.index, now);
            pr.become_probe(pr.match_index + 1, now);
            self.maybe_commit();
            self.send_append(now, from, true, out);
        } else if reply.index == index {
            pr.mode = ReplicationMode::Snapshot { index, offset: reply.next_offset };
            pr.last_progress = now;
            self.send_snapshot_chunk(from, out);
        }
    }

    /// Follower: one chunk from the leader of our term.
    pub(crate) fn on_snapshot_chunk(&mut self, now: Instant, from: NodeId, chunk: SnapshotChunk, out: &mut Out) {
        if self.state == State::Leader {
            return self.drop_malformed(from, "a snapshot from another leader of this node's term");
        }
        self.heard_from_leader(now, from);
        let reply = |raft: &Raft, next_offset: u64, done: bool| SnapshotReply {
            term: raft.term,
            index: chunk.index,
            next_offset,
            done,
            round: chunk.round,
        };
        if chunk.index <= self.commit {
            // We hold everything it covers already (committed prefixes agree).
            let r = reply(self, 0, true);
            self.send_durable(from, Message::SnapshotReply(r), out);
            return;
        }
        let same = self.incoming.as_ref().is_some_and(|i| i.index == chunk.index && i.index_term == chunk.index_term);
        if !same {
            if chunk.offset != 0 {
                let r = reply(self, 0, false);
                out.send(from, Message::SnapshotReply(r));
                return;
            }
            self.incoming = Some(IncomingSnapshot {
                index: chunk.index,
                index_term: chunk.index_term,
                meta: chunk.meta.clone(),
                data: Vec::new(),
            });
        }
        let incoming = self.incoming.as_mut().expect("set above");
        if chunk.offset != incoming.data.len() as u64 {
            let r = reply(self, self.incoming.as_ref().map_or(0, |i| i.data.len() as u64), false);
            out.send(from, Message::SnapshotReply(r));
            return;
        }
        incoming.data.extend_from_slice(&chunk.data);
        if !chunk.done {
            let r = reply(self, self.incoming.as_ref().map_or(0, |i| i.data.len() as u64), false);
            out.send(from, Message::SnapshotReply(r));
            return;
        }
        let incoming = self.incoming.take().expect("set above");
        let membership = match SnapshotMeta::decode(&incoming.meta) {
            Ok(meta) => meta.membership,
            Err(e) if self.config.planted(crate::PlantedBug::TrustSnapshotMeta) => {
                panic!("the leader's snapshot metadata decodes: {e}")
            }
            Err(e) => return self.drop_malformed(from, &format!("snapshot metadata: {e}")),
        };
        self.install(incoming, membership, out);
        let r = reply(self, 0, true);
        self.send_durable(from, Message::SnapshotReply(r), out);
    }

    /// Follower: replaces the state machine and the log prefix with a snapshot (§7).
    fn install(&mut self, incoming: IncomingSnapshot, membership: Membership, out: &mut Out) {
        let IncomingSnapshot { index, index_term, meta, data } = incoming;
        assert!(index > self.commit, "a snapshot at or below the commit index adds nothing");
        let stamp = Stamp::new(index_term, 0);
        if self.log.stamp_at(index) == Some(stamp) {
            // §7: "if existing log entry has same index and term as snapshot's
            // last included entry, retain log entries following it".
            self.log.compact_to(index, stamp);
            self.configs.compact(index);
        } else {
            // Otherwise discard the entire log.
            self.log = Log::new(index, stamp);
            self.configs = Configs::new(index, membership);
            self.pending.entries.clear();
            self.pending.truncate_from = Some(self.pending.truncate_from.map_or(index + 1, |t| t.min(index + 1)));
            self.cap_durable(index);
        }
        let snapshot = Snapshot { index, stamp, meta, data: Bytes::from(data) };
        tracing::debug!(node = self.id.0, index, "snapshot installed");
        self.commit = index;
        self.applied = index;
        self.pending.snapshot = Some(snapshot.clone());
        self.snapshot = Some(snapshot.clone());
        out.install_snapshot(snapshot);
    }
}
