//! What is on the wire right now: the messages and client requests and
//! answers sent but not yet handled, for a picture of the run (`quorum viz`).

use crate::sim::{Event, Sim};
use crate::Workload;
use quorum_core::{Instant, NodeId, Protocol};
use serde::Serialize;

/// One end of a flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Party {
    /// A node, numbered from 1.
    Node(u64),
    /// A client, numbered from 1 as traces number them.
    Client(u64),
}

/// A message, request or answer on its way.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flight {
    /// Who sent it.
    pub from: Party,
    /// Who it is for.
    pub to: Party,
    /// When it was sent (virtual nanoseconds).
    pub sent_ns: u64,
    /// When it arrives (virtual nanoseconds); a frozen receiver holds it
    /// from then until it thaws.
    pub at_ns: u64,
    /// What it is, as `Debug` prints it.
    pub what: String,
    /// Waiting at a frozen receiver.
    pub held: bool,
}

impl<P: Protocol, W: Workload> Sim<P, W> {
    /// Whether the link from `from` to `to` is cut ([`Sim::partition`],
    /// [`Sim::cut_one_way`]) until the next [`Sim::heal`].
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.net.is_cut(self.index(from), self.index(to))
    }

    /// The extra delay on every message to and from node `id` ([`Sim::set_node_delay`]).
    pub fn node_delay(&self, id: NodeId) -> quorum_core::Duration {
        self.net.extra_delay(self.index(id))
    }

    /// Everything sent and not yet handled, in order of arrival.
    pub fn flights(&self) -> Vec<Flight> {
        let queued = self.queue.iter().filter_map(|(at, e)| flight(at, e, false));
        let held = self.hosts.iter().flat_map(|h| h.held.iter().filter_map(|e| flight(self.now, e, true)));
        let mut all: Vec<Flight> = queued.chain(held).collect();
        all.sort_by_key(|f| (f.at_ns, f.sent_ns));
        all
    }
}

fn flight<M: std::fmt::Debug>(at: Instant, event: &Event<M>, held: bool) -> Option<Flight> {
    let node = |i: &usize| Party::Node(*i as u64 + 1);
    let client = |c: &usize| Party::Client(*c as u64 + 1);
    let (from, to, sent, what) = match event {
        Event::Deliver { from, to, msg, sent, .. } => (node(from), node(to), *sent, format!("{msg:?}")),
        Event::Request { node: n, req } => (client(&req.client), node(n), req.sent, "request".to_string()),
        Event::Answer { node: n, client: c, answer, sent, .. } => {
            (node(n), client(c), *sent, crate::client::answer_label(answer))
        }
        _ => return None,
    };
    Some(Flight { from, to, sent_ns: sent.as_nanos(), at_ns: at.as_nanos(), what, held })
}
