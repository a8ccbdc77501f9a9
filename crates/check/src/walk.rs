//! Random walks: from the initial state, one action picked at random after
//! another, up to the depth bound, then again from the start. Every state
//! met for the first time has its properties checked, as in the exhaustive
//! searches, and a violation in any step ends the search. Nothing is
//! exhausted this way, but each walk reaches the depth bound at once, with
//! crashes, restarts, elections and commands spread along it: the deep
//! corners that the breadth-first search reaches only after millions of
//! shallower states. Seeded (`Bounds::seed`), so a run is repeatable; the
//! counterexample is the walk that broke a property, shortened (`shrink.rs`).

use crate::explore::{initial_world, labelled, Bounds, ByFingerprint, Counterexample, Pace, Report};
use crate::shrink::shrink;
use crate::world::{Action, World};
use crate::Checkable;
use quorum_core::Rng;

/// The random walks (see the module's comment).
pub(crate) fn search<P: Checkable>(config: P::Config, bounds: &Bounds, mut progress: impl FnMut(&Report)) -> Report {
    let mut pace = Pace::new(bounds);
    let mut rng = Rng::new(bounds.seed);
    let limits = bounds.limits();
    let mut report = Report::start();
    let mut root = match initial_world::<P>(config.clone(), bounds) {
        Ok(world) => world,
        Err(done) => return *done,
    };
    let mut seen: ByFingerprint<()> = ByFingerprint::default();
    seen.insert(root.fingerprint(), ());
    'walks: loop {
        if pace.out_of_time(&mut report, &mut progress) {
            break;
        }
        let mut world = root.clone();
        let mut steps = Vec::new();
        let mix = Mix::draw(&mut rng, bounds.nodes + bounds.spares);
        while steps.len() < bounds.max_depth {
            if world.max_term() > bounds.max_term {
                report.pruned_by_term += 1;
                continue 'walks;
            }
            // A proposal the node refuses is no step: pick again among the rest.
            let mut actions = world.actions(&limits);
            let action = loop {
                if actions.is_empty() {
                    break None; // a dead end: nothing can happen here
                }
                let action = actions.swap_remove(mix.pick(&mut rng, &actions, &world));
                if world.apply(&action) {
                    break Some(action);
                }
            };
            let Some(action) = action else { break };
            world.record_leaders(bounds.one_leader_per_term);
            report.transitions += 1;
            steps.push(action);
            let depth = steps.len();
            if seen.insert(world.fingerprint(), ()).is_none() {
                report.first_visit(&mut world, depth);
            }
            // Checked at every step, not only in new states: a step into a
            // known state may still break a property on its way (a value
            // applied twice differently, a panic).
            if let Some(violation) = world.violation().cloned() {
                let cx = Counterexample { violation, steps: labelled::<P>(config.clone(), bounds, steps) };
                report.counterexample = Some(shrink::<P>(&config, bounds, cx));
                break 'walks;
            }
            if report.states >= bounds.max_states {
                report.stopped_by = Some("the state limit");
                break 'walks;
            }
        }
        if steps.len() >= bounds.max_depth {
            report.at_depth_limit += 1;
        }
    }
    report.exhausted = false;
    report.elapsed = pace.elapsed();
    report
}

/// The weight of a straggling message's delivery.
const SLOW: f64 = 0.02;

/// A walk's mix of actions (swarm testing: Groce et al., "Swarm Testing",
/// ISSTA 2012). A uniform pick among the enabled actions delivers a message
/// within a few steps of its sending, fires timers as often as anything
/// else, and so almost never holds a message across an election; each walk
/// instead draws weights of its own: some links slow (their messages are
/// picked rarely, so they arrive late, after the world moved on), some
/// messages slow whatever their link (stragglers: a stale message among
/// fresh ones on the same link), timers, crashes, syncs and proposals each
/// rare or common. One walk in four keeps the uniform pick.
struct Mix {
    /// Weight of a delivery on each directed link, `[from][to]` (ids from 1).
    link: Vec<Vec<f64>>,
    /// The share of messages that straggle (picked with weight `SLOW`),
    /// chosen by their fingerprint mixed with `salt`, so a message keeps
    /// its lot for the whole walk.
    straggle: f64,
    salt: u64,
    timer: f64,
    sync: f64,
    crash: f64,
    restart: f64,
    propose: f64,
    change: f64,
}

impl Mix {
    fn draw(rng: &mut Rng, nodes: u64) -> Mix {
        let n = nodes as usize + 1;
        if rng.chance(0.25) {
            return Mix {
                link: vec![vec![1.0; n]; n],
                straggle: 0.0,
                salt: 0,
                timer: 1.0,
                sync: 1.0,
                crash: 1.0,
                restart: 1.0,
                propose: 1.0,
                change: 1.0,
            };
        }
        let one_of = |rng: &mut Rng, choices: &[f64]| choices[rng.index(choices.len())];
        let (slow, slow_weight) = (one_of(rng, &[0.0, 0.2, 0.4]), one_of(rng, &[0.02, 0.1]));
        let link = (0..n).map(|_| (0..n).map(|_| if rng.chance(slow) { slow_weight } else { 1.0 }).collect()).collect();
        let salt = rng.next_u64();
        Mix {
            link,
            straggle: one_of(rng, &[0.0, 0.05, 0.2]),
            salt,
            timer: one_of(rng, &[0.05, 0.2, 1.0]),
            sync: one_of(rng, &[0.2, 1.0, 3.0]),
            crash: one_of(rng, &[0.01, 0.1, 1.0]),
            restart: one_of(rng, &[0.1, 1.0]),
            propose: one_of(rng, &[0.05, 0.3, 1.0]),
            change: one_of(rng, &[0.05, 0.3, 1.0]),
        }
    }

    fn weight<P: Checkable>(&self, action: &Action, world: &World<P>) -> f64 {
        match *action {
            Action::Deliver { index, from, to, .. } => {
                let lot = (world.message_fingerprint(index) ^ self.salt).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
                let straggles = (lot as f64) < self.straggle * (1u64 << 53) as f64;
                self.link[from.0 as usize][to.0 as usize] * if straggles { SLOW } else { 1.0 }
            }
            Action::Timer(_) => self.timer,
            Action::Sync(_) => self.sync,
            Action::Crash(_) => self.crash,
            Action::Restart(_) => self.restart,
            Action::Propose { .. } => self.propose,
            Action::Change { .. } | Action::Wipe { .. } => self.change,
        }
    }

    /// The position of an action picked with these weights (`actions` is not empty).
    fn pick<P: Checkable>(&self, rng: &mut Rng, actions: &[Action], world: &World<P>) -> usize {
        let total: f64 = actions.iter().map(|a| self.weight(a, world)).sum();
        let mut at = rng.unit() * total;
        for (i, action) in actions.iter().enumerate() {
            at -= self.weight(action, world);
            if at < 0.0 {
                return i;
            }
        }
        actions.len() - 1
    }
}
