//! Leader election: FLP in practice, a split vote, and term progression.

use super::common::{candidates_by_term, leaders_by_term, names, not_heartbeat, scripted};
use super::Story;
use quorum_core::Duration;
use quorum_raft::{Raft, RaftConfig};
use quorum_sim::{Latency, Sim};

fn raft(min_ms: u64, max_ms: u64, pre_vote: bool) -> RaftConfig {
    RaftConfig {
        election_timeout_min: Duration::from_millis(min_ms),
        election_timeout_max: Duration::from_millis(max_ms),
        pre_vote,
        ..RaftConfig::default()
    }
}

/// Tells, term by term, who stood and who won.
fn narrate_terms(story: &mut Story, sim: &Sim<Raft>) -> (usize, usize) {
    let events = sim.trace().events();
    let candidates = candidates_by_term(events);
    let leaders = leaders_by_term(events);
    let (mut split, mut won) = (0, 0);
    for (term, who) in &candidates {
        let at = events
            .iter()
            .find(
                |e| matches!(&e.what, quorum_sim::What::Role { term: t, role, .. } if t == term && role == "candidate"),
            )
            .map_or(sim.now(), |e| quorum_core::Instant::from_nanos(e.at_ns));
        match leaders.get(term) {
            Some(l) => {
                won += 1;
                story.say(at, format!("term {term}: {} stood; n{l} won a majority of votes and leads", names(who)));
            }
            None => {
                split += 1;
                story.say(at, format!("term {term}: {} stood at once; the votes split and nobody won", names(who)));
            }
        }
    }
    (split, won)
}

/// FLP in practice: timeouts that keep colliding elect nobody, and nothing
/// unsafe happens; randomized timeouts end it.
pub fn flp() -> Story {
    let mut story = Story::new("FLP in practice: no leader while timeouts collide, then randomization ends it");
    // Election timeouts within 1 ms of each other, 5 ms links: every node times
    // out and votes for itself before any other candidate's request arrives.
    let mut cfg = scripted(5, 1);
    cfg.network.latency = Latency::Constant(Duration::from_millis(5));
    let mut sim = Sim::<Raft>::new(cfg.clone(), raft(150, 151, false));
    story.say(sim.now(), "five nodes with election timeouts between 150 and 151 ms and 5 ms links");
    sim.run_for(Duration::from_secs(3));
    let (split, won) = narrate_terms(&mut story, &sim);
    story.check(format!("no leader in 3 s of colliding timeouts ({split} split elections)"), won == 0 && split >= 10);
    story.check("nothing unsafe happened meanwhile", sim.violations().is_empty());
    let stuck_events: Vec<_> = sim.trace().events().iter().filter(|e| e.at_ns < 320_000_000).cloned().collect();

    let mut sim = Sim::<Raft>::new(cfg, raft(150, 300, false));
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

/// Finds the first seed (from `start`) whose run satisfies `want`.
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
        let mut sim = Sim::<Raft>::new(scripted(5, seed), raft(150, 160, false));
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

/// Raft term progression: a leader fails, the next election splits, a later one succeeds.
pub fn term_progression() -> Story {
    let mut story = Story::new("Raft terms: leader failure, a split vote, re-election");
    let (seed, (sim, crashed)) = {
        let mut found = None;
        for seed in 0..3000 {
            let mut sim = Sim::<Raft>::new(scripted(5, seed), raft(150, 165, false));
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
