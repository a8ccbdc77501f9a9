//! A scenario's outcome: what happened in plain words, the claims it makes
//! (each checked), and the trace to draw.

use quorum_core::Instant;
use quorum_sim::{render_mermaid, render_text, TraceEvent};
use std::fmt::Write;

/// The story one scenario tells.
#[derive(Clone, Debug)]
pub struct Story {
    /// A title.
    pub title: String,
    /// Narration: (virtual time, sentence), in order.
    pub lines: Vec<(Instant, String)>,
    /// The claims the story makes, and whether each held.
    pub checks: Vec<(String, bool)>,
    events: Vec<TraceEvent>,
    nodes: usize,
}

impl Story {
    /// An empty story.
    pub fn new(title: impl Into<String>) -> Self {
        Story { title: title.into(), lines: Vec::new(), checks: Vec::new(), events: Vec::new(), nodes: 0 }
    }

    /// Adds a sentence at a virtual time.
    pub fn say(&mut self, at: Instant, text: impl Into<String>) {
        self.lines.push((at, text.into()));
    }

    /// Records a claim and whether it held. A story whose claims fail is a failing example.
    pub fn check(&mut self, claim: impl Into<String>, holds: bool) -> bool {
        self.checks.push((claim.into(), holds));
        holds
    }

    /// Keeps the trace events the diagram should show.
    pub fn set_events(&mut self, events: impl IntoIterator<Item = TraceEvent>, nodes: usize) {
        self.events = events.into_iter().collect();
        self.nodes = nodes;
    }

    /// The trace events kept for the diagram.
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// The cluster size the events are drawn for.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// True when every claim held.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|(_, ok)| *ok)
    }

    /// The narration and the checks, as text.
    pub fn narration(&self) -> String {
        let mut s = format!("{}\n{}\n", self.title, "=".repeat(self.title.chars().count()));
        for (at, line) in &self.lines {
            let _ = writeln!(s, "{:>9.1} ms  {line}", at.as_nanos() as f64 / 1e6);
        }
        s.push_str("\nWhat this run shows:\n");
        for (claim, ok) in &self.checks {
            let _ = writeln!(s, "  [{}] {claim}", if *ok { "ok" } else { "FAILED" });
        }
        s
    }

    /// The run as a Mermaid `sequenceDiagram`.
    pub fn mermaid(&self) -> String {
        render_mermaid(&self.events, self.nodes)
    }

    /// The run's events, one line each.
    pub fn trace_text(&self) -> String {
        render_text(&self.events)
    }

    /// The run's events as JSON.
    pub fn trace_json(&self) -> String {
        serde_json::to_string_pretty(&self.events).expect("trace events serialize")
    }
}
