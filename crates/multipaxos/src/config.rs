//! Multi-Paxos's settings and the bugs a test can plant back.

use quorum_core::Duration;

/// Settings for Multi-Paxos.
#[derive(Clone, Debug, Hash)]
#[non_exhaustive]
pub struct MultiPaxosConfig {
    /// How often a leader sends heartbeats (and retransmits unanswered Accepts).
    pub heartbeat_interval: Duration,
    /// A follower that hears no leader for this long (plus a random part as
    /// long) starts Phase 1; also the time a candidate waits for promises.
    pub election_timeout: Duration,
    /// An Accept unanswered for this long is sent again to the acceptors that did not answer.
    pub retransmit_after: Duration,
    /// Most slots a leader has in flight (proposed, not yet chosen).
    pub window: usize,
    /// Most slots in one Accept message.
    pub max_batch: usize,
    /// Most Accept batches of new commands in flight (sent, not all chosen):
    /// beyond it, new commands wait and leave together in the next batch
    /// once one is chosen, so the batches grow with the load and a busy
    /// leader sends (and its followers decode, store and answer) one
    /// message for many commands instead of one each.
    pub max_accepts_in_flight: usize,
    /// Least time between two catch-up requests.
    pub catch_up_after: Duration,
    /// Most chosen values in one catch-up answer.
    pub catch_up_batch: usize,
    /// Largest piece of a snapshot in one message, and the most bytes of
    /// values in one Accept batch, catch-up answer or page of a promise (past
    /// the first value). Well below the transport's frame limit (the runtime's is
    /// 16 MiB).
    pub snapshot_chunk_bytes: usize,
    /// Most commands a leader holds waiting for a slot (beyond the window in
    /// flight); more are refused with `ProposeError::Busy`.
    pub max_queued: usize,
    /// Leader leases: serve linearizable reads at the leader without the log
    /// (see the `read` module docs for the clock assumption). Off by default.
    pub read_lease: bool,
    /// A deliberately planted bug (tests only, `planted-bugs` feature).
    #[cfg(feature = "planted-bugs")]
    pub planted: Option<PlantedBug>,
}

/// Bugs that can be planted back, behind the `planted-bugs` feature, to show
/// that the simulator's checks catch them (issue 12). Without the feature no
/// configuration can select one.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum PlantedBug {
    /// A new leader fills every uncommitted slot with a no-op, ignoring the
    /// values the promises reported (breaks P2c).
    IgnorePromisedValues,
    /// A promise leaves out slots its node knows chosen past the
    /// `catch_up_batch` cap of reported chosen values (neither in `chosen`
    /// nor in `accepted`), so a new leader may propose over them.
    PromiseOmitsChosenPastCap,
    /// An acceptor accepts a stale Accept for a slot it knows chosen, and
    /// replaces the stored chosen value even from a lower ballot.
    AcceptOverwritesChosen,
    /// An acceptor that learns a value it already holds keeps the older
    /// stamp, so after a restart it reports the value chosen in a ballot
    /// below the real one; and a leader of a ballot in between trusts that
    /// stamp, takes the decision without stepping down, and reports the slot
    /// committed to followers that hold its own value there.
    LearnKeepsOlderStamp,
    /// A follower's heartbeat acknowledgements (which extend the leader's
    /// read lease) do not count toward its own promise not to back another
    /// leader within an election timeout.
    LeaseIgnoresAcks,
    /// No CheckQuorum: a leader cut off in a minority leads on.
    NoCheckQuorum,
    /// A snapshot goes in one piece, however large.
    WholeSnapshot,
    /// A leader counts the votes of learners and removed nodes towards a
    /// majority, as if they were voters.
    NonVotersCount,
}

/// Slot numbers and snapshot indexes at or above this come from a broken
/// peer: no cluster commits 2^62 slots, and staying far from `u64::MAX`
/// keeps every `slot + 1` in range.
pub const MAX_PLAUSIBLE_SLOT: u64 = 1 << 62;

/// A candidate takes at most this many slots above its own commit point from
/// its promises (each becomes a proposal at once); a promise reporting more
/// makes it catch up first, like a promise that cannot see far enough.
pub const MAX_SLOTS_ABOVE_COMMIT: u64 = 1 << 20;

quorum_core::protocol_config!(MultiPaxosConfig, PlantedBug);

impl Default for MultiPaxosConfig {
    fn default() -> Self {
        MultiPaxosConfig {
            heartbeat_interval: Duration::from_millis(20),
            election_timeout: Duration::from_millis(100),
            retransmit_after: Duration::from_millis(40),
            window: 128,
            max_batch: 64,
            max_accepts_in_flight: 8,
            catch_up_after: Duration::from_millis(10),
            catch_up_batch: 256,
            snapshot_chunk_bytes: 1 << 20,
            max_queued: 1024,
            read_lease: false,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }
}

impl MultiPaxosConfig {
    /// The settings of `quorum sim --profile tiny-caps`: every window, batch,
    /// chunk and catch-up cap at a few slots or bytes, so that each boundary
    /// path runs thousands of times in a sweep.
    pub fn tiny_caps() -> Self {
        MultiPaxosConfig::default().with(|c| {
            c.window = 4;
            c.max_batch = 2;
            c.max_accepts_in_flight = 1;
            c.catch_up_batch = 8;
            c.snapshot_chunk_bytes = 64;
            c.max_queued = 16;
        })
    }

    /// Says which settings cannot work, by their `--set` names.
    pub fn check_settings(&self) -> Result<(), String> {
        quorum_core::settings::check_rules(&[
            (self.heartbeat_interval.as_nanos() > 0, "heartbeat_interval_ms must be positive"),
            (self.window > 0, "window must be positive"),
            (self.max_batch > 0, "max_batch must be positive"),
            (self.max_accepts_in_flight > 0, "max_accepts_in_flight must be positive"),
            (self.catch_up_batch > 0, "catch_up_batch must be positive"),
            (self.snapshot_chunk_bytes > 0, "snapshot_chunk_bytes must be positive"),
            (self.election_timeout > self.heartbeat_interval, "election_timeout_ms must exceed heartbeat_interval_ms"),
        ])
    }
}

quorum_core::tunables!(MultiPaxosConfig, check = MultiPaxosConfig::check_settings, {
    heartbeat_interval: ms "how often a leader sends heartbeats and retransmits unanswered Accepts",
    election_timeout: ms "a follower that hears no leader this long (plus up to as long again) starts Phase 1",
    retransmit_after: ms "an Accept unanswered this long is sent again",
    window: value "most slots a leader has in flight",
    max_batch: value "most slots in one Accept message",
    max_accepts_in_flight: value "most Accept batches of new commands in flight; more commands wait for the next batch",
    catch_up_after: ms "least time between two catch-up requests",
    catch_up_batch: value "most chosen values in one catch-up answer",
    snapshot_chunk_bytes: value "largest piece of a snapshot, batch or catch-up answer in one message",
    max_queued: value "commands a leader holds waiting for a slot before refusing as busy",
    read_lease: value "serve linearizable reads at the leader under a lease (true or false)",
});
