//! `quorum node` and `quorum cluster`: real nodes on the tokio runtime, with
//! the protocol chosen by name through [`crate::protocols::dispatch`].
//!
//! These commands live in the CLI, not in quorum-runtime, so that a program
//! embedding the runtime does not pull clap, toml and tracing-subscriber.

mod cluster;
mod serve;
mod settings;

pub use cluster::ClusterArgs;
pub use settings::NodeArgs;

use crate::protocols::{dispatch, WithProtocol};
use cluster::run_cluster;
use serve::run_node;

struct RunNode(NodeArgs);

impl WithProtocol for RunNode {
    type Output = Result<i32, String>;
    fn run<P: quorum_check::Checkable>(self, config: P::Config) -> Self::Output
    where
        P::Config: Sync,
    {
        run_node::<P>(self.0, config)
    }
}

/// Runs one node of the protocol its arguments name.
pub fn node(args: NodeArgs) -> Result<i32, String> {
    let name = args.protocol_name()?;
    dispatch(&name, RunNode(args))?
}

/// Runs a local cluster (after checking the protocol name).
pub fn cluster(args: ClusterArgs) -> Result<i32, String> {
    dispatch(&args.protocol, CheckName)?;
    run_cluster(args)
}

struct CheckName;

impl WithProtocol for CheckName {
    type Output = ();
    fn run<P: quorum_check::Checkable>(self, _config: P::Config) -> Self::Output
    where
        P::Config: Sync,
    {
    }
}
