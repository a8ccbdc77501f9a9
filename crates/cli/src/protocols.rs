//! The one place that names every protocol: maps a `--protocol` name to its
//! type and settings.

use quorum_core::Protocol;
use quorum_multipaxos::MultiPaxos;
use quorum_paxos::Paxos;
use quorum_raft::Raft;
use quorum_sim::baseline::{PlantedBug, PrimaryBackup, PrimaryBackupConfig};
use quorum_zab::Zab;

/// Something to do with a protocol type chosen at run time.
pub trait WithProtocol {
    /// The result.
    type Output;
    /// Does it with protocol `P` and settings `config`.
    fn run<P: Protocol + Clone + std::fmt::Debug>(self, config: P::Config) -> Self::Output
    where
        P::Config: Sync;
}

/// The protocols a user compares.
pub const NAMES: &[&str] = &["paxos", "multipaxos", "raft", "zab", "primary-backup"];

/// Deliberately broken variants of the baseline, to see the checkers fire.
pub const PLANTED: &[&str] = &["planted-lost-write", "planted-divergence", "planted-stale-read"];

/// Calls `job.run::<P>(config)` for the protocol named `name`.
pub fn dispatch<J: WithProtocol>(name: &str, job: J) -> Result<J::Output, String> {
    let planted = |bug| PrimaryBackupConfig { bug: Some(bug), ..Default::default() };
    match name {
        "paxos" => Ok(job.run::<Paxos>(Default::default())),
        "multipaxos" => Ok(job.run::<MultiPaxos>(Default::default())),
        "raft" => Ok(job.run::<Raft>(Default::default())),
        "zab" => Ok(job.run::<Zab>(Default::default())),
        "primary-backup" => Ok(job.run::<PrimaryBackup>(Default::default())),
        "planted-lost-write" => Ok(job.run::<PrimaryBackup>(planted(PlantedBug::AckBeforeMajority))),
        "planted-divergence" => Ok(job.run::<PrimaryBackup>(planted(PlantedBug::DivergentApply))),
        "planted-stale-read" => Ok(job.run::<PrimaryBackup>(planted(PlantedBug::StaleLocalRead))),
        other => Err(format!(
            "unknown protocol '{other}': choose one of {} (or a checker demo: {})",
            NAMES.join(", "),
            PLANTED.join(", ")
        )),
    }
}
