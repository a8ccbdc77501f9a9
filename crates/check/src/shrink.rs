//! Shortening a counterexample: a random walk breaks a property after
//! seventy-odd steps, most of them beside the point. Steps are dropped one
//! at a time, and a shorter list is kept whenever it still replays to a
//! violation of the same property (where it breaks first, the rest is cut).
//! Dropping a step shifts the positions of the messages in flight, so a
//! delivery is matched by sender, receiver and message, not by position
//! (or, failing that, by the kind of message: its fields may have changed);
//! and the steps it makes impossible (the delivery of a reply never sent)
//! are dropped with it. Whatever the matching picks, the result is checked
//! the only way that counts: it replays to the same broken property.
//! The result is locally minimal — no single step can go — not shortest.

use crate::explore::Bounds;
use crate::world::Action;
use crate::{Checkable, Counterexample};

/// The counterexample with every step it can do without dropped.
pub(crate) fn shrink<P: Checkable>(config: &P::Config, bounds: &Bounds, cx: Counterexample) -> Counterexample {
    let property = cx.violation.property;
    let mut best = cx;
    // Passes until none shortens it: a step may go only once a later one has.
    loop {
        let before = best.steps.len();
        let mut i = 0;
        while i < best.steps.len() {
            let mut candidate = best.steps.clone();
            candidate.remove(i);
            match replay_matching::<P>(config, bounds, &candidate, property) {
                Some(shorter) => best = shorter, // try the same position again
                None => i += 1,
            }
        }
        if best.steps.len() == before {
            return best;
        }
    }
}

/// Replays `steps`, each matched among the actions possible at its turn
/// and skipped if none matches, until `property` breaks: the steps taken
/// to there, with the violation. `None` if the property holds to the end,
/// or another breaks first.
fn replay_matching<P: Checkable>(
    config: &P::Config,
    bounds: &Bounds,
    steps: &[Action],
    property: &str,
) -> Option<Counterexample> {
    let limits = bounds.limits();
    let mut world = bounds.world::<P>(config.clone());
    let mut taken = Vec::new();
    for step in steps {
        // A step that dropping an earlier one made impossible (a reply to
        // a message no longer delivered) goes too.
        let possible: Vec<Action> = world.actions(&limits).into_iter().map(|a| world.labelled(a)).collect();
        let exact = possible.iter().find(|a| same(a, step, false));
        let Some(action) = exact.or_else(|| possible.iter().find(|a| same(a, step, true))).cloned() else { continue };
        world.apply(&action);
        world.check_state(bounds.one_leader_per_term);
        taken.push(action);
        if let Some(violation) = world.violation().filter(|v| v.property == property) {
            return Some(Counterexample { violation: violation.clone(), steps: taken });
        }
        if world.violation().is_some() {
            return None; // another property broke first: not the same counterexample
        }
    }
    None
}

/// The same step, whatever position its message holds now; with `loosely`,
/// a delivery of the same kind of message between the same nodes (its
/// fields may differ: a session number drawn after a restart that is gone).
fn same(a: &Action, b: &Action, loosely: bool) -> bool {
    match (a, b) {
        (Action::Deliver { from, to, label, .. }, Action::Deliver { from: f, to: t, label: l, .. }) => {
            from == f && to == t && if loosely { kind(label) == kind(l) } else { label == l }
        }
        _ => a == b,
    }
}

/// A message's kind: its label up to the first field.
fn kind(label: &str) -> &str {
    label.split([' ', '{', '(']).next().unwrap_or_default()
}
