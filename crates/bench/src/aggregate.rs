//! Repeats: one configuration over N seeds, reported as the median and spread.

use crate::metrics::{Latencies, RunResult};
use serde::Serialize;

/// A metric's median and range over the repeats.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// One protocol's result over all repeats: medians in the fields the JSON
/// promises, spreads beside them, and the run closest to the median kept whole
/// for the charts.
#[derive(Clone, Debug, Serialize)]
pub struct ProtocolResult {
    /// Protocol name.
    pub protocol: String,
    /// `sim` or `real`.
    pub mode: String,
    /// Number of runs (seeds).
    pub repeats: usize,
    /// Median throughput.
    pub throughput_ops: f64,
    /// Median of each latency percentile.
    pub latency_ms: Latencies,
    /// Median recovery to the first write.
    pub recovery_ms: Option<f64>,
    /// Median recovery to the first write a client saw answered elsewhere.
    pub recovery_client_ms: Option<f64>,
    /// Median recovery to 90% throughput.
    pub recovery_to_90pct_ms: Option<f64>,
    /// Median messages per commit.
    pub msgs_per_commit: f64,
    /// Median bytes per commit.
    pub bytes_per_commit: f64,
    /// Median leaders established.
    pub elections: f64,
    /// Violations over all runs (must be 0).
    pub violations: usize,
    /// Real mode: operations checked for linearizability over all runs.
    pub checked_ops: Option<u64>,
    /// Real mode: why a run's history is not linearizable (the first such run).
    pub violation: Option<String>,
    /// Spreads: throughput, p50 latency, recovery.
    pub spread: Spreads,
    /// Which node the fault hit (from the first run).
    pub victim: Option<String>,
    /// `--fault reconfigure`: what each change cost (from the first run).
    pub membership: Option<crate::metrics::MembershipRun>,
    /// The run whose throughput is the median, for charts.
    #[serde(skip)]
    pub representative: RunResult,
}

/// Ranges of the headline metrics.
#[derive(Clone, Debug, Serialize)]
pub struct Spreads {
    /// Throughput.
    pub throughput_ops: Spread,
    /// Median latency.
    pub latency_p50_ms: Spread,
    /// Recovery to the first write.
    pub recovery_ms: Option<Spread>,
}

/// Median and range of values (which must not be empty).
pub fn spread(mut values: Vec<f64>) -> Spread {
    assert!(!values.is_empty(), "a spread needs at least one value");
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    Spread { median, min: values[0], max: values[n - 1] }
}

fn median_of(runs: &[RunResult], f: impl Fn(&RunResult) -> f64) -> f64 {
    spread(runs.iter().map(f).collect()).median
}

fn optional_spread(runs: &[RunResult], f: impl Fn(&RunResult) -> Option<f64>) -> Option<Spread> {
    let values: Vec<f64> = runs.iter().filter_map(f).collect();
    (!values.is_empty()).then(|| spread(values))
}

/// Folds the runs of one protocol into its result.
pub fn aggregate(runs: Vec<RunResult>) -> ProtocolResult {
    assert!(!runs.is_empty(), "aggregate needs at least one run");
    let tput = spread(runs.iter().map(|r| r.throughput_ops).collect());
    let representative = runs
        .iter()
        .min_by(|a, b| (a.throughput_ops - tput.median).abs().total_cmp(&(b.throughput_ops - tput.median).abs()))
        .expect("non-empty")
        .clone();
    let recovery = optional_spread(&runs, |r| r.recovery_ms);
    ProtocolResult {
        protocol: runs[0].protocol.clone(),
        mode: runs[0].mode.clone(),
        repeats: runs.len(),
        throughput_ops: tput.median,
        latency_ms: Latencies {
            p50: median_of(&runs, |r| r.latency_ms.p50),
            p90: median_of(&runs, |r| r.latency_ms.p90),
            p99: median_of(&runs, |r| r.latency_ms.p99),
            p999: median_of(&runs, |r| r.latency_ms.p999),
            max: median_of(&runs, |r| r.latency_ms.max),
        },
        recovery_ms: recovery.map(|s| s.median),
        recovery_client_ms: optional_spread(&runs, |r| r.recovery_client_ms).map(|s| s.median),
        recovery_to_90pct_ms: optional_spread(&runs, |r| r.recovery_to_90pct_ms).map(|s| s.median),
        msgs_per_commit: median_of(&runs, |r| r.msgs_per_commit),
        bytes_per_commit: median_of(&runs, |r| r.bytes_per_commit),
        elections: median_of(&runs, |r| r.elections as f64),
        violations: runs.iter().map(|r| r.violations).sum(),
        checked_ops: runs.iter().map(|r| r.checked_ops).sum(),
        violation: runs.iter().find_map(|r| r.violation.clone()),
        spread: Spreads {
            throughput_ops: tput,
            latency_p50_ms: spread(runs.iter().map(|r| r.latency_ms.p50).collect()),
            recovery_ms: recovery,
        },
        victim: runs[0].victim.clone(),
        membership: runs[0].membership.clone(),
        representative,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        assert_eq!(spread(vec![3.0, 1.0, 2.0]), Spread { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(spread(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }
}
