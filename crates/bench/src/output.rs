//! The comparison as a terminal table, JSON, and Markdown.

use crate::aggregate::ProtocolResult;
use crate::workload::{FaultPlan, Workload};
use std::fmt::Write;

fn opt(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or("-".to_string(), |x| format!("{x:.1}"))
}

/// A number, or `-` where it was not measured (NaN).
fn num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".to_string()
    }
}

/// One column of the comparison: its Markdown header, its terminal header and
/// width (`None`: Markdown only), and how a result fills it. Both tables are
/// drawn from this one list.
struct Column {
    markdown: &'static str,
    terminal: Option<(&'static str, usize)>,
    cell: fn(&ProtocolResult) -> String,
}

const COLUMNS: &[Column] = &[
    Column { markdown: "protocol", terminal: Some(("protocol", 15)), cell: |r| r.protocol.clone() },
    Column { markdown: "runs", terminal: None, cell: |r| r.repeats.to_string() },
    Column { markdown: "ops/s", terminal: Some(("ops/s", 10)), cell: |r| format!("{:.0}", r.throughput_ops) },
    Column { markdown: "p50 ms", terminal: Some(("p50 ms", 8)), cell: |r| format!("{:.2}", r.latency_ms.p50) },
    Column { markdown: "p90 ms", terminal: None, cell: |r| format!("{:.2}", r.latency_ms.p90) },
    Column { markdown: "p99 ms", terminal: Some(("p99 ms", 8)), cell: |r| format!("{:.2}", r.latency_ms.p99) },
    Column { markdown: "p99.9 ms", terminal: Some(("p99.9", 8)), cell: |r| format!("{:.2}", r.latency_ms.p999) },
    Column { markdown: "max ms", terminal: Some(("max ms", 8)), cell: |r| format!("{:.1}", r.latency_ms.max) },
    Column { markdown: "recovery ms", terminal: Some(("recover ms", 11)), cell: |r| opt(r.recovery_ms) },
    Column { markdown: "client-seen ms", terminal: Some(("client ms", 10)), cell: |r| opt(r.recovery_client_ms) },
    Column { markdown: "to 90% ms", terminal: Some(("to 90% ms", 10)), cell: |r| opt(r.recovery_to_90pct_ms) },
    Column { markdown: "msgs/commit", terminal: Some(("msgs/cmt", 9)), cell: |r| num(r.msgs_per_commit, 1) },
    Column { markdown: "bytes/commit", terminal: Some(("bytes/cmt", 10)), cell: |r| num(r.bytes_per_commit, 0) },
    Column { markdown: "leaders", terminal: Some(("elect", 5)), cell: |r| format!("{:.0}", r.elections) },
    Column { markdown: "violations", terminal: None, cell: |r| r.violations.to_string() },
];

/// One terminal line: the first column left-aligned, the rest right-aligned.
fn terminal_line(cells: impl Iterator<Item = (String, usize)>) -> String {
    let parts: Vec<String> = cells
        .enumerate()
        .map(|(i, (text, width))| if i == 0 { format!("{text:<width$}") } else { format!("{text:>width$}") })
        .collect();
    parts.join(" ")
}

/// A fixed-width table for the terminal.
pub fn table(results: &[ProtocolResult]) -> String {
    let columns: Vec<(&Column, &str, usize)> =
        COLUMNS.iter().filter_map(|c| c.terminal.map(|(header, width)| (c, header, width))).collect();
    let mut s = terminal_line(columns.iter().map(|(_, h, w)| (h.to_string(), *w)));
    s.push('\n');
    for r in results {
        s.push_str(&terminal_line(columns.iter().map(|(c, _, w)| ((c.cell)(r), *w))));
        s.push('\n');
    }
    let violations: usize = results.iter().map(|r| r.violations).sum();
    let _ = writeln!(s, "safety violations in these runs: {violations}");
    s
}

/// A Markdown table row.
fn markdown_row(cells: impl Iterator<Item = String>) -> String {
    format!("| {} |\n", cells.collect::<Vec<_>>().join(" | "))
}

/// The promised JSON object: `{"results": [...]}`.
pub fn json(results: &[ProtocolResult]) -> String {
    serde_json::json!({ "results": results }).to_string()
}

/// A Markdown report that embeds the charts written beside it.
pub fn markdown(results: &[ProtocolResult], workload: &Workload, plan: &FaultPlan, command: &str) -> String {
    let mut s = String::from("# quorum: protocol comparison\n\n");
    let _ = writeln!(s, "Produced by `{command}`.\n");
    let _ = writeln!(
        s,
        "Workload: {} nodes, {}, {} keys ({:?}), {}-byte values, {:.0}% reads, {} of load after {} warm-up; \
         links {:?}, loss {}, fsync {}.\n",
        workload.nodes,
        match workload.rate {
            Some(r) => format!("open loop at {r:.0} requests/s"),
            None => format!("{} closed-loop clients", workload.clients),
        },
        workload.keys,
        workload.key_distribution,
        workload.value_size,
        workload.read_ratio * 100.0,
        workload.duration,
        workload.warmup,
        workload.latency,
        workload.loss,
        workload.fsync
    );
    if plan.kind == crate::FaultKind::Reconfigure {
        let _ = writeln!(s, "Fault: {} from {} on.\n", plan.kind, plan.at);
    } else if plan.kind == crate::FaultKind::Chaos {
        let _ = writeln!(
            s,
            "Fault: chaos from {} to {}: {} killed or frozen, then back.\n",
            plan.at,
            plan.until,
            crate::workload::at_a_time(plan.most_down)
        );
    } else {
        let _ = writeln!(s, "Fault: {} at {}, undone at {}.\n", plan.kind, plan.at, plan.until);
    }
    s.push_str(&markdown_row(COLUMNS.iter().map(|c| c.markdown.to_string())));
    s.push_str(&markdown_row(COLUMNS.iter().map(|_| "---".to_string())));
    for r in results {
        s.push_str(&markdown_row(COLUMNS.iter().map(|c| (c.cell)(r))));
    }
    s.push('\n');
    for r in results {
        if let Some(v) = &r.victim {
            let _ = writeln!(s, "- {}: the fault hit {v}.", r.protocol);
        }
    }
    s.push_str(
        "\nMedians over the runs. *recovery*: from the fault to the first commit under the new leader (sim: the first \
         log index applied after the fault; real: the first write sent after the fault that succeeded). *client-seen*: \
         to the first write a client saw answered by another node, client timeouts and retries included. *to 90%*: to \
         the first 100 ms with at least 90% of the throughput before the fault.\n\n",
    );
    if let Some(changes) = membership_table(results) {
        s.push_str("Membership changes under the load (`--fault reconfigure`; from the first run of each):\n\n");
        s.push_str(&changes);
        s.push('\n');
    }
    s.push_str(
        "![latency CDF](latency_cdf.svg)\n\n![throughput over time](throughput.svg)\n\n![recovery](recovery.svg)\n",
    );
    s
}

/// The costs of `--fault reconfigure`, one row per change (a Markdown
/// table, readable as text too), or `None` if no result has any.
pub fn membership_table(results: &[ProtocolResult]) -> Option<String> {
    let mut rows = String::new();
    for r in results {
        let Some(m) = &r.membership else { continue };
        if let Some(why) = &m.refused {
            let _ = writeln!(rows, "| {} | refused: {} | - | - | - |", r.protocol, why.replace('|', "/"));
        }
        for c in &m.changes {
            let caught_up = c.caught_up_ms.map_or("-".to_string(), |ms| format!("{ms:.0}"));
            let _ = writeln!(
                rows,
                "| {} | {} | {caught_up} | {:.0} | {:.0} |",
                r.protocol, c.change, c.took_ms, c.unavailable_ms
            );
        }
    }
    if rows.is_empty() {
        return None;
    }
    let head = "| protocol | change | learner caught up (ms) | change took (ms) | writes stopped (ms) |\n\
                |---|---|---|---|---|\n";
    Some(format!("{head}{rows}"))
}
