//! What a run found: violations, operations, metrics; and sweeps over many seeds.

use crate::config::SimConfig;
use crate::history::{Operation, Outcome};
use crate::session::Served;
use crate::sim::Sim;
use crate::trace::Trace;
use crate::Workload;
use quorum_core::{Duration, Instant, KvOp, KvResult, KvStore, Membership, NodeId, Protocol, Stamp};
use serde::Serialize;
use std::fmt;

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// When it was seen.
    pub at: Instant,
    /// Which check failed.
    pub check: String,
    /// What the check saw.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] at {}: {}", self.check, self.at, self.detail)
    }
}

/// Counters and samples a run collects (used by the benchmark driver too).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Messages handed to the network.
    pub messages: u64,
    /// Their encoded bytes.
    pub bytes: u64,
    /// Messages over `NetworkConfig::max_message_bytes`: not delivered, and
    /// each broke its link (the runtime refuses such a frame and closes the connection).
    pub oversized: u64,
    /// Distinct log indexes applied somewhere.
    pub commits: u64,
    /// Crashes that tore the tail: some unsynced writes reached the disk.
    pub torn_tails: u64,
    /// Disks thrown away ([`crate::Sim::wipe`]).
    pub wipes: u64,
    /// Operations their clients gave up on (outcome unknown).
    pub given_up: u64,
    /// Times a node became leader of a new term.
    pub elections: u64,
    /// (when, who, term) for each new leader.
    pub leader_changes: Vec<(Instant, NodeId, u64)>,
    /// Client-observed latency of each answered operation.
    pub latencies: Vec<Duration>,
    /// When each answered operation completed.
    pub completions: Vec<Instant>,
    /// For each log index, when some node first applied it (index 0 unused).
    pub first_applied: Vec<Instant>,
    /// Every membership change applied somewhere, in the order first applied.
    pub config_changes: Vec<ConfigChange>,
}

/// A committed membership change, as the first node to apply it saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    /// When it was first applied.
    pub at: Instant,
    /// Its log index.
    pub index: u64,
    /// Its stamp (the Raft term of the leader that proposed it).
    pub stamp: Stamp,
    /// The configuration it puts in force.
    pub membership: Membership,
}

/// The outcome of one run; `O` and `R` are the workload's operations and
/// answers (the key-value store's by default).
#[derive(Clone, Debug)]
pub struct Report<O = KvOp, R = KvResult> {
    /// The seed.
    pub seed: u64,
    /// Operations answered.
    pub ops_ok: u64,
    /// Operations never answered (counted as possibly applied).
    pub ops_unknown: u64,
    /// Answered local reads (checked for session order, not linearizability).
    pub local_reads: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end.
    pub virtual_time: Instant,
    /// Wall-clock time the run took.
    pub wall: std::time::Duration,
    /// Every violation found.
    pub violations: Vec<Violation>,
    /// The trace hash.
    pub trace_hash: u64,
    /// Metrics.
    pub metrics: Metrics,
    /// The trace (its events are kept only if the run was configured with `trace`).
    pub trace: Trace,
    /// The client history.
    pub history: Vec<Operation<O, R>>,
}

impl<O, R> Report<O, R> {
    /// Asserts that no check fired and that the clients had at least
    /// `min_ops` operations answered (a run that did nothing proves nothing).
    #[track_caller]
    pub fn assert_clean(&self, min_ops: u64) {
        assert!(self.violations.is_empty(), "seed {}: {:#?}", self.seed, self.violations);
        assert!(
            self.ops_ok >= min_ops,
            "seed {}: {} operations answered, fewer than {min_ops}",
            self.seed,
            self.ops_ok
        );
    }
}

impl<P: Protocol, W: Workload> Sim<P, W> {
    /// Runs the final checks now (after a run driven step by step) and reports.
    pub fn run_finish(self) -> Report<W::Op, W::Output> {
        self.finish(std::time::Duration::ZERO)
    }

    /// Final checks (linearizability of the history, session order of local
    /// reads, values of reads outside the log) and the report.
    pub(crate) fn finish(mut self, wall: std::time::Duration) -> Report<W::Op, W::Output> {
        let broken = if !self.checking() {
            Vec::new()
        } else if self.sessions.local_reads() == 0 {
            W::check_history(&self.history)
        } else {
            // Local reads promise less than linearizability: they are left out.
            let local = |i: usize| self.sessions.seen(i).is_some_and(|s| s.served == Served::LocalRead);
            let ops: Vec<Operation<W::Op, W::Output>> =
                self.history.iter().enumerate().filter(|(i, _)| !local(*i)).map(|(_, o)| o.clone()).collect();
            W::check_history(&ops)
        };
        for (check, detail) in broken {
            self.violation(&check, detail);
        }
        let sessions = if self.checking() { self.sessions.check::<W>(&self.history) } else { Vec::new() };
        for (check, detail) in sessions {
            self.violation(check, detail);
        }
        let ops_ok = self.history.iter().filter(|o| matches!(o.outcome, Outcome::Ok { .. })).count() as u64;
        Report {
            seed: self.config.seed,
            ops_ok,
            ops_unknown: self.history.len() as u64 - ops_ok,
            local_reads: self.sessions.local_reads(),
            events: self.events,
            virtual_time: self.now,
            wall,
            trace_hash: self.trace.hash(),
            trace: std::mem::replace(&mut self.trace, Trace::new(false)),
            history: std::mem::take(&mut self.history),
            violations: std::mem::take(&mut self.violations),
            metrics: std::mem::take(&mut self.metrics),
        }
    }
}

/// A run that broke something.
#[derive(Clone, Debug)]
pub struct FailedSeed {
    /// The seed that reproduces it.
    pub seed: u64,
    /// What broke.
    pub violations: Vec<Violation>,
}

/// The outcome of many seeds.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Operations answered, over all seeds.
    pub ops_ok: u64,
    /// Operations never answered.
    pub ops_unknown: u64,
    /// Answered local reads, each checked for session order.
    pub local_reads: u64,
    /// Events processed.
    pub events: u64,
    /// Membership changes committed, over all seeds.
    pub config_changes: u64,
    /// Crashes that tore the tail (some unsynced writes survived), over all seeds.
    pub torn_tails: u64,
    /// Disks thrown away, over all seeds.
    pub wipes: u64,
    /// Operations their clients gave up on, over all seeds.
    pub given_up: u64,
    /// Messages over the frame limit (each lost, and its link broken), over all seeds.
    pub oversized: u64,
    /// Seeds with violations.
    pub failures: Vec<FailedSeed>,
    /// The slowest seed and its wall time.
    pub slowest: Option<(u64, std::time::Duration)>,
    /// Wall time of the whole sweep.
    pub wall: std::time::Duration,
}

impl Summary {
    /// The names of the checks that fired in any failing seed, sorted, each once.
    pub fn checks_that_fired(&self) -> Vec<String> {
        let mut checks: Vec<String> =
            self.failures.iter().flat_map(|f| f.violations.iter().map(|v| v.check.clone())).collect();
        checks.sort();
        checks.dedup();
        checks
    }

    /// Asserts that no seed broke a check (and prints the summary, which a
    /// test shows when it fails or runs with `--nocapture`).
    #[track_caller]
    pub fn assert_clean(&self) {
        eprintln!("{self}");
        assert_eq!(self.violation_count(), 0, "{self}");
    }

    /// Asserts that `what` (a planted bug) was caught, and only by `checks`;
    /// prints how many seeds caught it and the first.
    #[track_caller]
    pub fn assert_caught_by(&self, what: &str, checks: &[&str]) {
        let first = self.failures.first().map(|f| f.seed);
        let (caught, fired) = (self.failures.len(), self.checks_that_fired());
        eprintln!("{what}: {caught} of {} seeds caught (first {first:?}) by {fired:?}", self.seeds);
        assert!(caught > 0, "{what} went unnoticed: {self}");
        assert_eq!(fired, checks, "{self}");
    }

    /// Asserts that `what` (a planted bug) was caught, with `check` among
    /// the checks that fired.
    #[track_caller]
    pub fn assert_caught_including(&self, what: &str, check: &str) {
        let fired = self.checks_that_fired();
        eprintln!("{what}: {} of {} seeds caught by {fired:?}\n{self}", self.failures.len(), self.seeds);
        assert!(fired.iter().any(|c| c == check), "{what}: '{check}' never fired: {self}");
    }

    /// Folds one run in.
    pub fn add<O, R>(&mut self, r: &Report<O, R>) {
        self.seeds += 1;
        self.ops_ok += r.ops_ok;
        self.ops_unknown += r.ops_unknown;
        self.local_reads += r.local_reads;
        self.events += r.events;
        self.config_changes += r.metrics.config_changes.len() as u64;
        self.torn_tails += r.metrics.torn_tails;
        self.wipes += r.metrics.wipes;
        self.given_up += r.metrics.given_up;
        self.oversized += r.metrics.oversized;
        if self.slowest.is_none_or(|(_, w)| r.wall > w) {
            self.slowest = Some((r.seed, r.wall));
        }
        if !r.violations.is_empty() {
            self.failures.push(FailedSeed { seed: r.seed, violations: r.violations.clone() });
        }
    }

    /// Total violations.
    pub fn violation_count(&self) -> usize {
        self.failures.iter().map(|f| f.violations.len()).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} seeds, {} ops ok, {} unanswered, ", self.seeds, self.ops_ok, self.ops_unknown)?;
        if self.local_reads > 0 {
            write!(f, "{} local reads, ", self.local_reads)?;
        }
        write!(f, "{} events, {} violations in {} seeds", self.events, self.violation_count(), self.failures.len())?;
        if self.config_changes > 0 {
            write!(f, ", {} membership changes committed", self.config_changes)?;
        }
        for fail in self.failures.iter().take(5) {
            write!(f, "\n  seed {}:", fail.seed)?;
            for v in fail.violations.iter().take(3) {
                write!(f, "\n    {v}")?;
            }
        }
        Ok(())
    }
}

/// Runs `base` once per seed (the seed replaces `base.seed`), on every core,
/// checking each run. Results are gathered in seed order, so the summary is
/// the same however the seeds were spread over threads.
pub fn check_seeds<P: Protocol>(base: &SimConfig, protocol: &P::Config, seeds: std::ops::Range<u64>) -> Summary
where
    P::Config: Sync,
{
    check_seeds_with_progress::<P>(base, protocol, seeds, |_| {})
}

/// [`check_seeds`], calling `progress(done)` after each seed finishes.
pub fn check_seeds_with_progress<P: Protocol>(
    base: &SimConfig,
    protocol: &P::Config,
    seeds: std::ops::Range<u64>,
    progress: impl Fn(u64) + Sync,
) -> Summary
where
    P::Config: Sync,
{
    check_seeds_with::<P>(base, protocol, seeds, |_| {}, progress)
}

/// [`check_seeds_with_progress`], calling `setup` on each run's fresh [`Sim`]
/// before it starts: to install an operator ([`Sim::set_operator`]) that
/// changes membership or moves leadership at random times, a drop filter, ...
/// Whatever `setup` adds must draw its randomness from the run (the operator's
/// `Rng`), so each seed still replays exactly.
pub fn check_seeds_with<P: Protocol>(
    base: &SimConfig,
    protocol: &P::Config,
    seeds: std::ops::Range<u64>,
    setup: impl Fn(&mut Sim<P>) + Sync,
    progress: impl Fn(u64) + Sync,
) -> Summary
where
    P::Config: Sync,
{
    check_workload_seeds::<P, KvStore>(base, protocol, seeds, setup, progress)
}

/// [`check_seeds_with`] for a state machine and workload of your own, `W`.
pub fn check_workload_seeds<P: Protocol, W: Workload>(
    base: &SimConfig,
    protocol: &P::Config,
    seeds: std::ops::Range<u64>,
    setup: impl Fn(&mut Sim<P, W>) + Sync,
    progress: impl Fn(u64) + Sync,
) -> Summary
where
    P::Config: Sync,
{
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    let started = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
    let next = AtomicU64::new(seeds.start);
    let done = AtomicU64::new(0);
    let reports: Mutex<Vec<Report<W::Op, W::Output>>> = Mutex::new(Vec::new());
    let panicked: Mutex<Vec<FailedSeed>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    break;
                }
                let mut config = base.clone();
                config.seed = seed;
                // A node's own assertion (a planted bug trips them) fails the
                // seed, not the sweep: it is reported with its seed to replay.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut sim = Sim::<P, W>::new(config, protocol.clone());
                    setup(&mut sim);
                    sim.run()
                }));
                let mut slim = match run {
                    Ok(report) => report,
                    Err(payload) => {
                        let message = crate::panic_message(payload.as_ref());
                        let detail = format!("the run stopped at a panic (replay the seed for the time): {message}");
                        let violation = Violation { at: Instant::ZERO, check: "panic".into(), detail };
                        panicked.lock().expect("panic lock").push(FailedSeed { seed, violations: vec![violation] });
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                        continue;
                    }
                };
                slim.metrics = Metrics {
                    config_changes: std::mem::take(&mut slim.metrics.config_changes),
                    torn_tails: slim.metrics.torn_tails,
                    wipes: slim.metrics.wipes,
                    given_up: slim.metrics.given_up,
                    oversized: slim.metrics.oversized,
                    ..Metrics::default()
                };
                slim.history = Vec::new();
                reports.lock().expect("report lock").push(slim);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            });
        }
    });
    let mut reports = reports.into_inner().expect("report lock");
    reports.sort_by_key(|r| r.seed);
    let mut summary = Summary::default();
    for r in &reports {
        summary.add(r);
    }
    let panicked = panicked.into_inner().expect("panic lock");
    summary.seeds += panicked.len() as u64;
    summary.failures.extend(panicked);
    summary.failures.sort_by_key(|f| f.seed);
    summary.wall = started.elapsed();
    summary
}
