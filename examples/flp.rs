//! FLP in practice: Raft timeouts that keep colliding elect nobody, safely;
//! randomized timeouts end it.
//!
//! `cargo run --example flp` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::Duration;
use quorum_raft::Raft;
use quorum_scenarios::common::{election_timeouts, narrate_terms, not_heartbeat, scripted};
use quorum_scenarios::Story;
use quorum_sim::{Latency, Sim};

fn main() {
    quorum_scenarios::example_main(flp);
}

/// FLP in practice: timeouts that keep colliding elect nobody, and nothing
/// unsafe happens; randomized timeouts end it.
pub fn flp() -> Story {
    let mut story = Story::new("FLP in practice: no leader while timeouts collide, then randomization ends it");
    // Election timeouts within 1 ms of each other, 5 ms links: every node times
    // out and votes for itself before any other candidate's request arrives.
    let mut cfg = scripted(5, 1);
    cfg.network.latency = Latency::Constant(Duration::from_millis(5));
    let mut sim = Sim::<Raft>::new(cfg.clone(), election_timeouts(150, 151));
    story.say(sim.now(), "five nodes with election timeouts between 150 and 151 ms and 5 ms links");
    sim.run_for(Duration::from_secs(3));
    let (split, won) = narrate_terms(&mut story, &sim);
    story.check(format!("no leader in 3 s of colliding timeouts ({split} split elections)"), won == 0 && split >= 10);
    story.check("nothing unsafe happened meanwhile", sim.violations().is_empty());
    let stuck_events: Vec<_> = sim.trace().events().iter().filter(|e| e.at_ns < 320_000_000).cloned().collect();

    let mut sim = Sim::<Raft>::new(cfg, election_timeouts(150, 300));
    story.say(sim.now(), "the same cluster with timeouts drawn from 150–300 ms");
    let elected = sim.run_until(Duration::from_secs(2), |s| s.leader().is_some());
    let at = sim.now();
    story.say(
        at,
        format!(
            "{} became leader: one node timed out well before the others",
            sim.leader().map_or("nobody".into(), |l| l.to_string())
        ),
    );
    story.check("randomized timeouts elect a leader within 2 s", elected);
    story.check("and within 300 ms of the first timeout window", elected && at.as_nanos() < 700_000_000);
    story.set_events(stuck_events.into_iter().filter(not_heartbeat), 5);
    story
}
