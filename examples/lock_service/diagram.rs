//! The story as a Mermaid sequence diagram (`--mermaid`): the two clients,
//! the cluster and the fenced storage as participants, each request and
//! answer an arrow, each fault a note.

use std::fmt::Display;

/// The arrows and notes drawn so far, in order.
#[derive(Default)]
pub struct Diagram {
    lines: Vec<String>,
}

/// Mermaid reads `;` as the end of a statement and `#` as the start of an
/// entity code: keep them out of the text.
fn clean(text: impl Display) -> String {
    text.to_string().replace([';', '#'], ",")
}

impl Diagram {
    /// A request from `from` to `to`.
    pub fn ask(&mut self, from: &str, to: &str, text: impl Display) {
        self.lines.push(format!("    {from}->>{to}: {}", clean(text)));
    }

    /// An answer from `from` to `to`.
    pub fn answer(&mut self, from: &str, to: &str, text: impl Display) {
        self.lines.push(format!("    {from}-->>{to}: {}", clean(text)));
    }

    /// Something that happens to a participant.
    pub fn note(&mut self, over: &str, text: impl Display) {
        self.lines.push(format!("    Note over {over}: {}", clean(text)));
    }

    /// The whole diagram.
    pub fn render(&self) -> String {
        let mut out = String::from("sequenceDiagram\n");
        out.push_str("    participant alice\n    participant bob\n");
        out.push_str("    participant cluster as raft cluster (n1, n2, n3)\n");
        out.push_str("    participant storage as fenced storage\n");
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}
