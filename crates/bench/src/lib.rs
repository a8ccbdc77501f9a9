//! # quorum-bench: one benchmark driver for every protocol
//!
//! One [`Workload`] and one [`FaultPlan`], used unchanged for every protocol;
//! metrics from the client's side of the wire (HDR histograms of latency,
//! throughput per 100 ms, recovery after the fault) plus the protocol's cost
//! in messages and bytes per committed entry.
//!
//! In sim mode ([`run_sim`]) a run is deterministic: virtual time, so the cost
//! shows up in message delays and fsyncs, not in the speed of this machine.
//! In real mode ([`run_real`]) the same workload drives `quorum node`
//! processes over TCP on loopback with fsync'd logs; a crash is `kill -9`.
//! Several seeds ([`aggregate`]) give a median and spread. Output: a terminal
//! [`table`], [`json`], and a [`markdown`] report with SVG [`charts`].
#![deny(missing_docs)]

mod aggregate;
pub mod charts;
mod metrics;
mod output;
mod real_mode;
mod sim_mode;
mod workload;

pub use aggregate::{aggregate, spread, ProtocolResult, Spread, Spreads};
pub use metrics::{summarize, ChangeCost, Latencies, MembershipRun, RunData, RunResult, BUCKET};
pub use output::{json, markdown, membership_table, table};
pub use real_mode::{current_exe, run_real, run_reference, RealOptions, Reference};
pub use sim_mode::{run_sim, sim_config};
pub use workload::{at_a_time, FaultKind, FaultPlan, Workload};
