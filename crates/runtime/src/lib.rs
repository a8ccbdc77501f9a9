//! # quorum-runtime: run any quorum protocol as a real node
//!
//! The simulator proves a protocol; this crate runs the very same struct over
//! real disks, sockets and clocks. It has four parts, one per module:
//!
//! - [`wal`]: the write-ahead log, a [`quorum_core::Storage`] on segment files
//!   (length + CRC32 + postcard records, group commit with one fsync, atomic
//!   snapshot files, torn-tail recovery that refuses mid-log corruption).
//! - [`tcp`]: the peer [`quorum_core::Transport`] over TCP (length-prefixed
//!   postcard frames, a handshake carrying cluster id, node id, protocol name
//!   and version, reconnect with exponential backoff, frame size limit).
//! - [`node`]: [`Node`], a single task that owns the protocol: it runs its
//!   timers, carries out its effects in order (holding durable sends in a
//!   [`quorum_core::DurabilityGate`]), group-commits writes on a storage thread
//!   while sending to followers in parallel, applies commits to the state
//!   machine (any [`Service`]; [`quorum_core::KvStore`] by default) and answers
//!   clients; a follower forwards client requests to its leader over the peer
//!   link ([`wire`]).
//! - [`server`]: the client port of the key-value store, speaking the Redis
//!   protocol (RESP2), so `redis-cli`, `redis-benchmark` and every Redis client
//!   work against a cluster.
//!
//! The `quorum node` and `quorum cluster` commands that run this driver from
//! flags and a TOML file live in the quorum-cli crate.
//!
//! ## Embedding your own state machine
//!
//! Implement [`quorum_core::StateMachine`] (`apply`, `snapshot`, `restore`)
//! and [`Service`] (`query`, `cached_response`) for your type, then build a
//! [`Node`] around it with any [`quorum_core::Transport`] carrying
//! [`wire::Wire`] frames ([`TcpTransport`]) and any [`quorum_core::Storage`]
//! ([`Wal`]), run it with [`Node::run`], and talk to it through its
//! [`NodeHandle`]:
//!
//! ```text
//! let transport = TcpTransport::start(listener, TcpConfig::new(id, "locks", Raft::NAME, peers), Default::default())?;
//! let wal = Wal::open(data_dir)?;
//! let (node, handle) = Node::<Raft, _, LockService>::new(NodeConfig::new(id, members), RaftConfig::default(), transport, wal)?;
//! tokio::spawn(node.run(std::future::pending()));
//! let answer = handle.command(client, seq, request_bytes).await; // through the log, answered by `apply`
//! let answer = handle.query(client, seq, query_bytes).await;     // ReadIndex, answered by `Service::query`
//! ```
//!
//! Commands are ordered through the log and answered with the bytes `apply`
//! returned; queries are answered from the state once it has applied the
//! index the protocol confirmed (or through the log, for protocols without a
//! read path); a retry with the same `(client, seq)` gets the first answer.
//! `apply` must be deterministic: no clocks, no randomness; time a machine
//! needs (leases) travels in the commands. The example
//! `cargo run --example lock_service` (a lock service with fencing tokens on
//! a 3-node Raft cluster over TCP) does all of this; `tests/cluster.rs` and
//! `tests/driver.rs` drive nodes with the key-value store.
#![deny(missing_docs)]

pub mod auth;
pub mod backup;
mod handshake;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod node;
mod reply;
pub mod request;
pub mod server;
pub mod service;
pub mod storage_thread;
pub mod tcp;
pub mod tls;
pub mod wal;
pub mod wire;

pub use node::{Node, NodeConfig, NodeHandle};
pub use service::Service;
pub use tcp::{TcpConfig, TcpTransport};

pub use wal::Wal;
