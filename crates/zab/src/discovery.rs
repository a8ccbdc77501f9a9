//! Phase 1: Discovery. The leader learns its followers' accepted epochs,
//! proposes a new epoch above all of them, and gathers a quorum of durable
//! promises (ACKEPOCH) that also report each follower's history.

use crate::message::{HistorySummary, Message};
use crate::state::{FollowerPhase, Following, LeaderPhase, Leading, Learner, Stage, State};
use crate::Zab;
use quorum_core::{Effects, Instant, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::debug;

impl Zab {
    /// Settled as a follower of `leader`: send FOLLOWERINFO (CEPOCH).
    pub(crate) fn become_follower(&mut self, now: Instant, leader: NodeId, out: &mut Effects<Message>) {
        self.early_infos.clear();
        self.session += 1;
        let session = self.session;
        self.set_state(State::Following(Box::new(Following {
            leader,
            session,
            phase: FollowerPhase::Discovery,
            epoch: 0,
            deadline: now + self.config.init_limit(),
            last_heard: now,
            pending: None,
            up_to_date: false,
            reads: BTreeSet::new(),
        })));
        out.send(leader, Message::FollowerInfo { session, accepted_epoch: self.hard.accepted_epoch });
    }

    /// Settled as leader: collect FOLLOWERINFO from a quorum (ours counts).
    pub(crate) fn become_leader(&mut self, now: Instant, out: &mut Effects<Message>) {
        self.set_state(State::Leading(Box::new(Leading {
            epoch: None,
            phase: LeaderPhase::Discovery,
            learners: BTreeMap::new(),
            deadline: now + self.config.init_limit(),
            established_index: 0,
            counter: 0,
            next_ping: now + self.config.tick,
            ping_round: 0,
            ping_round_started: now,
            reads: Vec::new(),
            queue: VecDeque::new(),
            batch_deadline: None,
        })));
        let early = std::mem::take(&mut self.early_infos);
        for (from, (session, accepted_epoch)) in early {
            self.on_follower_info(now, from, session, accepted_epoch, out);
        }
        self.maybe_choose_epoch(out);
    }

    /// FOLLOWERINFO: a follower joins (or rejoins, with a new session).
    pub(crate) fn on_follower_info(
        &mut self,
        now: Instant,
        from: NodeId,
        session: u64,
        accepted_epoch: u64,
        out: &mut Effects<Message>,
    ) {
        let State::Leading(l) = &mut self.state else {
            if matches!(self.state, State::Looking) {
                self.early_infos.insert(from, (session, accepted_epoch));
            }
            return;
        };
        if l.learners.get(&from).is_some_and(|x| x.session == session) {
            return;
        }
        let mut learner =
            Learner { session, accepted_epoch, stage: Stage::Info, acked: 0, last_heard: now, ping_acked: 0 };
        if let Some(epoch) = l.epoch {
            // The epoch is chosen already: a late joiner gets it at once.
            learner.stage = Stage::EpochSent;
            out.send(from, Message::NewEpoch { session, epoch });
        }
        l.learners.insert(from, learner);
        self.maybe_choose_epoch(out);
    }

    /// With a quorum of FOLLOWERINFO, propose epoch = max(acceptedEpoch) + 1.
    fn maybe_choose_epoch(&mut self, out: &mut Effects<Message>) {
        let quorum = self.quorum();
        let State::Leading(l) = &mut self.state else { return };
        if l.epoch.is_some() || l.learners.len() + 1 < quorum {
            return;
        }
        let max = l.learners.values().map(|x| x.accepted_epoch).max().unwrap_or(0).max(self.hard.accepted_epoch);
        let epoch = max + 1;
        l.epoch = Some(epoch);
        for (peer, learner) in l.learners.iter_mut() {
            learner.stage = Stage::EpochSent;
            out.send(*peer, Message::NewEpoch { session: learner.session, epoch });
        }
        debug!(node = self.id.0, epoch, "NEWEPOCH proposed");
        // The leader promises its own epoch durably too; it counts toward the
        // ACKEPOCH quorum once the write is durable (`leader_on_durable`).
        self.hard.accepted_epoch = epoch;
        self.hard.accepted_leader = self.id.0;
        self.persist_hard_state(out);
    }

    /// NEWEPOCH: promise the epoch durably, then ACKEPOCH with our history.
    pub(crate) fn on_new_epoch(
        &mut self,
        now: Instant,
        from: NodeId,
        session: u64,
        epoch: u64,
        out: &mut Effects<Message>,
    ) {
        let State::Following(f) = &mut self.state else { return };
        if from != f.leader || session != f.session || f.phase != FollowerPhase::Discovery {
            return;
        }
        // DSN 2011, Phase 1 step f.1.2: accept only an epoch above our promise
        // (or the very promise we made, to the same leader, after a restart).
        let same_promise = epoch == self.hard.accepted_epoch && self.hard.accepted_leader == from.0;
        if epoch < self.hard.accepted_epoch || (epoch == self.hard.accepted_epoch && !same_promise) {
            debug!(node = self.id.0, epoch, accepted = self.hard.accepted_epoch, "NEWEPOCH refused");
            return self.become_looking(now, out);
        }
        f.phase = FollowerPhase::Sync;
        f.epoch = epoch;
        f.last_heard = now;
        if !same_promise {
            self.hard.accepted_epoch = epoch;
            self.hard.accepted_leader = from.0;
            self.persist_hard_state(out);
        }
        let summary = HistorySummary::of(&self.log);
        // Durable: the promise and the reported history are on disk first.
        out.send_durable(from, Message::AckEpoch { epoch, current_epoch: self.hard.current_epoch, summary });
    }

    /// ACKEPOCH: count the quorum; once reached, synchronise it.
    pub(crate) fn on_ack_epoch(
        &mut self,
        now: Instant,
        from: NodeId,
        epoch: u64,
        current_epoch: u64,
        summary: HistorySummary,
        out: &mut Effects<Message>,
    ) {
        let own = (self.hard.current_epoch, self.log.last_stamp());
        let State::Leading(l) = &mut self.state else { return };
        if l.epoch != Some(epoch) {
            return;
        }
        let Some(learner) = l.learners.get_mut(&from) else { return };
        if learner.stage != Stage::EpochSent {
            return;
        }
        learner.last_heard = now;
        if l.phase != LeaderPhase::Discovery {
            // A late joiner: synchronise it against the running leader.
            return self.sync_learner(now, from, &summary, out);
        }
        // ZooKeeper's `waitForEpochAck`: a follower of the quorum ahead of us
        // may hold committed transactions we lack; give up and re-elect.
        if (current_epoch, summary.last_zxid()) > own {
            debug!(node = self.id.0, follower = from.0, "follower is ahead of the leader");
            return self.become_looking(now, out);
        }
        learner.stage = Stage::AckedEpoch(summary);
        self.maybe_start_sync(now, out);
    }

    /// With a quorum of ACKEPOCH (ours once our promise is durable), start Phase 2.
    pub(crate) fn maybe_start_sync(&mut self, now: Instant, out: &mut Effects<Message>) {
        let quorum = self.quorum();
        let own_promise_durable = self.durable_hard.accepted_epoch;
        let State::Leading(l) = &mut self.state else { return };
        let Some(epoch) = l.epoch else { return };
        if l.phase != LeaderPhase::Discovery || own_promise_durable != epoch {
            return;
        }
        let acked = l.learners.values().filter(|x| matches!(x.stage, Stage::AckedEpoch(_))).count();
        if acked + 1 >= quorum {
            self.start_sync(now, out);
        }
    }
}
