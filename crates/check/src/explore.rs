//! The search: its bounds, what it reports, and the ways to walk the state
//! space. Breadth first (`bfs.rs`, the default) finds a shortest
//! counterexample but holds a whole level of worlds in memory; depth first
//! (`dfs.rs`) holds one path, so it reaches deep states within a memory
//! budget, and its counterexample is the path it was on (replayable, not
//! necessarily shortest). Random walks (`walk.rs`) exhaust nothing and go
//! deep at once.

use crate::world::{Action, Limits, Violation, World};
use crate::Checkable;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

/// The order states are visited in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Search {
    /// Level by level: a shortest counterexample; memory grows with the
    /// widest level.
    #[default]
    BreadthFirst,
    /// One path at a time (one thread): deep states soon, little memory;
    /// the counterexample is the path the search was on.
    DepthFirst,
    /// Random walks to the depth bound, again and again (one thread, seeded):
    /// never exhaustive, but deep at once; the counterexample is the walk.
    RandomWalks,
}

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
    /// Operator actions, in all: membership changes asked of a leader and
    /// disks replaced (protocols whose membership can change).
    pub changes: u32,
    /// Nodes beyond `nodes` that start outside the configuration, for the
    /// operator to add.
    pub spares: u64,
    /// States where any node's term, ballot round or epoch exceeds this are
    /// not expanded.
    pub max_term: u64,
    /// Paths longer than this are not expanded.
    pub max_depth: usize,
    /// Stop after this many distinct states.
    pub max_states: usize,
    /// Stop after this much wall time.
    pub max_time: Option<Duration>,
    /// Check "one leader per term" (Raft terms and Zab epochs name one
    /// leader; Paxos ballot rounds do not).
    pub one_leader_per_term: bool,
    /// Worker threads (breadth first only).
    pub threads: usize,
    /// Breadth or depth first, or random walks.
    pub search: Search,
    /// Seed of the random walks.
    pub seed: u64,
}

impl Bounds {
    pub(crate) fn limits(&self) -> Limits {
        Limits { commands: self.commands, crashes: self.crashes, timers: self.timers, changes: self.changes }
    }

    /// The initial world of these bounds.
    pub(crate) fn world<P: Checkable>(&self, config: P::Config) -> World<P> {
        World::with_spares(self.nodes, self.spares, config)
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            nodes: 3,
            commands: 2,
            crashes: 1,
            timers: 8,
            changes: 0,
            spares: 0,
            max_term: 3,
            max_depth: 40,
            max_states: 1_000_000,
            max_time: None,
            one_leader_per_term: true,
            threads: 1,
            search: Search::BreadthFirst,
            seed: 0,
        }
    }
}

/// A property broken on a path from the initial state (a shortest one
/// when the search is breadth first).
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
    /// True if every state within the bounds was expanded (no limit hit).
    pub exhausted: bool,
    /// Which limit ended the search early, if one did: "the state limit" or
    /// "the time limit".
    pub stopped_by: Option<&'static str>,
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
    /// Before a search: the initial state seen, nothing else.
    pub(crate) fn start() -> Report {
        Report {
            states: 1,
            transitions: 0,
            depth: 0,
            exhausted: true,
            stopped_by: None,
            pruned_by_term: 0,
            at_depth_limit: 0,
            first_applied_at: None,
            first_leader_at: None,
            elapsed: Duration::ZERO,
            counterexample: None,
        }
    }

    /// A state met for the first time, at `depth`: checks its properties
    /// and notes the "sometimes" depths it shows.
    pub(crate) fn first_visit<P: Checkable>(&mut self, world: &mut World<P>, depth: usize) {
        world.check_invariants();
        self.states += 1;
        self.depth = self.depth.max(depth);
        if world.applied_count() > 0 && self.first_applied_at.is_none_or(|d| depth < d) {
            self.first_applied_at = Some(depth);
        }
        if world.had_leader() && self.first_leader_at.is_none_or(|d| depth < d) {
            self.first_leader_at = Some(depth);
        }
    }

    /// Distinct states per second of wall time.
    pub fn states_per_second(&self) -> f64 {
        self.states as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The wall clock of a one-thread search: its time limit, and a progress
/// report about once a second.
pub(crate) struct Pace {
    started: std::time::Instant,
    deadline: Option<std::time::Instant>,
    last_progress: std::time::Instant,
}

impl Pace {
    pub(crate) fn new(bounds: &Bounds) -> Self {
        let started = std::time::Instant::now();
        Pace { started, deadline: bounds.max_time.map(|t| started + t), last_progress: started }
    }

    /// True if the time limit ran out (and the report says so); otherwise
    /// hands `progress` the report if a second passed since it last did.
    pub(crate) fn out_of_time(&mut self, report: &mut Report, progress: &mut impl FnMut(&Report)) -> bool {
        if self.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            report.stopped_by = Some("the time limit");
            return true;
        }
        if self.last_progress.elapsed() >= Duration::from_secs(1) {
            self.last_progress = std::time::Instant::now();
            report.elapsed = self.started.elapsed();
            progress(report);
        }
        false
    }

    /// Wall time since the search started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Fingerprints are hashes already: maps keyed by them use them as they are.
#[derive(Default, Clone, Copy)]
pub(crate) struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by fingerprints.
pub(crate) type ByFingerprint<V> = HashMap<u64, V, BuildHasherDefault<AsIs>>;

/// The initial world, its properties checked; or, if it breaks one already,
/// the finished report, with the empty counterexample.
pub(crate) fn initial_world<P: Checkable>(config: P::Config, bounds: &Bounds) -> Result<World<P>, Box<Report>> {
    let mut world = bounds.world::<P>(config);
    world.check_state(bounds.one_leader_per_term);
    match world.violation().cloned() {
        None => Ok(world),
        Some(violation) => {
            let cx = Counterexample { violation, steps: Vec::new() };
            Err(Box::new(Report { counterexample: Some(cx), ..Report::start() }))
        }
    }
}

/// Explores every world reachable from `bounds.nodes` fresh nodes within
/// `bounds`. `progress` is called about once a second with the states seen
/// so far.
pub fn explore<P: Checkable>(config: P::Config, bounds: &Bounds, progress: impl FnMut(&Report)) -> Report {
    match bounds.search {
        Search::BreadthFirst => crate::bfs::search::<P>(config, bounds, progress),
        Search::DepthFirst => crate::dfs::search::<P>(config, bounds, progress),
        Search::RandomWalks => crate::walk::search::<P>(config, bounds, progress),
    }
}

/// The steps with their message labels, made by walking the path again (so
/// that labels are formatted for the steps shown, not for every state).
pub(crate) fn labelled<P>(config: P::Config, bounds: &Bounds, steps: Vec<Action>) -> Vec<Action>
where
    P: Checkable,
{
    let mut world = bounds.world::<P>(config);
    steps
        .into_iter()
        .map(|step| {
            let shown = world.labelled(step.clone());
            world.apply(&step);
            shown
        })
        .collect()
}

/// Replays a counterexample's steps from the initial state and returns the
/// world after them (its `violation()` says what broke), so a counterexample
/// can be kept as a test.
pub fn replay<P>(config: P::Config, bounds: &Bounds, steps: &[Action]) -> World<P>
where
    P: Checkable,
{
    let mut world = bounds.world::<P>(config);
    world.check_state(bounds.one_leader_per_term);
    for step in steps {
        let possible = world.actions(&bounds.limits()).into_iter().map(|a| world.labelled(a)).any(|a| a == *step);
        assert!(possible, "step {step:?} is not possible here");
        world.apply(step);
        world.check_state(bounds.one_leader_per_term);
    }
    world
}
