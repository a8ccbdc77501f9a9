//! Reads outside the log: ZooKeeper's `sync` followed by a read
//! (linearizable), and local reads (sequentially consistent).
//!
//! The read point is the leader's commit index when the read arrives. Before
//! answering, the leader confirms it still leads: a quorum (itself included)
//! must answer a ping round sent after the read arrived. A deposed leader
//! cannot gather that quorum, because its followers have promised a newer
//! epoch (they answer pings only for the epoch they follow). Every write that
//! completed before the read began was committed by this leader or lies in
//! its initial history, so it is at or below the read point. A follower
//! forwards the read to its leader (SYNC) and serves it once it has applied
//! the point the leader returns.
//!
//! A local read is ZooKeeper's plain `getData`: the server the client talks to
//! answers from its own state, which is a committed prefix of the history but
//! may lag the leader. Zab only says *whether* this node serves clients (like a
//! ZooKeeper server, only once it leads or follows an established leader and
//! is up to date); the driver serves the read once its state machine has
//! applied the client's last seen index, so the client's view never goes back.

use crate::message::Message;
use crate::state::{FollowerPhase, LeaderPhase, PendingRead, ReadOrigin, Stage, State};
use crate::Out;
use crate::Zab;
use quorum_core::{Instant, NodeId, NotLeader, ReadError, ReadId};

impl Zab {
    /// `sync` + read: the read point is the leader's commit index, confirmed by
    /// a quorum of followers answering a ping sent after the read arrived.
    pub(crate) fn start_read(&mut self, now: Instant, id: ReadId, out: &mut Out) -> Result<(), ReadError> {
        match &mut self.state {
            State::Leading(l) if l.phase == LeaderPhase::Broadcast => {
                self.register_read(now, ReadOrigin::Here(id), out);
                Ok(())
            }
            State::Following(f) if f.phase == FollowerPhase::Broadcast && f.up_to_date => {
                f.reads.insert(id);
                out.send(f.leader, Message::SyncRequest { epoch: f.epoch, read: id });
                Ok(())
            }
            _ => Err(ReadError::NotLeader(self.not_leader())),
        }
    }

    /// May a client read this node's state directly? Only in broadcast: an
    /// established leader, or a follower that got UPTODATE (a ZooKeeper server
    /// accepts clients only then). A LOOKING or syncing node sends the client away.
    pub(crate) fn may_read_locally(&self) -> Result<(), ReadError> {
        match &self.state {
            State::Leading(l) if l.phase == LeaderPhase::Broadcast => Ok(()),
            State::Following(f) if f.phase == FollowerPhase::Broadcast && f.up_to_date => Ok(()),
            _ => Err(ReadError::NotLeader(self.not_leader())),
        }
    }

    fn register_read(&mut self, now: Instant, origin: ReadOrigin, out: &mut Out) {
        let index = self.commit_index;
        let State::Leading(l) = &mut self.state else { return };
        if l.ping.started != now || l.ping.round == 0 {
            self.ping_round(now, out);
        }
        let State::Leading(l) = &mut self.state else { return };
        l.reads.push(PendingRead { origin, index, round: l.ping.round });
        self.serve_reads(out);
    }

    /// SYNC from a follower: confirm like a local read, then answer it.
    pub(crate) fn on_sync_request(&mut self, now: Instant, from: NodeId, epoch: u64, read: ReadId, out: &mut Out) {
        let State::Leading(l) = &self.state else { return };
        if l.epoch != Some(epoch) || l.phase != LeaderPhase::Broadcast {
            return;
        }
        if l.learners.get(&from).is_some_and(|x| x.in_stream()) {
            self.register_read(now, ReadOrigin::Forwarded(from, read), out);
        }
    }

    /// SYNC answered: serve the read once `index` is applied here.
    pub(crate) fn on_sync_reply(
        &mut self,
        now: Instant,
        from: NodeId,
        epoch: u64,
        read: ReadId,
        index: u64,
        out: &mut Out,
    ) {
        let Some(f) = self.following(from, epoch, None) else { return };
        f.last_heard = now;
        if f.reads.remove(&read) {
            out.read_ready(read, index);
        }
    }

    /// Answers reads whose ping round a quorum has confirmed.
    pub(crate) fn serve_reads(&mut self, out: &mut Out) {
        let State::Leading(l) = &mut self.state else { return };
        let answered = |id: NodeId| match l.learners.get(&id) {
            _ if id == self.id => l.ping.round,
            Some(x) if x.stage == Stage::Active => x.ping_acked,
            _ => 0,
        };
        // Every read waits for a round of at least 1, so 0 (too few answers) serves none.
        let confirmed = self.configs.current().quorum_value(answered);
        let epoch = l.epoch();
        l.reads.retain(|r| {
            if r.round > confirmed {
                return true;
            }
            match r.origin {
                ReadOrigin::Here(id) => out.read_ready(id, r.index),
                ReadOrigin::Forwarded(peer, read) => out.send(peer, Message::SyncReply { epoch, read, index: r.index }),
            }
            false
        });
    }

    /// Leaving a role: every read waiting on it fails.
    pub(crate) fn fail_reads(&mut self, out: &mut Out) {
        let reason = NotLeader { leader_hint: None };
        match &mut self.state {
            State::Leading(l) => {
                for r in l.reads.drain(..) {
                    if let ReadOrigin::Here(id) = r.origin {
                        out.read_failed(id, reason);
                    }
                }
            }
            State::Following(f) => {
                for id in std::mem::take(&mut f.reads) {
                    out.read_failed(id, reason);
                }
            }
            State::Looking => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::message::Message;
    use crate::testkit::*;
    use quorum_core::{Effect, Effects, NodeId, Protocol, ReadError};

    #[test]
    fn a_leader_read_waits_for_a_quorum_to_confirm_a_ping_sent_after_it() {
        let mut z = established_leader();
        let mut out = Effects::new();
        z.read(at(300), 9, &mut out).unwrap();
        let round = sent(&out)
            .iter()
            .find_map(|(_, m, _)| match m {
                Message::Ping { round, .. } => Some(*round),
                _ => None,
            })
            .expect("the read starts a ping round");
        assert!(!out.as_slice().iter().any(|e| matches!(e, Effect::ReadReady { .. })));
        let mut out = Effects::new();
        z.on_message(at(301), NodeId(2), Message::PingAck { epoch: 1, round }, &mut out);
        assert!(out.as_slice().iter().any(|e| matches!(e, Effect::ReadReady { id: 9, index: 0 })));
    }

    #[test]
    fn a_follower_read_is_a_sync_through_the_leader() {
        let mut z = follower_in_broadcast();
        let mut out = Effects::new();
        z.read(at(10), 4, &mut out).unwrap();
        assert!(matches!(sent(&out)[0].1, Message::SyncRequest { epoch: 1, read: 4 }));
        let mut out = Effects::new();
        z.on_message(at(11), NodeId(1), Message::SyncReply { epoch: 1, read: 4, index: 0 }, &mut out);
        assert!(out.as_slice().iter().any(|e| matches!(e, Effect::ReadReady { id: 4, index: 0 })));
        // Reads pending when the follower leaves its leader fail.
        z.read(at(12), 5, &mut out).unwrap();
        let mut out = Effects::new();
        z.on_link_down(at(13), NodeId(1), &mut out);
        assert!(out.as_slice().iter().any(|e| matches!(e, Effect::ReadFailed { id: 5, .. })));
        assert!(matches!(z.read(at(14), 6, &mut out), Err(ReadError::NotLeader(_))));
    }

    #[test]
    fn local_reads_are_served_only_in_broadcast() {
        assert_eq!(established_leader().local_read(at(1)), Ok(()));
        let mut z = follower_in_broadcast();
        assert_eq!(z.local_read(at(1)), Ok(()));
        // A follower that lost its leader is LOOKING: it sends the client away.
        let mut out = Effects::new();
        z.on_link_down(at(2), NodeId(1), &mut out);
        assert!(matches!(z.local_read(at(3)), Err(ReadError::NotLeader(_))));
    }
}
