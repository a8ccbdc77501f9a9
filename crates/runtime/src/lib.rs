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
//!   while sending to followers in parallel, applies commits to the
//!   [`quorum_core::KvStore`] and answers clients; a follower forwards client
//!   requests to its leader over the peer link ([`wire`]).
//! - [`server`]: the client port, speaking the Redis protocol (RESP2), so
//!   `redis-cli`, `redis-benchmark` and every Redis client work against a cluster.
//!
//! [`cli`] holds the `quorum node` and `quorum cluster` commands.
//!
//! Using it as a library with your own transport or storage: build a
//! [`Node`] from a [`NodeConfig`], any [`quorum_core::Transport`] carrying
//! [`wire::Wire`] frames and any [`quorum_core::Storage`], run it with
//! [`Node::run`], and talk to it through the [`NodeHandle`] (or serve it with
//! [`server::serve`]). `tests/cluster.rs` and `tests/driver.rs` do exactly that.
#![deny(missing_docs)]

pub mod cli;
pub mod node;
pub mod server;
pub mod service;
pub mod storage_thread;
pub mod tcp;
pub mod wal;
pub mod wire;

pub use node::{Node, NodeConfig, NodeHandle};
pub use service::Service;
pub use tcp::{TcpConfig, TcpTransport};

pub use wal::Wal;
