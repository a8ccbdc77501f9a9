//! The one place that names every protocol: maps a `--protocol` name to its
//! type and settings.

use quorum_multipaxos::{MultiPaxos, MultiPaxosConfig};
use quorum_paxos::{Paxos, PaxosConfig};
use quorum_raft::{Raft, RaftConfig, ReadMode};
use quorum_sim::baseline::{PlantedBug, PrimaryBackup, PrimaryBackupConfig};
use quorum_zab::{Zab, ZabConfig};

/// Something to do with a protocol type chosen at run time.
pub trait WithProtocol {
    /// The result.
    type Output;
    /// Does it with protocol `P` and settings `config`.
    fn run<P: quorum_check::Checkable>(self, config: P::Config) -> Self::Output
    where
        P::Config: Sync + quorum_core::settings::Tunables;
}

/// `--protocol` for commands that run the simulator: the protocols and the checker demos.
pub fn any_protocol() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(NAMES.iter().chain(PLANTED).copied())
}

/// `--protocol` for real nodes: the protocols only (the demos are refused).
pub fn real_protocol() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(NAMES.iter().copied())
}

/// The protocols a user compares.
pub const NAMES: &[&str] = &["paxos", "multipaxos", "raft", "zab", "primary-backup"];

/// The protocols whose membership changes while they run (`quorum admin`,
/// `quorum node --join`, `quorum sim --churn`). Basic Paxos decides one
/// value per slot with no leader to order a change.
pub const RECONFIGURABLE: &[&str] = &["raft", "multipaxos", "zab"];

/// Deliberately broken variants of the baseline, to see the checkers fire.
pub const PLANTED: &[&str] = &["planted-lost-write", "planted-divergence", "planted-stale-read"];

/// Protocol settings a sweep runs with (`quorum sim --profile`); the
/// simulated world of each is set in `sim_cmd`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The defaults.
    Default,
    /// Every batch, window, chunk and catch-up cap at a few entries or bytes,
    /// so each boundary path runs thousands of times per sweep.
    TinyCaps,
    /// 200 closed-loop clients on 5 keys: queues fill, slots pile up behind
    /// a gap, the linearizability checker sees dozens of concurrent
    /// operations per key.
    HighLoad,
    /// Reads served by a leader lease (Raft `ReadMode::Lease`, Multi-Paxos
    /// `read_lease`) over FIFO links, so the link-down hint runs; 16 clients
    /// (4 of them only read), 60 % reads, and the lease disturbance
    /// (`quorum_sim::LeaseDisturbance`: a live leader cut off from all but a
    /// bare majority whose links to it reset, then from them too, and from
    /// the clients that write). Raft and Multi-Paxos only (Basic Paxos has no
    /// lease, Zab always runs on FIFO links).
    LeaseFifo,
    /// The lease settings with the nodes' clocks as far apart as the lease
    /// bound allows: rates up to 1 % apart, 30 s offsets.
    Drift,
    /// A 10 ms fsync: a wide window between a write and its durability, in
    /// which a crash tests every "only once it is durable" rule.
    SlowDisk,
    /// The tiny caps, with three messages in a hundred corrupted in flight (a
    /// broken or hostile peer): a node must drop what it cannot trust and
    /// never panic. The safety checks are off (the protocols tolerate
    /// crashes, not lies); a panic fails the seed.
    Hostile,
    /// Crashes only (unless `--faults` says otherwise), one every 60 ms on
    /// average, each a quick restart of at most 5 ms; a 30 ms fsync; delays
    /// of 0.5-10 ms; 3 nodes (unless `--nodes` says otherwise). Many crashes
    /// land between a write and its durability: made for the "only once it
    /// is durable" rules (a vote, an acknowledgement, a NEWLEADER ack).
    CrashStorm,
    /// Twelve clients, 10 % loss and partitions only (unless `--faults` says
    /// otherwise), one every 80 ms on average, 3 nodes (unless `--nodes`
    /// says otherwise), with small catch-up and Accept caps: chosen slots
    /// pile up behind a lost message while leaders change, so a promise or a
    /// catch-up must carry more than one page.
    Backlog,
    /// Eight clients, two operations in five on counters (`INCR` and reads
    /// of them), judged against a counter model: a retry applied twice shows
    /// as a count that skips, which a register's writes cannot show.
    Counters,
}

impl Profile {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::TinyCaps => "tiny-caps",
            Profile::HighLoad => "high-load",
            Profile::LeaseFifo => "lease-fifo",
            Profile::Drift => "drift",
            Profile::SlowDisk => "slow-disk",
            Profile::Hostile => "hostile",
            Profile::CrashStorm => "crash-storm",
            Profile::Backlog => "backlog",
            Profile::Counters => "counters",
        }
    }

    /// Whether the profile means anything for `protocol`.
    pub fn applies_to(self, protocol: &str) -> bool {
        self != Profile::LeaseFifo || matches!(protocol, "raft" | "multipaxos")
    }
}

/// Calls `job.run::<P>(config)` for the protocol named `name`.
pub fn dispatch<J: WithProtocol>(name: &str, job: J) -> Result<J::Output, String> {
    dispatch_with(name, Profile::Default, None, job)
}

/// Calls `job.run::<P>(config)` for the protocol named `name`, set for
/// `profile`, with the bug named `planted` put back (see `crate::planted`).
pub fn dispatch_with<J: WithProtocol>(
    name: &str,
    profile: Profile,
    planted: Option<&str>,
    job: J,
) -> Result<J::Output, String> {
    let baseline = |bug| PrimaryBackupConfig { bug: Some(bug), ..Default::default() };
    if planted.is_some() && !matches!(name, "paxos" | "multipaxos" | "raft" | "zab") {
        return Err(format!("--planted plants a bug in paxos, multipaxos, raft or zab, not {name}"));
    }
    match name {
        "paxos" => Ok(job.run::<Paxos>(crate::planted::paxos(paxos(profile), planted)?)),
        "multipaxos" => Ok(job.run::<MultiPaxos>(crate::planted::multipaxos(multipaxos(profile), planted)?)),
        "raft" => Ok(job.run::<Raft>(crate::planted::raft(raft(profile), planted)?)),
        "zab" => Ok(job.run::<Zab>(crate::planted::zab(zab(profile), planted)?)),
        "primary-backup" => Ok(job.run::<PrimaryBackup>(Default::default())),
        "planted-lost-write" => Ok(job.run::<PrimaryBackup>(baseline(PlantedBug::AckBeforeMajority))),
        "planted-divergence" => Ok(job.run::<PrimaryBackup>(baseline(PlantedBug::DivergentApply))),
        "planted-stale-read" => Ok(job.run::<PrimaryBackup>(baseline(PlantedBug::StaleLocalRead))),
        other => Err(format!(
            "unknown protocol '{other}': choose one of {} (or a checker demo: {})",
            NAMES.join(", "),
            PLANTED.join(", ")
        )),
    }
}

fn paxos(profile: Profile) -> PaxosConfig {
    match profile {
        Profile::TinyCaps | Profile::Hostile => PaxosConfig::default().with(|c| {
            c.max_in_flight = 2;
            c.catch_up_batch = 8;
            c.catch_up_bytes = 64;
            c.max_queued = 16;
        }),
        // Queues shorter than the 200 clients, so they fill and answer Busy.
        Profile::HighLoad => PaxosConfig::default().with(|c| c.max_queued = HIGH_LOAD_QUEUE),
        Profile::Backlog => PaxosConfig::default().with(|c| c.catch_up_batch = 8),
        _ => PaxosConfig::default(),
    }
}

/// Under `--profile high-load`, every protocol's queue of waiting client
/// requests holds this many, well below the 200 clients: the queues fill,
/// clients are told `Busy`, and the bounded-queue invariants are tested.
const HIGH_LOAD_QUEUE: usize = 32;

fn multipaxos(profile: Profile) -> MultiPaxosConfig {
    let read_lease = matches!(profile, Profile::LeaseFifo | Profile::Drift);
    match profile {
        Profile::TinyCaps | Profile::Hostile => MultiPaxosConfig::tiny_caps(),
        Profile::HighLoad => MultiPaxosConfig::default().with(|c| c.max_queued = HIGH_LOAD_QUEUE),
        // More chosen slots behind a stuck one than a promise page lists.
        // One Accept per command as it comes, so one lost Accept holds back one slot.
        Profile::Backlog => MultiPaxosConfig::default().with(|c| {
            c.catch_up_batch = 4;
            c.window = 32;
            c.max_batch = 2;
            c.max_accepts_in_flight = 32;
        }),
        _ => MultiPaxosConfig::default().with(|c| c.read_lease = read_lease),
    }
}

fn raft(profile: Profile) -> RaftConfig {
    let lease = matches!(profile, Profile::LeaseFifo | Profile::Drift);
    let read_mode = if lease { ReadMode::Lease } else { ReadMode::ReadIndex };
    match profile {
        Profile::TinyCaps | Profile::Hostile => RaftConfig::default().with(|c| {
            c.max_entries_per_message = 2;
            c.max_bytes_per_message = 64;
            c.max_inflight = 1;
            c.max_uncommitted_bytes = 400;
            c.snapshot_chunk_bytes = 64;
            c.max_pending_reads = 4;
        }),
        Profile::HighLoad => RaftConfig::default().with(|c| c.max_pending_reads = HIGH_LOAD_QUEUE),
        // The default timeouts (150-300 ms). Until 2026-12-06 this profile
        // narrowed them to 150-160 ms, so that rival candidates shared
        // terms (a planted early vote needed that to cost anything; the
        // `durable sends` check now sees it in every run). Seed 5863 of a
        // 10,000-seed sweep showed what that setting costs: every node timed
        // out within a few ms of the others, round after round, since a
        // 10 ms spread cannot separate candidates whose requests leave only
        // after a 30 ms fsync, and no leader was elected for 700 ms.
        Profile::CrashStorm => RaftConfig::default(),
        Profile::Backlog => RaftConfig::default().with(|c| {
            c.max_entries_per_message = 4;
            c.max_inflight = 2;
        }),
        _ => RaftConfig::default().with(|c| c.read_mode = read_mode),
    }
}

fn zab(profile: Profile) -> ZabConfig {
    match profile {
        Profile::TinyCaps | Profile::Hostile => ZabConfig::default().with(|c| {
            c.max_batch_entries = 2;
            c.max_batch_bytes = 64;
            c.max_inflight_entries = 4;
            c.max_queued_proposals = 16;
            c.sync_chunk_bytes = 64;
            c.sync_window_chunks = 1;
        }),
        // The pipeline too, or 200 clients never reach the queue behind it.
        Profile::HighLoad => ZabConfig::default().with(|c| {
            c.max_inflight_entries = HIGH_LOAD_QUEUE as u64;
            c.max_queued_proposals = HIGH_LOAD_QUEUE;
        }),
        Profile::Backlog => ZabConfig::default().with(|c| {
            c.max_batch_entries = 4;
            c.sync_chunk_bytes = 256;
        }),
        _ => ZabConfig::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::Profile;
    use clap::ValueEnum;

    #[test]
    fn profile_names_are_the_command_line_names() {
        for p in Profile::value_variants() {
            assert_eq!(p.to_possible_value().unwrap().get_name(), p.name());
        }
    }
}
