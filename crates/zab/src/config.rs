//! Settings, in ZooKeeper's vocabulary: a tick, and limits counted in ticks.

use quorum_core::Duration;

/// Zab's settings. The defaults are ZooKeeper's proportions (`initLimit = 10`,
/// `syncLimit = 5` ticks) on a tick short enough for a simulated LAN.
#[derive(Clone, Debug, Hash)]
#[non_exhaustive]
pub struct ZabConfig {
    /// The basic time unit: the leader pings every tick, and a LOOKING node
    /// re-sends its vote after a tick (doubling up to `max_notification_ticks`).
    pub tick: Duration,
    /// Discovery and synchronization must finish within this many ticks after
    /// election, on both sides, or the node goes back to LOOKING (`initLimit`).
    pub init_limit_ticks: u64,
    /// In broadcast, a follower that hears nothing from its leader for this many
    /// ticks, or a leader that hears from less than a quorum, goes back to
    /// LOOKING (`syncLimit`).
    pub sync_limit_ticks: u64,
    /// How long a LOOKING node waits, once a quorum agrees with its vote, for a
    /// better vote before it settles (ZooKeeper's `finalizeWait`).
    pub finalize_wait: Duration,
    /// The longest interval between re-sent votes, in ticks.
    pub max_notification_ticks: u64,
    /// At most this many entries in one PROPOSAL message (batching).
    pub max_batch_entries: usize,
    /// At most this many bytes of commands in one PROPOSAL past its first
    /// entry, so that a batch of large commands still fits a peer frame (the
    /// runtime's limit is 16 MiB).
    pub max_batch_bytes: usize,
    /// How long a leader may hold a proposal to batch it with others (zero:
    /// every proposal leaves at once).
    pub batch_delay: Duration,
    /// At most this many proposed but uncommitted entries in the pipeline;
    /// further proposals wait in the leader's queue.
    pub max_inflight_entries: u64,
    /// At most this many proposals wait in the leader's queue behind the
    /// pipeline; beyond it `propose` answers `ProposeError::Busy`.
    pub max_queued_proposals: usize,
    /// Synchronisation (DIFF, TRUNC, SNAP) is streamed in chunks of about this
    /// many bytes of entries or snapshot data (one entry larger than this
    /// travels alone). Keep it well under the transport's frame limit.
    pub sync_chunk_bytes: usize,
    /// At most this many sync chunks are sent and not yet acknowledged.
    pub sync_window_chunks: u64,
    /// A deliberate bug, to show that the simulator's checks catch it. Only
    /// with the `planted-bugs` feature, never in a shipping build.
    #[cfg(feature = "planted-bugs")]
    pub planted: Option<PlantedBug>,
}

/// Deliberate protocol bugs, each one a rule of the paper broken on purpose.
/// They take effect only in builds with the `planted-bugs` feature.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum PlantedBug {
    /// A follower ACKs a proposal before it is durable (breaks the durability
    /// rule: a crash can lose a "committed" transaction).
    AckBeforeDurable,
    /// The leader commits as soon as one follower acknowledges, without a quorum.
    CommitWithoutQuorum,
    /// Every boot numbers its follower sessions from 1 again (issue 12 item 5):
    /// a leader that still holds the dead incarnation's session drops the new
    /// FOLLOWERINFO as a duplicate.
    SessionsFromZero,
    /// A follower acknowledges NEWLEADER before the synchronised history and
    /// currentEpoch are durable.
    AckNewLeaderBeforeDurable,
    /// The leader skips ZooKeeper's "a follower of my quorum is ahead of me"
    /// check at ACKEPOCH, and may lose committed transactions.
    SkipFollowerAheadCheck,
    /// The leader queues every proposal behind the pipeline, without bound
    /// (issue 12 item 7).
    UnboundedProposalQueue,
    /// The whole sync goes in one message, whatever its size (issue 12 item 6).
    SyncInOneMessage,
    /// A follower appends a PROPOSAL's entries without checking that they
    /// continue its history (issue 12 item 8).
    TrustProposals,
    /// The leader counts the acks of learners and removed nodes towards a
    /// commit, as if they were voters.
    NonVotersCount,
}

impl Default for ZabConfig {
    fn default() -> Self {
        ZabConfig {
            tick: Duration::from_millis(20),
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            finalize_wait: Duration::from_millis(10),
            max_notification_ticks: 4,
            max_batch_entries: 64,
            max_batch_bytes: 1 << 20,
            batch_delay: Duration::ZERO,
            max_inflight_entries: 1024,
            max_queued_proposals: 4096,
            sync_chunk_bytes: 1 << 20,
            sync_window_chunks: 4,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }
}

impl ZabConfig {
    /// `initLimit` as a duration.
    pub fn init_limit(&self) -> Duration {
        self.tick * self.init_limit_ticks
    }

    /// `syncLimit` as a duration.
    pub fn sync_limit(&self) -> Duration {
        self.tick * self.sync_limit_ticks
    }
}

quorum_core::protocol_config!(ZabConfig, PlantedBug);

impl ZabConfig {
    /// Says which settings cannot work, by their `--set` names.
    pub fn check_settings(&self) -> Result<(), String> {
        quorum_core::settings::check_rules(&[
            (self.tick.as_nanos() > 0, "tick_ms must be positive"),
            (self.init_limit_ticks > 0, "init_limit_ticks must be positive"),
            (self.sync_limit_ticks > 0, "sync_limit_ticks must be positive"),
            (self.max_notification_ticks > 0, "max_notification_ticks must be positive"),
            (self.max_batch_entries > 0, "max_batch_entries must be positive"),
            (self.max_inflight_entries > 0, "max_inflight_entries must be positive"),
            (self.sync_chunk_bytes > 0, "sync_chunk_bytes must be positive"),
            (self.sync_window_chunks > 0, "sync_window_chunks must be positive"),
        ])
    }
}

quorum_core::tunables!(ZabConfig, check = ZabConfig::check_settings, {
    tick: ms "the basic time unit: the leader pings every tick",
    init_limit_ticks: value "ticks for discovery and synchronization after an election (initLimit)",
    sync_limit_ticks: value "ticks without a leader or a quorum before going back to LOOKING (syncLimit)",
    finalize_wait: ms "how long a LOOKING node waits for a better vote once a quorum agrees (finalizeWait)",
    max_notification_ticks: value "the longest interval between re-sent votes, in ticks",
    max_batch_entries: value "most entries in one PROPOSAL",
    max_batch_bytes: value "most command bytes in one PROPOSAL past its first entry",
    batch_delay: ms "how long a leader may hold a proposal to batch it (0: never)",
    max_inflight_entries: value "proposed but uncommitted entries in the pipeline",
    max_queued_proposals: value "proposals waiting behind the pipeline before refusing as busy",
    sync_chunk_bytes: value "bytes of entries or snapshot in one synchronisation chunk",
    sync_window_chunks: value "sync chunks sent and not yet acknowledged",
});
