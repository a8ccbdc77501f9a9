//! Test support: a tiny but correct protocol and helpers to run nodes in-process.
#![allow(dead_code)]

pub mod cluster;
pub mod fixed_leader;

use quorum_core::NodeId;
use std::net::SocketAddr;

/// A free 127.0.0.1 address (see `free_loopback_addr` for why not port 0).
pub fn free_addr() -> SocketAddr {
    quorum_runtime::tcp::free_loopback_addr().unwrap()
}

/// `1..=n` as node ids.
pub fn members(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}
