//! Phase 3: Broadcast. The established leader proposes transactions with
//! consecutive zxids `(e, 1), (e, 2), ...`, batched and pipelined; a follower
//! logs them in order and acknowledges once durable; the leader commits an
//! index once a quorum holds it. Pings keep both sides honest about liveness
//! and confirm leadership for `sync` reads. Snapshots compact the history.

use crate::message::{Message, Zxid};
use crate::state::{FollowerPhase, LeaderPhase, Stage, State};
use crate::Out;
use crate::PlantedBug;
use crate::Zab;
use quorum_core::{Command, Entry, Instant, Majority, NodeId, NotLeader, Payload, ProposeError, Snapshot};
use tracing::debug;

impl Zab {
    /// The hint a non-leader gives a client.
    pub(crate) fn not_leader(&self) -> NotLeader {
        let leader_hint = match &self.state {
            State::Following(f) => Some(f.leader),
            _ => None,
        };
        NotLeader { leader_hint }
    }

    /// A client command: queue it on the established leader and flush.
    pub(crate) fn leader_propose(&mut self, now: Instant, cmd: Command, out: &mut Out) -> Result<(), ProposeError> {
        let delay = self.config.batch_delay;
        let State::Leading(l) = &mut self.state else { return Err(self.not_leader().into()) };
        if l.phase != LeaderPhase::Broadcast {
            return Err(NotLeader { leader_hint: None }.into());
        }
        if let Some((to, _)) = l.transfer {
            return Err(NotLeader { leader_hint: Some(to) }.into());
        }
        let limit = self.config.max_queued_proposals;
        if l.queue.len() >= limit && !self.config.planted(PlantedBug::UnboundedProposalQueue) {
            // Retryable: the client backs off; nothing piles up here while the
            // pipeline is stuck (a lost follower, a slow disk).
            return Err(ProposeError::Busy { limit: limit as u64 });
        }
        l.queue.push_back(cmd);
        if delay > quorum_core::Duration::ZERO && l.queue.len() < self.config.max_batch_entries {
            l.batch_deadline.get_or_insert(now + delay);
            return Ok(());
        }
        self.flush_queue(now, out);
        Ok(())
    }

    /// Proposes queued commands in batches, within the pipeline's limit.
    pub(crate) fn flush_queue(&mut self, _now: Instant, out: &mut Out) {
        loop {
            let in_flight = self.log.last_index() - self.commit_index;
            let room = self.config.max_inflight_entries.saturating_sub(in_flight) as usize;
            let State::Leading(l) = &mut self.state else { return };
            if l.transfer.is_some() {
                return; // what is queued goes once the transfer is over, or fails with it
            }
            l.batch_deadline = None;
            let sizes = l.queue.iter().map(|cmd| cmd.data.len());
            let most = self.config.max_batch_entries.min(room);
            let take = quorum_core::batch::fitting(sizes, most, self.config.max_batch_bytes);
            if l.phase != LeaderPhase::Broadcast || take == 0 {
                return;
            }
            let payloads: Vec<Payload> = l.queue.drain(..take).map(Payload::Command).collect();
            self.append_and_stream(payloads, out);
        }
    }

    /// Appends one transaction ahead of the queue and streams it: a
    /// configuration change. Returns its index.
    pub(crate) fn propose_payload(&mut self, payload: Payload, out: &mut Out) -> u64 {
        self.append_and_stream(vec![payload], out);
        self.log.last_index()
    }

    /// The established leader appends `payloads` as the next transactions of
    /// its epoch, sends them to every learner in the stream and logs them.
    fn append_and_stream(&mut self, payloads: Vec<Payload>, out: &mut Out) {
        let State::Leading(l) = &mut self.state else { unreachable!("only a leader proposes") };
        let epoch = l.epoch();
        let mut entries = Vec::with_capacity(payloads.len());
        for payload in payloads {
            l.counter += 1;
            let index = self.log.last_index() + 1;
            let entry = Entry { index, stamp: Zxid::new(epoch, l.counter), payload };
            self.log.append(entry.clone());
            entries.push(entry);
        }
        let streamed: Vec<NodeId> = l.learners.iter().filter(|(_, x)| x.in_stream()).map(|(p, _)| *p).collect();
        // The leader sends before its own write is durable (it counts itself
        // only after `on_persisted`).
        for peer in streamed {
            out.send(peer, Message::Proposal { epoch, entries: entries.clone() });
        }
        self.note_appended(&entries);
        let mut batch = self.batch();
        batch.entries = entries;
        self.persist(batch, out);
    }

    /// PROPOSAL: log in order, acknowledge once durable.
    pub(crate) fn on_proposal(&mut self, now: Instant, from: NodeId, epoch: u64, entries: Vec<Entry>, out: &mut Out) {
        let Some(f) = self.following(from, epoch, Some(FollowerPhase::Broadcast)) else { return };
        f.last_heard = now;
        // FIFO links never skip: a gap, a zxid out of order or of another
        // epoch means the stream (or the leader) broke. Re-synchronise.
        let fits =
            crate::sync::chains((self.log.last_index(), self.log.last_stamp()), &entries).and_then(|()| match entries
                .iter()
                .find(|e| e.stamp.major != epoch)
            {
                Some(e) => Err(format!("zxid {:?} is not of epoch {epoch}", e.stamp)),
                None => Ok(()),
            });
        let fits = if self.config.planted(PlantedBug::TrustProposals) { Ok(()) } else { fits };
        if let Err(why) = fits {
            self.reject(from, "PROPOSAL", &why);
            return self.become_looking(now, out);
        }
        if entries.is_empty() {
            return;
        }
        for e in &entries {
            self.log.append(e.clone());
        }
        self.note_appended(&entries);
        let index = self.log.last_index();
        let mut batch = self.batch();
        batch.entries = entries;
        self.persist(batch, out);
        if self.config.planted(PlantedBug::AckBeforeDurable) {
            out.send(from, Message::Ack { epoch, index });
        } else {
            out.send_durable(from, Message::Ack { epoch, index });
        }
    }

    /// ACK: count it and commit what a quorum holds.
    pub(crate) fn on_ack(&mut self, now: Instant, from: NodeId, epoch: u64, index: u64, out: &mut Out) {
        let State::Leading(l) = &mut self.state else { return };
        if l.epoch != Some(epoch) {
            return;
        }
        let Some(learner) = l.learners.get_mut(&from) else { return self.reset_learner(from, out) };
        if index > self.log.last_index() {
            let why = format!("acknowledges {index}, we proposed up to {}", self.log.last_index());
            self.reject(from, "ACK", &why);
            return self.reset_learner(from, out);
        }
        learner.last_heard = now;
        if learner.stage == Stage::Active {
            learner.acked = learner.acked.max(index);
            self.try_commit(now, out);
            self.maybe_hand_over(now, out);
        }
    }

    /// Commits the highest index a quorum acknowledged durably in this epoch.
    pub(crate) fn try_commit(&mut self, now: Instant, out: &mut Out) {
        let own = if self.durable_hard.current_epoch == self.hard.current_epoch { self.durable_index } else { 0 };
        let State::Leading(l) = &self.state else { return };
        if l.phase != LeaderPhase::Broadcast {
            return;
        }
        let acked = |id: NodeId| match l.learners.get(&id) {
            _ if id == self.id => own,
            Some(x) if x.stage == Stage::Active && x.acked >= x.counts_from => x.acked,
            _ => 0,
        };
        let agreed = if self.config.planted(PlantedBug::NonVotersCount) {
            // The planted bug: every member acking counts, voter or not.
            let conf = self.configs.current();
            let mut acks: Vec<u64> =
                l.learners.values().filter(|x| x.stage == Stage::Active).map(|x| x.acked).collect();
            acks.push(own);
            acks.sort_unstable_by(|a, b| b.cmp(a));
            acks.get(conf.voters.len() / 2).copied().unwrap_or(0)
        } else if self.config.planted(PlantedBug::CommitWithoutQuorum) {
            // The planted bug counts as if the cluster had three nodes: two acks commit.
            let mut acks: Vec<u64> =
                l.learners.values().filter(|x| x.stage == Stage::Active).map(|x| x.acked).collect();
            acks.push(own);
            Majority::of(3).reached_by_quorum(acks)
        } else {
            self.committed_by_quorums(acked)
        };
        if agreed <= self.commit_index {
            return;
        }
        assert!(agreed >= l.established_index, "the initial history is committed before any proposal");
        let epoch = l.epoch();
        let streamed: Vec<NodeId> = l.learners.iter().filter(|(_, x)| x.in_stream()).map(|(p, _)| *p).collect();
        self.advance_commit(agreed, out);
        for peer in streamed {
            out.send(peer, Message::Commit { epoch, index: agreed });
        }
        self.maybe_step_down_removed(now, out);
        self.flush_queue(now, out);
    }

    /// COMMIT: deliver in order up to `index`.
    pub(crate) fn on_commit(&mut self, now: Instant, from: NodeId, epoch: u64, index: u64, out: &mut Out) {
        let Some(f) = self.following(from, epoch, Some(FollowerPhase::Broadcast)) else { return };
        f.last_heard = now;
        if index > self.log.last_index() {
            // COMMIT follows its PROPOSAL on a FIFO link; a missing proposal
            // means the connection broke and was re-opened: re-synchronise.
            let why = format!("COMMIT {index} without its PROPOSAL (last {})", self.log.last_index());
            self.reject(from, "COMMIT", &why);
            return self.become_looking(now, out);
        }
        self.advance_commit(index, out);
    }

    /// PING: the leader is alive; answer so it knows we follow it.
    pub(crate) fn on_ping(&mut self, now: Instant, from: NodeId, epoch: u64, round: u64, commit: u64, out: &mut Out) {
        let Some(f) = self.following(from, epoch, Some(FollowerPhase::Broadcast)) else { return };
        f.last_heard = now;
        if f.up_to_date {
            self.advance_commit(commit, out);
        }
        out.send(from, Message::PingAck { epoch, round });
    }

    /// PING answered: the follower is alive and still ours.
    pub(crate) fn on_ping_ack(&mut self, now: Instant, from: NodeId, epoch: u64, round: u64, out: &mut Out) {
        let Some(l) = self.leading(epoch) else { return };
        if round > l.ping.round {
            // It would confirm `sync` reads of rounds not even sent yet.
            let why = format!("answers ping round {round}, the last sent is {}", l.ping.round);
            self.reject(from, "PING(ACK)", &why);
            return self.reset_learner(from, out);
        }
        let Some(learner) = l.learners.get_mut(&from) else { return self.reset_learner(from, out) };
        learner.last_heard = now;
        learner.ping_acked = learner.ping_acked.max(round);
        self.serve_reads(out);
    }

    /// Leader timer: pings, liveness of the quorum, phase deadlines, batches.
    pub(crate) fn leader_timer(&mut self, now: Instant, out: &mut Out) {
        let (init_limit, sync_limit, tick) = (self.config.init_limit(), self.config.sync_limit(), self.config.tick);
        let State::Leading(l) = &mut self.state else { return };
        if l.phase != LeaderPhase::Broadcast && now >= l.deadline {
            debug!(node = self.id.0, "no quorum within initLimit");
            return self.become_looking(now, out);
        }
        if l.batch_deadline.is_some_and(|d| now >= d) {
            self.flush_queue(now, out);
        }
        self.maybe_hand_over(now, out);
        let State::Leading(l) = &mut self.state else { return };
        if now < l.ping.next {
            return;
        }
        l.ping.next = now + tick;
        // Drop learners silent for too long (ZooKeeper's LearnerHandler timeout).
        l.learners.retain(|_, x| {
            let limit = if x.in_stream() { sync_limit } else { init_limit };
            now.saturating_since(x.last_heard) <= limit
        });
        if l.phase == LeaderPhase::Broadcast {
            let live = l.learners.iter().filter(|(_, x)| x.stage == Stage::Active).map(|(p, _)| *p);
            if !crate::membership::quorum_of(self.configs.current(), self.id, live, true) {
                debug!(node = self.id.0, "lost the quorum");
                return self.become_looking(now, out);
            }
        }
        self.ping_round(now, out);
    }

    /// Sends a ping round to every learner in the stream.
    pub(crate) fn ping_round(&mut self, now: Instant, out: &mut Out) {
        let commit = self.commit_index;
        let State::Leading(l) = &mut self.state else { return };
        let Some(epoch) = l.epoch else { return };
        l.ping.round += 1;
        l.ping.started = now;
        for (peer, x) in &l.learners {
            if x.in_stream() {
                out.send(*peer, Message::Ping { epoch, round: l.ping.round, commit });
            }
        }
    }

    /// Follower timer: `initLimit` during discovery and sync, `syncLimit` after.
    pub(crate) fn follower_timer(&mut self, now: Instant, out: &mut Out) {
        let State::Following(f) = &self.state else { return };
        let expired = match f.phase {
            FollowerPhase::Broadcast => now >= f.last_heard + self.config.sync_limit(),
            _ => now >= f.deadline,
        };
        if expired {
            debug!(node = self.id.0, leader = f.leader.0, phase = ?f.phase, "leader silent");
            self.become_looking(now, out);
        }
    }

    /// The driver snapshotted its state machine at `index`: compact the history
    /// and keep the snapshot for SNAP synchronisation.
    pub(crate) fn take_snapshot(&mut self, _now: Instant, index: u64, data: bytes::Bytes, out: &mut Out) {
        assert!(index <= self.commit_index, "only committed state is snapshotted");
        if index <= self.log.offset() {
            return;
        }
        let stamp = self.log.stamp_at(index).expect("a committed index above the offset is held");
        let meta = quorum_core::SnapshotMeta { membership: self.configs.at(index).clone() }.encode();
        let snapshot = Snapshot { index, stamp, meta, data };
        self.log.compact_to(index, stamp);
        self.configs.compact(index);
        self.snapshot = Some(snapshot.clone());
        let mut batch = self.batch();
        batch.snapshot = Some(snapshot);
        self.persist(batch, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::message::{Message, PeerState};
    use crate::testkit::*;
    use quorum_core::{Bytes, ClientId, Command, Effect, Effects, Entry, NodeId, Payload, Protocol, Role, Stamp};

    fn cmd(seq: u64) -> Command {
        Command::new(ClientId(1), seq, Bytes::from_static(b"x"))
    }

    fn proposal(stamps: &[(u64, u64)], first_index: u64) -> Vec<Entry> {
        stamps
            .iter()
            .enumerate()
            .map(|(i, (e, c))| Entry {
                index: first_index + i as u64,
                stamp: Stamp::new(*e, *c),
                payload: Payload::Command(cmd(*c)),
            })
            .collect()
    }

    #[test]
    fn a_follower_acknowledges_a_proposal_only_once_it_is_durable() {
        let mut z = follower_in_broadcast();
        let mut out = Effects::new();
        let entries = proposal(&[(1, 1), (1, 2)], 1);
        z.on_message(at(10), NodeId(1), Message::Proposal { epoch: 1, entries }, &mut out);
        let effects = out.as_slice();
        assert!(matches!(&effects[0], Effect::Persist(b) if b.entries.len() == 2));
        assert!(matches!(effects[1], Effect::SendDurable { msg: Message::Ack { epoch: 1, index: 2 }, .. }));
        assert!(commits(&out).is_empty(), "logged is not committed");
        let mut out = Effects::new();
        z.on_message(at(11), NodeId(1), Message::Commit { epoch: 1, index: 2 }, &mut out);
        assert_eq!(commits(&out), vec![1, 2], "COMMIT delivers in zxid order");
    }

    #[test]
    fn a_gap_in_the_proposal_stream_sends_the_follower_back_through_recovery() {
        let mut z = follower_in_broadcast();
        let mut out = Effects::new();
        let skipped = proposal(&[(1, 2)], 2);
        z.on_message(at(10), NodeId(1), Message::Proposal { epoch: 1, entries: skipped }, &mut out);
        assert_eq!(z.peer_state(), PeerState::Looking, "never skip a zxid");
        assert_eq!(z.history().last_index(), 0);
        let mut z = follower_in_broadcast();
        let mut out = Effects::new();
        z.on_message(at(10), NodeId(1), Message::Commit { epoch: 1, index: 1 }, &mut out);
        assert_eq!(z.peer_state(), PeerState::Looking, "a COMMIT without its PROPOSAL is a broken stream");
        assert!(commits(&out).is_empty());
    }

    #[test]
    fn a_broken_link_to_the_leader_sends_the_follower_back_through_recovery() {
        let mut z = follower_in_broadcast();
        let mut out = Effects::new();
        z.on_link_down(at(10), NodeId(3), &mut out);
        assert_eq!(z.peer_state(), PeerState::Following, "another peer's link does not matter");
        z.on_link_down(at(10), NodeId(1), &mut out);
        assert_eq!(z.peer_state(), PeerState::Looking);
    }

    #[test]
    fn a_silent_leader_is_abandoned_after_the_sync_limit() {
        let mut z = follower_in_broadcast();
        let deadline = z.next_timer().unwrap();
        assert_eq!(deadline, at(3) + z.config.sync_limit());
        let mut out = Effects::new();
        z.on_message(at(50), NodeId(1), Message::Ping { epoch: 1, round: 1, commit: 0 }, &mut out);
        assert!(sent(&out).iter().any(|(_, m, _)| matches!(m, Message::PingAck { epoch: 1, round: 1 })));
        z.on_timer(deadline, &mut out);
        assert_eq!(z.peer_state(), PeerState::Following, "the ping moved the deadline");
        z.on_timer(at(50) + z.config.sync_limit(), &mut out);
        assert_eq!(z.peer_state(), PeerState::Looking);
    }

    #[test]
    fn only_the_established_leader_accepts_proposals_and_others_name_it() {
        let mut z = follower_in_broadcast();
        let mut out = Effects::new();
        assert_eq!(z.propose(at(10), cmd(1), &mut out).unwrap_err().leader_hint(), Some(NodeId(1)));
        let mut looking = node(3, 3);
        assert_eq!(looking.propose(at(10), cmd(1), &mut out).unwrap_err().leader_hint(), None);
        let leader = established_leader();
        assert_eq!(leader.status().role, Role::Leader);
        assert_eq!(leader.status().term, 1);
    }

    #[test]
    fn the_leader_proposes_consecutive_zxids_and_commits_once_a_quorum_holds_them_durably() {
        let mut z = established_leader();
        let mut out = Effects::new();
        z.propose(at(200), cmd(1), &mut out).unwrap();
        z.propose(at(200), cmd(2), &mut out).unwrap();
        let stamps: Vec<Stamp> = z.history().iter().map(|e| e.stamp).collect();
        assert_eq!(stamps, vec![Stamp::new(1, 1), Stamp::new(1, 2)], "counter restarts at 1 in epoch 1");
        assert_eq!(sent(&out).len(), 2, "one PROPOSAL each to the active follower, pipelined");
        let mut out = Effects::new();
        z.on_message(at(201), NodeId(2), Message::Ack { epoch: 1, index: 2 }, &mut out);
        assert!(commits(&out).is_empty(), "the leader's own copy is not durable yet");
        persist_all(&mut z, at(202), &mut out);
        assert_eq!(commits(&out), vec![1, 2]);
        assert!(sent(&out).iter().any(|(to, m, _)| *to == NodeId(2) && matches!(m, Message::Commit { index: 2, .. })));
    }

    #[test]
    fn an_ack_of_another_epoch_is_ignored() {
        let mut z = established_leader();
        let mut out = Effects::new();
        z.propose(at(200), cmd(1), &mut out).unwrap();
        persist_all(&mut z, at(200), &mut out);
        let mut out = Effects::new();
        z.on_message(at(201), NodeId(2), Message::Ack { epoch: 0, index: 1 }, &mut out);
        assert!(commits(&out).is_empty());
    }

    #[test]
    fn batching_holds_proposals_until_the_batch_delay_or_a_full_batch() {
        let mut z = established_leader();
        z.config.batch_delay = quorum_core::Duration::from_millis(1);
        z.config.max_batch_entries = 3;
        let mut out = Effects::new();
        z.propose(at(200), cmd(1), &mut out).unwrap();
        z.propose(at(200), cmd(2), &mut out).unwrap();
        assert!(sent(&out).is_empty(), "held for the batch");
        assert!(z.next_timer().unwrap() <= at(201));
        let mut out = Effects::new();
        z.on_timer(at(201), &mut out);
        let proposals: Vec<usize> = sent(&out)
            .iter()
            .filter_map(|(_, m, _)| match m {
                Message::Proposal { entries, .. } => Some(entries.len()),
                _ => None,
            })
            .collect();
        assert_eq!(proposals, vec![2], "one message carries the batch");
    }

    #[test]
    fn a_batch_of_large_commands_is_cut_by_bytes_so_each_proposal_fits_a_frame() {
        // Issue 13 (by reading, after the tiny-caps frame limit found the same
        // in Multi-Paxos's promises): batches were cut by count only, so two
        // commands near the frame limit made one PROPOSAL over it.
        let mut z = established_leader();
        z.config.batch_delay = quorum_core::Duration::from_millis(1);
        z.config.max_batch_entries = 8;
        z.config.max_batch_bytes = 250;
        let mut out = Effects::new();
        for seq in 1..=5 {
            let big = Command::new(ClientId(1), seq, Bytes::from(vec![b'v'; 100]));
            z.propose(at(200), big, &mut out).unwrap();
        }
        let mut out = Effects::new();
        z.on_timer(at(201), &mut out);
        let proposals: Vec<usize> = sent(&out)
            .iter()
            .filter_map(|(to, m, _)| match m {
                Message::Proposal { entries, .. } if *to == NodeId(2) => Some(entries.len()),
                _ => None,
            })
            .collect();
        assert_eq!(proposals, vec![2, 2, 1], "250 bytes hold two 100-byte commands, not three");
    }

    #[test]
    fn the_queue_behind_the_pipeline_is_bounded_and_answers_busy_beyond_it() {
        // Issue 12 item 7: a leader that cannot commit (its follower is gone)
        // must not queue every retry until memory runs out.
        let mut z = established_leader();
        z.config.max_inflight_entries = 2;
        z.config.max_queued_proposals = 3;
        let mut out = Effects::new();
        for seq in 1..=5 {
            z.propose(at(200), cmd(seq), &mut out).unwrap();
        }
        assert_eq!(z.history().last_index(), 2, "two in the pipeline, three queued");
        let busy = z.propose(at(200), cmd(6), &mut out);
        assert_eq!(busy, Err(quorum_core::ProposeError::Busy { limit: 3 }));
        // Once the pipeline drains, the queue moves and takes proposals again.
        persist_all(&mut z, at(201), &mut out);
        z.on_message(at(201), NodeId(2), Message::Ack { epoch: 1, index: 2 }, &mut out);
        assert_eq!(z.history().last_index(), 4);
        assert_eq!(z.propose(at(202), cmd(6), &mut out), Ok(()));
    }

    #[test]
    fn planted_unbounded_queue_is_caught_by_the_bound_test() {
        let mut z = established_leader();
        z.config.max_inflight_entries = 2;
        z.config.max_queued_proposals = 3;
        z.config.planted = Some(crate::PlantedBug::UnboundedProposalQueue);
        let mut out = Effects::new();
        for seq in 1..=50 {
            assert_eq!(z.propose(at(200), cmd(seq), &mut out), Ok(()), "the planted queue takes everything");
        }
    }

    #[test]
    fn the_pipeline_is_bounded_by_max_inflight_entries() {
        let mut z = established_leader();
        z.config.max_inflight_entries = 2;
        let mut out = Effects::new();
        for seq in 1..=5 {
            z.propose(at(200), cmd(seq), &mut out).unwrap();
        }
        assert_eq!(z.history().last_index(), 2, "three wait in the queue");
        z.on_message(at(201), NodeId(2), Message::Ack { epoch: 1, index: 2 }, &mut out);
        persist_all(&mut z, at(201), &mut out);
        assert_eq!(z.history().last_index(), 4, "commits make room");
    }

    #[test]
    fn a_snapshot_compacts_the_history_and_is_persisted() {
        let mut z = established_leader();
        let mut out = Effects::new();
        for seq in 1..=3 {
            z.propose(at(200), cmd(seq), &mut out).unwrap();
        }
        z.on_message(at(201), NodeId(2), Message::Ack { epoch: 1, index: 3 }, &mut out);
        persist_all(&mut z, at(201), &mut out);
        let mut out = Effects::new();
        z.on_snapshot(at(202), 2, Bytes::from_static(b"sm"), &mut out);
        assert_eq!(z.history().offset(), 2);
        assert_eq!(z.history().offset_stamp(), Stamp::new(1, 2));
        assert!(matches!(&writes(&out)[0].snapshot, Some(s) if s.index == 2));
    }

    #[test]
    fn the_leader_gives_up_when_its_quorum_goes_silent() {
        let mut z = established_leader();
        let mut out = Effects::new();
        let mut now = at(102);
        while z.peer_state() == PeerState::Leading {
            now = z.next_timer().unwrap();
            z.on_timer(now, &mut out);
        }
        assert!(now.saturating_since(at(102)) > z.config.sync_limit(), "gave up at {now:?}");
        assert!(now.saturating_since(at(102)) <= z.config.sync_limit() + z.config.tick * 2);
    }
}
