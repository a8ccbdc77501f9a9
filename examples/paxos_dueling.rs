//! Dueling proposers in Basic Paxos: a livelock without backoff, ended by
//! randomized backoff.
//!
//! `cargo run --example paxos_dueling` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::{Duration, Instant, NodeId};
use quorum_paxos::{Paxos, PaxosConfig};
use quorum_scenarios::common::{is_kind, scripted, set};
use quorum_scenarios::Story;
use quorum_sim::{Sim, TraceEvent, What};

fn main() {
    quorum_scenarios::example_main(dueling);
}

/// Runs the duel: n3 is down, so every majority of three needs both n1 and n2,
/// and both propose at time zero. Each proposer's own acceptor promises its
/// new ballot the moment a refusal arrives, which is before the other
/// proposer's Accept gets there, so without backoff every Accept meets a
/// fresher promise: the schedule repeats forever with rising ballots.
/// Returns the simulator after `limit` of virtual time (or once both commands committed).
fn duel(backoff: bool, limit: Duration) -> Sim<Paxos> {
    let config = PaxosConfig::default().with(|c| c.backoff = backoff);
    let mut sim = Sim::<Paxos>::new(scripted(3, 7), config);
    sim.crash(NodeId(3));
    sim.propose(NodeId(1), set(1, "x", "from n1")).expect("any node proposes");
    sim.propose(NodeId(2), set(2, "y", "from n2")).expect("any node proposes");
    sim.run_until(limit, |s| [1, 2].iter().all(|n| s.applied_index(NodeId(*n)) >= 2));
    sim
}

fn highest_round(sim: &Sim<Paxos>) -> u64 {
    [1, 2].iter().filter_map(|n| sim.status(NodeId(*n))).map(|s| s.term).max().unwrap_or(0)
}

fn nacks(sim: &Sim<Paxos>) -> usize {
    sim.trace()
        .events()
        .iter()
        .filter(|e| matches!(&e.what, What::Deliver { msg, .. } if msg.starts_with("Nack")))
        .count()
}

/// Tells the first `rounds` refusals of the duel, as the trace shows them.
fn narrate_duel(story: &mut Story, sim: &Sim<Paxos>, rounds: usize) {
    let refusals = sim.trace().events().iter().filter_map(|e| match &e.what {
        What::Deliver { from, to, msg, .. } if msg.starts_with("Nack") => Some((e.at_ns, *from, *to, msg.clone())),
        _ => None,
    });
    for (at, from, to, msg) in refusals.take(rounds) {
        // "Nack { slot: 1, ballot: b1.1, promised: b1.2 }"
        let field = |name: &str| msg.split(&format!("{name}: ")).nth(1).and_then(|r| r.split([',', ' ']).next());
        let (refused, promised) = (field("ballot").unwrap_or("?"), field("promised").unwrap_or("?"));
        story.say(
            Instant::from_nanos(at),
            format!(
                "n{from} refuses n{to}'s {refused}: it promised {promised} meanwhile. n{to} retries at once with a ballot above {promised}, which n{from}'s acceptor must promise, pre-empting n{from} in turn"
            ),
        );
    }
}

/// The duel without backoff: returns the first milliseconds of it, to draw.
fn livelock(story: &mut Story, limit: Duration) -> Vec<TraceEvent> {
    let sim = duel(false, limit);
    story.say(
        Instant::ZERO,
        "first run: three acceptors, n3 down: every majority now needs both n1 and n2. Both propose at once, for slot 1, and retry at once when refused (no backoff)",
    );
    narrate_duel(story, &sim, 4);
    let values: std::collections::BTreeSet<&str> = sim
        .trace()
        .events()
        .iter()
        .filter_map(|e| match &e.what {
            What::Deliver { msg, .. } if msg.starts_with("Accept {") => msg.split("value: ").nth(1),
            _ => None,
        })
        .collect();
    let adopted_at = sim
        .trace()
        .events()
        .iter()
        .find(|e| matches!(&e.what, What::Deliver { msg, .. } if msg.starts_with("Promise") && msg.contains("accepted: Some")))
        .map_or(sim.now(), |e| Instant::from_nanos(e.at_ns));
    story.say(
        adopted_at,
        "from then on both propose the same value: a promise reports y, accepted by n2's acceptor in the previous ballot, and the proposer must adopt it (P2c). It does not help: a value is chosen only when a majority accepts it in one ballot",
    );
    story.check(
        format!(
            "every Accept of the duel carried one and the same value ({} distinct), yet none was chosen",
            values.len()
        ),
        values.len() == 1,
    );
    let (round, refused) = (highest_round(&sim), nacks(&sim));
    let chosen = [1, 2].iter().any(|n| sim.applied_index(NodeId(*n)) > 0);
    story.say(
        sim.now(),
        format!("after {:.0} ms: ballot round {round}, {refused} refusals, nothing chosen", limit.as_millis_f64()),
    );
    story.lines.sort_by_key(|(at, _)| *at);
    story.check(
        format!("without backoff nothing is chosen in {:.0} ms of virtual time", limit.as_millis_f64()),
        !chosen,
    );
    story.check(format!("ballots kept rising all along (round {round})"), round > 100);
    story.check("nothing unsafe happened: no acceptor accepted two values in one ballot", sim.violations().is_empty());
    let stuck: Vec<TraceEvent> = sim
        .trace()
        .events()
        .iter()
        .filter(|e| e.at_ns <= 9_000_000 && !matches!(e.what, What::Role { .. } | What::Drop { .. }))
        .filter(|e| is_kind(e, &["Prepare", "Promise", "Accept {", "Nack"]))
        .cloned()
        .collect();

    stuck
}

/// The same duel with randomized backoff: it ends.
fn with_backoff(story: &mut Story, limit: Duration) {
    let sim = duel(true, limit);
    let done = [1, 2].iter().all(|n| sim.applied_index(NodeId(*n)) >= 2);
    let collided = nacks(&sim);
    story.say(
        Instant::ZERO,
        "second run: the same schedule, now with randomized exponential backoff after each refusal",
    );
    story.say(
        sim.now(),
        format!(
            "after {collided} refusal(s) one proposer waits a random time long enough for the other to finish a whole ballot; the loser's command goes to slot 2. Both are committed after {:.1} ms, at ballot round {}",
            sim.now().as_nanos() as f64 / 1e6,
            highest_round(&sim)
        ),
    );
    story.check(format!("with backoff the proposers still collided at first (refusals: {collided})"), collided >= 1);
    story.check("with backoff both commands are committed, in two slots", done);
    story.check(
        "n1 and n2 applied the same two commands in the same order",
        done && sim.committed(NodeId(1)) == sim.committed(NodeId(2)),
    );
    story.check("no safety violation", sim.violations().is_empty());
}

/// Dueling proposers: without backoff, a schedule where each Prepare overtakes
/// the other proposer's Accept livelocks; randomized backoff ends it.
pub fn dueling() -> Story {
    let mut story = Story::new("Dueling proposers: a livelock without backoff, ended by randomized backoff");
    let limit = Duration::from_secs(1);
    let stuck = livelock(&mut story, limit);
    with_backoff(&mut story, limit);
    story.set_events(stuck, 3);
    story
}
