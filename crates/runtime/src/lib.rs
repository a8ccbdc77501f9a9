//! # quorum-runtime: run any quorum protocol as a real node
//!
//! The simulator proves a protocol; this crate runs the very same struct over
//! real disks, sockets and clocks. It has four parts, one per file:
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
//!   [`quorum_core::KvStore`] and answers clients.
//! - [`server`]: the client port, speaking the Redis protocol (RESP2), so
//!   `redis-cli`, `redis-benchmark` and every Redis client work against a cluster.
//!
//! [`cli`] holds the `quorum node` and `quorum cluster` commands.
#![deny(missing_docs)]

pub mod cli;
pub mod node;
pub mod server;
pub mod storage_thread;
pub mod tcp;
pub mod wal;
pub mod wire;

pub use node::{Node, NodeConfig, NodeHandle};
pub use tcp::{TcpConfig, TcpTransport};

pub use wal::Wal;
