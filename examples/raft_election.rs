//! A Raft election in five nodes: a split vote, resolved by randomized timeouts.
//!
//! `cargo run --example raft_election` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::Duration;
use quorum_raft::Raft;
use quorum_scenarios::common::{
    candidates_by_term, election_timeouts, leaders_by_term, narrate_terms, not_heartbeat, scripted,
};
use quorum_scenarios::Story;
use quorum_sim::Sim;

fn main() {
    quorum_scenarios::example_main(split_vote);
}

/// Finds the first seed from `start` whose run shows the split (`run` says so).
fn find_seed(start: u64, tries: u64, run: impl Fn(u64) -> (Sim<Raft>, bool)) -> (u64, Sim<Raft>) {
    for seed in start..start + tries {
        let (sim, ok) = run(seed);
        if ok {
            return (seed, sim);
        }
    }
    let (sim, _) = run(start);
    (start, sim)
}

/// Raft election in a 5-node cluster with a split vote resolved by randomized timeouts.
pub fn split_vote() -> Story {
    let mut story = Story::new("Raft election: a split vote, resolved by randomized timeouts");
    // Timeouts drawn from a narrow window make a split likely; we look for a
    // seed where the first election splits (the search is deterministic).
    let (seed, sim) = find_seed(0, 2000, |seed| {
        let mut sim = Sim::<Raft>::new(scripted(5, seed), election_timeouts(150, 160));
        sim.run_until(Duration::from_secs(2), |s| s.leader().is_some());
        let ev = sim.trace().events();
        let cands = candidates_by_term(ev);
        let leaders = leaders_by_term(ev);
        let first_split = cands.iter().next().is_some_and(|(t, c)| c.len() >= 2 && !leaders.contains_key(t));
        let ok = first_split && sim.leader().is_some();
        (sim, ok)
    });
    story.say(quorum_core::Instant::ZERO, format!("five followers, election timeouts 150–160 ms (seed {seed})"));
    let (split, won) = narrate_terms(&mut story, &sim);
    story.check("the first election split the vote", split >= 1);
    story.check("a later term elected exactly one leader", won == 1 && sim.leader().is_some());
    story.check("no safety violation", sim.violations().is_empty());
    let events = sim.trace().events().iter().filter(|e| not_heartbeat(e)).cloned();
    story.set_events(events, 5);
    story
}
