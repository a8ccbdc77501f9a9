//! `quorum node` and `quorum cluster`: real nodes on the tokio runtime, with
//! the protocol chosen by name through [`crate::protocols::dispatch`].
//!
//! These commands live in the CLI, not in quorum-runtime, so that a program
//! embedding the runtime does not pull clap, toml and tracing-subscriber.

mod cluster;
mod join;
mod serve;
mod settings;

pub use cluster::ClusterArgs;
pub use settings::{LogFormat, NodeArgs};

use crate::protocols::{dispatch, WithProtocol};
use cluster::run_cluster;
use serve::run_node;

struct RunNode(NodeArgs);

impl WithProtocol for RunNode {
    type Output = Result<i32, String>;
    fn run<P: quorum_check::Checkable>(self, config: P::Config) -> Self::Output
    where
        P::Config: Sync + quorum_core::settings::Tunables,
    {
        run_node::<P>(self.0, config)
    }
}

/// Runs one node of the protocol its arguments name.
pub fn node(args: NodeArgs) -> Result<i32, String> {
    if args.list_settings {
        let name = args.protocol.clone().ok_or("--list-settings needs --protocol")?;
        return dispatch(&name, ListSettings);
    }
    let name = args.protocol_name()?;
    refuse_demos(&name)?;
    dispatch(&name, RunNode(args))?
}

struct ListSettings;

impl WithProtocol for ListSettings {
    type Output = i32;
    fn run<P: quorum_check::Checkable>(self, config: P::Config) -> Self::Output
    where
        P::Config: Sync + quorum_core::settings::Tunables,
    {
        use quorum_core::settings::Tunables;
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) ends the listing quietly.
        let _ = writeln!(out, "{} settings (--set KEY=VALUE, [settings] in --config, or QUORUM_<KEY>):", P::NAME);
        for (key, help) in <P::Config as Tunables>::KEYS {
            let _ = writeln!(out, "  {key} = {}\n      {help}", config.get(key).unwrap_or_default());
        }
        0
    }
}

/// Runs a local cluster (after checking the protocol name).
pub fn cluster(args: ClusterArgs) -> Result<i32, String> {
    refuse_demos(&args.protocol)?;
    dispatch(&args.protocol, CheckName)?;
    run_cluster(args)
}

/// The checker demos have deliberate bugs: they run in the simulator only.
fn refuse_demos(name: &str) -> Result<(), String> {
    match crate::protocols::PLANTED.contains(&name) {
        true => Err(format!(
            "'{name}' is a checker demo with a deliberate bug, for `quorum sim` only; a real node runs one of {}",
            crate::protocols::NAMES.join(", ")
        )),
        false => Ok(()),
    }
}

struct CheckName;

impl WithProtocol for CheckName {
    type Output = ();
    fn run<P: quorum_check::Checkable>(self, _config: P::Config) -> Self::Output
    where
        P::Config: Sync + quorum_core::settings::Tunables,
    {
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_real_node_refuses_the_planted_bug_demos() {
        for demo in crate::protocols::PLANTED {
            assert!(super::refuse_demos(demo).unwrap_err().contains("deliberate bug"), "{demo}");
        }
        assert!(super::refuse_demos("raft").is_ok());
        assert!(super::refuse_demos("primary-backup").is_ok());
    }
}
