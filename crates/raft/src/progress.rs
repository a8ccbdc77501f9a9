//! What the leader knows about each follower: how far its log matches, what
//! is in flight to it, and how to send to it next (etcd's `tracker`).

use quorum_core::{Instant, NodeId};
use std::collections::VecDeque;

/// How the leader is currently replicating to one follower.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ReplicationMode {
    /// Looking for the point where the logs agree: one append at a time.
    Probe,
    /// Logs agree: appends are pipelined, up to `max_inflight` at once.
    Replicate,
    /// The entries the follower needs were compacted: a snapshot is on its way.
    Snapshot {
        /// The snapshot's index.
        index: u64,
        /// The next byte offset to send.
        offset: u64,
    },
}

/// A public view of one follower's progress, from [`crate::Raft::progress`].
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct PeerProgress {
    /// The follower.
    pub id: NodeId,
    /// Its log is known to match the leader's up to here.
    pub match_index: u64,
    /// The next index the leader will send.
    pub next_index: u64,
    /// How it is being replicated to.
    pub mode: ReplicationMode,
    /// True if it votes; false for a learner.
    pub voter: bool,
}

/// The leader's record of one follower.
#[derive(Clone, Debug, Hash)]
pub(crate) struct Progress {
    pub match_index: u64,
    pub next_index: u64,
    pub mode: ReplicationMode,
    /// Last index of each append in flight, oldest first (Replicate mode).
    pub inflight: VecDeque<u64>,
    /// In Probe mode: an append was sent and no answer came yet.
    pub probe_sent: bool,
    /// Heard from since the last CheckQuorum.
    pub recent_active: bool,
    /// The highest heartbeat round it acknowledged.
    pub acked_round: u64,
    /// Answers to rounds before this one count for nothing (see
    /// [`Progress::count_from_round`]).
    pub min_round: u64,
    /// When `match_index` last moved or the mode last changed (stall detection).
    pub last_progress: Instant,
}

impl Progress {
    /// A follower the leader knows nothing about yet: probe from the leader's end.
    pub fn new(next_index: u64, now: Instant) -> Self {
        Progress {
            match_index: 0,
            next_index,
            mode: ReplicationMode::Probe,
            inflight: VecDeque::new(),
            probe_sent: false,
            recent_active: true,
            acked_round: 0,
            min_round: 0,
            last_progress: now,
        }
    }

    /// The follower was just made a voter: from now on its match index
    /// counts towards commits. What it acknowledged as a learner may come
    /// from a process whose disk has since been replaced (a learner may be
    /// wiped and join again, and the leader hears of it only from its next
    /// answer, while older answers may still be on their way). So it starts
    /// again from nothing: only answers to rounds from `round` on, which
    /// only the process that runs now can give, count; the probe at the old
    /// match index finds where its log really ends.
    pub fn count_from_round(&mut self, round: u64, now: Instant) {
        let next = self.match_index + 1;
        self.match_index = 0;
        self.acked_round = 0;
        self.min_round = round;
        self.become_probe(next, now);
    }

    /// Back to one-at-a-time probing from `next_index`.
    pub fn become_probe(&mut self, next_index: u64, now: Instant) {
        assert!(next_index > self.match_index, "probe must start above the match index");
        self.mode = ReplicationMode::Probe;
        self.next_index = next_index;
        self.inflight.clear();
        self.probe_sent = false;
        self.last_progress = now;
    }

    /// Logs agree: start pipelining after the match index.
    pub fn become_replicate(&mut self, now: Instant) {
        self.mode = ReplicationMode::Replicate;
        self.next_index = self.match_index + 1;
        self.inflight.clear();
        self.probe_sent = false;
        self.last_progress = now;
    }

    /// A successful append up to `index`. Returns true if the match index moved.
    pub fn on_success(&mut self, index: u64, now: Instant) -> bool {
        while self.inflight.front().is_some_and(|last| *last <= index) {
            self.inflight.pop_front();
        }
        self.probe_sent = false;
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index + 1);
        self.last_progress = now;
        true
    }

    /// True if a rejection of an append at `prev_index` is old news.
    pub fn is_stale_rejection(&self, prev_index: u64) -> bool {
        match self.mode {
            ReplicationMode::Replicate => prev_index < self.match_index,
            ReplicationMode::Probe => prev_index + 1 != self.next_index,
            ReplicationMode::Snapshot { .. } => true,
        }
    }

    /// True if another append may be sent now.
    pub fn can_send(&self, max_inflight: usize) -> bool {
        match self.mode {
            ReplicationMode::Probe => !self.probe_sent,
            ReplicationMode::Replicate => self.inflight.len() < max_inflight,
            ReplicationMode::Snapshot { .. } => false,
        }
    }

    /// Records an append that carried entries up to `last`.
    pub fn sent(&mut self, last: u64) {
        match self.mode {
            ReplicationMode::Probe => self.probe_sent = true,
            ReplicationMode::Replicate => {
                self.inflight.push_back(last);
                self.next_index = last + 1;
            }
            ReplicationMode::Snapshot { .. } => unreachable!("appends are not sent while a snapshot is in flight"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_stops_at_max_inflight_and_resumes_on_acks() {
        let now = Instant::ZERO;
        let mut p = Progress::new(1, now);
        p.on_success(0, now);
        p.become_replicate(now);
        for last in [5, 10, 15] {
            assert!(p.can_send(3));
            p.sent(last);
        }
        assert!(!p.can_send(3));
        assert_eq!(p.next_index, 16);
        assert!(p.on_success(10, now));
        assert_eq!(p.inflight.len(), 1);
        assert!(p.can_send(3));
    }

    #[test]
    fn stale_rejections_are_recognised() {
        let now = Instant::ZERO;
        let mut p = Progress::new(11, now);
        assert!(!p.is_stale_rejection(10));
        assert!(p.is_stale_rejection(7));
        p.on_success(8, now);
        p.become_replicate(now);
        assert!(p.is_stale_rejection(7));
        assert!(!p.is_stale_rejection(9));
    }
}
