//! The node's roles and the durable hard state.

use crate::message::{HistorySummary, Vote, Zxid};
use bytes::Bytes;
use quorum_core::{Command, Entry, Instant, NodeId, ReadId, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What Zab keeps in `WriteBatch::hard_state`.
#[derive(Copy, Clone, Debug, Hash, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HardState {
    /// The last epoch this node promised to (the paper's `acceptedEpoch`)...
    pub accepted_epoch: u64,
    /// ...and the leader it promised it to: one promise per epoch, so two
    /// leaders can never both gather a quorum of ACKEPOCH for one epoch.
    pub accepted_leader: u64,
    /// The epoch of the last NEWLEADER accepted (the paper's `currentEpoch`).
    pub current_epoch: u64,
}

impl HardState {
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("encoding the hard state cannot fail"))
    }

    #[cfg(test)]
    pub fn decode(data: &[u8]) -> Result<Self, quorum_core::InitError> {
        postcard::from_bytes(data).map_err(|e| quorum_core::InitError::corrupt("hard state", e))
    }
}

/// Fast Leader Election's state; it survives role changes (the round and the
/// vote are announced to LOOKING peers while following or leading).
#[derive(Clone, Debug, Hash)]
pub(crate) struct Election {
    /// The logical clock.
    pub round: u64,
    /// This node's current vote (its leader once it settles).
    pub vote: Vote,
    /// Votes received in this round, by sender.
    pub received: BTreeMap<NodeId, (u64, Vote)>,
    /// Votes of peers that are already following or leading, by sender.
    pub out_of_election: BTreeMap<NodeId, (u64, crate::message::PeerState, Vote)>,
    /// When to settle, once a quorum agrees with this node's vote.
    pub finalize_at: Option<Instant>,
    /// When to re-send this node's vote.
    pub resend_at: Instant,
    /// The current re-send interval (doubles up to a cap).
    pub resend_ticks: u64,
}

/// A follower's progress through the phases with one leader.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum FollowerPhase {
    /// FOLLOWERINFO sent; waiting for NEWEPOCH.
    Discovery,
    /// ACKEPOCH sent; collecting DIFF/TRUNC/SNAP until NEWLEADER.
    Sync,
    /// NEWLEADER accepted: taking proposals and commits.
    Broadcast,
}

/// How the leader told a follower to reach its history, held until NEWLEADER.
#[derive(Clone, Debug, Hash)]
pub(crate) enum SyncKind {
    Diff {
        prev_index: u64,
        prev_zxid: Zxid,
    },
    Trunc {
        index: u64,
        zxid: Zxid,
    },
    /// The snapshot's point and metadata; its data arrives in `Pending::snap_data`.
    Snap(Snapshot),
}

/// Synchronisation data received so far in this session, applied at NEWLEADER.
#[derive(Clone, Debug, Hash)]
pub(crate) struct Pending {
    pub kind: SyncKind,
    /// The entries to append after the sync point, in order.
    pub entries: Vec<Entry>,
    /// SNAP: the snapshot data received so far, and its announced size.
    pub snap_data: Vec<u8>,
    pub snap_size: u64,
}

impl Pending {
    /// The point entries must continue from: the last entry, or the sync point.
    pub fn tail(&self) -> (u64, Zxid) {
        if let Some(e) = self.entries.last() {
            return (e.index, e.stamp);
        }
        match &self.kind {
            SyncKind::Diff { prev_index, prev_zxid } => (*prev_index, *prev_zxid),
            SyncKind::Trunc { index, zxid } => (*index, *zxid),
            SyncKind::Snap(s) => (s.index, s.stamp),
        }
    }

    /// True once a SNAP's data arrived in full (always true for DIFF and TRUNC).
    pub fn data_complete(&self) -> bool {
        self.snap_data.len() as u64 == self.snap_size
    }
}

/// The leader's side of one follower's synchronisation stream: what to send
/// next. It ends, with NEWLEADER, once the follower has everything the leader
/// holds; proposals made meanwhile travel in the stream, as entries.
#[derive(Clone, Debug, Hash)]
pub(crate) struct SyncStream {
    /// The follower's history as reported in ACKEPOCH, to start over from.
    pub summary: HistorySummary,
    /// SNAP: the snapshot being sent and how many of its data bytes left.
    pub snapshot: Option<(Snapshot, usize)>,
    /// The next entry index to send.
    pub next: u64,
}

#[derive(Clone, Debug, Hash)]
pub(crate) struct Following {
    pub leader: NodeId,
    pub session: u64,
    pub phase: FollowerPhase,
    /// The epoch accepted from this leader (set by NEWEPOCH).
    pub epoch: u64,
    /// Discovery and sync must be over by then (`initLimit`).
    pub deadline: Instant,
    /// The last time anything arrived from the leader.
    pub last_heard: Instant,
    /// Synchronization data received, applied atomically at NEWLEADER.
    pub pending: Option<Pending>,
    /// How many sync stream messages arrived in this session (acknowledged
    /// cumulatively, for the leader's flow control).
    pub sync_received: u64,
    /// UPTODATE received.
    pub up_to_date: bool,
    /// Reads forwarded to the leader as SYNC.
    pub reads: BTreeSet<ReadId>,
}

/// Where the leader is with one learner (ZooKeeper's `LearnerHandler`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum Stage {
    /// FOLLOWERINFO received; NEWEPOCH not sent yet (epoch not chosen).
    Info,
    /// NEWEPOCH sent.
    EpochSent,
    /// ACKEPOCH received during discovery; waiting for the quorum to sync.
    AckedEpoch(HistorySummary),
    /// DIFF, TRUNC or SNAP is being streamed in chunks; NEWLEADER not sent yet.
    Streaming,
    /// Sync data and NEWLEADER sent: proposals and commits now flow to it.
    Synced,
    /// ACK of NEWLEADER received: its acks count.
    Active,
}

#[derive(Clone, Debug, Hash)]
pub(crate) struct Learner {
    pub session: u64,
    pub accepted_epoch: u64,
    pub stage: Stage,
    /// The highest index it acknowledged as durable in this epoch.
    pub acked: u64,
    /// Its acknowledgments count toward a quorum only from this index on:
    /// the configuration that promoted it. The process that acknowledged
    /// the entries before may be gone with its disk (`quorum sim --churn`
    /// replaces learners' disks), and the leader may not have heard from
    /// the new one yet; only a live process can acknowledge an entry
    /// proposed after the promotion.
    pub counts_from: u64,
    pub last_heard: Instant,
    /// The highest ping round it answered.
    pub ping_acked: u64,
    /// The sync stream, while `Streaming`.
    pub stream: Option<Box<SyncStream>>,
    /// Sync stream messages sent to it, and how many it acknowledged.
    pub sync_sent: u64,
    pub sync_acked: u64,
    /// The last index announced in its NEWLEADER: its ACK must name it.
    pub newleader_index: u64,
    /// If its ACKEPOCH counted toward the quorum that establishes the epoch
    /// (not a late joiner's): its (currentEpoch, last zxid) as reported, and
    /// the leader's own then, before establishing the epoch moved them on.
    /// ZooKeeper's `waitForEpochAck` rule, which the invariant `zab: leader
    /// not behind its quorum` checks from this record: the first is never
    /// above the second.
    pub epoch_ack: Option<[(u64, crate::Zxid); 2]>,
}

impl Learner {
    pub fn new(session: u64, accepted_epoch: u64, now: Instant) -> Self {
        Learner {
            session,
            accepted_epoch,
            stage: Stage::Info,
            acked: 0,
            counts_from: 0,
            last_heard: now,
            ping_acked: 0,
            stream: None,
            sync_sent: 0,
            sync_acked: 0,
            newleader_index: 0,
            epoch_ack: None,
        }
    }
}

impl Learner {
    /// True once NEWLEADER was sent: the learner receives the proposal stream.
    pub fn in_stream(&self) -> bool {
        matches!(self.stage, Stage::Synced | Stage::Active)
    }
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum LeaderPhase {
    Discovery,
    Sync,
    Broadcast,
}

/// Who waits for a `sync` read confirmed by a quorum. (Not to be confused
/// with a *local read*, which the protocol does not confirm at all.)
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum ReadOrigin {
    /// A client of the leader itself.
    Here(ReadId),
    /// A follower that forwarded its client's read as SYNC.
    Forwarded(NodeId, ReadId),
}

#[derive(Copy, Clone, Debug, Hash)]
pub(crate) struct PendingRead {
    pub origin: ReadOrigin,
    pub index: u64,
    pub round: u64,
}

#[derive(Clone, Debug, Hash)]
pub(crate) struct Leading {
    /// The epoch proposed in NEWEPOCH, once chosen.
    pub epoch: Option<u64>,
    pub phase: LeaderPhase,
    pub learners: BTreeMap<NodeId, Learner>,
    /// Discovery and sync must be over by then (`initLimit`).
    pub deadline: Instant,
    /// The last index of the epoch's initial history.
    pub established_index: u64,
    /// The counter of the last zxid proposed in this epoch.
    pub counter: u64,
    /// The PING rounds that keep followers and confirm `sync` reads.
    pub ping: Pings,
    pub reads: Vec<PendingRead>,
    /// Proposals waiting for a batch or for room in the pipeline.
    pub queue: VecDeque<Command>,
    pub batch_deadline: Option<Instant>,
    /// A leadership transfer in progress: the voter to hand over to, and
    /// when to give up. No proposals meanwhile.
    pub transfer: Option<(NodeId, Instant)>,
}

/// A leader's PING rounds: each round is numbered, and a follower's answer
/// names the round it answers (a `sync` read waits for a quorum of answers to
/// a round sent after the read arrived).
#[derive(Clone, Debug, Hash)]
pub(crate) struct Pings {
    /// When the next periodic round is due.
    pub next: Instant,
    /// The last round sent (0: none yet).
    pub round: u64,
    /// When that round was sent.
    pub started: Instant,
}

impl Leading {
    /// The epoch, once chosen.
    pub fn epoch(&self) -> u64 {
        self.epoch.expect("the leader chose its epoch before this phase")
    }
}

/// The node's role.
#[derive(Clone, Debug, Hash)]
pub(crate) enum State {
    Looking,
    Following(Box<Following>),
    Leading(Box<Leading>),
}
