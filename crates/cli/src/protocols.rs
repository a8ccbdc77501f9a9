//! The one place that names every protocol: maps a `--protocol` name to its type.

use quorum_core::Protocol;
use quorum_sim::baseline::PrimaryBackup;

/// Something to do with a protocol type chosen at run time.
pub trait WithProtocol {
    /// The result.
    type Output;
    /// Does it with protocol `P`.
    fn run<P: Protocol>(self) -> Self::Output
    where
        P::Config: Sync;
}

/// Every protocol name the CLI accepts.
pub const NAMES: &[&str] = &["primary-backup"];

/// Calls `job.run::<P>()` for the protocol named `name`.
pub fn dispatch<J: WithProtocol>(name: &str, job: J) -> Result<J::Output, String> {
    match name {
        "primary-backup" => Ok(job.run::<PrimaryBackup>()),
        other => Err(format!("unknown protocol '{other}': choose one of {}", NAMES.join(", "))),
    }
}
