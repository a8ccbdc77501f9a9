//! Depth-first search: one path of worlds in memory, and a map from each
//! state's fingerprint to the shallowest depth it was reached at. A state met
//! again at a shallower depth is expanded again, so that the depth bound cuts
//! no state short that a shorter path would have expanded: within the bounds
//! it visits what the breadth-first search visits. The counterexample is the
//! path the search was on when a property broke: it replays, but a shorter
//! one may exist (the breadth-first search finds that one).

use crate::explore::{initial_world, labelled, Bounds, ByFingerprint, Counterexample, Pace, Report};
use crate::world::{Action, World};
use crate::Checkable;

/// One world on the current path, the actions out of it, and how far
/// through them the search is.
struct Frame<P: quorum_core::Protocol> {
    world: World<P>,
    actions: Vec<Action>,
    next: usize,
    /// The action that led here from the frame below (`None` at the root).
    via: Option<Action>,
}

/// The depth-first search (see the module's comment).
pub(crate) fn search<P: Checkable>(config: P::Config, bounds: &Bounds, mut progress: impl FnMut(&Report)) -> Report {
    let mut pace = Pace::new(bounds);
    let limits = bounds.limits();
    let mut report = Report::start();
    let mut root = match initial_world::<P>(config.clone(), bounds) {
        Ok(world) => world,
        Err(done) => return *done,
    };
    let mut seen: ByFingerprint<u32> = ByFingerprint::default();
    seen.insert(root.fingerprint(), 0);
    let actions = root.actions(&limits);
    let mut path = vec![Frame { world: root, actions, next: 0, via: None }];
    let mut steps_taken: u64 = 0;
    while let Some(top) = path.last_mut() {
        // Look at the clock now and then, whatever the last step found.
        steps_taken += 1;
        if steps_taken % 1024 == 0 && pace.out_of_time(&mut report, &mut progress) {
            break;
        }
        let Some(action) = top.actions.get(top.next).cloned() else {
            path.pop();
            continue;
        };
        top.next += 1;
        let mut next = top.world.clone();
        if !next.apply(&action) {
            continue;
        }
        next.record_leaders(bounds.one_leader_per_term);
        report.transitions += 1;
        let depth = path.len();
        let fp = next.fingerprint();
        let known = seen.get(&fp).copied();
        if known.is_some_and(|d| d as usize <= depth) {
            continue;
        }
        seen.insert(fp, depth as u32);
        if known.is_none() {
            // A new state: its properties are checked once.
            report.first_visit(&mut next, depth);
            if let Some(violation) = next.violation().cloned() {
                let mut steps: Vec<Action> = path.iter().filter_map(|f| f.via.clone()).collect();
                steps.push(action);
                report.counterexample = Some(Counterexample { violation, steps: labelled::<P>(config, bounds, steps) });
                break;
            }
        }
        if report.states >= bounds.max_states {
            report.stopped_by = Some("the state limit");
            break;
        }
        if depth >= bounds.max_depth {
            report.at_depth_limit += 1;
            continue;
        }
        if next.max_term() > bounds.max_term {
            report.pruned_by_term += 1;
            continue;
        }
        let actions = next.actions(&limits);
        path.push(Frame { world: next, actions, next: 0, via: Some(action) });
    }
    report.exhausted = report.counterexample.is_none() && report.stopped_by.is_none();
    report.elapsed = pace.elapsed();
    report
}
