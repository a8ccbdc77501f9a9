//! From one run's history to the numbers the report shows.

use hdrhistogram::Histogram;
use quorum_core::{Duration, Instant, NodeId};
use quorum_sim::{Operation, Outcome};
use serde::Serialize;

/// Client-observed latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Latencies {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

/// Width of a throughput bucket.
pub const BUCKET: Duration = Duration::from_millis(100);

/// The measured outcome of one run of one protocol.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// Protocol name.
    pub protocol: String,
    /// `sim` or `real`.
    pub mode: String,
    /// The seed.
    pub seed: u64,
    /// Completed operations per second over the measured window.
    pub throughput_ops: f64,
    /// Latency percentiles.
    pub latency_ms: Latencies,
    /// Fault → first commit under the new leader (sim: the first log index
    /// first applied after the fault; real: the first write invoked after the
    /// fault that succeeded).
    pub recovery_ms: Option<f64>,
    /// Fault → first write a client saw answered by a node other than the
    /// failed one (includes client timeouts and retries).
    pub recovery_client_ms: Option<f64>,
    /// Fault → first 100 ms bucket back at 90% of the pre-fault throughput.
    pub recovery_to_90pct_ms: Option<f64>,
    /// Protocol messages per committed log index.
    pub msgs_per_commit: f64,
    /// Protocol bytes per committed log index.
    pub bytes_per_commit: f64,
    /// Leaders (terms, epochs, ballots) established during the run.
    pub elections: u64,
    /// Safety violations found (must be 0).
    pub violations: usize,
    /// Real mode: the operations whose history was checked for
    /// linearizability (the clients' reads and writes, and a final read of
    /// every key written). The simulator checks its runs its own way.
    pub checked_ops: Option<u64>,
    /// Real mode: why the history is not linearizable, if it is not.
    pub violation: Option<String>,
    /// Which node the fault hit, and how it was chosen.
    pub victim: Option<String>,
    /// Throughput per 100 ms bucket (ops/s), from the start of the load.
    pub throughput_series: Vec<f64>,
    /// Sorted latencies in ms (for the CDF chart), thinned to at most 2000 points.
    pub latency_sorted_ms: Vec<f64>,
    /// When the fault hit, in ms from the start of the load.
    pub fault_at_ms: Option<f64>,
    /// `--fault reconfigure`: what each membership change cost.
    pub membership: Option<MembershipRun>,
}

/// What the membership changes of `--fault reconfigure` cost in one run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MembershipRun {
    /// Why no change was made (the protocol has none), if none was.
    pub refused: Option<String>,
    /// Each change, in order.
    pub changes: Vec<ChangeCost>,
}

/// One membership change under load.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChangeCost {
    /// What changed: `add+promote n4`, `remove n1 (leader)`.
    pub change: String,
    /// From the add to the learner having applied what the leader had
    /// committed when the add committed (adds only).
    pub caught_up_ms: Option<f64>,
    /// From the first admin command to the change in force (for a removed
    /// leader: to another leader).
    pub took_ms: f64,
    /// The longest time between two acknowledged writes that overlaps the
    /// change: how long writes stopped.
    pub unavailable_ms: f64,
}

/// Everything needed to compute a [`RunResult`] from a run.
pub struct RunData<'a> {
    /// Protocol name.
    pub protocol: &'a str,
    /// `sim` or `real`.
    pub mode: &'a str,
    /// Seed.
    pub seed: u64,
    /// The client history.
    pub history: &'a [Operation],
    /// When the load started.
    pub start: Instant,
    /// Warm-up length.
    pub warmup: Duration,
    /// Load length.
    pub duration: Duration,
    /// When the fault hit and which node, if one did.
    pub fault: Option<(Instant, NodeId)>,
    /// Messages, bytes, committed indexes, leaders established.
    pub messages: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Committed indexes.
    pub commits: u64,
    /// Leaders established.
    pub elections: u64,
    /// Violations found.
    pub violations: usize,
    /// How the victim was chosen.
    pub victim: Option<String>,
    /// When each log index was first applied (sim only; empty in real mode,
    /// where recovery is measured from writes invoked after the fault).
    pub first_applied: &'a [Instant],
}

fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// Computes the report numbers for one run.
pub fn summarize(d: &RunData<'_>) -> RunResult {
    let measure_from = d.start + d.warmup;
    let end = d.start + d.duration;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    let mut latencies = Vec::new();
    let mut completed_in_window = 0u64;
    let buckets = (d.duration.as_nanos() / BUCKET.as_nanos()).max(1) as usize;
    let mut series = vec![0u64; buckets];
    for op in d.history {
        let Outcome::Ok { at, .. } = op.outcome else { continue };
        if at > d.start && at <= end {
            let b = ((at - d.start).as_nanos() / BUCKET.as_nanos()) as usize;
            series[b.min(buckets - 1)] += 1;
        }
        if op.invoked >= measure_from && at <= end {
            let micros = (at - op.invoked).as_micros().max(1);
            hist.saturating_record(micros);
            latencies.push(ms(at - op.invoked));
            completed_in_window += 1;
        }
    }
    let window = ms(d.duration.saturating_sub(d.warmup)) / 1e3;
    let q = |p: f64| if hist.is_empty() { 0.0 } else { hist.value_at_quantile(p) as f64 / 1e3 };
    let latency_ms = Latencies { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: hist.max() as f64 / 1e3 };
    let per_second = 1e9 / BUCKET.as_nanos() as f64;
    let throughput_series: Vec<f64> = series.iter().map(|c| *c as f64 * per_second).collect();
    let (recovery_ms, recovery_client_ms, recovery_to_90pct_ms) = match d.fault {
        Some((at, victim)) => recovery(d, at, victim, &throughput_series),
        None => (None, None, None),
    };
    latencies.sort_by(f64::total_cmp);
    let step = (latencies.len() / 2000).max(1);
    let thinned: Vec<f64> = latencies.iter().step_by(step).copied().collect();
    let commits = d.commits.max(1) as f64;
    RunResult {
        protocol: d.protocol.to_string(),
        mode: d.mode.to_string(),
        seed: d.seed,
        throughput_ops: if window > 0.0 { completed_in_window as f64 / window } else { 0.0 },
        latency_ms,
        recovery_ms,
        recovery_client_ms,
        recovery_to_90pct_ms,
        msgs_per_commit: d.messages as f64 / commits,
        bytes_per_commit: d.bytes as f64 / commits,
        elections: d.elections,
        violations: d.violations,
        checked_ops: None,
        violation: None,
        victim: d.victim.clone(),
        throughput_series,
        latency_sorted_ms: thinned,
        fault_at_ms: d.fault.map(|(at, _)| ms(at - d.start)),
        membership: None,
    }
}

/// Time from the fault to the first commit under the new leader, to the first
/// write answered by another node, and to the first bucket back at 90% of the
/// pre-fault throughput.
fn recovery(d: &RunData<'_>, at: Instant, victim: NodeId, series: &[f64]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let writes = || d.history.iter().filter(|op| !op.op.is_read());
    let first_write = writes()
        .filter(|op| op.answered_by != Some(victim))
        .filter_map(|op| op.completed_at())
        .filter(|t| *t > at)
        .min()
        .map(|t| ms(t - at));
    let first_commit = if d.first_applied.is_empty() {
        // Real mode: only a write sent after the fault proves a leader serves.
        writes().filter(|op| op.invoked > at).filter_map(|op| op.completed_at()).min().map(|t| ms(t - at))
    } else {
        d.first_applied.iter().skip(1).filter(|t| **t > at).min().map(|t| ms(*t - at))
    };
    let bucket_ns = BUCKET.as_nanos();
    let fault_bucket = ((at - d.start).as_nanos() / bucket_ns) as usize;
    let warm_bucket = (d.warmup.as_nanos() / bucket_ns) as usize;
    let before = &series[warm_bucket.min(fault_bucket)..fault_bucket.min(series.len())];
    let level = if before.is_empty() { 0.0 } else { before.iter().sum::<f64>() / before.len() as f64 };
    let back = (fault_bucket + 1..series.len())
        .find(|b| level > 0.0 && series[*b] >= 0.9 * level)
        .map(|b| ms(d.start + Duration::from_nanos((b as u64 + 1) * bucket_ns) - at));
    (first_commit, first_write, back)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use quorum_core::{ClientId, KvOp, KvResult};

    fn t(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn write(invoked: u64, done: u64, by: u64) -> Operation {
        Operation {
            client: ClientId(1),
            seq: invoked,
            op: KvOp::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v") },
            invoked: t(invoked),
            outcome: Outcome::Ok { at: t(done), result: KvResult::Done },
            answered_by: Some(NodeId(by)),
        }
    }

    #[test]
    fn recovery_counts_from_the_fault_to_the_first_write_another_node_answers() {
        // Steady 100 ops/s from node 1 until 1000 ms; node 1 crashes at 1000 ms;
        // an answer from node 1 still in flight lands at 1001 ms and must not count;
        // node 2 answers from 1300 ms on at the old rate.
        let mut h: Vec<Operation> = (0..100).map(|i| write(i * 10, i * 10 + 4, 1)).collect();
        h.push(write(996, 1001, 1));
        h.extend((130..200).map(|i| write(i * 10 - 4, i * 10, 2)));
        let r = summarize(&RunData {
            protocol: "test",
            mode: "sim",
            seed: 0,
            history: &h,
            start: Instant::ZERO,
            warmup: Duration::from_millis(100),
            duration: Duration::from_secs(2),
            fault: Some((t(1000), NodeId(1))),
            messages: 10,
            bytes: 100,
            commits: 5,
            elections: 2,
            violations: 0,
            victim: None,
            first_applied: &[],
        });
        // No commit times given (real mode): the first write sent after the fault.
        assert_eq!(r.recovery_ms, Some(300.0));
        assert_eq!(r.recovery_client_ms, Some(300.0));
        // Buckets are 100 ms wide: 1300..1400 is the first back at full rate.
        assert_eq!(r.recovery_to_90pct_ms, Some(400.0));
        assert_eq!(r.msgs_per_commit, 2.0);
        assert!((r.latency_ms.p50 - 4.0).abs() < 0.01, "{:?}", r.latency_ms);
        assert_eq!(r.throughput_series[5], 100.0);
    }
}
