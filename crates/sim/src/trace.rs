//! The record of a run: every send, delivery, drop, crash and role change.
//!
//! The trace hash folds in every event (and every message's bytes) whether or
//! not the full trace is kept, so two runs of one seed can be compared by one
//! number. The kept trace renders as JSON, text, or a Mermaid `sequenceDiagram`.

use quorum_core::Instant;
use serde::Serialize;
use std::fmt::Write;

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// A message arrived.
    Deliver {
        /// Sender.
        from: u64,
        /// Receiver.
        to: u64,
        /// The message, as `Debug` prints it.
        msg: String,
        /// When it was sent (virtual nanoseconds), to draw its journey.
        sent_ns: u64,
    },
    /// A message was lost.
    Drop {
        /// Sender.
        from: u64,
        /// Intended receiver.
        to: u64,
        /// The message.
        msg: String,
        /// Why: partitioned, lost, crashed, connection reset.
        reason: String,
    },
    /// A node crashed; unsynced writes are gone.
    Crash {
        /// The node.
        node: u64,
    },
    /// A node restarted from its durable state.
    Restart {
        /// The node.
        node: u64,
    },
    /// A crashed node's disk was thrown away: it comes back empty.
    Wipe {
        /// The node.
        node: u64,
    },
    /// A node's role, term or leader changed.
    Role {
        /// The node.
        node: u64,
        /// Its new role.
        role: String,
        /// Its term, ballot round or epoch.
        term: u64,
        /// The leader it believes in.
        leader: Option<u64>,
    },
    /// The network was split (or one link cut).
    Partition {
        /// A description such as `{1,2} | {3,4,5}` or `1 -> 2`.
        cut: String,
    },
    /// Every link was restored.
    Heal,
    /// A fifo connection broke and `node` was told.
    LinkDown {
        /// The node told.
        node: u64,
        /// The peer it lost.
        peer: u64,
    },
    /// A client gave up on its operation (its outcome stays unknown), and
    /// perhaps crashed: it comes back under a new id.
    GiveUp {
        /// Client id.
        client: u64,
        /// It crashed too.
        crashed: bool,
    },
    /// A client sent a request to a node.
    Request {
        /// Client id.
        client: u64,
        /// Node.
        node: u64,
        /// The operation.
        op: String,
    },
    /// A node answered a client.
    Reply {
        /// Client id.
        client: u64,
        /// Node.
        node: u64,
        /// The answer.
        result: String,
    },
    /// A node applied a committed entry.
    Commit {
        /// The node.
        node: u64,
        /// Log index.
        index: u64,
        /// The entry's payload.
        entry: String,
    },
    /// A protocol-specific action ran on a node (`Sim::act`).
    Act {
        /// The node.
        node: u64,
        /// What the action was, as the caller labelled it.
        what: String,
    },
    /// A safety check failed.
    Violation {
        /// Which check.
        check: String,
        /// What it saw.
        detail: String,
    },
}

/// An event and its virtual time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceEvent {
    /// Virtual time in nanoseconds.
    pub at_ns: u64,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
}

/// The recorded events of one run, and its hash.
#[derive(Clone, Debug)]
pub struct Trace {
    keep: bool,
    events: Vec<TraceEvent>,
    hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

impl Trace {
    pub(crate) fn new(keep: bool) -> Self {
        Trace { keep, events: Vec::new(), hash: FNV_OFFSET }
    }

    /// Folds bytes into the hash (FNV-1a, 64-bit).
    pub(crate) fn mix(&mut self, bytes: &[u8]) {
        let mut h = self.hash;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.hash = h;
    }

    /// Folds numbers into the hash.
    pub(crate) fn mix_u64s(&mut self, values: &[u64]) {
        for v in values {
            self.mix(&v.to_le_bytes());
        }
    }

    /// True when the full trace is being kept (so labels are worth formatting).
    pub fn keeps(&self) -> bool {
        self.keep
    }

    pub(crate) fn record(&mut self, at: Instant, what: impl FnOnce() -> What) {
        if self.keep {
            self.events.push(TraceEvent { at_ns: at.as_nanos(), what: what() });
        }
    }

    /// The hash of everything that happened: equal for equal runs.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The kept events (empty unless the run was configured with `trace: true`).
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// The events as a JSON array.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.events).expect("trace events serialize")
    }

    /// One line per event.
    pub fn to_text(&self) -> String {
        render_text(&self.events)
    }

    /// A Mermaid `sequenceDiagram` of the run: deliveries as arrows, losses as
    /// crossed arrows, crashes, restarts, role changes and partitions as notes.
    pub fn to_mermaid(&self, nodes: usize) -> String {
        mermaid(&self.events, nodes)
    }
}

/// A plain-words description of one event.
pub fn describe(what: &What) -> String {
    match what {
        What::Deliver { from, to, msg, .. } => format!("n{from} -> n{to}: {msg}"),
        What::Drop { from, to, msg, reason } => format!("n{from} -x n{to}: {msg} ({reason})"),
        What::Crash { node } => format!("n{node} crashes"),
        What::Restart { node } => format!("n{node} restarts from its disk"),
        What::Wipe { node } => format!("n{node}'s disk is wiped"),
        What::Role { node, role, term, leader } => match leader {
            Some(l) => format!("n{node} is {role} in term {term} (leader n{l})"),
            None => format!("n{node} is {role} in term {term}"),
        },
        What::Partition { cut } => format!("partition {cut}"),
        What::Heal => "network healed".to_string(),
        What::LinkDown { node, peer } => format!("n{node} loses its connection to n{peer}"),
        What::Request { client, node, op } => format!("c{client} -> n{node}: {op}"),
        What::Reply { client, node, result } => format!("n{node} -> c{client}: {result}"),
        What::GiveUp { client, crashed: false } => format!("c{client} gives up on its operation"),
        What::GiveUp { client, crashed: true } => format!("c{client} gives up on its operation and crashes"),
        What::Commit { node, index, entry } => format!("n{node} applies #{index} {entry}"),
        What::Act { node, what } => format!("n{node} is told: {what}"),
        What::Violation { check, detail } => format!("VIOLATION {check}: {detail}"),
    }
}

/// Shortens a message's `Debug` text for a diagram: `Vote(VoteRequest { .. })`
/// becomes `VoteRequest { .. }`, and `field: false` pairs are left out.
pub fn compact(msg: &str) -> String {
    let mut s = msg.to_string();
    if let Some(open) = s.find('(') {
        let inner = &s[open + 1..];
        let starts_struct =
            inner.split_whitespace().next().is_some_and(|w| w.chars().next().is_some_and(char::is_uppercase))
                && inner.contains(" {");
        if starts_struct && s.ends_with(')') && !s[..open].contains(' ') {
            s = inner[..inner.len() - 1].to_string();
        }
    }
    const FLAG: &str = ": false";
    while let Some(pos) = s.find(FLAG) {
        let name_start = s[..pos].rfind([' ', '{', '(']).map_or(0, |p| p + 1);
        let flag_end = pos + FLAG.len();
        // Take the separating ", " with the pair: the one before it if there is one.
        let (from, to) = if s[..name_start].ends_with(", ") {
            (name_start - 2, flag_end)
        } else if s[flag_end..].starts_with(", ") {
            (name_start, flag_end + 2)
        } else {
            (name_start, flag_end)
        };
        s.replace_range(from..to, "");
    }
    s.replace("  ", " ").replace("{ }", "{}")
}

/// Mermaid treats `;` and `#` specially inside message text.
fn label(s: &str) -> String {
    let s = compact(s);
    let mut out: String = s.chars().map(|c| if matches!(c, ';' | '#') { ',' } else { c }).collect();
    if out.chars().count() > 90 {
        out = out.chars().take(87).collect::<String>() + "...";
    }
    out
}

/// Renders any list of events (for example, a filtered trace) as one line each.
pub fn render_text(events: &[TraceEvent]) -> String {
    let mut s = String::new();
    for e in events {
        let _ = writeln!(s, "{:>10.3}ms  {}", e.at_ns as f64 / 1e6, describe(&e.what));
    }
    s
}

/// Renders any list of events (for example, a filtered trace) as a Mermaid `sequenceDiagram`.
pub fn render_mermaid(events: &[TraceEvent], nodes: usize) -> String {
    mermaid(events, nodes)
}

fn mermaid(events: &[TraceEvent], nodes: usize) -> String {
    let mut s = String::from("sequenceDiagram\n");
    let clients: std::collections::BTreeSet<u64> = events
        .iter()
        .filter_map(|e| match &e.what {
            What::Request { client, .. } | What::Reply { client, .. } | What::GiveUp { client, .. } => Some(*client),
            _ => None,
        })
        .collect();
    for c in &clients {
        let _ = writeln!(s, "    participant C{c} as client {c}");
    }
    for n in 1..=nodes {
        let _ = writeln!(s, "    participant N{n} as n{n}");
    }
    let all = format!("N1,N{nodes}");
    for e in events {
        let t = format!("{:.1}ms", e.at_ns as f64 / 1e6);
        let line = match &e.what {
            What::Deliver { from, to, msg, .. } => format!("N{from}->>N{to}: {}", label(msg)),
            What::Drop { from, to, msg, reason } => format!("N{from}--xN{to}: {} ({reason})", label(msg)),
            What::Crash { node } => format!("Note over N{node}: {t} crash"),
            What::Restart { node } => format!("Note over N{node}: {t} restart"),
            What::Wipe { node } => format!("Note over N{node}: {t} disk wiped"),
            What::Role { node, role, term, .. } => format!("Note over N{node}: {t} {role} (term {term})"),
            What::Partition { cut } => format!("Note over {all}: {t} partition {}", label(cut)),
            What::Heal => format!("Note over {all}: {t} healed"),
            What::LinkDown { node, peer } => format!("Note over N{node}: link to n{peer} down"),
            What::Request { client, node, op } => format!("C{client}->>N{node}: {}", label(op)),
            What::Reply { client, node, result } => format!("N{node}-->>C{client}: {}", label(result)),
            What::GiveUp { client, crashed } => {
                format!("Note over C{client}: {t} gives up{}", if *crashed { ", crashes" } else { "" })
            }
            What::Commit { node, index, entry } => format!("Note over N{node}: apply {index} {}", label(entry)),
            What::Act { node, what } => format!("Note over N{node}: {t} {}", label(what)),
            What::Violation { check, detail } => format!("Note over {all}: VIOLATION {check}: {}", label(detail)),
        };
        let _ = writeln!(s, "    {line}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_content_and_order() {
        let mut a = Trace::new(false);
        let mut b = Trace::new(false);
        a.mix_u64s(&[1, 2]);
        b.mix_u64s(&[2, 1]);
        assert_ne!(a.hash(), b.hash());
        let mut c = Trace::new(true);
        c.mix_u64s(&[1, 2]);
        assert_eq!(a.hash(), c.hash(), "keeping the trace must not change the hash");
    }

    #[test]
    fn compact_unwraps_the_variant_and_drops_false_flags() {
        assert_eq!(
            compact("Vote(VoteRequest { term: 1, last_index: 0, pre_vote: false, transfer: false })"),
            "VoteRequest { term: 1, last_index: 0 }"
        );
        assert_eq!(
            compact("VoteReply(VoteReply { term: 1, granted: false, pre_vote: false })"),
            "VoteReply { term: 1 }"
        );
        assert_eq!(compact("Ack { last: 3 }"), "Ack { last: 3 }");
        assert_eq!(compact("TimeoutNow { term: 2 }"), "TimeoutNow { term: 2 }");
    }

    #[test]
    fn mermaid_escapes_special_characters_and_draws_losses() {
        let mut t = Trace::new(true);
        t.record(Instant::from_nanos(1_000_000), || What::Deliver {
            from: 1,
            to: 2,
            msg: "Append{a; #3}".into(),
            sent_ns: 0,
        });
        t.record(Instant::from_nanos(2_000_000), || What::Drop {
            from: 2,
            to: 1,
            msg: "Ack".into(),
            reason: "lost".into(),
        });
        t.record(Instant::from_nanos(3_000_000), || What::Crash { node: 1 });
        let m = t.to_mermaid(2);
        assert!(m.starts_with("sequenceDiagram\n"));
        assert!(m.contains("N1->>N2: Append{a, ,3}"), "{m}");
        assert!(m.contains("N2--xN1: Ack (lost)"), "{m}");
        assert!(m.contains("Note over N1: 3.0ms crash"), "{m}");
    }
}
