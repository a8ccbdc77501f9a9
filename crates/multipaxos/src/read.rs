//! Leader leases for local linearizable reads (optional, `MultiPaxosConfig::read_lease`).
//!
//! Reads normally go through the log like any command. With leases on, a
//! leader answers a read locally — "ready once slot `next_slot - 1` is
//! applied" — while it holds a lease:
//!
//! - Every heartbeat carries the leader's send time `t`; a replica that accepts
//!   it echoes `t` back (`HeartbeatAck`). Once a majority (the leader included)
//!   has echoed `t`, the leader holds the lease until `t + lease_duration`.
//! - A node that heard from the current leader at time `h`, or acknowledged a
//!   heartbeat of any leader at time `h`, refuses to promise any other
//!   candidate's ballot, and does not run Phase 1 itself, until
//!   `h + election_timeout`; a restarted node waits one election timeout
//!   before promising anything, because it may have heard from a leader just
//!   before it crashed. The leader itself refuses other candidates while it
//!   leads. Whatever a node acknowledges binds it: a follower that suspects
//!   its leader (`hint.rs`) and so does not count its messages as contact
//!   still honours every heartbeat it acknowledged.
//!
//! So a majority that acknowledged `t` blocks every Phase 1 until at least
//! `t + election_timeout`: no other leader can commit anything before then,
//! and every write acknowledged before the read sits at or below `next_slot - 1`.
//!
//! **Clock assumption.** Each node measures these intervals on its own clock.
//! The lease lasts `lease_duration = election_timeout × 3/4`, so it is safe as
//! long as no node's clock runs more than 25% faster or slower than another's
//! over one election timeout. The simulator's clocks drift up to 0.1 % by
//! default (`quorum_sim::ClockConfig`). Without a
//! lease (not yet acknowledged, or expired) `read` answers `Unsupported` and the
//! driver sends the read through the log instead.

use crate::{Message, MultiPaxos, PlantedBug, State};
use quorum_core::{Duration, Effects, Instant, NodeId, NotLeader, ReadError, ReadId};
use quorum_paxos::Ballot;
use std::collections::BTreeSet;

/// The leader's lease bookkeeping.
#[derive(Clone, Debug, Hash, Default)]
pub(crate) struct Lease {
    /// The heartbeat round being acknowledged: its send time and who echoed it.
    round: Option<(Instant, BTreeSet<NodeId>)>,
    /// Reads may be served locally until then.
    until: Option<Instant>,
}

impl MultiPaxos {
    fn lease_duration(&self) -> Duration {
        Duration::from_nanos(self.config.election_timeout.as_nanos() / 4 * 3)
    }

    /// True if this node must refuse to promise `ballot` to `candidate`:
    /// it heard from a leader, or acknowledged its heartbeat, too recently (leases only).
    pub(crate) fn lease_blocks_promise(&self, candidate: NodeId, ballot: Ballot) -> bool {
        if !self.config.read_lease || candidate == self.id {
            return false;
        }
        if matches!(self.state, State::Leader(_)) {
            return true;
        }
        let timeout = self.config.election_timeout;
        let heard = ballot.owner() != self.leader && self.now < self.last_leader_contact + timeout;
        let acked = self.lease_ack.is_some_and(|(b, at)| ballot.owner() != b.owner() && self.now < at + timeout);
        heard || acked
    }

    /// Until when this node's acknowledgements may back some leader's lease:
    /// it must neither promise another candidate nor campaign itself before
    /// then (leases only).
    pub(crate) fn lease_bound_until(&self) -> Option<Instant> {
        if !self.config.read_lease {
            return None;
        }
        let acked = self.lease_ack.map_or(self.last_leader_contact, |(_, at)| at.max(self.last_leader_contact));
        Some(acked + self.config.election_timeout)
    }

    /// A follower acknowledges the heartbeat the leader of `ballot` sent at
    /// `sent_at` (for CheckQuorum always, see `leader.rs`): with leases, from
    /// now on it is bound by that leader's lease.
    pub(crate) fn ack_lease(&mut self, leader: NodeId, ballot: Ballot, sent_at: Instant) {
        if !self.config.planted(PlantedBug::LeaseIgnoresAcks) {
            self.lease_ack = Some((ballot, self.now));
        }
        let committed = self.learner.committed();
        self.outbox.send(leader, Message::HeartbeatAck { ballot, sent_at, committed });
    }

    /// The leader starts a heartbeat round at `now`.
    pub(crate) fn lease_round_started(&mut self) {
        let (now, id) = (self.now, self.id);
        if let State::Leader(leader) = &mut self.state {
            leader.lease.round = Some((now, BTreeSet::from([id])));
        }
    }

    /// A replica echoed the heartbeat sent at `sent_at`.
    pub(crate) fn on_heartbeat_ack(&mut self, from: NodeId, ballot: Ballot, sent_at: Instant, committed: u64) {
        let config = self.configs.current();
        let lease_duration = self.lease_duration();
        let now = self.now;
        let State::Leader(leader) = &mut self.state else { return };
        if leader.ballot != ballot {
            return;
        }
        leader.heard_from(from, now);
        if config.contains(from) {
            leader.commits.insert(from, (committed, sent_at)); // members only: bounded
        }
        let Some((round_at, acks)) = &mut leader.lease.round else { return };
        if *round_at != sent_at {
            return;
        }
        acks.insert(from);
        // Only voters of the configuration in force count: with one voter
        // changed at a time, their majority overlaps every next one's.
        if config.is_quorum(acks.iter()) {
            let until = sent_at + lease_duration;
            leader.lease.until = Some(leader.lease.until.map_or(until, |u| u.max(until)));
        }
    }

    /// `Protocol::read`: served locally under a valid lease, else through the log.
    pub(crate) fn lease_read(&mut self, now: Instant, id: ReadId, out: &mut Effects<Message>) -> Result<(), ReadError> {
        let State::Leader(leader) = &self.state else {
            return Err(ReadError::NotLeader(NotLeader { leader_hint: self.leader.filter(|&l| l != self.id) }));
        };
        let lease_held = leader.lease.until.is_some_and(|until| now < until);
        if !self.config.read_lease || !lease_held {
            return Err(ReadError::Unsupported);
        }
        // Every write acknowledged before now sits at or below the last slot proposed.
        let index = leader.last_proposed().max(self.learner.committed());
        out.read_ready(id, index);
        Ok(())
    }
}
