//! Zab's messages, named as in the DSN 2011 paper and ZooKeeper's code.
//!
//! Every message after election carries the epoch it belongs to, so a node
//! drops what a stale leader or follower sends. Links are FIFO: within one
//! connection, messages arrive in the order they were sent or not at all
//! (and then the driver reports `on_link_down`).

use bytes::Bytes;
use quorum_core::{Entry, Log, NodeId, ReadId, Snapshot, Stamp};
use serde::{Deserialize, Serialize};

/// A transaction id: `(epoch, counter)`, compared lexicographically. The
/// counter restarts at 1 with every new epoch's first proposal.
pub type Zxid = Stamp;

/// What a node is doing, as announced in its election notifications.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerState {
    /// Taking part in leader election.
    Looking,
    /// Following the leader named in its vote.
    Following,
    /// Leading.
    Leading,
    /// Leading an established epoch (phase 3), said by the leader itself: a
    /// LOOKING node that hears it follows at once. Its own configuration may
    /// be too old to count the quorum this leader has (it may not even know
    /// the leader's followers), and the leader takes it only if it is a member.
    Established,
}

/// A vote in Fast Leader Election: a candidate and how up to date it is.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The proposed leader.
    pub leader: NodeId,
    /// The candidate's last zxid.
    pub zxid: Zxid,
    /// The candidate's current epoch (ZooKeeper's `peerEpoch`).
    pub epoch: u64,
}

impl Vote {
    /// FLE's total order on votes: higher epoch, then higher zxid, then higher id.
    pub fn beats(&self, other: &Vote) -> bool {
        (self.epoch, self.zxid, self.leader) > (other.epoch, other.zxid, other.leader)
    }
}

/// An election notification: the sender's vote, round and state.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The sender's logical clock (election round).
    pub round: u64,
    /// The sender's state.
    pub state: PeerState,
    /// The sender's current vote (its leader, if it is not LOOKING).
    pub vote: Vote,
}

/// The shape of a follower's history, sent in ACKEPOCH so that the leader can
/// compute exactly where it diverges from its own: the snapshot point, then
/// the last `(index, zxid)` of each run of entries sharing one epoch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistorySummary {
    /// The index of the snapshot point (0 without a snapshot).
    pub base_index: u64,
    /// The zxid at the snapshot point.
    pub base_zxid: Zxid,
    /// The last `(index, zxid)` of each epoch's run, in log order.
    pub segments: Vec<(u64, Zxid)>,
}

impl HistorySummary {
    /// Summarises a history.
    pub fn of(log: &Log) -> Self {
        let mut segments: Vec<(u64, Zxid)> = Vec::new();
        for e in log.iter() {
            match segments.last_mut() {
                Some(last) if last.1.major == e.stamp.major => *last = (e.index, e.stamp),
                _ => segments.push((e.index, e.stamp)),
            }
        }
        HistorySummary { base_index: log.offset(), base_zxid: log.offset_stamp(), segments }
    }

    /// Checks the shape a summary of a real history has: runs in increasing
    /// index and zxid order, after the snapshot point, one epoch each.
    pub fn check(&self) -> Result<(), String> {
        let (mut index, mut zxid) = (self.base_index, self.base_zxid);
        for &(end, last) in &self.segments {
            if end <= index || last <= zxid || (last.major == zxid.major && index > self.base_index) {
                return Err(format!("run ending at {end} {last:?} does not follow {index} {zxid:?}"));
            }
            (index, zxid) = (end, last);
        }
        Ok(())
    }

    /// The last index of the summarised history.
    pub fn last_index(&self) -> u64 {
        self.segments.last().map_or(self.base_index, |s| s.0)
    }

    /// The last zxid of the summarised history.
    pub fn last_zxid(&self) -> Zxid {
        self.segments.last().map_or(self.base_zxid, |s| s.1)
    }
}

/// Every message Zab nodes exchange.
#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// Phase 0: a Fast Leader Election vote.
    Notification(Notification),
    /// Phase 1, follower → leader (CEPOCH): "I follow you; my accepted epoch is...".
    /// `session` tells one attempt from the next over the same link.
    FollowerInfo {
        /// The follower's attempt number.
        session: u64,
        /// The follower's accepted epoch.
        accepted_epoch: u64,
        /// The leader it promised that epoch to (0: none yet).
        accepted_leader: u64,
    },
    /// Phase 1, leader → follower: the epoch the leader proposes.
    NewEpoch {
        /// Echoes the follower's session.
        session: u64,
        /// The new epoch.
        epoch: u64,
    },
    /// Phase 1, follower → leader, sent once the accepted epoch is durable.
    AckEpoch {
        /// The follower's session (see [`Message::FollowerInfo`]): an
        /// acknowledgment that waited for its fsync may leave after the
        /// follower began a new session, and must not count for that one.
        session: u64,
        /// The epoch acknowledged.
        epoch: u64,
        /// The follower's current epoch.
        current_epoch: u64,
        /// The follower's history.
        summary: HistorySummary,
    },
    /// Phase 2: the follower's history is a prefix of the leader's; append these.
    Diff {
        /// The new epoch.
        epoch: u64,
        /// The index the entries follow (the follower's last index).
        prev_index: u64,
        /// The zxid at `prev_index`.
        prev_zxid: Zxid,
        /// The entries to append.
        entries: Vec<Entry>,
    },
    /// Phase 2: drop everything after `index`, then append these.
    Trunc {
        /// The new epoch.
        epoch: u64,
        /// The last index to keep.
        index: u64,
        /// The zxid at `index`, which both sides hold.
        zxid: Zxid,
        /// The entries to append after `index`.
        entries: Vec<Entry>,
    },
    /// Phase 2: replace everything with this snapshot, then append these.
    Snap {
        /// The new epoch.
        epoch: u64,
        /// The leader's snapshot; `data` holds its first `data.len()` bytes,
        /// the rest follows in SNAPCHUNK messages.
        snapshot: Snapshot,
        /// The full size of the snapshot's data.
        size: u64,
        /// The entries after the snapshot (only once its data is complete).
        entries: Vec<Entry>,
    },
    /// Phase 2: the next bytes of a SNAP's snapshot data.
    SnapChunk {
        /// The new epoch.
        epoch: u64,
        /// The bytes, in order.
        data: Bytes,
    },
    /// Phase 2: more entries of a DIFF, TRUNC or SNAP, continuing the last ones.
    SyncEntries {
        /// The new epoch.
        epoch: u64,
        /// Consecutive entries.
        entries: Vec<Entry>,
    },
    /// Phase 2, follower → leader: flow control of the sync stream.
    SyncAck {
        /// The follower's session.
        session: u64,
        /// The new epoch.
        epoch: u64,
        /// How many sync messages (DIFF/TRUNC/SNAP, SNAPCHUNK, SYNCENTRIES)
        /// arrived in this session so far.
        received: u64,
    },
    /// Phase 2: the follower now holds the epoch's initial history.
    NewLeader {
        /// The new epoch.
        epoch: u64,
        /// The last index of the history the follower must now hold.
        last_index: u64,
        /// The last zxid of that history.
        last_zxid: Zxid,
    },
    /// Phase 2, follower → leader, sent once history and current epoch are durable.
    AckNewLeader {
        /// The follower's session.
        session: u64,
        /// The epoch.
        epoch: u64,
        /// The follower's last index, now durable.
        index: u64,
    },
    /// Phase 2 → 3: the epoch is established; everything up to `commit` is committed.
    UpToDate {
        /// The epoch.
        epoch: u64,
        /// The leader's commit index.
        commit: u64,
    },
    /// Phase 3: proposals, in zxid order.
    Proposal {
        /// The epoch.
        epoch: u64,
        /// Consecutive entries.
        entries: Vec<Entry>,
    },
    /// Phase 3: every entry up to `index` is durable at the sender.
    Ack {
        /// The epoch.
        epoch: u64,
        /// The follower's last durable index.
        index: u64,
    },
    /// Phase 3: every entry up to `index` is committed.
    Commit {
        /// The epoch.
        epoch: u64,
        /// The commit index.
        index: u64,
    },
    /// Leader liveness and quorum confirmation for reads.
    Ping {
        /// The epoch.
        epoch: u64,
        /// The leader's ping round.
        round: u64,
        /// The leader's commit index.
        commit: u64,
    },
    /// A follower answers a ping.
    PingAck {
        /// The epoch.
        epoch: u64,
        /// The round answered.
        round: u64,
    },
    /// Leader → follower: "you are not (or no longer) my learner, start over".
    /// Zab assumes FIFO links; the leader sends this instead of resetting the
    /// link when a follower's message shows its session is gone (a late
    /// link-down removed it) or broke the protocol. The follower goes back to
    /// LOOKING and rejoins with a new session.
    Reset {
        /// The leader's epoch.
        epoch: u64,
    },
    /// Leader → followers: "I step down for `to`": look for a leader now,
    /// voting for `to` (leadership transfer; the leader sends it once `to`
    /// has acknowledged its whole history).
    Transfer {
        /// The leader's epoch.
        epoch: u64,
        /// The voter to elect.
        to: NodeId,
    },
    /// A follower asks the leader for a linearizable read point (ZooKeeper's `sync`).
    SyncRequest {
        /// The epoch.
        epoch: u64,
        /// The follower's read id.
        read: ReadId,
    },
    /// The leader's answer: the read may be served once `index` is applied.
    SyncReply {
        /// The epoch.
        epoch: u64,
        /// The follower's read id.
        read: ReadId,
        /// The read point.
        index: u64,
    },
}

impl Message {
    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Notification(_) => "NOTIFICATION",
            Message::FollowerInfo { .. } => "FOLLOWERINFO",
            Message::NewEpoch { .. } => "NEWEPOCH",
            Message::AckEpoch { .. } => "ACKEPOCH",
            Message::Diff { .. } => "DIFF",
            Message::Trunc { .. } => "TRUNC",
            Message::Snap { .. } => "SNAP",
            Message::SnapChunk { .. } => "SNAPCHUNK",
            Message::SyncEntries { .. } => "SYNCENTRIES",
            Message::SyncAck { .. } => "SYNCACK",
            Message::NewLeader { .. } => "NEWLEADER",
            Message::AckNewLeader { .. } => "ACK(NEWLEADER)",
            Message::UpToDate { .. } => "UPTODATE",
            Message::Proposal { .. } => "PROPOSAL",
            Message::Ack { .. } => "ACK",
            Message::Commit { .. } => "COMMIT",
            Message::Ping { .. } => "PING",
            Message::PingAck { .. } => "PING(ACK)",
            Message::Reset { .. } => "RESET",
            Message::Transfer { .. } => "TRANSFER",
            Message::SyncRequest { .. } => "SYNC",
            Message::SyncReply { .. } => "SYNC(REPLY)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(stamps: &[(u64, u64)]) -> Log {
        let mut log = Log::default();
        for (i, (e, c)) in stamps.iter().enumerate() {
            log.append(Entry::noop(i as u64 + 1, Stamp::new(*e, *c)));
        }
        log
    }

    #[test]
    fn fle_total_order_is_epoch_then_zxid_then_id() {
        let v = |id, e, c, ep| Vote { leader: NodeId(id), zxid: Stamp::new(e, c), epoch: ep };
        assert!(v(1, 1, 1, 2).beats(&v(3, 1, 9, 1)));
        assert!(v(1, 1, 9, 1).beats(&v(3, 1, 8, 1)));
        assert!(v(3, 1, 9, 1).beats(&v(1, 1, 9, 1)));
        assert!(!v(1, 1, 9, 1).beats(&v(1, 1, 9, 1)));
    }

    #[test]
    fn summary_records_one_run_per_epoch() {
        let log = log_of(&[(1, 1), (1, 2), (2, 1), (4, 1), (4, 2), (4, 3)]);
        let s = HistorySummary::of(&log);
        assert_eq!(s.segments, vec![(2, Stamp::new(1, 2)), (3, Stamp::new(2, 1)), (6, Stamp::new(4, 3))]);
        assert_eq!(s.last_index(), 6);
        assert_eq!(s.last_zxid(), Stamp::new(4, 3));
        let empty = HistorySummary::of(&Log::default());
        assert_eq!((empty.last_index(), empty.last_zxid()), (0, Stamp::ZERO));
    }
}
