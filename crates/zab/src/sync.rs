//! Phase 2: Synchronization. The leader brings each follower of its quorum
//! to its own history with DIFF (append), TRUNC (cut a divergent suffix, then
//! append) or SNAP (install the leader's snapshot, then append), then sends
//! NEWLEADER. The follower applies all of it, with `currentEpoch`, in one
//! durable write, and acknowledges. A quorum of acknowledgements establishes
//! the epoch and commits the leader's history (UPTODATE).

use crate::message::{HistorySummary, Message, Zxid};
use crate::state::{FollowerPhase, LeaderPhase, Stage, State, SyncKind};
use crate::Zab;
use quorum_core::{Effects, Entry, Instant, Log, NodeId};
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

impl Zab {
    /// A quorum promised the epoch: become its leader's history's owner.
    pub(crate) fn start_sync(&mut self, now: Instant, out: &mut Effects<Message>) {
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

    /// Sends DIFF, TRUNC or SNAP, then NEWLEADER, to one follower, in one go,
    /// so nothing interleaves; from here on it receives the proposal stream.
    pub(crate) fn sync_learner(&mut self, now: Instant, peer: NodeId, s: &HistorySummary, out: &mut Effects<Message>) {
        assert!(s.base_index <= self.log.last_index(), "a follower's snapshot holds only committed entries");
        let epoch = match &self.state {
            State::Leading(l) => l.epoch(),
            _ => return,
        };
        let last = self.log.last_index();
        let entries_after = |from: u64| -> Vec<Entry> { self.log.slice(from + 1, last, usize::MAX) };
        let msg = match common_prefix(&self.log, s) {
            Some(p) if p >= self.log.offset() && p == s.last_index() => Message::Diff {
                epoch,
                prev_index: p,
                prev_zxid: self.log.stamp_at(p).unwrap(),
                entries: entries_after(p),
            },
            Some(p) if p >= self.log.offset() => {
                Message::Trunc { epoch, index: p, zxid: self.log.stamp_at(p).unwrap(), entries: entries_after(p) }
            }
            _ => {
                let snapshot = self.snapshot.clone().expect("a compacted history has a snapshot");
                assert_eq!(snapshot.index, self.log.offset(), "the snapshot is the log's compaction point");
                Message::Snap { epoch, entries: entries_after(snapshot.index), snapshot }
            }
        };
        debug!(node = self.id.0, peer = peer.0, kind = msg.kind(), "sync");
        out.send(peer, msg);
        out.send(peer, Message::NewLeader { epoch, last_index: last, last_zxid: self.log.last_stamp() });
        let established = match &mut self.state {
            State::Leading(l) => {
                let learner = l.learners.get_mut(&peer).expect("syncing a known learner");
                learner.stage = Stage::Synced;
                learner.last_heard = now;
                (l.phase == LeaderPhase::Broadcast).then_some(l.epoch())
            }
            _ => None,
        };
        if let Some(epoch) = established {
            out.send(peer, Message::UpToDate { epoch, commit: self.commit_index });
        }
    }

    /// DIFF, TRUNC or SNAP: hold it until NEWLEADER (applied atomically then).
    pub(crate) fn on_sync_data(&mut self, now: Instant, from: NodeId, msg: Message) {
        let State::Following(f) = &mut self.state else { return };
        if from != f.leader || f.phase != FollowerPhase::Sync {
            return;
        }
        let (epoch, kind, entries) = match msg {
            Message::Diff { epoch, prev_index, prev_zxid, entries } => {
                (epoch, SyncKind::Diff { prev_index, prev_zxid }, entries)
            }
            Message::Trunc { epoch, index, zxid, entries } => (epoch, SyncKind::Trunc { index, zxid }, entries),
            Message::Snap { epoch, snapshot, entries } => (epoch, SyncKind::Snap(snapshot), entries),
            _ => unreachable!("only sync data is routed here"),
        };
        if epoch != f.epoch {
            return;
        }
        f.last_heard = now;
        f.pending = Some((kind, entries));
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
        out: &mut Effects<Message>,
    ) {
        let State::Following(f) = &mut self.state else { return };
        if from != f.leader || f.phase != FollowerPhase::Sync || epoch != f.epoch {
            return;
        }
        let Some((kind, entries)) = f.pending.take() else {
            debug!(node = self.id.0, "NEWLEADER without sync data");
            return self.become_looking(now, out);
        };
        f.phase = FollowerPhase::Broadcast;
        f.last_heard = now;
        let mut batch = self.batch();
        match kind {
            SyncKind::Diff { prev_index, prev_zxid } => {
                assert_eq!(prev_index, self.log.last_index(), "DIFF continues our history");
                assert_eq!(self.log.stamp_at(prev_index), Some(prev_zxid), "DIFF agrees with our history");
            }
            SyncKind::Trunc { index, zxid } => {
                assert_eq!(self.log.stamp_at(index), Some(zxid), "TRUNC point is in our history");
                assert!(index >= self.commit_index, "TRUNC never removes a committed transaction");
                self.log.truncate_from(index + 1);
                batch.truncate_from = Some(index + 1);
            }
            SyncKind::Snap(snapshot) => {
                assert!(
                    snapshot.index >= self.commit_index,
                    "SNAP never moves the commit point back: {} got snapshot {} with commit {}",
                    self.id,
                    snapshot.index,
                    self.commit_index
                );
                self.log = Log::new(snapshot.index, snapshot.stamp);
                batch.truncate_from = Some(snapshot.index + 1);
                batch.snapshot = Some(snapshot.clone());
                self.commit_index = snapshot.index;
                self.snapshot = Some(snapshot.clone());
                out.install_snapshot(snapshot);
            }
        }
        for e in &entries {
            self.log.append(e.clone());
        }
        batch.entries = entries;
        assert_eq!((self.log.last_index(), self.log.last_stamp()), (last_index, last_zxid), "synced to NEWLEADER");
        assert!(epoch >= self.hard.current_epoch, "currentEpoch never moves back");
        self.hard.current_epoch = epoch;
        batch.hard_state = Some(self.hard.encode());
        self.persist(batch, out);
        debug!(node = self.id.0, epoch, last_index, "NEWLEADER accepted");
        out.send_durable(from, Message::AckNewLeader { epoch, index: last_index });
    }

    /// ACK of NEWLEADER: the learner's acks count from now on.
    pub(crate) fn on_ack_new_leader(
        &mut self,
        now: Instant,
        from: NodeId,
        epoch: u64,
        index: u64,
        out: &mut Effects<Message>,
    ) {
        let State::Leading(l) = &mut self.state else { return };
        if l.epoch != Some(epoch) {
            return;
        }
        let Some(learner) = l.learners.get_mut(&from) else { return self.reset_learner(from, out) };
        if learner.stage != Stage::Synced {
            return;
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
    pub(crate) fn leader_on_durable(&mut self, now: Instant, out: &mut Effects<Message>) {
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
    fn maybe_establish(&mut self, now: Instant, out: &mut Effects<Message>) {
        let quorum = self.quorum();
        let own = self.durable_hard.current_epoch;
        let State::Leading(l) = &mut self.state else { return };
        let epoch = l.epoch();
        if l.phase != LeaderPhase::Sync || own != epoch {
            return;
        }
        let active = l.learners.values().filter(|x| x.stage == Stage::Active).count();
        if active + 1 < quorum {
            return;
        }
        // DSN 2011, Phase 2 step l.2.2: the epoch is established and the
        // initial history is committed.
        l.phase = LeaderPhase::Broadcast;
        l.established_index = self.log.last_index();
        l.counter = 0;
        l.next_ping = now;
        let streamed: Vec<NodeId> = l.learners.iter().filter(|(_, x)| x.in_stream()).map(|(p, _)| *p).collect();
        debug!(node = self.id.0, epoch, index = self.log.last_index(), "epoch established");
        self.advance_commit(self.log.last_index(), out);
        for peer in streamed {
            out.send(peer, Message::UpToDate { epoch, commit: self.commit_index });
        }
        self.flush_queue(now, out);
    }

    /// UPTODATE: the epoch is established; commit up to the leader's point.
    pub(crate) fn on_up_to_date(
        &mut self,
        now: Instant,
        from: NodeId,
        epoch: u64,
        commit: u64,
        out: &mut Effects<Message>,
    ) {
        let State::Following(f) = &mut self.state else { return };
        if from != f.leader || f.phase != FollowerPhase::Broadcast || epoch != f.epoch {
            return;
        }
        f.up_to_date = true;
        f.last_heard = now;
        if commit > self.log.last_index() {
            return self.become_looking(now, out);
        }
        self.advance_commit(commit, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::{Payload, Stamp};

    fn log_of(offset: u64, stamps: &[(u64, u64)]) -> Log {
        let mut log = Log::new(0, Stamp::ZERO);
        for (i, (e, c)) in stamps.iter().enumerate() {
            log.append(Entry { index: i as u64 + 1, stamp: Stamp::new(*e, *c), payload: Payload::Noop });
        }
        if offset > 0 {
            let st = log.stamp_at(offset).unwrap();
            log.compact_to(offset, st);
        }
        log
    }

    #[test]
    fn prefix_follower_gets_a_diff_point_at_its_end() {
        let leader = log_of(0, &[(1, 1), (1, 2), (2, 1), (2, 2)]);
        let follower = log_of(0, &[(1, 1), (1, 2)]);
        assert_eq!(common_prefix(&leader, &HistorySummary::of(&follower)), Some(2));
    }

    #[test]
    fn uncommitted_old_epoch_suffix_is_cut_at_the_divergence() {
        // The follower logged (1,3) and (1,4) that epoch 2's leader never saw.
        let leader = log_of(0, &[(1, 1), (1, 2), (2, 1), (2, 2)]);
        let follower = log_of(0, &[(1, 1), (1, 2), (1, 3), (1, 4)]);
        assert_eq!(common_prefix(&leader, &HistorySummary::of(&follower)), Some(2));
    }

    #[test]
    fn divergence_behind_a_later_run_is_found_exactly() {
        // Zxid order alone would keep (1,2),(1,3) of the leader: the follower
        // lacks them. The run summary finds the real divergence at index 1.
        let leader = log_of(0, &[(1, 1), (1, 2), (1, 3), (3, 1)]);
        let follower = log_of(0, &[(1, 1), (2, 1)]);
        assert_eq!(common_prefix(&leader, &HistorySummary::of(&follower)), Some(1));
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

    /// Node 2 of 3 from `stored`, following node 1, having acked epoch `epoch`.
    fn follower_in_sync(s: quorum_core::Stored, epoch: u64) -> crate::Zab {
        let mut z = node_from(2, 3, s);
        let mut out = Effects::new();
        z.on_message(at(1), NodeId(3), vote_note(1, PeerState::Following, 1), &mut out);
        z.on_message(at(1), NodeId(1), vote_note(1, PeerState::Leading, 1), &mut out);
        z.on_message(at(2), NodeId(1), Message::NewEpoch { session: session_of(&z), epoch }, &mut out);
        persist_all(&mut z, at(2), &mut out);
        z
    }

    #[test]
    fn newleader_writes_history_and_current_epoch_in_one_batch_before_acking() {
        // ZOOKEEPER-4643/4646: the epoch must never be durable without the history.
        let mut z = follower_in_sync(stored((1, 1), 1, &[(1, 1)]), 2);
        let mut out = Effects::new();
        let entries = history(&[(1, 1), (1, 2), (1, 3)])[1..].to_vec();
        let diff = Message::Diff { epoch: 2, prev_index: 1, prev_zxid: Stamp::new(1, 1), entries };
        z.on_message(at(3), NodeId(1), diff, &mut out);
        assert!(out.is_empty(), "sync data is held until NEWLEADER");
        assert_eq!(z.history().last_index(), 1);
        let nl = Message::NewLeader { epoch: 2, last_index: 3, last_zxid: Stamp::new(1, 3) };
        z.on_message(at(3), NodeId(1), nl, &mut out);
        let effects = out.as_slice();
        assert_eq!(effects.len(), 2, "{effects:?}");
        let Effect::Persist(batch) = &effects[0] else { panic!("{effects:?}") };
        assert_eq!(batch.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(HardState::decode(batch.hard_state.as_ref().unwrap()).unwrap().current_epoch, 2);
        assert!(matches!(effects[1], Effect::SendDurable { msg: Message::AckNewLeader { epoch: 2, index: 3 }, .. }));
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
        z.on_message(at(3), NodeId(1), Message::Snap { epoch: 2, snapshot, entries }, &mut out);
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
        z.on_message(at(1), NodeId(2), vote_note(1, PeerState::Looking, 1), &mut out);
        let f = z.election.finalize_at.unwrap();
        z.on_timer(f, &mut out);
        z.on_message(at(20), NodeId(2), Message::FollowerInfo { session: 1, accepted_epoch: 2 }, &mut out);
        persist_all(&mut z, at(20), &mut out);
        let mut behind = quorum_core::Log::default();
        for e in history(&[(1, 1), (1, 2), (1, 3)]) {
            behind.append(e);
        }
        let mut out = Effects::new();
        let ack = Message::AckEpoch { epoch: 3, current_epoch: 1, summary: HistorySummary::of(&behind) };
        z.on_message(at(21), NodeId(2), ack, &mut out);
        let msgs: Vec<Message> = sent(&out).into_iter().map(|(_, m, _)| m).collect();
        assert!(matches!(&msgs[0], Message::Trunc { index: 2, entries, .. } if entries.len() == 1), "{msgs:?}");
        assert!(matches!(msgs[1], Message::NewLeader { epoch: 3, last_index: 3, .. }));
        assert_eq!(z.current_epoch(), 3);
        // The epoch is established once our epoch write and node 2's ack are in.
        z.on_message(at(22), NodeId(2), Message::AckNewLeader { epoch: 3, index: 3 }, &mut out);
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
        z.on_message(at(201), NodeId(3), Message::FollowerInfo { session: 1, accepted_epoch: 0 }, &mut out);
        assert!(matches!(sent(&out)[0].1, Message::NewEpoch { session: 1, epoch: 1 }));
        let mut out = Effects::new();
        let summary = HistorySummary::of(&quorum_core::Log::default());
        z.on_message(at(202), NodeId(3), Message::AckEpoch { epoch: 1, current_epoch: 0, summary }, &mut out);
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
        z.on_message(at(204), NodeId(3), Message::AckNewLeader { epoch: 1, index: 2 }, &mut out);
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
