//! quorum: Basic Paxos, Multi-Paxos, Raft and Zab on one shared, sans-IO core.
//!
//! This facade re-exports the workspace's library crates under short names so
//! that an application can depend on one package, and holds the narrated
//! [`scenarios`] that `examples/` and `quorum trace` run:
//!
//! - [`core`]: the vocabulary every protocol shares (the [`core::Protocol`]
//!   trait, effects, log, storage, transport, state machine).
//! - [`sim`]: the deterministic simulator with fault injection and checkers.
//! - [`raft`], Raft as a library.
#![deny(missing_docs)]

pub use quorum_core as core;
pub use quorum_raft as raft;
pub use quorum_sim as sim;

pub mod scenarios;
