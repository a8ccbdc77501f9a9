//! What a running node measures, and its rendering in the Prometheus text
//! format (served on `--metrics`, see `http.rs`).
//!
//! Everything is a relaxed atomic: the node task, the storage thread and the
//! client sessions record without locks, and a scrape reads whatever the
//! counts are at that moment.

use crate::limits::{ClientCounters, PeerCounters, PeerTraffic};
use quorum_core::Role;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative; the last counts those above every bound).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let at = BUCKETS.iter().position(|&bound| seconds <= bound).unwrap_or(BUCKETS.len());
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// What the node task and its storage thread count.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// From a client command reaching the node to its answer (committed and applied).
    pub commit_latency: Histogram,
    /// One group commit: the write and its fsync.
    pub fsync_latency: Histogram,
    /// Client commands proposed by this node.
    pub proposals: AtomicU64,
    /// Entries applied to the state machine.
    pub applied_entries: AtomicU64,
    /// Times the leader this node believes in changed (to another node or to none).
    pub leader_changes: AtomicU64,
    /// Times this node became a candidate (or its protocol's equivalent).
    pub elections: AtomicU64,
    /// Snapshots this node took of its state machine.
    pub snapshots: AtomicU64,
    /// Bytes of the last snapshot taken.
    pub snapshot_bytes: AtomicU64,
}

impl NodeMetrics {
    /// Adds one to a count.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The node's state as `/metrics` and `/ready` see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// The protocol's name.
    pub protocol: &'static str,
    /// This node's role.
    pub role: Role,
    /// Raft term, ballot round or Zab epoch.
    pub term: u64,
    /// The leader this node believes in.
    pub leader: Option<u64>,
    /// The highest index known committed.
    pub commit_index: u64,
    /// The highest commit index the leader has announced to this node
    /// (`None`: it has not yet, as while a node synchronises with it).
    pub leader_commit: Option<u64>,
    /// The highest index applied to the state machine.
    pub applied_index: u64,
}

impl NodeView {
    /// Ready to serve: a leader is known (or none is needed) and this node
    /// has applied everything it knows committed and everything the leader
    /// announced committed (a node that has just rejoined knows little).
    pub fn ready(&self) -> bool {
        self.not_ready_because().is_none()
    }

    /// Why the node is not ready, or `None` if it is.
    pub fn not_ready_because(&self) -> Option<String> {
        // A Basic Paxos peer needs no leader: any peer proposes.
        if self.leader.is_none() && self.role != Role::Peer {
            return Some("no leader known".into());
        }
        let Some(leader_commit) = self.leader_commit else {
            return Some("waiting for the leader's commit point (synchronising)".into());
        };
        let target = leader_commit.max(self.commit_index);
        (self.applied_index < target).then(|| format!("applied {} of {target} committed", self.applied_index))
    }
}

/// Picks one count out of a peer's traffic.
type TrafficField = fn(&PeerTraffic) -> &AtomicU64;

/// Everything `/metrics` shows, in the Prometheus text format (version 0.0.4).
pub fn render(view: &NodeView, node: &NodeMetrics, clients: &ClientCounters, peers: &PeerCounters) -> String {
    let mut out = String::with_capacity(4096);
    let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
    };
    let _ = writeln!(
        out,
        "# HELP quorum_node_info The protocol and role of this node.\n# TYPE quorum_node_info gauge\n\
         quorum_node_info{{protocol=\"{}\",role=\"{}\"}} 1",
        view.protocol, view.role
    );
    gauge(&mut out, "quorum_term", "Raft term, Multi-Paxos or Basic Paxos ballot round, or Zab epoch.", view.term);
    gauge(&mut out, "quorum_leader_id", "The leader this node believes in (0: none).", view.leader.unwrap_or(0));
    gauge(&mut out, "quorum_commit_index", "The highest log index known committed.", view.commit_index);
    gauge(&mut out, "quorum_applied_index", "The highest log index applied to the state machine.", view.applied_index);
    gauge(&mut out, "quorum_ready", "1 when a leader is known and every known commit is applied.", view.ready() as u64);
    counter(&mut out, "quorum_proposals_total", "Client commands this node proposed.", &node.proposals);
    counter(&mut out, "quorum_applied_entries_total", "Entries applied to the state machine.", &node.applied_entries);
    counter(
        &mut out,
        "quorum_leader_changes_total",
        "Changes of the leader this node believes in.",
        &node.leader_changes,
    );
    counter(&mut out, "quorum_elections_total", "Times this node stood for election.", &node.elections);
    counter(&mut out, "quorum_snapshots_total", "Snapshots this node took of its state machine.", &node.snapshots);
    gauge(
        &mut out,
        "quorum_snapshot_bytes",
        "Bytes of the last snapshot taken.",
        node.snapshot_bytes.load(Ordering::Relaxed),
    );
    node.commit_latency.render(
        &mut out,
        "quorum_commit_latency_seconds",
        "From a client command reaching this node to its answer.",
    );
    node.fsync_latency.render(&mut out, "quorum_fsync_latency_seconds", "One group commit: write and fsync.");
    let connected = clients.connected.load(Ordering::Relaxed) as u64;
    gauge(&mut out, "quorum_client_connections", "Client connections open.", connected);
    let client_counts = [
        ("quorum_client_rejected_total", "Client connections refused at --max-clients.", &clients.rejected),
        ("quorum_client_timeouts_total", "Client connections closed by a timeout.", &clients.timed_out),
        ("quorum_auth_failures_total", "Failed AUTH attempts.", &clients.auth_failures),
        ("quorum_requests_too_large_total", "Client requests refused for their size.", &clients.too_large),
        ("quorum_peer_refused_total", "Inbound peer connections refused.", &peers.refused),
        ("quorum_peer_bad_frames_total", "Inbound peer links closed for a bad frame.", &peers.bad_frames),
        ("quorum_peer_replaced_links_total", "Inbound peer links replaced by a newer one.", &peers.replaced_links),
    ];
    for (name, help, value) in client_counts {
        counter(&mut out, name, help, value);
    }
    let per_peer: [(&str, &str, &str, TrafficField); 5] = [
        ("quorum_peer_sent_messages_total", "counter", "Messages written to a peer.", |t| &t.sent_messages),
        ("quorum_peer_sent_bytes_total", "counter", "Bytes written to a peer.", |t| &t.sent_bytes),
        ("quorum_peer_received_messages_total", "counter", "Messages read from a peer.", |t| &t.received_messages),
        ("quorum_peer_received_bytes_total", "counter", "Bytes read from a peer.", |t| &t.received_bytes),
        ("quorum_peer_queue_depth", "gauge", "Messages waiting to be written to a peer.", |t| &t.queued),
    ];
    for (name, kind, help, field) in per_peer {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (peer, traffic) in &peers.traffic {
            let _ = writeln!(out, "{name}{{peer=\"{}\"}} {}", peer.0, field(traffic).load(Ordering::Relaxed));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_once_in_cumulative_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"5\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\nx_sum 10.00305"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn ready_needs_a_leader_and_every_known_commit_applied() {
        let view = |role, leader, commit_index, applied_index| NodeView {
            protocol: "raft",
            role,
            term: 1,
            leader,
            commit_index,
            leader_commit: Some(commit_index),
            applied_index,
        };
        assert!(view(Role::Follower, Some(1), 10, 10).ready());
        assert!(!view(Role::Follower, Some(1), 10, 9).ready(), "catching up");
        assert!(!view(Role::Candidate, None, 10, 10).ready(), "no leader");
        assert!(view(Role::Peer, None, 3, 3).ready(), "Basic Paxos needs no leader");
        let rejoined = NodeView { leader_commit: Some(4000), ..view(Role::Follower, Some(1), 64, 64) };
        assert_eq!(rejoined.not_ready_because().as_deref(), Some("applied 64 of 4000 committed"));
        let syncing = NodeView { leader_commit: None, ..view(Role::Follower, Some(1), 0, 0) };
        assert!(!syncing.ready(), "the leader has not said how far it is");
    }

    #[test]
    fn every_sample_line_follows_its_help_and_type() {
        let view = NodeView {
            protocol: "raft",
            role: Role::Leader,
            term: 2,
            leader: Some(1),
            commit_index: 5,
            leader_commit: Some(5),
            applied_index: 5,
        };
        let peers = PeerCounters::for_peers([quorum_core::NodeId(2), quorum_core::NodeId(3)]);
        let text = render(&view, &NodeMetrics::default(), &ClientCounters::default(), &peers);
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
                assert!(typed.contains(name) || typed.contains(family), "{line} has no TYPE line");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
        assert!(text.contains("quorum_ready 1\n"));
        assert!(text.contains("quorum_peer_sent_bytes_total{peer=\"3\"} 0\n"), "{text}");
    }
}
