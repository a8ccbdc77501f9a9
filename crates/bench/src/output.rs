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

/// A fixed-width table for the terminal.
pub fn table(results: &[ProtocolResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<15} {:>10} {:>8} {:>8} {:>8} {:>8} {:>11} {:>10} {:>10} {:>9} {:>10} {:>5}",
        "protocol",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9",
        "max ms",
        "recover ms",
        "client ms",
        "to 90% ms",
        "msgs/cmt",
        "bytes/cmt",
        "elect"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<15} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>11} {:>10} {:>10} {:>9} {:>10} {:>5.0}",
            r.protocol,
            r.throughput_ops,
            r.latency_ms.p50,
            r.latency_ms.p99,
            r.latency_ms.p999,
            r.latency_ms.max,
            opt(r.recovery_ms),
            opt(r.recovery_client_ms),
            opt(r.recovery_to_90pct_ms),
            num(r.msgs_per_commit, 1),
            num(r.bytes_per_commit, 0),
            r.elections
        );
    }
    let violations: usize = results.iter().map(|r| r.violations).sum();
    let _ = writeln!(s, "safety violations in these runs: {violations}");
    s
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
    let _ = writeln!(s, "Fault: {} at {}, undone at {}.\n", plan.kind, plan.at, plan.until);
    s.push_str("| protocol | runs | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | recovery ms | client-seen ms | to 90% ms | msgs/commit | bytes/commit | leaders | violations |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {} | {:.0} | {} |",
            r.protocol,
            r.repeats,
            r.throughput_ops,
            r.latency_ms.p50,
            r.latency_ms.p90,
            r.latency_ms.p99,
            r.latency_ms.p999,
            r.latency_ms.max,
            opt(r.recovery_ms),
            opt(r.recovery_client_ms),
            opt(r.recovery_to_90pct_ms),
            num(r.msgs_per_commit, 1),
            num(r.bytes_per_commit, 0),
            r.elections,
            r.violations
        );
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
    s.push_str(
        "![latency CDF](latency_cdf.svg)\n\n![throughput over time](throughput.svg)\n\n![recovery](recovery.svg)\n",
    );
    s
}
