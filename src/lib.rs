//! quorum: Basic Paxos, Multi-Paxos, Raft and Zab on one shared, sans-IO core.
//!
//! This facade re-exports the workspace's library crates under short names so
//! that an application can depend on one package:
//!
//! - [`core`]: the vocabulary every protocol shares (the [`core::Protocol`]
//!   trait, effects, log, storage, transport, state machine).
//! - [`sim`]: the deterministic simulator with fault injection and checkers.
//! - [`paxos`], [`multipaxos`], [`raft`] and [`zab`]: the protocols, each
//!   usable alone as a library.
//! - [`runtime`]: the tokio driver (TCP transport, write-ahead log, node
//!   driver, Redis-protocol port) that runs them as real processes.
//! - [`bench`](mod@bench): the benchmark driver behind `quorum bench`.
//! - [`check`]: the bounded exhaustive model checker behind `quorum check`.
#![deny(missing_docs)]

pub use quorum_bench as bench;
pub use quorum_check as check;
pub use quorum_core as core;
pub use quorum_multipaxos as multipaxos;
pub use quorum_paxos as paxos;
pub use quorum_raft as raft;
pub use quorum_runtime as runtime;
pub use quorum_sim as sim;
pub use quorum_zab as zab;
