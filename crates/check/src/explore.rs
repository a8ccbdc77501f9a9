//! Breadth-first search over the worlds reachable within the bounds, with
//! states told apart by fingerprint; the first violation found is on a
//! shortest path, which is rebuilt from parent links.

use crate::world::{Action, Limits, Violation, World};
use quorum_core::Protocol;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How far to look.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Cluster size.
    pub nodes: u64,
    /// Client commands that may be proposed, in all.
    pub commands: u32,
    /// Crashes, in all (each crashed node may restart).
    pub crashes: u32,
    /// Timer firings, in all.
    pub timers: u32,
    /// States where any node's term, ballot round or epoch exceeds this are
    /// not expanded.
    pub max_term: u64,
    /// Paths longer than this are not expanded.
    pub max_depth: usize,
    /// Stop after this many distinct states.
    pub max_states: usize,
    /// Check "one leader per term" (Raft terms and Zab epochs name one
    /// leader; Paxos ballot rounds do not).
    pub one_leader_per_term: bool,
}

impl Bounds {
    fn limits(&self) -> Limits {
        Limits { commands: self.commands, crashes: self.crashes, timers: self.timers }
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            nodes: 3,
            commands: 2,
            crashes: 1,
            timers: 8,
            max_term: 3,
            max_depth: 40,
            max_states: 1_000_000,
            one_leader_per_term: true,
        }
    }
}

/// A property broken on a shortest path from the initial state.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// What broke.
    pub violation: Violation,
    /// The steps, from the initial state.
    pub steps: Vec<Action>,
}

/// What the search saw.
#[derive(Clone, Debug)]
pub struct Report {
    /// Distinct states reached (fingerprints).
    pub states: usize,
    /// Transitions taken (including those into known states).
    pub transitions: u64,
    /// The deepest level reached.
    pub depth: usize,
    /// True if every state within the bounds was expanded (no state limit hit).
    pub exhausted: bool,
    /// States not expanded because a term passed `max_term`.
    pub pruned_by_term: usize,
    /// States not expanded because they lie at `max_depth`.
    pub at_depth_limit: usize,
    /// "Sometimes" properties: the shallowest depth at which a command was
    /// applied, and at which a leader existed (`None`: never, which means the
    /// bounds prune too much to show anything).
    pub first_applied_at: Option<usize>,
    /// See `first_applied_at`.
    pub first_leader_at: Option<usize>,
    /// Wall time of the search.
    pub elapsed: Duration,
    /// The first violation, on a shortest path.
    pub counterexample: Option<Counterexample>,
}

impl Report {
    /// Distinct states per second of wall time.
    pub fn states_per_second(&self) -> f64 {
        self.states as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How a state was first reached.
struct Parent {
    parent: Option<u64>,
    action: Option<Action>,
}

/// Explores every world reachable from `n` fresh nodes within `bounds`.
/// `progress` is called about once a second with the states seen so far.
pub fn explore<P>(config: P::Config, bounds: &Bounds, mut progress: impl FnMut(&Report)) -> Report
where
    P: Protocol + Clone + std::fmt::Debug,
    P::Message: Clone,
{
    let started = Instant::now();
    let mut report = Report {
        states: 0,
        transitions: 0,
        depth: 0,
        exhausted: true,
        pruned_by_term: 0,
        at_depth_limit: 0,
        first_applied_at: None,
        first_leader_at: None,
        elapsed: Duration::ZERO,
        counterexample: None,
    };
    let mut seen: HashMap<u64, Parent> = HashMap::new();
    let mut queue: VecDeque<(World<P>, u64, usize)> = VecDeque::new();
    let mut initial = World::<P>::new(bounds.nodes, config);
    initial.check_state(bounds.one_leader_per_term);
    let root = initial.fingerprint();
    seen.insert(root, Parent { parent: None, action: None });
    report.states = 1;
    if let Some(v) = initial.violation().cloned() {
        report.counterexample = Some(Counterexample { violation: v, steps: Vec::new() });
        report.elapsed = started.elapsed();
        return report;
    }
    queue.push_back((initial, root, 0));
    let mut last_progress = Instant::now();
    while let Some((world, id, depth)) = queue.pop_front() {
        if depth >= bounds.max_depth {
            report.at_depth_limit += 1;
            continue;
        }
        if world.max_term() > bounds.max_term {
            report.pruned_by_term += 1;
            continue;
        }
        for action in world.actions(&bounds.limits()) {
            let mut next = world.clone();
            if !next.apply(&action) {
                continue;
            }
            next.record_leaders(bounds.one_leader_per_term);
            report.transitions += 1;
            let fp = next.fingerprint();
            if seen.contains_key(&fp) {
                continue;
            }
            // The invariants look at this state alone: run them once per state.
            next.check_invariants();
            seen.insert(fp, Parent { parent: Some(id), action: Some(world.labelled(action)) });
            report.states += 1;
            report.depth = report.depth.max(depth + 1);
            if report.first_applied_at.is_none() && next.applied_count() > 0 {
                report.first_applied_at = Some(depth + 1);
            }
            if report.first_leader_at.is_none() && next.had_leader() {
                report.first_leader_at = Some(depth + 1);
            }
            if let Some(v) = next.violation().cloned() {
                report.counterexample = Some(Counterexample { violation: v, steps: path(&seen, fp) });
                report.elapsed = started.elapsed();
                return report;
            }
            if report.states >= bounds.max_states {
                report.exhausted = false;
                report.elapsed = started.elapsed();
                return report;
            }
            queue.push_back((next, fp, depth + 1));
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            report.elapsed = started.elapsed();
            progress(&report);
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// The actions from the initial state to `fp`.
fn path(seen: &HashMap<u64, Parent>, mut fp: u64) -> Vec<Action> {
    let mut steps = Vec::new();
    while let Some(Parent { parent: Some(parent), action }) = seen.get(&fp) {
        steps.push(action.clone().expect("every state but the root has an action"));
        fp = *parent;
    }
    steps.reverse();
    steps
}

/// Replays a counterexample's steps from the initial state and returns the
/// world after them (its `violation()` says what broke), so a counterexample
/// can be kept as a test.
pub fn replay<P>(config: P::Config, bounds: &Bounds, steps: &[Action]) -> World<P>
where
    P: Protocol + Clone + std::fmt::Debug,
    P::Message: Clone,
{
    let mut world = World::<P>::new(bounds.nodes, config);
    world.check_state(bounds.one_leader_per_term);
    for step in steps {
        let possible = world.actions(&bounds.limits()).into_iter().map(|a| world.labelled(a)).any(|a| a == *step);
        assert!(possible, "step {step:?} is not possible here");
        world.apply(step);
        world.check_state(bounds.one_leader_per_term);
    }
    world
}
