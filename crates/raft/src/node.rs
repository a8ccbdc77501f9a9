//! The node's state, and the bookkeeping every role shares: durable writes,
//! role switches, timers and applying committed entries.

use crate::config::RaftConfig;
use crate::membership::is_voter;
use crate::progress::Progress;
use crate::read::PendingRead;
use crate::Out;
use bytes::Bytes;
use quorum_core::Configs;
use quorum_core::{Entry, Instant, Log, NodeId, Payload, ReadId, Rng, Snapshot, Stamp, WriteBatch, WriteQueue};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::Message;

/// What must survive a crash besides the log and snapshot (Figure 2, "persistent state").
#[derive(Clone, Debug, Hash, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HardState {
    pub term: u64,
    pub vote: Option<NodeId>,
    /// Started with an empty disk outside the configuration and not yet
    /// caught up to where the cluster was when a leader first spoke to it
    /// (`Raft::joining`): kept so that a restart keeps it out too.
    pub joining: bool,
}

/// The role a node plays, with PreVote's extra step.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum State {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A snapshot being received in chunks.
#[derive(Clone, Debug, Hash)]
pub(crate) struct IncomingSnapshot {
    pub index: u64,
    pub index_term: u64,
    pub meta: Bytes,
    pub data: Vec<u8>,
}

/// What only a leader keeps; reset at every election won.
#[derive(Clone, Debug, Hash, Default)]
pub(crate) struct LeaderState {
    pub progress: BTreeMap<NodeId, Progress>,
    /// Index of the no-op this leader appended when elected.
    pub term_start: u64,
    pub heartbeat_deadline: Instant,
    pub check_quorum_deadline: Instant,
    /// Heartbeat round counter; followers echo it back.
    pub round: u64,
    /// When each recent round was sent (for leases).
    pub rounds: VecDeque<(u64, Instant)>,
    /// A read is waiting for a fresh round.
    pub round_wanted: bool,
    pub reads: VecDeque<PendingRead>,
    /// Leadership transfer in progress: target and give-up time.
    pub transfer: Option<(NodeId, Instant)>,
    /// Command bytes appended in this term and not yet committed (flow control).
    pub uncommitted_bytes: u64,
    /// A TimeoutNow was sent: the target may win past every lease, so this
    /// leader serves no more lease reads.
    pub lease_revoked: bool,
    /// Removed from the configuration, this leader started handing over to
    /// a successor (`Raft::maybe_step_down_removed`).
    pub handing_over: bool,
}

/// A Raft node: a deterministic state machine driven through `quorum_core::Protocol`.
#[derive(Clone, Debug, Hash)]
pub struct Raft {
    pub(crate) id: NodeId,
    pub(crate) config: RaftConfig,
    pub(crate) rng: Rng,
    /// When this incarnation started (tells the invariants a restart happened).
    pub(crate) incarnation: Instant,
    // Durable state (Figure 2).
    pub(crate) term: u64,
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: Log,
    pub(crate) snapshot: Option<Snapshot>,
    // Volatile state.
    pub(crate) state: State,
    pub(crate) leader: Option<NodeId>,
    pub(crate) configs: Configs,
    pub(crate) commit: u64,
    /// The last index handed to the driver as `Effect::Commit` (or installed by snapshot).
    pub(crate) applied: u64,
    pub(crate) votes: BTreeSet<NodeId>,
    pub(crate) rejections: BTreeSet<NodeId>,
    pub(crate) election_deadline: Instant,
    pub(crate) heard_leader_at: Option<Instant>,
    /// The leader whose link broke, and its term, until the early campaign
    /// that this hint brought forward starts (`on_leader_link_down`).
    pub(crate) suspected: Option<(NodeId, u64)>,
    /// Messages dropped as malformed (validate.rs).
    pub(crate) malformed: u64,
    /// The highest commit index the leader of a term announced, and the term.
    pub(crate) heard_commit: Option<(u64, u64)>,
    pub(crate) incoming: Option<IncomingSnapshot>,
    pub(crate) failed_reads: Vec<ReadId>,
    // Writes.
    pub(crate) pending: WriteBatch,
    /// Writes in flight, each with the last log index it makes durable.
    pub(crate) writes: WriteQueue<u64>,
    /// This node's log is durable up to here (what a leader counts for itself).
    pub(crate) durable_index: u64,
    pub(crate) lead: LeaderState,
    /// `None` while this node joined with an empty disk and no leader has
    /// spoken to it; then the commit point that leader reported.
    pub(crate) join_floor: Option<u64>,
    /// What the last hard state written says of `joining`.
    pub(crate) joining_on_disk: bool,
}

impl Raft {
    pub(crate) fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, joining: self.joining() }
    }

    /// Queues the term and vote for the next write.
    pub(crate) fn persist_hard_state(&mut self) {
        self.joining_on_disk = self.joining();
        let bytes = postcard::to_allocvec(&self.hard_state()).expect("hard state encodes");
        self.pending.hard_state = Some(Bytes::from(bytes));
    }

    /// Appends one entry to the log and to the next write.
    pub(crate) fn append_entry(&mut self, entry: Entry) {
        if let Payload::Membership(m) = &entry.payload {
            self.configs.push(entry.index, m.clone());
        }
        self.log.append(entry.clone());
        self.pending.entries.push(entry);
    }

    /// A leader appends a new entry of its term.
    pub(crate) fn append_new(&mut self, payload: Payload) -> u64 {
        assert_eq!(self.state, State::Leader, "only a leader creates entries");
        let index = self.log.last_index() + 1;
        self.append_entry(Entry { index, stamp: Stamp::new(self.term, 0), payload });
        index
    }

    /// Drops the log suffix from `index` (a follower's conflict, §5.3).
    pub(crate) fn truncate(&mut self, index: u64) {
        assert!(
            index > self.commit,
            "§5.3: committed entries are never truncated (index {index}, commit {})",
            self.commit
        );
        assert_ne!(self.state, State::Leader, "Figure 3: a leader never overwrites its log");
        self.log.truncate_from(index);
        self.configs.truncate_from(index);
        self.pending.entries.retain(|e| e.index < index);
        self.pending.truncate_from = Some(self.pending.truncate_from.map_or(index, |t| t.min(index)));
        self.cap_durable(index - 1);
    }

    /// Writes in flight and done no longer vouch for entries above `last`.
    pub(crate) fn cap_durable(&mut self, last: u64) {
        for upto in self.writes.waiting_mut() {
            *upto = (*upto).min(last);
        }
        self.durable_index = self.durable_index.min(last);
    }

    /// Issues the pending write, if any.
    pub(crate) fn flush(&mut self, out: &mut Out) {
        if self.pending.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.pending);
        batch.tag = self.writes.issue_with(self.log.last_index());
        out.persist(batch);
    }

    /// Sends a message that depends on this node's writes so far (votes, acks).
    pub(crate) fn send_durable(&mut self, to: NodeId, msg: Message, out: &mut Out) {
        self.flush(out);
        out.send_durable(to, msg);
    }

    /// Draws a new randomized election deadline (§5.2).
    pub(crate) fn reset_election_timer(&mut self, now: Instant) {
        let min = self.config.election_timeout_min.as_nanos();
        let max = self.config.election_timeout_max.as_nanos();
        self.election_deadline = now + quorum_core::Duration::from_nanos(self.rng.range(min, max));
    }

    /// Becomes a follower in `term` (Figure 2: "if RPC request or response contains term T > currentTerm:
    /// set currentTerm = T, convert to follower").
    pub(crate) fn become_follower(&mut self, now: Instant, term: u64, leader: Option<NodeId>) {
        assert!(term >= self.term, "the term never decreases ({} -> {term})", self.term);
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.persist_hard_state();
        }
        if self.state == State::Leader {
            let lead = std::mem::take(&mut self.lead);
            self.failed_reads.extend(lead.reads.iter().map(|r| r.id));
        }
        tracing::debug!(node = self.id.0, term, ?leader, "become follower");
        self.state = State::Follower;
        self.leader = leader;
        self.votes.clear();
        self.rejections.clear();
        self.reset_election_timer(now);
    }

    /// True if this node votes in its current configuration.
    pub(crate) fn is_voter(&self) -> bool {
        is_voter(self.configs.current(), self.id)
    }

    /// True if this node may start an election: it votes in its newest
    /// configuration, or that configuration (which removes it) is not known
    /// committed and it voted in the one before. Without the second case a
    /// cluster can deadlock: the only node holding an uncommitted removal of
    /// itself refuses to vote for the others (its log is longer) and would
    /// never campaign. Winning is safe either way: a candidate counts votes
    /// of its newest configuration, and then manages it without being part
    /// of it until the change commits (thesis §4.2.2).
    pub(crate) fn can_campaign(&self) -> bool {
        !self.joining() && self.is_voter_or_leaving()
    }

    /// True while this node joined with an empty disk and has not caught up
    /// to the commit point the first leader it heard reported. Replaying
    /// the log from the start, it passes configurations that list an
    /// earlier incarnation of its id, whose votes and entries it does not
    /// hold: it does not campaign until it is past them (seed 3192
    /// of `quorum sim -p raft --churn --nodes 2`: a rejoined node whose log
    /// ended at a configuration where its old incarnation was the sole
    /// voter elected itself alone and overwrote committed entries). It
    /// still grants votes: a configuration made after it joined may count
    /// it, and a disk is to be replaced only where no node counts its owner
    /// as a voter, so no configuration that counts it predates it.
    pub(crate) fn joining(&self) -> bool {
        self.join_floor.is_none_or(|floor| self.commit < floor)
    }

    fn is_voter_or_leaving(&self) -> bool {
        self.is_voter() || self.configs.pending_previous(self.commit).is_some_and(|m| is_voter(m, self.id))
    }

    /// Hands committed entries to the driver, in order, once each (Figure 2: "if commitIndex > lastApplied").
    pub(crate) fn apply_committed(&mut self, out: &mut Out) {
        assert!(self.commit <= self.log.last_index(), "commit index beyond the log");
        while self.applied < self.commit {
            let entry = self.log.get(self.applied + 1).expect("committed entries above the snapshot are held").clone();
            self.applied += 1;
            out.commit(entry);
        }
    }

    /// Raises the commit index (never lowers it).
    pub(crate) fn set_commit(&mut self, index: u64) {
        if index <= self.commit {
            return;
        }
        assert!(index <= self.log.last_index(), "cannot commit entries not in the log");
        if self.state == State::Leader {
            let bytes: u64 = self
                .log
                .slice(self.commit.max(self.lead.term_start) + 1, index, usize::MAX)
                .iter()
                .map(entry_bytes)
                .sum();
            self.lead.uncommitted_bytes = self.lead.uncommitted_bytes.saturating_sub(bytes);
        }
        tracing::trace!(node = self.id.0, term = self.term, commit = index, "commit");
        self.commit = index;
    }

    /// Runs at the end of every input: commit, apply, answer reads, write.
    pub(crate) fn finish(&mut self, now: Instant, out: &mut Out) {
        if self.state == State::Leader {
            self.maybe_commit();
            if self.lead.round_wanted {
                self.broadcast_round(now, out);
            }
            self.process_reads(out);
        }
        self.apply_committed(out);
        self.maybe_step_down_removed(now, out);
        if self.joining_on_disk && !self.joining() {
            // Caught up, by entries or by a snapshot: written down, so that
            // a restart does not wait for a leader again (there may be none:
            // seed 31854 of `--churn --nodes 2 --profile counters`, a sole
            // voter that had caught up by a snapshot).
            self.persist_hard_state();
        }
        let hint = self.leader;
        for id in self.failed_reads.drain(..) {
            out.read_failed(id, quorum_core::NotLeader { leader_hint: hint });
        }
        self.flush(out);
        debug_assert!(self.applied <= self.commit);
        debug_assert!(self.log.offset() <= self.applied);
        debug_assert!(self.durable_index <= self.log.last_index());
    }
}

/// Bytes an entry adds to messages and to the uncommitted budget.
pub(crate) fn entry_bytes(e: &Entry) -> u64 {
    match &e.payload {
        Payload::Command(c) => c.data.len() as u64 + 24,
        _ => 24,
    }
}
