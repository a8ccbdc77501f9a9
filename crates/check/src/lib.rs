//! Exhaustive, bounded model checking of the protocol code quorum ships.
//!
//! The simulator samples executions at random; this crate visits *every*
//! state reachable within small bounds, on the same protocol structs the
//! simulator and the runtime drive (any [`Checkable`] protocol). A state
//! ([`World`]) is every node's protocol struct and disk, the writes staged
//! but not synced, the messages held for durability and in flight, and a
//! ghost record of what was applied and who led which term.
//!
//! Transitions ([`Action`]): deliver any message in flight (any order; only
//! the oldest per link for FIFO protocols), fire any node's pending timer
//! (timers fire in any order: time only moves up to the deadline fired),
//! sync a disk's oldest staged write, crash a node (its unsynced writes and
//! connections are lost, its peers are told the links broke), restart it
//! from its disk, and propose one of a bounded set of commands at any node;
//! with `Bounds::changes`, an operator asks a leader to add a learner (spare
//! nodes, `Bounds::spares`, start outside the configuration), promote one or
//! remove a member, and replaces the disk of a node that does not vote.
//! Loss needs no transition: a message never delivered is a lost one.
//!
//! Properties, checked in every state: the values applied at each index
//! agree across nodes and time; an index first applied is on a majority of
//! disks; at most one leader per term (where a term names one leader); the
//! protocol's own invariants that can judge one state (run fresh on each);
//! no panic in protocol code. "Sometimes" properties (a command was
//! applied, a leader existed) are reported, so that bounds that prune
//! everything interesting are noticed.
//!
//! The search is breadth first (a shortest counterexample, on several
//! threads) or depth first (one path in memory), see [`Search`]. States are
//! told apart by a 64-bit fingerprint of their `Hash`, so two states could in
//! principle collide (about one in 2^64 per pair) and one of them go
//! unexplored. There is no symmetry or partial-order reduction yet.
//!
//! ```
//! use quorum_check::{explore, Bounds};
//! use quorum_raft::{Raft, RaftConfig};
//! let bounds = Bounds { commands: 0, crashes: 0, max_depth: 6, ..Bounds::default() };
//! let report = explore::<Raft>(RaftConfig::default(), &bounds, |_| {});
//! assert!(report.counterexample.is_none());
//! assert!(report.states > 100);
//! ```

mod bfs;
mod dfs;
mod explore;
pub mod render;
mod shrink;
mod walk;
mod world;

pub use explore::{explore, replay, Bounds, Counterexample, Report, Search};
pub use world::{Action, Limits, Violation, World};

/// What the checker needs of a protocol besides [`quorum_core::Protocol`]:
/// worlds are copied (`Clone`), told apart by fingerprint (`Hash`, of the
/// node and of its messages; a protocol must hash only what decides its
/// future, in a deterministic order), shown to people (`Debug`), and shared
/// between the search's threads (`Send + Sync`).
pub trait Checkable:
    quorum_core::Protocol<Message: std::hash::Hash + Sync, Config: Sync>
    + Clone
    + std::fmt::Debug
    + std::hash::Hash
    + Send
    + Sync
{
}

impl<P> Checkable for P where
    P: quorum_core::Protocol<Message: std::hash::Hash + Sync, Config: Sync>
        + Clone
        + std::fmt::Debug
        + std::hash::Hash
        + Send
        + Sync
{
}
