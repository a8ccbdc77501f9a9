//! # quorum-sim: a deterministic simulator for consensus protocols
//!
//! Runs any [`quorum_core::Protocol`] as a cluster in virtual time: one event
//! queue ordered by (time, sequence), one seeded RNG, a network model (per-link
//! delay — constant, uniform or long-tailed —, loss, duplication, partitions and
//! one-way cuts that come and go, `fifo` or `datagram` links), a disk model
//! (fsync latency with group commit; a crash loses unsynced writes), node
//! crashes and restarts from durable state, and closed-loop key-value clients
//! that follow leader hints and retry with the same (client, seq).
//!
//! Every run is checked:
//! - as it goes: no two nodes apply different commands at one index (the
//!   committed prefixes agree), entries are applied in order without gaps, an
//!   acknowledged write is never replaced, plus each protocol's own
//!   [`quorum_core::Invariant`]s (one leader per term, one value per slot, ...);
//! - at the end: the client history is linearizable ([`lincheck`]), with an
//!   unanswered operation counted as possibly applied; local reads
//!   ([`ClientConfig::local_read_ratio`], sequentially consistent only) are
//!   left out of it and checked per client instead: never answered below an
//!   index the client has already seen, and with the value the committed log
//!   holds at the index they were answered at.
//!
//! A run is a pure function of (protocol, config, seed): the same seed gives the
//! same [`Trace`] hash on every run and every machine, so a failing seed is a
//! bug report anyone can replay.
//!
//! ```
//! use quorum_sim::{baseline::PrimaryBackup, check_seeds, Faults, Sim, SimConfig};
//! use quorum_core::{Command, ClientId, Duration, NodeId};
//!
//! // A whole checked run with faults:
//! let report = Sim::<PrimaryBackup>::new(SimConfig::quick(7, Faults::All), Default::default()).run();
//! assert!(report.violations.is_empty());
//!
//! // A scripted scenario:
//! let mut cfg = SimConfig::new(3, 1);
//! cfg.clients.count = 0;
//! let mut sim = Sim::<PrimaryBackup>::new(cfg, Default::default());
//! sim.propose(NodeId(1), Command::new(ClientId(1), 1, &b"x"[..])).unwrap();
//! assert!(sim.run_until(Duration::from_secs(1), |s| s.applied_index(NodeId(3)) == 1));
//!
//! // Many seeds:
//! let summary = check_seeds::<PrimaryBackup>(&SimConfig::quick(0, Faults::All), &Default::default(), 0..20);
//! summary.assert_clean();
//! ```
//!
//! ## Protocol-specific actions: membership changes, leadership transfer
//!
//! The `Protocol` trait has no admin methods, so a test reaches the concrete
//! type through [`Sim::act`]: the closure gets the live node, the time and the
//! effect buffer, and what it emits (sends, durable sends, writes, commits) is
//! carried out like the effects of any message or timer, followed by every
//! check. For sweeps, an [`Operator`] — any `FnMut(&mut Sim<P>, &mut Rng)` —
//! installed with [`Sim::set_operator`], or by [`check_seeds_with`] in every
//! seed, is called at random times while the load runs, with its own random
//! stream forked from the seed, so a failing seed replays with the same
//! interventions. Each committed membership change is recorded in
//! [`Metrics::config_changes`]. The simulator's own checks never assume who
//! votes: they compare what nodes apply, whichever role they play.
//!
//! ```
//! use quorum_core::{Duration, NodeId, Protocol, Rng};
//! use quorum_sim::{baseline::PrimaryBackup, check_seeds_with, Faults, Sim, SimConfig};
//!
//! // One action now (Raft's tests call `remove_node`, `transfer_leadership`... this way):
//! let mut sim = Sim::<PrimaryBackup>::new(SimConfig::new(3, 1), Default::default());
//! let status = sim.act(NodeId(1), "read the status", |node, _now, _out| node.status());
//! assert_eq!(status.map(|s| s.id), Some(NodeId(1)));
//!
//! // An operator acting on a random live node about every 100 ms, in every seed:
//! let poke = |sim: &mut Sim<PrimaryBackup>, rng: &mut Rng| {
//!     let target = sim.members()[rng.index(sim.members().len())];
//!     sim.act(target, "poke", |_, _, _| ());
//! };
//! let base = SimConfig::quick(0, Faults::All);
//! let setup = |sim: &mut Sim<PrimaryBackup>| sim.set_operator(Duration::from_millis(100), poke);
//! let summary = check_seeds_with::<PrimaryBackup>(&base, &Default::default(), 0..10, setup, |_| {});
//! summary.assert_clean();
//! ```
//!
//! ## Your own state machine
//!
//! `Sim<P, W>` runs any [`Workload`] `W` in place of the key-value store: a
//! [`quorum_core::Service`] (the state machine every node replicates) that
//! also says what clients ask next ([`Workload::next_op`]) and judges the
//! history they saw ([`Workload::check_history`]; [`lincheck::check_model`]
//! decides linearizability against a sequential [`lincheck::Model`] you
//! write, often the machine's own logic without its sessions). Every
//! other check — agreement per index, snapshots, final states, reads served
//! outside the log — runs unchanged. [`check_workload_seeds`] sweeps seeds.
//! `examples/lock_service/sim.rs` is a whole example: a lock service with
//! fencing tokens on Raft, checked for linearizability, growing tokens and
//! one holder per lock (`cargo run --example lock_service -- --sim`).
#![deny(missing_docs)]

pub mod baseline;
mod client;
mod clock;
mod config;
mod disturbance;
mod faults;
mod flights;
mod history;
mod host;
pub mod lincheck;
mod network;
mod operator;
mod queue;
mod quiet;
mod reference;
mod report;
mod session;
mod sim;
pub mod testkit;
mod trace;
mod workload;

pub use config::{
    ClientConfig, ClockConfig, DiskConfig, DriverBug, FaultConfig, Faults, KeyDistribution, Latency, NetworkConfig,
    ReadPath, SimConfig, DEFAULT_MAX_MESSAGE_BYTES,
};
pub use disturbance::LeaseDisturbance;
pub use flights::{Flight, Party};
pub use history::{Operation, Outcome};
pub use operator::Operator;
pub use quiet::{panic_message, quietly};
pub use report::{
    check_seeds, check_seeds_with, check_seeds_with_progress, check_workload_seeds, ConfigChange, FailedSeed, Metrics,
    Report, Summary, Violation,
};
pub use sim::{sim_clock, DropFilter, Sim};
pub use trace::{describe, render_mermaid, render_text, Trace, TraceEvent, What};
pub use workload::{OpContext, Workload};
