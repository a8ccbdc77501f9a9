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
                let action = actions.swap_remove(rng.index(actions.len()));
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
