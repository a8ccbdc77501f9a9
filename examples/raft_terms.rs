//! Raft terms: a leader fails, the next election splits the vote, a later one wins.
//!
//! `cargo run --example raft_terms` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::Duration;
use quorum_raft::Raft;
use quorum_scenarios::common::{
    candidates_by_term, election_timeouts, leaders_by_term, narrate_terms, not_heartbeat, scripted,
};
use quorum_scenarios::Story;
use quorum_sim::Sim;

fn main() {
    quorum_scenarios::example_main(term_progression);
}

/// Raft term progression: a leader fails, the next election splits, a later one succeeds.
pub fn term_progression() -> Story {
    let mut story = Story::new("Raft terms: leader failure, a split vote, re-election");
    let (seed, (sim, crashed)) = {
        let mut found = None;
        for seed in 0..3000 {
            let mut sim = Sim::<Raft>::new(scripted(5, seed), election_timeouts(150, 165));
            sim.run_until(Duration::from_secs(2), |s| s.leader().is_some());
            let Some(old) = sim.leader() else { continue };
            let term_before = sim.status(old).expect("leader is up").term;
            sim.crash(old);
            sim.run_until(Duration::from_secs(3), |s| s.leader().is_some_and(|l| l != old));
            let ev = sim.trace().events();
            let cands = candidates_by_term(ev);
            let leaders = leaders_by_term(ev);
            let after: Vec<_> = cands.iter().filter(|(t, _)| **t > term_before).collect();
            let split_then_win = after.first().is_some_and(|(t, c)| c.len() >= 2 && !leaders.contains_key(t))
                && sim.leader().is_some_and(|l| l != old);
            if split_then_win {
                found = Some((seed, (sim, old)));
                break;
            }
        }
        found.expect("some seed shows a split vote after a leader crash")
    };
    story.say(quorum_core::Instant::ZERO, format!("five nodes, timeouts 150–165 ms (seed {seed})"));
    let crash_at = sim
        .trace()
        .events()
        .iter()
        .find(|e| matches!(e.what, quorum_sim::What::Crash { .. }))
        .map_or(sim.now(), |e| quorum_core::Instant::from_nanos(e.at_ns));
    let (split, won) = narrate_terms(&mut story, &sim);
    story.say(crash_at, format!("{crashed} (the leader) crashes; the others stop hearing heartbeats"));
    story.lines.sort_by_key(|(at, _)| *at);
    let terms: Vec<u64> = leaders_by_term(sim.trace().events()).keys().copied().collect();
    story.check(
        "a leader was elected, crashed, and a new one took over in a higher term",
        won >= 2 && terms.windows(2).all(|w| w[0] < w[1]),
    );
    story.check("one election in between split the vote", split >= 1);
    story.check("no term ever had two leaders (the simulator checks this on every step)", sim.violations().is_empty());
    story.set_events(sim.trace().events().iter().filter(|e| not_heartbeat(e)).cloned(), 5);
    story
}
