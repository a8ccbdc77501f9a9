//! Settings, in ZooKeeper's vocabulary: a tick, and limits counted in ticks.

use quorum_core::Duration;

/// Zab's settings. The defaults are ZooKeeper's proportions (`initLimit = 10`,
/// `syncLimit = 5` ticks) on a tick short enough for a simulated LAN.
#[derive(Clone, Debug)]
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
    /// How long a leader may hold a proposal to batch it with others (zero:
    /// every proposal leaves at once).
    pub batch_delay: Duration,
    /// At most this many proposed but uncommitted entries in the pipeline;
    /// further proposals wait in the leader's queue.
    pub max_inflight_entries: u64,
    /// A deliberate bug, to show that the simulator's checks catch it. Never
    /// set outside such tests.
    pub planted_bug: Option<PlantedBug>,
}

/// Deliberate protocol bugs, each one a rule of the paper broken on purpose.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// A follower ACKs a proposal before it is durable (breaks the durability
    /// rule: a crash can lose a "committed" transaction).
    AckBeforeDurable,
    /// The leader commits as soon as one follower acknowledges, without a quorum.
    CommitWithoutQuorum,
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
            batch_delay: Duration::ZERO,
            max_inflight_entries: 1024,
            planted_bug: None,
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
