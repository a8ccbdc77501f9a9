//! Test support: a tiny but correct protocol and helpers to run nodes in-process.
#![allow(dead_code)]

pub mod cluster;
pub mod fixed_leader;

use quorum_core::NodeId;
use std::net::SocketAddr;

/// A free 127.0.0.1 address (bind to port 0 and let go).
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `1..=n` as node ids.
pub fn members(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}
