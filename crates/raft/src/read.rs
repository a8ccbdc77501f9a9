//! Linearizable reads without writing to the log (Raft thesis §6.4).
//!
//! **ReadIndex.** The leader (1) must have committed an entry of its own term
//! (its no-op), so its commit index is at least that of any earlier leader;
//! (2) records its commit index as the read index; (3) sends a heartbeat
//! round and waits until a quorum answers it, which proves no newer leader
//! existed when the read arrived; (4) answers `ReadReady { index }`, and the
//! driver serves the read once its state machine has applied `index`.
//!
//! **Lease** (optional, [`crate::ReadMode::Lease`]): followers ignore vote
//! requests for `election_timeout_min` after hearing from the leader, so once
//! a quorum acknowledged a round sent at `t`, no other leader can be elected
//! before `t + election_timeout_min` by their clocks. The leader answers at
//! once until `t + election_timeout_min * (1 - max_clock_drift)` by its own
//! clock. This assumes clock *rates* differ by at most `max_clock_drift_ppm`;
//! it is off during a leadership transfer (the target ignores leases).

use crate::config::ReadMode;
use crate::node::State;
use crate::Out;
use crate::Raft;
use quorum_core::{Instant, NotLeader, ReadError, ReadId};

/// A read waiting for its heartbeat round.
#[derive(Copy, Clone, Debug, Hash)]
pub(crate) struct PendingRead {
    pub id: ReadId,
    /// The commit index when the read arrived.
    pub commit_at: u64,
    /// The round whose quorum acknowledgement confirms leadership.
    pub round: u64,
}

impl Raft {
    /// `Protocol::read`: queue a ReadIndex read (or answer it from the lease).
    pub(crate) fn start_read(&mut self, now: Instant, id: ReadId, out: &mut Out) -> Result<(), ReadError> {
        if self.state != State::Leader {
            return Err(NotLeader { leader_hint: self.leader }.into());
        }
        if self.own_term_committed() && self.lease_valid(now) {
            out.read_ready(id, self.commit);
            return Ok(());
        }
        // Without CheckQuorum a leader cut off from its quorum keeps leading,
        // and its reads wait until the partition heals: bound them.
        let limit = self.config.max_pending_reads;
        if self.lead.reads.len() >= limit && !self.config.planted(crate::PlantedBug::UnboundedReads) {
            return Err(ReadError::Busy { limit: limit as u64 });
        }
        let round = self.lead.round + 1;
        self.lead.reads.push_back(PendingRead { id, commit_at: self.commit, round });
        self.lead.round_wanted = true;
        Ok(())
    }

    /// True once the leader committed an entry of its own term (its no-op).
    pub(crate) fn own_term_committed(&self) -> bool {
        self.state == State::Leader && self.commit >= self.lead.term_start
    }

    /// The newest round a quorum of voters acknowledged.
    fn confirmed_round(&self) -> u64 {
        let (id, round, progress) = (self.id, self.lead.round, &self.lead.progress);
        self.configs.current().quorum_value(
            |n| {
                if n == id {
                    round
                } else {
                    progress.get(&n).map_or(0, |p| p.acked_round)
                }
            },
        )
    }

    /// True while the leader's lease holds (see the module docs).
    pub(crate) fn lease_valid(&self, now: Instant) -> bool {
        let transferring = self.lead.transfer.is_some() || self.lead.lease_revoked;
        if self.config.read_mode != ReadMode::Lease || !self.config.check_quorum || transferring {
            return false;
        }
        let confirmed = self.confirmed_round();
        let Some((first, _)) = self.lead.rounds.front() else { return false };
        if confirmed < *first {
            return false;
        }
        let (_, sent) = self.lead.rounds[(confirmed - first) as usize];
        now < sent + self.config.lease_duration()
    }

    /// Answers every queued read whose round a quorum acknowledged.
    pub(crate) fn process_reads(&mut self, out: &mut Out) {
        if !self.own_term_committed() || self.lead.reads.is_empty() {
            return;
        }
        let confirmed = self.confirmed_round();
        while self.lead.reads.front().is_some_and(|r| r.round <= confirmed) {
            let read = self.lead.reads.pop_front().expect("checked");
            let index = read.commit_at.max(self.lead.term_start);
            assert!(index <= self.commit, "a read index is always committed");
            out.read_ready(read.id, index);
        }
    }
}
