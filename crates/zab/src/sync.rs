//! Phase 2: Synchronization. The leader brings each follower of its quorum
//! to its own history with DIFF (append), TRUNC (cut a divergent suffix, then
//! append) or SNAP (install the leader's snapshot, then append), then sends
//! NEWLEADER. The follower applies all of it, with `currentEpoch`, in one
//! durable write, and acknowledges. A quorum of acknowledgements establishes
//! the epoch and commits the leader's history (UPTODATE).

use crate::message::{HistorySummary, Message, Zxid};
use crate::state::{FollowerPhase, LeaderPhase, Pending, Stage, State, SyncKind, SyncStream};
use crate::Out;
use crate::Zab;
use bytes::Bytes;
use quorum_core::{Entry, Instant, Log, NodeId, Snapshot};
use tracing::debug;

/// How far the follower's history agrees with the leader's, exactly: the
/// largest index at which both hold the same zxid, or `None` when that point
/// lies in the leader's compacted prefix and cannot be checked.
///
/// Histories are runs of entries with one epoch each, and a run of epoch `e`
/// holds consecutive counters of the epoch-`e` leader's proposals, so the
/// summary gives the follower's zxid at every index. Two histories that share
/// a zxid agree on everything before it, so agreement is prefix-closed: the
/// answer is the highest index, searching down from the shorter history's
/// end, where the zxids match. (ZooKeeper derives TRUNC from the follower's
/// last zxid alone and relies on zxid order; a summary is exact even when the
/// follower's history skips a run of the leader's.)
pub(crate) fn common_prefix(log: &Log, s: &HistorySummary) -> Option<u64> {
    let lowest = s.base_index.max(log.offset());
    let mut i = s.last_index().min(log.last_index());
    while i >= lowest {
        if log.stamp_at(i).is_some() && log.stamp_at(i) == follower_zxid_at(s, i) {
            return Some(i);
        }
        if i == 0 {
            break;
        }
        i -= 1;
    }
    None
}

/// The follower's zxid at `index`, from its summary.
fn follower_zxid_at(s: &HistorySummary, index: u64) -> Option<Zxid> {
    if index == s.base_index {
        return Some(s.base_zxid);
    }
    let k = s.segments.partition_point(|&(end, _)| end < index);
    let &(end, zxid) = s.segments.get(k)?;
    // Inside one run, the zxid at index i is (e, c - (end - i)).
    zxid.minor.checked_sub(end - index).map(|c| Zxid::new(zxid.major, c))
}

/// The encoded size of an entry.
pub(crate) fn entry_bytes(e: &Entry) -> usize {
    postcard::serialize_with_flavor(e, postcard::ser_flavors::Size::default()).unwrap_or(0)
}

/// Entries from `from` on, about `budget` encoded bytes of them (at least one,
/// however large, if there is one).
fn chunk_from(log: &Log, from: u64, budget: usize) -> Vec<Entry> {
    let (mut entries, mut bytes) = (Vec::new(), 0);
    let mut i = from;
    while let Some(e) = log.get(i) {
        let size = entry_bytes(e);
        if !entries.is_empty() && bytes + size > budget {
            break;
        }
        bytes += size;
        entries.push(e.clone());
        i += 1;
    }
    entries
}

/// Checks that `entries` continue a history ending at `tail`: consecutive
/// indexes and increasing zxids.
pub(crate) fn chains(tail: (u64, Zxid), entries: &[Entry]) -> Result<(), String> {
    let (mut index, mut zxid) = tail;
    for e in entries {
        if Some(e.index) != index.checked_add(1) || e.stamp <= zxid {
            return Err(format!("entry {} {:?} does not follow {index} {zxid:?}", e.index, e.stamp));
        }
        if let quorum_core::Payload::Membership(m) = &e.payload {
            if !m.is_sane() {
                return Err(format!("entry {} holds a membership that makes no sense: {m:?}", e.index));
            }
        }
        (index, zxid) = (e.index, e.stamp);
    }
    Ok(())
}

impl Zab {
    /// A quorum promised the epoch: become its leader's history's owner.
    pub(crate) fn start_sync(&mut self, now: Instant, out: &mut Out) {
        let State::Leading(l) = &mut self.state else { return };
        l.phase = LeaderPhase::Sync;
        let epoch = l.epoch();
        let ready: Vec<(NodeId, HistorySummary)> = l
            .learners
            .iter()
            .filter_map(|(p, x)| match &x.stage {
                Stage::AckedEpoch(s) => Some((*p, s.clone())),
                _ => None,
            })
            .collect();
        debug!(node = self.id.0, epoch, followers = ready.len(), "synchronising");
        // Our history is the epoch's initial history: currentEpoch = e, durably.
        // We count as one ACK of NEWLEADER once this is durable.
        assert!(epoch > self.hard.current_epoch, "a new epoch is above the current one");
        self.hard.current_epoch = epoch;
        self.persist_hard_state(out);
        for (peer, summary) in ready {
            self.sync_learner(now, peer, &summary, out);
        }
    }

    /// Starts (or starts over) one follower's synchronisation: DIFF, TRUNC or
    /// SNAP as a header carrying the first chunk, then the rest in bounded
    /// chunks (`pump_sync`), then NEWLEADER. From NEWLEADER on the follower
    /// receives the proposal stream.
    pub(crate) fn sync_learner(&mut self, now: Instant, peer: NodeId, s: &HistorySummary, out: &mut Out) {
        let epoch = match &self.state {
            State::Leading(l) => l.epoch(),
            _ => return,
        };
        let mut chunk = self.config.sync_chunk_bytes.max(1);
        if self.config.planted(crate::PlantedBug::SyncInOneMessage) {
            chunk = usize::MAX;
        }
        let (msg, next, snapshot) = match common_prefix(&self.log, s) {
            Some(p) if p >= self.log.offset() => {
                let entries = chunk_from(&self.log, p + 1, chunk);
                let next = p + 1 + entries.len() as u64;
                let zxid = self.log.stamp_at(p).expect("the common point is held");
                let msg = if p == s.last_index() {
                    Message::Diff { epoch, prev_index: p, prev_zxid: zxid, entries }
                } else {
                    Message::Trunc { epoch, index: p, zxid, entries }
                };
                (msg, next, None)
            }
            _ => {
                let Some(snapshot) = self.snapshot.clone() else {
                    // Without a snapshot our history starts at zero, and every
                    // honest history agrees with it there.
                    self.reject(peer, "ACKEPOCH", "the history shares no point with ours");
                    return self.reset_learner(peer, out);
                };
                assert_eq!(snapshot.index, self.log.offset(), "the snapshot is the log's compaction point");
                let first = snapshot.data.len().min(chunk);
                let header = Snapshot { data: snapshot.data.slice(..first), ..snapshot.clone() };
                let size = snapshot.data.len() as u64;
                let next = snapshot.index + 1;
                (Message::Snap { epoch, snapshot: header, size, entries: Vec::new() }, next, Some((snapshot, first)))
            }
        };
        debug!(node = self.id.0, peer = peer.0, kind = msg.kind(), "sync");
        let State::Leading(l) = &mut self.state else { return };
        let Some(learner) = l.learners.get_mut(&peer) else { return };
        out.send(peer, msg);
        learner.sync_sent += 1;
        learner.stage = Stage::Streaming;
        learner.last_heard = now;
        learner.stream = Some(Box::new(SyncStream { summary: s.clone(), snapshot, next }));
        self.pump_sync(now, peer, out);
    }

    /// Sends a streaming follower its next sync chunks, at most
    /// `sync_window_chunks` unacknowledged; once it has everything we hold,
    /// NEWLEADER (and UPTODATE if the epoch is established already).
    pub(crate) fn pump_sync(&mut self, now: Instant, peer: NodeId, out: &mut Out) {
        let chunk = self.config.sync_chunk_bytes.max(1);
        let window = self.config.sync_window_chunks.max(1);
        loop {
            let State::Leading(l) = &mut self.state else { return };
            let epoch = l.epoch();
            let established = l.phase == LeaderPhase::Broadcast;
            let Some(learner) = l.learners.get_mut(&peer) else { return };
            if learner.stage != Stage::Streaming {
                return;
            }
            let full = learner.sync_sent - learner.sync_acked >= window;
            let stream = learner.stream.as_mut().expect("a streaming learner has a stream");
            if let Some((snapshot, sent)) = &mut stream.snapshot {
                if *sent < snapshot.data.len() {
                    if full {
                        return;
                    }
                    let end = (*sent + chunk).min(snapshot.data.len());
                    let data = snapshot.data.slice(*sent..end);
                    *sent = end;
                    learner.sync_sent += 1;
                    out.send(peer, Message::SnapChunk { epoch, data });
                    continue;
                }
            }
            let next = stream.next;
            if next <= self.log.last_index() {
                if next <= self.log.offset() {
                    // A snapshot compacted what the stream still had to send:
                    // start over (the follower drops what it got so far).
                    let summary = stream.summary.clone();
                    debug!(node = self.id.0, peer = peer.0, next, "sync overtaken by compaction, restarting");
                    return self.sync_learner(now, peer, &summary, out);
                }
                if full {
                    return;
                }
                let entries = chunk_from(&self.log, next, chunk);
                stream.next = next + entries.len() as u64;
                learner.sync_sent += 1;
                out.send(peer, Message::SyncEntries { epoch, entries });
                continue;
            }
            // The follower has all we hold: NEWLEADER closes the sync, and the
            // proposals we make from now on reach it in the broadcast stream.
            let last_index = self.log.last_index();
            learner.stream = None;
            learner.stage = Stage::Synced;
            learner.newleader_index = last_index;
            learner.last_heard = now;
            out.send(peer, Message::NewLeader { epoch, last_index, last_zxid: self.log.last_stamp() });
            if established {
                out.send(peer, Message::UpToDate { epoch, commit: self.commit_index });
            }
            return;
        }
    }

    /// SYNCACK: the follower took `received` sync messages; send more.
    pub(crate) fn on_sync_ack(
        &mut self,
        now: Instant,
        from: NodeId,
        (session, epoch): (u64, u64),
        received: u64,
        out: &mut Out,
    ) {
        let sync_limit = self.config.sync_limit();
        let Some(l) = self.leading(epoch) else { return };
        let Some(learner) = l.learners.get_mut(&from) else { return self.reset_learner(from, out) };
        if learner.session != session {
            return; // about an earlier session's stream
        }
        if received > learner.sync_sent || received < learner.sync_acked {
            let why = format!("acknowledges {received} sync messages, {} sent", learner.sync_sent);
            self.reject(from, "SYNCACK", &why);
            return self.reset_learner(from, out);
        }
        learner.sync_acked = received;
        learner.last_heard = now;
        if l.phase == LeaderPhase::Sync {
            // A long sync that makes progress does not count against initLimit.
            l.deadline = l.deadline.max(now + sync_limit);
        }
        self.pump_sync(now, from, out);
    }

    /// Whether the sync point of `kind` is one this node can take: DIFF
    /// continues our history, TRUNC cuts it at a point we hold and above what
    /// we committed, SNAP does not move the commit point back.
    fn sync_point_fits(&self, kind: &SyncKind) -> Result<(), String> {
        match kind {
            SyncKind::Diff { prev_index, prev_zxid } => {
                if *prev_index != self.log.last_index() || self.log.stamp_at(*prev_index) != Some(*prev_zxid) {
                    return Err(format!("DIFF from {prev_index} {prev_zxid:?} does not continue our history"));
                }
            }
            SyncKind::Trunc { index, zxid } => {
                if self.log.stamp_at(*index) != Some(*zxid) {
                    return Err(format!("TRUNC point {index} {zxid:?} is not in our history"));
                }
                if *index < self.commit_index {
                    return Err(format!("TRUNC to {index} would remove committed {}", self.commit_index));
                }
            }
            SyncKind::Snap(snapshot) => {
                if snapshot.index < self.commit_index {
                    return Err(format!("SNAP at {} is below our commit point {}", snapshot.index, self.commit_index));
                }
                crate::membership::of_snapshot(snapshot).map_err(|e| format!("SNAP metadata: {e}"))?;
            }
        }
        Ok(())
    }

    /// DIFF, TRUNC or SNAP, SNAPCHUNK, SYNCENTRIES: collect the sync data
    /// (applied atomically at NEWLEADER) and acknowledge it for flow control.
    /// Anything that does not fit the stream is a broken leader or link:
    /// dropped, counted, and we start over.
    pub(crate) fn on_sync_data(&mut self, now: Instant, from: NodeId, msg: Message, out: &mut Out) {
        let sync_limit = self.config.sync_limit();
        let kind_name = msg.kind();
        let State::Following(f) = &mut self.state else { return };
        let epoch = match &msg {
            Message::Diff { epoch, .. }
            | Message::Trunc { epoch, .. }
            | Message::Snap { epoch, .. }
            | Message::SnapChunk { epoch, .. }
            | Message::SyncEntries { epoch, .. } => *epoch,
            _ => return,
        };
        // Before NEWEPOCH (a stream of an older session may still be arriving)
        // or for another epoch: not ours, ignore.
        if from != f.leader || f.phase == FollowerPhase::Discovery || epoch != f.epoch {
            return;
        }
        let result = if f.phase != FollowerPhase::Sync {
            Err("sync data after NEWLEADER".to_string())
        } else {
            self.take_sync_data(msg)
        };
        if let Err(why) = result {
            self.reject(from, kind_name, &why);
            return self.become_looking(now, out);
        }
        let State::Following(f) = &mut self.state else { return };
        f.last_heard = now;
        f.deadline = f.deadline.max(now + sync_limit);
        f.sync_received += 1;
        out.send(from, Message::SyncAck { session: f.session, epoch, received: f.sync_received });
    }

    /// Adds one sync message to the pending data, if it fits.
    fn take_sync_data(&mut self, msg: Message) -> Result<(), String> {
        let header = |kind: SyncKind, entries: Vec<Entry>, snap_size: u64| Pending {
            kind,
            entries,
            snap_data: Vec::new(),
            snap_size,
        };
        let (pending, entries) = match msg {
            Message::Diff { prev_index, prev_zxid, entries, .. } => {
                (header(SyncKind::Diff { prev_index, prev_zxid }, Vec::new(), 0), entries)
            }
            Message::Trunc { index, zxid, entries, .. } => {
                (header(SyncKind::Trunc { index, zxid }, Vec::new(), 0), entries)
            }
            Message::Snap { snapshot, size, entries, .. } => {
                if snapshot.data.len() as u64 > size {
                    return Err(format!("SNAP carries {} bytes of {size}", snapshot.data.len()));
                }
                let mut p = header(SyncKind::Snap(snapshot.clone()), Vec::new(), size);
                p.snap_data.extend_from_slice(&snapshot.data);
                (p, entries)
            }
            Message::SnapChunk { data, .. } => {
                let State::Following(f) = &mut self.state else { return Ok(()) };
                let Some(p) = f.pending.as_mut() else { return Err("SNAPCHUNK before SNAP".into()) };
                if !matches!(p.kind, SyncKind::Snap(_)) || p.snap_data.len() as u64 + data.len() as u64 > p.snap_size {
                    return Err("SNAPCHUNK beyond the announced snapshot".into());
                }
                p.snap_data.extend_from_slice(&data);
                return Ok(());
            }
            Message::SyncEntries { entries, .. } => {
                let State::Following(f) = &mut self.state else { return Ok(()) };
                let Some(p) = f.pending.as_mut() else { return Err("SYNCENTRIES before DIFF/TRUNC/SNAP".into()) };
                if !p.data_complete() {
                    return Err("SYNCENTRIES before the snapshot's data is complete".into());
                }
                chains(p.tail(), &entries)?;
                p.entries.extend(entries);
                return Ok(());
            }
            _ => return Ok(()),
        };
        // A header (re)starts the sync: what came before in this session is dropped.
        self.sync_point_fits(&pending.kind)?;
        if !entries.is_empty() && !pending.data_complete() {
            return Err("SNAP entries before its data is complete".into());
        }
        chains(pending.tail(), &entries)?;
        let State::Following(f) = &mut self.state else { return Ok(()) };
        f.pending = Some(Pending { entries, ..pending });
        Ok(())
    }

    /// NEWLEADER: apply the sync data and `currentEpoch = e` in one durable
    /// write (ZOOKEEPER-4643/4646), then ACK once it is durable.
    pub(crate) fn on_new_leader(
        &mut self,
        now: Instant,
        from: NodeId,
        epoch: u64,
        last_index: u64,
        last_zxid: Zxid,
        out: &mut Out,
    ) {
        let Some(f) = self.following(from, epoch, Some(FollowerPhase::Sync)) else { return };
        let Some(pending) = f.pending.take() else {
            self.reject(from, "NEWLEADER", "no sync data before it");
            return self.become_looking(now, out);
        };
        let complete = if !pending.data_complete() {
            Err("the snapshot's data is incomplete".to_string())
        } else if pending.tail() != (last_index, last_zxid) {
            Err(format!("announces {last_index} {last_zxid:?}, the sync ends at {:?}", pending.tail()))
        } else {
            self.sync_point_fits(&pending.kind)
        };
        if let Err(why) = complete {
            self.reject(from, "NEWLEADER", &why);
            return self.become_looking(now, out);
        }
        let State::Following(f) = &mut self.state else { return };
        f.phase = FollowerPhase::Broadcast;
        f.last_heard = now;
        let mut batch = self.batch();
        match pending.kind {
            SyncKind::Diff { .. } => {}
            SyncKind::Trunc { index, .. } => {
                self.log.truncate_from(index + 1);
                self.configs.truncate_from(index + 1);
                batch.truncate_from = Some(index + 1);
            }
            SyncKind::Snap(header) => {
                let snapshot = Snapshot { data: Bytes::from(pending.snap_data), ..header };
                self.log = Log::new(snapshot.index, snapshot.stamp);
                // Checked by `sync_point_fits`; a snapshot without metadata keeps what we know.
                let base = match crate::membership::of_snapshot(&snapshot) {
                    Ok(Some(m)) => m,
                    _ => self.configs.at(snapshot.index).clone(),
                };
                self.configs.reset(snapshot.index, base);
                batch.truncate_from = Some(snapshot.index + 1);
                batch.snapshot = Some(snapshot.clone());
                self.commit_index = snapshot.index;
                self.snapshot = Some(snapshot.clone());
                out.install_snapshot(snapshot);
            }
        }
        for e in &pending.entries {
            self.log.append(e.clone());
        }
        self.note_appended(&pending.entries);
        batch.entries = pending.entries;
        assert_eq!((self.log.last_index(), self.log.last_stamp()), (last_index, last_zxid), "synced to NEWLEADER");
        assert!(epoch >= self.hard.current_epoch, "currentEpoch never moves back");
        self.hard.current_epoch = epoch;
        batch.hard_state = Some(self.hard.encode());
        self.persist(batch, out);
        debug!(node = self.id.0, epoch, last_index, "NEWLEADER accepted");
        let State::Following(f) = &self.state else { unreachable!("NEWLEADER is taken while following") };
        let ack = Message::AckNewLeader { session: f.session, epoch, index: last_index };
        if self.config.planted(crate::PlantedBug::AckNewLeaderBeforeDurable) {
            out.send(from, ack);
        } else {
            out.send_durable(from, ack);
        }
    }

    /// ACK of NEWLEADER: the learner's acks count from now on.
    pub(crate) fn on_ack_new_leader(
        &mut self,
        now: Instant,
        from: NodeId,
        (session, epoch): (u64, u64),
        index: u64,
        out: &mut Out,
    ) {
        let Some(l) = self.leading(epoch) else { return };
        let Some(learner) = l.learners.get_mut(&from) else { return self.reset_learner(from, out) };
        if learner.session != session || learner.stage != Stage::Synced {
            return; // an earlier session's (held back by its fsync), or a duplicate
        }
        if index != learner.newleader_index {
            let why = format!("acknowledges index {index}, NEWLEADER announced {}", learner.newleader_index);
            self.reject(from, "ACK(NEWLEADER)", &why);
            return self.reset_learner(from, out);
        }
        learner.stage = Stage::Active;
        learner.acked = index;
        learner.last_heard = now;
        match l.phase {
            LeaderPhase::Sync => self.maybe_establish(now, out),
            LeaderPhase::Broadcast => self.try_commit(now, out),
            LeaderPhase::Discovery => unreachable!("no learner is synced during discovery"),
        }
    }

    /// Our own writes became durable: they may complete a quorum.
    pub(crate) fn leader_on_durable(&mut self, now: Instant, out: &mut Out) {
        let phase = match &self.state {
            State::Leading(l) => l.phase,
            _ => return,
        };
        match phase {
            LeaderPhase::Discovery => self.maybe_start_sync(now, out),
            LeaderPhase::Sync => self.maybe_establish(now, out),
            LeaderPhase::Broadcast => self.try_commit(now, out),
        }
    }

    /// A quorum (us included, once currentEpoch is durable) acknowledged NEWLEADER.
    fn maybe_establish(&mut self, now: Instant, out: &mut Out) {
        let own = self.durable_hard.current_epoch;
        let State::Leading(l) = &self.state else { return };
        let epoch = l.epoch();
        if l.phase != LeaderPhase::Sync || own != epoch {
            return;
        }
        let active = l.learners.iter().filter(|(_, x)| x.stage == Stage::Active).map(|(p, _)| *p);
        if !self.is_quorum(active, true) {
            return;
        }
        let State::Leading(l) = &mut self.state else { return };
        // DSN 2011, Phase 2 step l.2.2: the epoch is established and the
        // initial history is committed.
        l.phase = LeaderPhase::Broadcast;
        l.established_index = self.log.last_index();
        l.counter = 0;
        l.ping.next = now;
        let streamed: Vec<NodeId> = l.learners.iter().filter(|(_, x)| x.in_stream()).map(|(p, _)| *p).collect();
        debug!(node = self.id.0, epoch, index = self.log.last_index(), "epoch established");
        self.advance_commit(self.log.last_index(), out);
        for peer in streamed {
            out.send(peer, Message::UpToDate { epoch, commit: self.commit_index });
        }
        // The initial history may hold this leader's own removal, now committed.
        self.maybe_step_down_removed(now, out);
        self.flush_queue(now, out);
    }

    /// UPTODATE: the epoch is established; commit up to the leader's point.
    pub(crate) fn on_up_to_date(&mut self, now: Instant, from: NodeId, epoch: u64, commit: u64, out: &mut Out) {
        let Some(f) = self.following(from, epoch, Some(FollowerPhase::Broadcast)) else { return };
        f.up_to_date = true;
        f.last_heard = now;
        if commit > self.log.last_index() {
            self.reject(from, "UPTODATE", "commit point beyond the synchronised history");
            return self.become_looking(now, out);
        }
        self.advance_commit(commit, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::Stamp;

    fn log_of(offset: u64, stamps: &[(u64, u64)]) -> Log {
        let mut log = Log::new(0, Stamp::ZERO);
        for (i, (e, c)) in stamps.iter().enumerate() {
            log.append(Entry::noop(i as u64 + 1, Stamp::new(*e, *c)));
        }
        if offset > 0 {
            let st = log.stamp_at(offset).unwrap();
            log.compact_to(offset, st);
        }
        log
    }

    /// Where a leader holding `leader` and a follower holding `follower`
    /// (stamps from index 1, nothing compacted) agree.
    fn agree_at(leader: &[(u64, u64)], follower: &[(u64, u64)]) -> Option<u64> {
        common_prefix(&log_of(0, leader), &HistorySummary::of(&log_of(0, follower)))
    }

    #[test]
    fn prefix_follower_gets_a_diff_point_at_its_end() {
        assert_eq!(agree_at(&[(1, 1), (1, 2), (2, 1), (2, 2)], &[(1, 1), (1, 2)]), Some(2));
    }

    #[test]
    fn uncommitted_old_epoch_suffix_is_cut_at_the_divergence() {
        // The follower logged (1,3) and (1,4) that epoch 2's leader never saw.
        assert_eq!(agree_at(&[(1, 1), (1, 2), (2, 1), (2, 2)], &[(1, 1), (1, 2), (1, 3), (1, 4)]), Some(2));
    }

    #[test]
    fn divergence_behind_a_later_run_is_found_exactly() {
        // Zxid order alone would keep (1,2),(1,3) of the leader: the follower
        // lacks them. The run summary finds the real divergence at index 1.
        assert_eq!(agree_at(&[(1, 1), (1, 2), (1, 3), (3, 1)], &[(1, 1), (2, 1)]), Some(1));
    }

    #[test]
    fn divergence_inside_the_leaders_compacted_prefix_is_unknown() {
        let leader = log_of(3, &[(1, 1), (1, 2), (2, 1), (2, 2)]);
        let follower = log_of(0, &[(1, 1), (1, 2), (1, 3)]);
        assert_eq!(common_prefix(&leader, &HistorySummary::of(&follower)), None);
        let behind = log_of(0, &[(1, 1)]);
        assert_eq!(common_prefix(&leader, &HistorySummary::of(&behind)), None);
        // The follower's own snapshot point is below the leader's, but its run
        // reaches past the leader's compaction point: found by searching down.
        let mut snapshotted = log_of(0, &[(1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]);
        snapshotted.compact_to(1, Stamp::new(1, 1));
        let leader2 = log_of(3, &[(1, 1), (1, 2), (1, 3), (1, 4), (2, 1)]);
        assert_eq!(common_prefix(&leader2, &HistorySummary::of(&snapshotted)), Some(4));
        // Seed 2895: the follower's earlier runs lie in the leader's compacted
        // prefix; the agreement point is inside its last run.
        let mut follower = log_of(0, &[(2, 1), (2, 2), (4, 1), (4, 2), (5, 1), (5, 2), (5, 3), (5, 4)]);
        follower.compact_to(2, Stamp::new(2, 2));
        let leader3 = log_of(5, &[(2, 1), (2, 2), (4, 1), (4, 2), (5, 1), (5, 2), (5, 3)]);
        assert_eq!(common_prefix(&leader3, &HistorySummary::of(&follower)), Some(7));
        let at_point = log_of(0, &[(1, 1), (1, 2), (2, 1)]);
        assert_eq!(common_prefix(&leader, &HistorySummary::of(&at_point)), Some(3));
    }

    #[test]
    fn empty_follower_agrees_at_zero() {
        let leader = log_of(0, &[(1, 1)]);
        assert_eq!(common_prefix(&leader, &HistorySummary::of(&Log::default())), Some(0));
    }
}

#[cfg(test)]
mod phase_tests {
    use crate::message::{HistorySummary, Message, PeerState};
    use crate::state::HardState;
    use crate::testkit::*;
    use quorum_core::{Bytes, Effect, Effects, NodeId, Protocol, Snapshot, Stamp};

    #[test]
    fn newleader_writes_history_and_current_epoch_in_one_batch_before_acking() {
        // ZOOKEEPER-4643/4646: the epoch must never be durable without the history.
        let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1)]), 2);
        let mut out = Effects::new();
        let entries = history(&[(1, 1), (1, 2), (1, 3)])[1..].to_vec();
        let diff = Message::Diff { epoch: 2, prev_index: 1, prev_zxid: Stamp::new(1, 1), entries };
        z.on_message(at(3), NodeId(1), diff, &mut out);
        assert!(writes(&out).is_empty(), "sync data is held until NEWLEADER");
        assert!(
            matches!(&sent(&out)[..], [(_, Message::SyncAck { epoch: 2, received: 1, .. }, false)]),
            "flow control"
        );
        assert_eq!(z.history().last_index(), 1);
        let mut out = Effects::new();
        let nl = Message::NewLeader { epoch: 2, last_index: 3, last_zxid: Stamp::new(1, 3) };
        z.on_message(at(3), NodeId(1), nl, &mut out);
        let effects = out.as_slice();
        assert_eq!(effects.len(), 2, "{effects:?}");
        let Effect::Persist(batch) = &effects[0] else { panic!("{effects:?}") };
        assert_eq!(batch.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(HardState::decode(batch.hard_state.as_ref().unwrap()).unwrap().current_epoch, 2);
        assert!(matches!(
            effects[1],
            Effect::SendDurable { msg: Message::AckNewLeader { epoch: 2, index: 3, .. }, .. }
        ));
        assert!(commits(&out).is_empty(), "nothing is committed before UPTODATE");
    }

    #[test]
    fn trunc_cuts_an_uncommitted_suffix_of_an_old_epoch_and_appends_the_leaders() {
        let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1), (1, 2), (1, 3)]), 3);
        let mut out = Effects::new();
        let leader_history = history(&[(1, 1), (2, 1)]);
        let trunc =
            Message::Trunc { epoch: 3, index: 1, zxid: Stamp::new(1, 1), entries: leader_history[1..].to_vec() };
        z.on_message(at(3), NodeId(1), trunc, &mut out);
        let nl = Message::NewLeader { epoch: 3, last_index: 2, last_zxid: Stamp::new(2, 1) };
        z.on_message(at(3), NodeId(1), nl, &mut out);
        let batch = &writes(&out)[0];
        assert_eq!(batch.truncate_from, Some(2));
        let stamps: Vec<Stamp> = z.history().iter().map(|e| e.stamp).collect();
        assert_eq!(stamps, vec![Stamp::new(1, 1), Stamp::new(2, 1)]);
    }

    #[test]
    fn snap_replaces_the_state_machine_then_appends() {
        let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1)]), 2);
        let mut out = Effects::new();
        let snapshot =
            Snapshot { index: 5, stamp: Stamp::new(1, 5), meta: Bytes::new(), data: Bytes::from_static(b"kv") };
        let entries = history(&[(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6)])[5..].to_vec();
        z.on_message(at(3), NodeId(1), Message::Snap { epoch: 2, snapshot, size: 2, entries }, &mut out);
        let nl = Message::NewLeader { epoch: 2, last_index: 6, last_zxid: Stamp::new(1, 6) };
        z.on_message(at(3), NodeId(1), nl, &mut out);
        assert!(out.as_slice().iter().any(|e| matches!(e, Effect::InstallSnapshot(s) if s.index == 5)));
        assert_eq!(z.commit_index(), 5);
        assert_eq!((z.history().offset(), z.history().last_index()), (5, 6));
        let mut out = Effects::new();
        z.on_message(at(4), NodeId(1), Message::UpToDate { epoch: 2, commit: 6 }, &mut out);
        assert_eq!(commits(&out), vec![6]);
    }

    #[test]
    fn a_newleader_without_its_sync_data_sends_the_follower_back_to_looking() {
        let mut z = follower_in_sync(stored((1, 1), 1, &[]), 2);
        let mut out = Effects::new();
        let nl = Message::NewLeader { epoch: 2, last_index: 0, last_zxid: Stamp::ZERO };
        z.on_message(at(3), NodeId(1), nl, &mut out);
        assert_eq!(z.peer_state(), PeerState::Looking);
    }

    #[test]
    fn the_leader_syncs_each_follower_by_diff_trunc_or_snap_then_newleader() {
        let mut z = node_from(1, 3, stored((2, 1), 2, &[(1, 1), (1, 2), (2, 1)]));
        let mut out = Effects::new();
        win_election(&mut z, &mut out);
        follower_info(&mut z, at(20), 2, 1, 2, &mut out);
        persist_all(&mut z, at(20), &mut out);
        let mut behind = quorum_core::Log::default();
        for e in history(&[(1, 1), (1, 2), (1, 3)]) {
            behind.append(e);
        }
        let mut out = Effects::new();
        let ack = Message::AckEpoch { session: 1, epoch: 3, current_epoch: 1, summary: HistorySummary::of(&behind) };
        z.on_message(at(21), NodeId(2), ack, &mut out);
        let msgs: Vec<Message> = sent(&out).into_iter().map(|(_, m, _)| m).collect();
        assert!(matches!(&msgs[0], Message::Trunc { index: 2, entries, .. } if entries.len() == 1), "{msgs:?}");
        assert!(matches!(msgs[1], Message::NewLeader { epoch: 3, last_index: 3, .. }));
        assert_eq!(z.current_epoch(), 3);
        // The epoch is established once our epoch write and node 2's ack are in.
        z.on_message(at(22), NodeId(2), Message::AckNewLeader { session: 1, epoch: 3, index: 3 }, &mut out);
        assert_eq!(z.established_epoch(), None, "our own currentEpoch is not durable yet");
        let mut out = Effects::new();
        persist_all(&mut z, at(22), &mut out);
        assert_eq!(z.established_epoch(), Some(3));
        assert_eq!(commits(&out), vec![1, 2, 3], "the initial history is committed");
        assert!(sent(&out).iter().any(|(_, m, _)| matches!(m, Message::UpToDate { epoch: 3, commit: 3 })));
    }

    #[test]
    fn a_late_joiner_gets_uncommitted_proposals_in_its_diff_and_its_ack_counts_for_them() {
        // The leader is broadcasting with (1,1) and (1,2) proposed but not committed.
        let mut z = established_leader();
        let mut out = Effects::new();
        for seq in 1..=2 {
            let cmd = quorum_core::Command::new(quorum_core::ClientId(1), seq, Bytes::from_static(b"w"));
            z.propose(at(200), cmd, &mut out).unwrap();
        }
        persist_all(&mut z, at(200), &mut out);
        assert_eq!(z.commit_index(), 0, "node 2's acks have not come");
        // Node 3 joins: FOLLOWERINFO, NEWEPOCH, ACKEPOCH with an empty history.
        let mut out = Effects::new();
        follower_info(&mut z, at(201), 3, 1, 0, &mut out);
        assert!(matches!(sent(&out)[0].1, Message::NewEpoch { session: 1, epoch: 1 }));
        let mut out = Effects::new();
        let summary = HistorySummary::of(&quorum_core::Log::default());
        z.on_message(
            at(202),
            NodeId(3),
            Message::AckEpoch { session: 1, epoch: 1, current_epoch: 0, summary },
            &mut out,
        );
        let msgs: Vec<Message> = sent(&out).into_iter().map(|(_, m, _)| m).collect();
        assert!(matches!(&msgs[0], Message::Diff { prev_index: 0, entries, .. } if entries.len() == 2), "{msgs:?}");
        assert!(matches!(msgs[1], Message::NewLeader { epoch: 1, last_index: 2, .. }));
        assert!(matches!(msgs[2], Message::UpToDate { epoch: 1, commit: 0 }));
        // Later proposals stream to it too, after NEWLEADER on the same link.
        let mut out = Effects::new();
        let cmd = quorum_core::Command::new(quorum_core::ClientId(1), 3, Bytes::from_static(b"w"));
        z.propose(at(203), cmd, &mut out).unwrap();
        assert!(sent(&out).iter().any(|(to, m, _)| *to == NodeId(3) && matches!(m, Message::Proposal { .. })));
        // Its ACK of NEWLEADER (index 2) makes a quorum with the leader for 1..=2.
        let mut out = Effects::new();
        z.on_message(at(204), NodeId(3), Message::AckNewLeader { session: 1, epoch: 1, index: 2 }, &mut out);
        assert_eq!(commits(&out), vec![1, 2]);
    }

    #[test]
    fn proposals_and_commits_between_newleader_and_uptodate_are_handled_in_order() {
        // ZOOKEEPER-4394: DIFF, NEWLEADER, PROPOSAL, COMMIT, UPTODATE interleave.
        let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1)]), 1);
        let mut out = Effects::new();
        let h = history(&[(1, 1), (1, 2), (1, 3)]);
        let diff = Message::Diff { epoch: 1, prev_index: 1, prev_zxid: Stamp::new(1, 1), entries: h[1..2].to_vec() };
        z.on_message(at(3), NodeId(1), diff, &mut out);
        let nl = Message::NewLeader { epoch: 1, last_index: 2, last_zxid: Stamp::new(1, 2) };
        z.on_message(at(3), NodeId(1), nl, &mut out);
        z.on_message(at(4), NodeId(1), Message::Proposal { epoch: 1, entries: h[2..].to_vec() }, &mut out);
        z.on_message(at(4), NodeId(1), Message::Commit { epoch: 1, index: 3 }, &mut out);
        z.on_message(at(5), NodeId(1), Message::UpToDate { epoch: 1, commit: 2 }, &mut out);
        assert_eq!(commits(&out), vec![1, 2, 3], "each once, in order");
        assert_eq!(z.commit_index(), 3, "a late UPTODATE never moves the commit point back");
    }
}

/// Issue 12 item 6: synchronisation travels in bounded chunks, with flow control.
#[cfg(test)]
mod chunk_tests {
    use crate::message::{Message, PeerState};
    use crate::state::{FollowerPhase, Stage, State};
    use crate::testkit::*;
    use crate::Zab;
    use quorum_core::{Bytes, ClientId, Command, Effect, Effects, Instant, NodeId, Protocol, Snapshot};
    use quorum_sim::testkit::Net;

    const CHUNK: usize = 64;
    /// What a message adds around its chunk: enum tags, epoch, lengths, one entry's overshoot is not allowed.
    const HEADER: usize = 48;

    fn tiny(z: &mut Zab) {
        z.config.sync_chunk_bytes = CHUNK;
        z.config.sync_window_chunks = 3;
    }

    /// An established leader (node 1, node 2 active) holding `n` committed commands of 20 bytes.
    fn leader_with(n: u64) -> Zab {
        let mut z = established_leader();
        tiny(&mut z);
        propose_committed(&mut z, 1, n, at(200));
        z
    }

    fn propose_committed(z: &mut Zab, from: u64, to: u64, now: quorum_core::Instant) {
        let mut out = Effects::new();
        for seq in from..=to {
            z.propose(now, Command::new(ClientId(1), seq, Bytes::from(vec![seq as u8; 20])), &mut out).unwrap();
        }
        persist_all(z, now, &mut out);
        let last = z.history().last_index();
        z.on_message(now, NodeId(2), Message::Ack { epoch: 1, index: last }, &mut out);
        assert_eq!(z.commit_index(), last);
    }

    /// Node 3, empty, settling as node 1's follower; its FOLLOWERINFO is in flight.
    fn join(net: &mut Net<Zab>, now: Instant) {
        net.now = now;
        net.with_node(NodeId(3), |z, now, out| {
            z.on_message(now, NodeId(2), vote_note(9, PeerState::Following, 1), out);
            z.on_message(now, NodeId(1), vote_note(9, PeerState::Leading, 1), out);
        });
        assert_eq!(node(net, 3).peer_state(), PeerState::Following);
    }

    /// The leader, node 2 down, and node 3 empty: every effect and delivery recorded.
    fn wire(leader: Zab) -> Net<Zab> {
        let mut follower = boot(3, 3, quorum_core::Stored::default(), leader.config.clone(), 3, at(0));
        tiny(&mut follower);
        let config = leader.config.clone();
        let mut net = Net::from_nodes(vec![Some(leader), None, Some(follower)], config, at(0));
        net.record();
        net
    }

    fn node(net: &mut Net<Zab>, id: u64) -> &mut Zab {
        net.node_mut(NodeId(id)).expect("a live node")
    }

    /// Delivers up to `steps` messages to live nodes at `now` (those to a
    /// down node are dropped and not counted).
    fn run(net: &mut Net<Zab>, now: Instant, steps: usize) {
        net.now = now;
        let mut delivered = 0;
        while delivered < steps {
            let Some(to) = net.in_flight.front().map(|e| e.to) else { break };
            if net.node(to).is_none() {
                net.in_flight.pop_front();
                continue;
            }
            net.deliver_at(0);
            delivered += 1;
        }
    }

    fn effects(net: &Net<Zab>) -> &[(NodeId, Effect<Message>)] {
        &net.recorded.as_ref().expect("recording").effects
    }

    fn assert_same_history(w: &mut Net<Zab>) {
        let leader: Vec<_> = node(w, 1).history().iter().cloned().collect();
        let follower: Vec<_> = node(w, 3).history().iter().cloned().collect();
        assert_eq!(follower.len(), leader.len());
        assert!(leader
            .iter()
            .zip(&follower)
            .all(|(a, b)| a.index == b.index && a.stamp == b.stamp && a.payload == b.payload));
        assert!(matches!(&node(w, 3).state, State::Following(f) if f.phase == FollowerPhase::Broadcast));
        assert!(matches!(&node(w, 1).state, State::Leading(l) if l.learners[&NodeId(3)].stage == Stage::Active));
    }

    fn assert_bounded(w: &Net<Zab>) -> usize {
        let mut chunks = 0;
        for m in w.recorded.as_ref().expect("recording").delivered.iter().map(|e| &e.msg) {
            let size = postcard::to_allocvec(m).unwrap().len();
            assert!(size <= CHUNK + HEADER, "{} is {size} bytes, over {CHUNK} + {HEADER}", m.kind());
            chunks += usize::from(matches!(m, Message::SyncEntries { .. } | Message::SnapChunk { .. }));
        }
        chunks
    }

    #[test]
    fn planted_sync_in_one_message_is_caught_by_the_size_bound() {
        let mut leader = leader_with(300);
        leader.config.planted = Some(crate::PlantedBug::SyncInOneMessage);
        let mut w = wire(leader);
        join(&mut w, at(300));
        run(&mut w, at(301), usize::MAX);
        let caught = std::panic::catch_unwind(|| assert_bounded(&w)).expect_err("a message over the bound");
        let msg = caught.downcast_ref::<String>().unwrap();
        assert!(msg.starts_with("DIFF is ") && msg.contains("bytes, over 64 + 48"), "{msg}");
    }

    #[test]
    fn a_far_behind_follower_catches_up_through_many_bounded_chunks() {
        let mut w = wire(leader_with(300));
        join(&mut w, at(300));
        let mut most_in_flight = 0;
        while !w.in_flight.is_empty() {
            run(&mut w, at(301), 1);
            let State::Leading(l) = &node(&mut w, 1).state else { panic!() };
            if let Some(x) = l.learners.get(&NodeId(3)) {
                most_in_flight = most_in_flight.max(x.sync_sent - x.sync_acked);
            }
        }
        assert_same_history(&mut w);
        let chunks = assert_bounded(&w);
        assert!(chunks > 50, "{chunks} chunks");
        assert!(most_in_flight <= 3, "the window holds: {most_in_flight}");
        // The follower acknowledged NEWLEADER only once it all was durable: one write.
        let writes: Vec<_> =
            effects(&w).iter().filter(|(id, e)| *id == NodeId(3) && matches!(e, Effect::Persist(_))).collect();
        assert!(matches!(writes.last().unwrap().1, Effect::Persist(ref b) if b.entries.len() == 300));
    }

    #[test]
    fn proposals_made_during_the_stream_reach_the_follower_in_it() {
        let mut w = wire(leader_with(100));
        join(&mut w, at(300));
        run(&mut w, at(301), 20);
        propose_committed(node(&mut w, 1), 101, 130, at(302));
        run(&mut w, at(303), usize::MAX);
        assert_same_history(&mut w);
        assert_eq!(node(&mut w, 3).history().last_index(), 130);
    }

    #[test]
    fn a_snap_streams_the_snapshot_data_in_chunks() {
        let mut leader = leader_with(200);
        let data = Bytes::from((0..1000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let mut out = Effects::new();
        leader.on_snapshot(at(250), 200, data.clone(), &mut out);
        propose_committed(&mut leader, 201, 220, at(260));
        let mut w = wire(leader);
        join(&mut w, at(300));
        run(&mut w, at(301), usize::MAX);
        assert_same_history(&mut w);
        assert!(assert_bounded(&w) > 1000 / CHUNK);
        let installed: Vec<&Snapshot> = effects(&w)
            .iter()
            .filter_map(|(id, e)| match e {
                Effect::InstallSnapshot(s) if *id == NodeId(3) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(installed.len(), 1);
        assert_eq!((installed[0].index, &installed[0].data), (200, &data));
        assert_eq!(node(&mut w, 3).commit_index(), 220, "UPTODATE commits the rest");
    }

    #[test]
    fn compaction_under_a_running_diff_restarts_it_as_a_snap() {
        let mut w = wire(leader_with(300));
        join(&mut w, at(300));
        run(&mut w, at(301), 30);
        let mut out = Effects::new();
        node(&mut w, 1).on_snapshot(at(302), 300, Bytes::from_static(b"state at 300"), &mut out);
        run(&mut w, at(303), usize::MAX);
        assert_same_history(&mut w);
        assert_eq!(node(&mut w, 3).history().offset(), 300, "the follower took the snapshot");
    }

    #[test]
    fn a_broken_link_restarts_the_sync_cleanly() {
        let mut w = wire(leader_with(300));
        join(&mut w, at(300));
        run(&mut w, at(301), 40);
        // The connection breaks mid-stream: both ends hear of it.
        w.in_flight.clear();
        w.now = at(302);
        w.with_node(NodeId(1), |z, now, out| z.on_link_down(now, NodeId(3), out));
        let mut out = Effects::new();
        node(&mut w, 3).on_link_down(at(302), NodeId(1), &mut out);
        assert_eq!(node(&mut w, 3).peer_state(), PeerState::Looking);
        assert_eq!(node(&mut w, 3).history().last_index(), 0, "nothing of the broken sync was applied");
        w.in_flight.clear();
        join(&mut w, at(303));
        run(&mut w, at(304), usize::MAX);
        assert_same_history(&mut w);
    }
}
