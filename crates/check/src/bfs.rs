//! Breadth-first search over the worlds reachable within the bounds, with
//! states told apart by fingerprint; the first violation found is on a
//! shortest path, which is rebuilt from parent links.
//!
//! The search goes level by level. The worlds of one level are expanded by
//! `threads` workers that take them in batches; the set of states seen is
//! split into shards, each behind its own lock. With one thread the search
//! is the plain BFS (same order, same counterexample every run); with more,
//! the counterexample is still a shortest one, but which of several equally
//! short ones is found may change from run to run.

use crate::explore::{initial_world, labelled, Bounds, ByFingerprint, Counterexample, Report};
use crate::world::{Action, Violation, World};
use crate::Checkable;
use quorum_core::Protocol;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How a state was first reached: the fingerprint of the state before, and
/// the step (without its label). The root has neither.
struct Parent {
    parent: Option<u64>,
    action: Option<Action>,
}

type Shard = ByFingerprint<Parent>;

/// The states seen, in shards that threads lock one at a time.
struct Seen {
    shards: Vec<Mutex<Shard>>,
}

impl Seen {
    const SHARDS: usize = 64;

    fn new() -> Self {
        Seen { shards: (0..Self::SHARDS).map(|_| Mutex::new(Shard::default())).collect() }
    }

    fn shard(&self, fp: u64) -> std::sync::MutexGuard<'_, Shard> {
        // The low bits pick the bucket inside a shard; the high ones the shard.
        self.shards[(fp >> 58) as usize % Self::SHARDS].lock().expect("no thread panics holding a shard")
    }

    /// Records `fp` if it is new; true if it was.
    fn insert(&self, fp: u64, parent: Parent) -> bool {
        match self.shard(fp).entry(fp) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(parent);
                true
            }
        }
    }

    fn contains(&self, fp: u64) -> bool {
        self.shard(fp).contains_key(&fp)
    }

    /// The actions from the initial state to `fp`.
    fn path(&self, mut fp: u64) -> Vec<Action> {
        let mut steps = Vec::new();
        loop {
            let shard = self.shard(fp);
            let Some(Parent { parent: Some(parent), action }) = shard.get(&fp) else { break };
            steps.push(action.clone().expect("every state but the root has an action"));
            fp = *parent;
        }
        steps.reverse();
        steps
    }
}

/// What the workers share while one level is expanded.
struct Shared<'a> {
    bounds: &'a Bounds,
    seen: Seen,
    /// Next world of the level to hand out.
    cursor: AtomicUsize,
    states: AtomicUsize,
    transitions: AtomicU64,
    pruned_by_term: AtomicUsize,
    at_depth_limit: AtomicUsize,
    /// Set when the search must end: a violation, or a limit.
    stop: AtomicBool,
    /// Set with `stop` when a limit (not a violation) ended the search.
    stopped_by: Mutex<Option<&'static str>>,
    /// When the time limit runs out.
    deadline: Option<Instant>,
    /// The first violation and the fingerprint of the state showing it.
    found: Mutex<Option<(Violation, u64)>>,
}

impl Shared<'_> {
    /// Ends the search because of `limit`.
    fn halt(&self, limit: &'static str) {
        self.stopped_by.lock().expect("no thread panics holding it").get_or_insert(limit);
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What one worker found at one level, merged by the level's end.
#[derive(Default)]
struct Found<P: Protocol> {
    next: Vec<(World<P>, u64)>,
    applied: bool,
    leader: bool,
}

/// Worlds of a level handed to a worker at a time.
const BATCH: usize = 16;

/// Expands the worlds of one level (at `depth`) that this worker takes.
fn expand<P: Checkable>(level: &[(World<P>, u64)], depth: usize, shared: &Shared<'_>) -> Found<P> {
    let bounds = shared.bounds;
    let limits = bounds.limits();
    let mut found = Found { next: Vec::new(), applied: false, leader: false };
    while !shared.stop.load(Ordering::Relaxed) {
        let start = shared.cursor.fetch_add(BATCH, Ordering::Relaxed);
        if start >= level.len() {
            break;
        }
        if shared.deadline.is_some_and(|d| Instant::now() >= d) {
            shared.halt("the time limit");
            break;
        }
        for (world, id) in &level[start..level.len().min(start + BATCH)] {
            if depth >= bounds.max_depth {
                shared.at_depth_limit.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if world.max_term() > bounds.max_term {
                shared.pruned_by_term.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            for action in world.actions(&limits) {
                let mut next = world.clone();
                if !next.apply(&action) {
                    continue;
                }
                next.record_leaders(bounds.one_leader_per_term);
                shared.transitions.fetch_add(1, Ordering::Relaxed);
                let fp = next.fingerprint();
                if shared.seen.contains(fp) {
                    continue;
                }
                // The invariants look at this state alone: run them once per state.
                next.check_invariants();
                if !shared.seen.insert(fp, Parent { parent: Some(*id), action: Some(action) }) {
                    continue; // another worker got there first
                }
                let states = shared.states.fetch_add(1, Ordering::Relaxed) + 1;
                found.applied |= next.applied_count() > 0;
                found.leader |= next.had_leader();
                if let Some(v) = next.violation().cloned() {
                    let mut first = shared.found.lock().expect("no thread panics holding it");
                    first.get_or_insert((v, fp));
                    shared.stop.store(true, Ordering::Relaxed);
                    return found;
                }
                if states >= bounds.max_states {
                    shared.halt("the state limit");
                    return found;
                }
                found.next.push((next, fp));
            }
        }
    }
    found
}

/// The breadth-first search (see the module's comment).
pub(crate) fn search<P: Checkable>(config: P::Config, bounds: &Bounds, mut progress: impl FnMut(&Report)) -> Report {
    let started = Instant::now();
    let mut report = Report::start();
    let mut initial = match initial_world::<P>(config.clone(), bounds) {
        Ok(world) => world,
        Err(done) => return *done,
    };
    let root = initial.fingerprint();
    let shared = Shared {
        bounds,
        seen: Seen::new(),
        cursor: AtomicUsize::new(0),
        states: AtomicUsize::new(1),
        transitions: AtomicU64::new(0),
        pruned_by_term: AtomicUsize::new(0),
        at_depth_limit: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        stopped_by: Mutex::new(None),
        deadline: bounds.max_time.map(|t| started + t),
        found: Mutex::new(None),
    };
    shared.seen.insert(root, Parent { parent: None, action: None });
    let threads = bounds.threads.max(1);
    let mut level = vec![(initial, root)];
    let mut last_progress = Instant::now();
    let mut depth = 0;
    while !level.is_empty() && !shared.stop.load(Ordering::Relaxed) {
        shared.cursor.store(0, Ordering::Relaxed);
        let found: Vec<Found<P>> = if threads == 1 {
            vec![expand(&level, depth, &shared)]
        } else {
            let (done_tx, done_rx) = mpsc::channel();
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        let done = done_tx.clone();
                        let (level, shared) = (&level, &shared);
                        scope.spawn(move || {
                            let found = expand(level, depth, shared);
                            let _ = done.send(());
                            found
                        })
                    })
                    .collect();
                // Report progress while the workers run (a level may be long).
                let mut finished = 0;
                while finished < threads {
                    match done_rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(()) => finished += 1,
                        Err(_) if last_progress.elapsed() >= Duration::from_secs(1) => {
                            last_progress = Instant::now();
                            progress(&snapshot(&report, &shared, started));
                        }
                        Err(_) => {}
                    }
                }
                workers.into_iter().map(|w| w.join().expect("workers catch protocol panics")).collect()
            })
        };
        drop(level);
        depth += 1;
        level = Vec::new();
        for f in found {
            if f.applied && report.first_applied_at.is_none() {
                report.first_applied_at = Some(depth);
            }
            if f.leader && report.first_leader_at.is_none() {
                report.first_leader_at = Some(depth);
            }
            if !f.next.is_empty() {
                report.depth = depth;
            }
            level.extend(f.next);
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(&snapshot(&report, &shared, started));
        }
    }
    report = snapshot(&report, &shared, started);
    let found = shared.found.lock().expect("workers are done").take();
    if let Some((violation, fp)) = found {
        report.depth = depth;
        let steps = labelled::<P>(config, bounds, shared.seen.path(fp));
        report.counterexample = Some(Counterexample { violation, steps });
    } else if let Some(limit) = *shared.stopped_by.lock().expect("workers are done") {
        report.exhausted = false;
        report.stopped_by = Some(limit);
    }
    report
}

/// The report so far, with the shared counters read now.
fn snapshot(report: &Report, shared: &Shared<'_>, started: Instant) -> Report {
    Report {
        states: shared.states.load(Ordering::Relaxed),
        transitions: shared.transitions.load(Ordering::Relaxed),
        pruned_by_term: shared.pruned_by_term.load(Ordering::Relaxed),
        at_depth_limit: shared.at_depth_limit.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        ..report.clone()
    }
}
