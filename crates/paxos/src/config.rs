//! Basic Paxos's settings and the bugs a test can plant back.

use quorum_core::Duration;

/// Settings for Basic Paxos.
#[derive(Clone, Debug, Hash)]
#[non_exhaustive]
pub struct PaxosConfig {
    /// A phase that has not reached a majority by then starts over with a higher ballot.
    pub retry_timeout: Duration,
    /// Randomized exponential backoff after a rejection. Off: retry at once
    /// (dueling proposers may then livelock; kept to show it).
    pub backoff: bool,
    /// The backoff window after the first rejection; it doubles with each one.
    pub backoff_base: Duration,
    /// The largest backoff window.
    pub backoff_max: Duration,
    /// Slots this node fights for at once.
    pub max_in_flight: usize,
    /// How long the next slot may stay unknown, while later ones are in use,
    /// before asking peers for decided values.
    pub catch_up_after: Duration,
    /// How long before proposing a no-op in that slot (plus a random part as long).
    pub fill_hole_after: Duration,
    /// How often a node asks every peer for values decided beyond what it
    /// knows. Basic Paxos has no leader heartbeat: a node cut off while the
    /// last slots were decided has nothing else to tell it that it is behind.
    /// Every peer, not one in turn: the peers it asks first may lack the same
    /// slots (a 10,000-seed sweep with pauses left two of five nodes asking
    /// each other while three knew). An up-to-date peer answers with an
    /// empty list.
    pub sync_every: Duration,
    /// Most decided values in one catch-up answer.
    pub catch_up_batch: usize,
    /// Most bytes of decided values in one catch-up answer, so that an answer
    /// fits a peer frame (one value always goes: it fitted its Accept).
    pub catch_up_bytes: usize,
    /// Client commands waiting for a slot (past the `max_in_flight` being
    /// fought for); more are refused with the retryable `ProposeError::Busy`.
    pub max_queued: usize,
    /// A deliberately planted bug (tests only, `planted-bugs` feature).
    #[cfg(feature = "planted-bugs")]
    pub planted: Option<PlantedBug>,
}

/// Bugs that can be planted back, behind the `planted-bugs` feature, to show
/// that the simulator's checks catch them. Without the feature no
/// configuration can select one.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(not(feature = "planted-bugs"), allow(dead_code))]
pub enum PlantedBug {
    /// Phase 2 proposes the proposer's own value, ignoring what the promises
    /// reported (breaks P2c).
    IgnorePromisedValues,
}

quorum_core::protocol_config!(PaxosConfig, PlantedBug);

impl Default for PaxosConfig {
    fn default() -> Self {
        PaxosConfig {
            retry_timeout: Duration::from_millis(50),
            backoff: true,
            backoff_base: Duration::from_millis(4),
            backoff_max: Duration::from_millis(200),
            max_in_flight: 16,
            catch_up_after: Duration::from_millis(20),
            fill_hole_after: Duration::from_millis(60),
            sync_every: Duration::from_millis(500),
            catch_up_batch: 64,
            catch_up_bytes: 1 << 20,
            max_queued: 4096,
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }
}

impl PaxosConfig {
    /// Says which settings cannot work, by their `--set` names.
    pub fn check_settings(&self) -> Result<(), String> {
        quorum_core::settings::check_rules(&[
            (self.retry_timeout.as_nanos() > 0, "retry_timeout_ms must be positive"),
            (self.max_in_flight > 0, "max_in_flight must be positive"),
            (self.catch_up_batch > 0, "catch_up_batch must be positive"),
            (self.catch_up_bytes > 0, "catch_up_bytes must be positive"),
            (self.sync_every.as_nanos() > 0, "sync_every_ms must be positive"),
            (self.backoff_base <= self.backoff_max, "backoff_base_ms must not exceed backoff_max_ms"),
        ])
    }
}

quorum_core::tunables!(PaxosConfig, check = PaxosConfig::check_settings, {
    retry_timeout: ms "a phase without a majority by then starts over with a higher ballot",
    backoff: value "randomized exponential backoff after a rejection (true or false)",
    backoff_base: ms "the first backoff window; it doubles with each rejection",
    backoff_max: ms "the largest backoff window",
    max_in_flight: value "slots this node fights for at once",
    catch_up_after: ms "how long the next slot may stay unknown before asking peers",
    fill_hole_after: ms "how long before proposing a no-op in an unknown slot",
    sync_every: ms "how often a node asks every peer for values decided beyond what it knows",
    catch_up_batch: value "most decided values in one catch-up answer",
    catch_up_bytes: value "most bytes of decided values in one catch-up answer",
    max_queued: value "client commands waiting for a slot before proposals are refused as busy",
});
