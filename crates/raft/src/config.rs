//! Settings, with the defaults of the Raft paper.

use quorum_core::Duration;

/// How `Protocol::read` confirms that the leader may serve a linearizable read.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex (Raft thesis §6.4): the leader notes its commit index, then
    /// confirms with a heartbeat round that a quorum still follows it. Safe
    /// with any clocks; costs one round trip per batch of reads.
    ReadIndex,
    /// Lease reads (thesis §6.4.1): while a quorum acknowledged a heartbeat
    /// round sent less than `election_timeout_min * (1 - max_clock_drift)`
    /// ago, no other leader can exist, so the leader answers at once.
    ///
    /// **Clock assumption**: every node's clock runs at a rate within
    /// `max_clock_drift_ppm` of every other's (no bound on offset is needed,
    /// only on rate). Also needs `check_quorum`, because that is what makes
    /// followers refuse votes for `election_timeout_min` after hearing from
    /// the leader; without it lease reads fall back to ReadIndex.
    Lease,
}

/// Deliberate defects, to show that the tests and the simulator's checks
/// catch them. Only with the `planted-bugs` feature (never in a shipping
/// build): a config's `planted` field selects one.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(not(feature = "planted-bugs"), allow(dead_code))]
pub enum PlantedBug {
    /// Issue 12 item 4 as it was: a follower that suspects its leader (after
    /// a link-down hint) still acknowledges its appends, renewing the leader's
    /// read lease, but does not count them as hearing from it, so it may vote
    /// for another candidate while that lease runs.
    SuspectedAckWithoutLease,
    /// Issue 12 item 7 as it was: no bound on reads waiting for a heartbeat round.
    UnboundedReads,
    /// Issue 12 item 8 as it was: a follower trusts the snapshot metadata a
    /// leader sends and panics if it does not decode.
    TrustSnapshotMeta,
    /// Issue 13: a granted vote leaves before the vote is durable, so a voter
    /// that crashes before its write lands forgets it and can vote again in
    /// the same term.
    VoteBeforePersisted,
    /// Issue 12 item 6 as the real-process rejoin test found it: a leader
    /// never replicates below the match index it recorded, so a follower that
    /// comes back with a wiped disk is probed just above it forever.
    TrustMatchIndex,
}

/// Raft settings. `RaftConfig::default()` gives the paper's timings
/// (election 150–300 ms, heartbeat 50 ms) with PreVote and CheckQuorum on.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[non_exhaustive]
pub struct RaftConfig {
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// How often a leader sends heartbeats (and retries stalled replication).
    pub heartbeat_interval: Duration,
    /// Ask for pre-votes before raising the term (thesis §9.6), so that a node
    /// rejoining after a partition cannot depose a healthy leader.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum for an election timeout steps
    /// down, and followers ignore vote requests while they hear from a leader
    /// (thesis §6.2 and §4.2.3).
    pub check_quorum: bool,
    /// How linearizable reads outside the log are confirmed.
    pub read_mode: ReadMode,
    /// Bound on the relative clock rate difference between nodes, in parts per
    /// million, used to shorten leases.
    pub max_clock_drift_ppm: u64,
    /// At most this many entries in one AppendEntries message.
    pub max_entries_per_message: usize,
    /// At most this many payload bytes in one AppendEntries message (at least one entry is always sent).
    pub max_bytes_per_message: usize,
    /// At most this many AppendEntries messages in flight to one follower.
    pub max_inflight: usize,
    /// The leader refuses proposals while its uncommitted entries hold more
    /// than this many command bytes (flow control).
    pub max_uncommitted_bytes: u64,
    /// Size of one InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// The leader answers `ReadError::Busy` while this many reads wait for
    /// a heartbeat round (ReadIndex, or lease reads outside a lease).
    pub max_pending_reads: usize,
    /// A deliberate defect (tests only).
    #[cfg(feature = "planted-bugs")]
    pub planted: Option<PlantedBug>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            read_mode: ReadMode::ReadIndex,
            max_clock_drift_ppm: 10_000,
            max_entries_per_message: 64,
            max_bytes_per_message: 1 << 20,
            max_inflight: 8,
            max_uncommitted_bytes: 64 << 20,
            snapshot_chunk_bytes: 64 << 10,
            max_pending_reads: 10_000,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }
}

quorum_core::protocol_config!(RaftConfig, PlantedBug);

impl RaftConfig {
    /// How long a quorum's acknowledgement of a round keeps the lease valid.
    pub fn lease_duration(&self) -> Duration {
        let min_ns = self.election_timeout_min.as_nanos();
        let drift_ns = (u128::from(min_ns) * u128::from(self.max_clock_drift_ppm) / 1_000_000) as u64;
        Duration::from_nanos(min_ns.saturating_sub(drift_ns))
    }

    /// Panics with a readable message on settings that cannot work.
    pub fn validate(&self) {
        if let Err(e) = self.check_settings() {
            panic!("{e}");
        }
    }

    /// Says which settings cannot work together, by their `--set` names.
    pub fn check_settings(&self) -> Result<(), String> {
        quorum_core::settings::check_rules(&[
            (self.heartbeat_interval > Duration::ZERO, "heartbeat_interval_ms must be positive"),
            (
                self.election_timeout_min > self.heartbeat_interval,
                "election_timeout_min_ms must exceed heartbeat_interval_ms",
            ),
            (
                self.election_timeout_max > self.election_timeout_min,
                "election_timeout_min_ms must be below election_timeout_max_ms",
            ),
            (self.max_entries_per_message > 0, "max_entries_per_message must be positive"),
            (self.max_inflight > 0, "max_inflight must be positive"),
            (self.snapshot_chunk_bytes > 0, "snapshot_chunk_bytes must be positive"),
            (self.max_pending_reads > 0, "max_pending_reads must be positive"),
        ])
    }
}

quorum_core::tunables!(RaftConfig, check = RaftConfig::check_settings, {
    election_timeout_min: ms "lower bound of the randomized election timeout",
    election_timeout_max: ms "upper bound of the randomized election timeout",
    heartbeat_interval: ms "how often a leader sends heartbeats",
    pre_vote: value "ask for votes before standing (true or false)",
    check_quorum: value "a leader steps down without a quorum, followers ignore votes while a leader is heard",
    read_mode: value "read_index or lease",
    max_clock_drift_ppm: value "bound on clock rate difference between nodes, for leases",
    max_entries_per_message: value "entries in one AppendEntries",
    max_bytes_per_message: value "bytes of entries in one AppendEntries",
    max_inflight: value "AppendEntries in flight per follower",
    max_uncommitted_bytes: value "command bytes a leader holds uncommitted before it refuses proposals",
    snapshot_chunk_bytes: value "bytes of one InstallSnapshot chunk",
    max_pending_reads: value "reads waiting for a heartbeat round before the leader answers busy",
});

impl std::fmt::Display for ReadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadMode::ReadIndex => "read_index",
            ReadMode::Lease => "lease",
        })
    }
}

impl std::str::FromStr for ReadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read_index" => Ok(ReadMode::ReadIndex),
            "lease" => Ok(ReadMode::Lease),
            _ => Err("choose read_index or lease".into()),
        }
    }
}
