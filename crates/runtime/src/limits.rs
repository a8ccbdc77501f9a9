//! Limits on client connections, and the counts of each time a limit of the
//! client port or the peer port was hit.
//!
//! Each connection is its own task with its own buffers, so a slow client
//! delays nobody else; what it can hold is a connection slot and its
//! buffers. So: at most `max_clients` connections (one more is answered
//! `-ERR max number of clients reached` and closed), a request once begun
//! must arrive whole within `request_timeout` (a client sending a byte a
//! second is cut off however long it keeps that up), an idle connection is
//! closed after `idle_timeout` if one is set, and replies to a pipeline are
//! written out every `OUTPUT_FLUSH_BYTES` rather than gathered whole.
//! Request sizes are `RequestLimits` (request.rs).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Replies waiting to be written are flushed once they reach this size.
pub const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;

/// Limits on the client port's connections.
#[derive(Clone, Debug)]
pub struct ClientLimits {
    /// Connections served at once.
    pub max_clients: usize,
    /// Time from a request's first byte to its last.
    pub request_timeout: Duration,
    /// Time a connection may sit without a request (`None`: forever).
    pub idle_timeout: Option<Duration>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits { max_clients: 10_000, request_timeout: Duration::from_secs(30), idle_timeout: None }
    }
}

/// What the client port counts; `INFO` shows it.
#[derive(Debug, Default)]
pub struct ClientCounters {
    /// Connections open now.
    pub connected: AtomicUsize,
    /// Connections refused at `max_clients`.
    pub rejected: AtomicU64,
    /// Connections closed by `request_timeout` or `idle_timeout`.
    pub timed_out: AtomicU64,
    /// Failed `AUTH` attempts.
    pub auth_failures: AtomicU64,
    /// Requests refused for their size.
    pub too_large: AtomicU64,
}

impl ClientCounters {
    /// Takes a connection slot, if one is free; the slot is given back when
    /// the returned guard is dropped.
    pub fn admit(self: &Arc<Self>, limits: &ClientLimits) -> Option<Slot> {
        let taken = self
            .connected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limits.max_clients).then_some(n + 1));
        match taken {
            Ok(_) => Some(Slot(self.clone())),
            Err(_) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Adds one to a count.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The `# Clients` section of `INFO`.
    pub fn info(&self) -> String {
        format!(
            "# Clients\r\nconnected_clients:{}\r\nrejected_connections:{}\r\nclient_timeouts:{}\r\nauth_failures:{}\r\n\
             requests_too_large:{}\r\n",
            self.connected.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
            self.timed_out.load(Ordering::Relaxed),
            self.auth_failures.load(Ordering::Relaxed),
            self.too_large.load(Ordering::Relaxed),
        )
    }
}

/// What the peer port counts; `INFO` shows it when the client port is given it.
#[derive(Debug, Default)]
pub struct PeerCounters {
    /// Inbound connections refused: TLS or quorum handshake failed, timed
    /// out or was refused, or too many handshakes were under way.
    pub refused: AtomicU64,
    /// Inbound links closed for a frame over the limit or one that did not decode.
    pub bad_frames: AtomicU64,
    /// Inbound links closed because a newer one claimed the same member id.
    pub replaced_links: AtomicU64,
    /// Traffic with each peer.
    pub traffic: std::collections::BTreeMap<quorum_core::NodeId, PeerTraffic>,
}

/// Messages and bytes exchanged with one peer, and its send queue.
#[derive(Debug, Default)]
pub struct PeerTraffic {
    /// Messages written to the peer.
    pub sent_messages: AtomicU64,
    /// Bytes written to the peer (frames, with their length prefixes).
    pub sent_bytes: AtomicU64,
    /// Messages read from the peer.
    pub received_messages: AtomicU64,
    /// Bytes read from the peer.
    pub received_bytes: AtomicU64,
    /// Messages waiting to be written, as of the last write.
    pub queued: AtomicU64,
}

impl PeerCounters {
    /// Counters for these peers.
    pub fn for_peers(peers: impl IntoIterator<Item = quorum_core::NodeId>) -> Self {
        PeerCounters { traffic: peers.into_iter().map(|p| (p, PeerTraffic::default())).collect(), ..Default::default() }
    }
}

impl PeerCounters {
    /// The `# Peers` section of `INFO`.
    pub fn info(&self) -> String {
        format!(
            "# Peers\r\nrefused_peer_connections:{}\r\nbad_peer_frames:{}\r\nreplaced_peer_links:{}\r\n",
            self.refused.load(Ordering::Relaxed),
            self.bad_frames.load(Ordering::Relaxed),
            self.replaced_links.load(Ordering::Relaxed),
        )
    }
}

/// A connection slot, given back on drop.
#[derive(Debug)]
pub struct Slot(Arc<ClientCounters>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connected.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_at_the_limit_and_come_back_when_dropped() {
        let counters = Arc::new(ClientCounters::default());
        let limits = ClientLimits { max_clients: 2, ..Default::default() };
        let a = counters.admit(&limits).unwrap();
        let _b = counters.admit(&limits).unwrap();
        assert!(counters.admit(&limits).is_none());
        drop(a);
        assert!(counters.admit(&limits).is_some());
        assert!(counters.info().contains("rejected_connections:1\r\n"));
    }
}
