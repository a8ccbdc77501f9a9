//! A counterexample for people: a numbered step list, and a Mermaid
//! sequence diagram (paste it into any Mermaid viewer, or a GitHub comment).

use crate::explore::Counterexample;
use crate::world::Action;
use std::fmt::Write;

/// Longest message label shown; the rest is cut with an ellipsis.
const LABEL_CHARS: usize = 120;

fn short(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_string();
    }
    let cut: String = label.chars().take(LABEL_CHARS).collect();
    format!("{cut}…")
}

fn describe(action: &Action) -> String {
    match action {
        Action::Deliver { from, to, label, .. } => format!("{from} -> {to}: {}", short(label)),
        Action::Timer(id) => format!("{id}: timer fires"),
        Action::Sync(id) => format!("{id}: disk syncs its oldest write"),
        Action::Crash(id) => format!("{id}: crashes (unsynced writes lost)"),
        Action::Restart(id) => format!("{id}: restarts from its disk"),
        Action::Propose { node, command } => format!("client proposes v{command} at {node}"),
        Action::Change { leader, change } => format!("operator asks {leader}: {change}"),
        Action::Wipe { node, leader } => {
            format!("{node}: disk replaced, rejoins with {leader}'s voters (it does not vote there)")
        }
    }
}

/// "property broken: detail", then one numbered line per step.
pub fn steps(cx: &Counterexample) -> String {
    let mut s = format!("{} broken: {}\n", cx.violation.property, cx.violation.detail);
    for (i, step) in cx.steps.iter().enumerate() {
        let _ = writeln!(s, "{:>3}. {}", i + 1, describe(step));
    }
    s
}

/// A Mermaid `sequenceDiagram` of the steps, for `nodes` nodes.
pub fn mermaid(cx: &Counterexample, nodes: u64) -> String {
    let mut s = String::from("sequenceDiagram\n");
    for id in 1..=nodes {
        let _ = writeln!(s, "    participant n{id}");
    }
    for step in &cx.steps {
        let clean = |t: &str| short(t).replace([';', '#', ':'], " ");
        let _ = match step {
            Action::Deliver { from, to, label, .. } => writeln!(s, "    {from}->>{to}: {}", clean(label)),
            Action::Timer(id) => writeln!(s, "    Note over {id}: timer"),
            Action::Sync(id) => writeln!(s, "    Note over {id}: fsync"),
            Action::Crash(id) => writeln!(s, "    Note over {id}: CRASH"),
            Action::Restart(id) => writeln!(s, "    Note over {id}: restart"),
            Action::Propose { node, command } => writeln!(s, "    Note over {node}: propose v{command}"),
            Action::Change { leader, change } => {
                writeln!(s, "    Note over {leader}: operator: {}", clean(&change.to_string()))
            }
            Action::Wipe { node, .. } => writeln!(s, "    Note over {node}: disk replaced"),
        };
    }
    let _ = writeln!(s, "    Note over n1: {} broken", cx.violation.property);
    s
}
