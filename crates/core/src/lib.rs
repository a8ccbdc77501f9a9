//! # quorum-core: the shared, sans-IO vocabulary of quorum
//!
//! Every protocol in quorum is a plain deterministic struct implementing
//! [`Protocol`]. It never reads a clock, opens a socket, touches a file or
//! spawns a task. A *driver* — the simulator (`quorum-sim`) or the tokio
//! runtime (`quorum-runtime`) — feeds it inputs (`on_message`, `on_timer`,
//! `propose`, `read`, `on_persisted`, `on_link_down`, `on_snapshot`), each with
//! the current [`Instant`], and carries out the [`Effects`] it returns: sends,
//! durable writes, committed entries, read answers. Randomness comes from a
//! seed in [`Init`], so the same inputs give the same outputs, always.
//!
//! The durability rule (Raft thesis §3.8, applied to every protocol): nothing
//! that depends on a write leaves the node before the write is durable. A
//! protocol expresses this with [`Effects::send_durable`]; the driver holds
//! such a message in a [`DurabilityGate`] until every write issued before it
//! is on disk. A leader may use [`Effects::send`] to replicate entries while
//! its own write is in flight, counting itself only after `on_persisted`.
//!
//! ## How the four protocols map onto the trait
//!
//! | | Basic Paxos | Multi-Paxos | Raft | Zab |
//! |---|---|---|---|---|
//! | [`Stamp`] | accepted ballot `(round, node)` per slot | ballot `(round, node)` | `(term, 0)` | zxid `(epoch, counter)` |
//! | log shape | independent slots; `Entry` per slot in storage | sparse window above a contiguous committed prefix | contiguous [`Log`] after the snapshot | contiguous [`Log`] (history) |
//! | hard state ([`WriteBatch::hard_state`]) | promises of undecided slots, committed prefix | promised ballot, commit point | term, vote | acceptedEpoch (and its leader), currentEpoch |
//! | [`Protocol::next_timer`] drives | proposer retry with backoff | heartbeats; follower suspicion → Phase 1 | randomized election, heartbeat, check-quorum | election rounds, pings, sync limits |
//! | `propose` on a non-leader | accepted: any node proposes | `NotLeader { leader_hint }` | `NotLeader { leader_hint }` | `NotLeader { leader_hint }` |
//! | linearizable [`Protocol::read`] | `Unsupported`: read through the log | through the log, or a leader lease (optional) | ReadIndex (or an optional lease) → `ReadReady { index }` | sync → `ReadReady { index }` |
//! | [`Protocol::LINKS`] | `Datagram` | `Datagram` | `Datagram` | `Fifo`: `on_link_down` sends a follower back to recovery |
//! | `on_link_down` from the leader | unused | a hint: ask peers (`Suspect`), then Phase 1 early | a hint: PreVote early | recovery, and a hint the leader died |
//! | [`Status::term`] | highest ballot round seen | ballot round | term | epoch |
//!
//! Commands leave a protocol only as [`Effect::Commit`] entries, in index
//! order, once each. The driver applies them to its [`StateMachine`] (the
//! [`KvStore`] in every test and benchmark) and answers the client waiting on
//! this node. A read served outside the log comes back as
//! [`Effect::ReadReady`] `{ index }` and is answered once the state machine
//! has applied `index`.
//!
//! Protocol-specific safety properties (one leader per term, one value chosen
//! per slot, Zab's primary order) are [`Invariant`]s that a protocol crate
//! returns from [`Protocol::invariants`]; the simulator checks them after
//! every step, beside its own protocol-independent checks.
#![deny(missing_docs)]

/// `Debug` prints what `Display` prints: for small value types (ids, times)
/// whose display is already terse.
macro_rules! debug_is_display {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        }
    )*};
}

pub mod batch;
mod command;
mod effects;
mod expiry;
mod ids;
mod log;
mod membership;
pub mod planted;
mod protocol;
pub mod quorum;
mod rng;
pub mod settings;
mod state_machine;
mod storage;
mod time;
mod transport;
mod writes;

pub use command::Command;
pub use effects::{DurabilityGate, Effect, Effects, ReadId};
pub use expiry::{ExpireIf, Ttl};
pub use ids::{ClientId, NodeId};
pub use log::{Entry, Log, Payload, Stamp};
pub use membership::{
    check_single_change, ChangeError, Configs, Membership, MembershipChange, SnapshotMeta, MAX_ADDRESS_LEN, MAX_MEMBERS,
};
pub use protocol::{
    node_of, Init, InitError, Invariant, LinkKind, NotLeader, ProposeError, Protocol, ReadError, Role, Status,
    StepInvariant,
};
pub use quorum::{majority, Majority, VoteResult};
pub use rng::Rng;
pub use state_machine::{
    glob_match, key_hash, KeyKind, KvOp, KvResult, KvStore, Service, SnapshotError, StateMachine, MAX_SWEPT,
};
pub use storage::{MemStorage, Snapshot, Storage, StorageError, Stored, StoredState, WriteBatch};
pub use time::{Duration, Instant};
pub use transport::{ChannelNetwork, ChannelTransport, Incoming, Transport, TransportError};
pub use writes::WriteQueue;

/// Re-exported so protocol crates and drivers agree on one version.
pub use bytes::Bytes;
