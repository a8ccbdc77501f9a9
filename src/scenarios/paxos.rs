//! Basic Paxos: one decree chosen by Prepare/Promise and Accept/Accepted, and
//! dueling proposers that livelock without backoff.

use super::common::{record_sends, scripted, set, Sent};
use super::Story;
use quorum_core::{Duration, Instant, NodeId, Payload};
use quorum_paxos::{Ballot, Message, Paxos, PaxosConfig};
use quorum_sim::{Sim, TraceEvent, What};

/// Is this trace event a Paxos message of one of the given kinds?
fn is_kind(e: &TraceEvent, kinds: &[&str]) -> bool {
    match &e.what {
        What::Deliver { msg, .. } | What::Drop { msg, .. } => kinds.iter().any(|k| msg.starts_with(k)),
        _ => true,
    }
}

/// The sends of one kind, as (from, to, message).
fn sends(sent: &Sent<Message>, pick: impl Fn(&Message) -> bool) -> Vec<(NodeId, NodeId, Message)> {
    sent.borrow().iter().filter(|(_, _, m)| pick(m)).cloned().collect()
}

/// When a message matching `pick` first arrived, from the trace.
fn first_delivery(sim: &Sim<Paxos>, prefix: &str) -> Option<Instant> {
    sim.trace()
        .events()
        .iter()
        .find(|e| matches!(&e.what, What::Deliver { msg, .. } if msg.starts_with(prefix)))
        .map(|e| Instant::from_nanos(e.at_ns))
}

/// When `node` applied slot 1, from the trace.
fn applied_at(sim: &Sim<Paxos>, node: NodeId) -> Option<Instant> {
    sim.trace()
        .events()
        .iter()
        .find(|e| matches!(&e.what, What::Commit { node: n, index: 1, .. } if *n == node.0))
        .map(|e| Instant::from_nanos(e.at_ns))
}

/// Tells the two phases of one ballot, at the times the trace shows them.
/// Returns when the first Promise, Accept and Accepted arrived.
fn narrate_phases(story: &mut Story, sim: &Sim<Paxos>, ballot: Ballot) -> (Instant, Instant, Instant) {
    let t_prepare = first_delivery(sim, "Prepare").unwrap_or(sim.now());
    let t_promise = first_delivery(sim, "Promise").unwrap_or(sim.now());
    let t_accept = first_delivery(sim, "Accept {").unwrap_or(sim.now());
    let t_accepted = first_delivery(sim, "Accepted").unwrap_or(sim.now());
    story.say(
        t_prepare,
        format!(
            "phase 1a: n1 picks ballot {ballot:?} (round 1, owner n1), promises it to itself on disk, and sends Prepare({ballot:?}) to n2 and n3"
        ),
    );
    story.say(
        t_promise,
        format!(
            "phase 1b: n2 and n3 have promised nothing higher, so they promise {ballot:?} (on disk first) and report that they accepted nothing yet"
        ),
    );
    story.say(
        t_accept,
        "phase 2a: with promises from a majority (itself and one more) and no earlier value reported, n1 is free to propose its own: Accept(x=1)",
    );
    story.say(
        t_accepted,
        format!(
            "phase 2b: n2 and n3 accept x=1 in {ballot:?}, since they promised nothing higher, and answer Accepted"
        ),
    );
    (t_promise, t_accept, t_accepted)
}

/// Basic Paxos, one decree: Prepare/Promise, Accept/Accepted, and learners that
/// learn the value once a majority accepted it in one ballot.
pub fn single_decree() -> Story {
    let mut story = Story::new("Basic Paxos: one value chosen by a majority in one ballot");
    let mut sim = Sim::<Paxos>::new(scripted(3, 1), PaxosConfig::default());
    let sent = record_sends(&mut sim);
    let (proposer, nodes) = (NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    story.say(sim.now(), "three nodes; each is an acceptor and a learner; n1 proposes x=1 for slot 1");
    sim.propose(proposer, set(1, "x", "1")).expect("any node proposes in Basic Paxos");
    let ballot = Ballot::new(1, proposer);
    sim.run_until(Duration::from_secs(1), |s| nodes.iter().all(|n| s.applied_index(*n) >= 1));

    let prepares = sends(&sent, |m| matches!(m, Message::Prepare { ballot: b, .. } if *b == ballot));
    let promises = sends(&sent, |m| matches!(m, Message::Promise { ballot: b, accepted: None, .. } if *b == ballot));
    let accepts = sends(&sent, |m| matches!(m, Message::Accept { ballot: b, .. } if *b == ballot));
    let accepted = sends(&sent, |m| matches!(m, Message::Accepted { ballot: b, .. } if *b == ballot));
    let (t_promise, t_accept, t_accepted) = narrate_phases(&mut story, &sim, ballot);
    story.check(
        format!("n1 sent Prepare({ballot:?}) to both other acceptors ({} sent)", prepares.len()),
        prepares.len() == 2,
    );
    story.check(
        "both acceptors promised the ballot, reporting no earlier accepted value",
        promises.iter().filter(|(from, to, _)| *to == proposer && *from != proposer).count() == 2,
    );
    story.check(
        "n1 sent Accept only after a majority promised",
        accepts.iter().all(|(from, _, _)| *from == proposer) && t_accept > t_promise,
    );
    let learned: Vec<Option<Instant>> = nodes.iter().map(|n| applied_at(&sim, *n)).collect();
    story.say(
        learned[0].unwrap_or(sim.now()),
        "n1 counts Accepted from a majority in one ballot: x=1 is chosen, and n1 learns it and tells n2 and n3 (Decided)",
    );
    story.say(
        learned.iter().flatten().max().copied().unwrap_or(sim.now()),
        "n2 and n3 learn x=1 from the Decided message and apply it",
    );
    // Only Decided messages that carry a value: every node also asks its peers
    // once at start-up (it might have lost its disk) and gets an empty answer.
    let decided = sends(&sent, |m| matches!(m, Message::Decided { chosen, .. } if !chosen.is_empty()));
    let t_decided = first_delivery(&sim, "Decided").unwrap_or(sim.now());
    story.check(
        "n2 and n3 learned it from n1's Decided, which n1 sent once it had counted a majority",
        decided.len() == 2
            && decided.iter().all(|(from, _, _)| *from == proposer)
            && learned[1..].iter().all(|t| t.is_some_and(|t| t >= t_decided)),
    );
    story.check(
        "no node learned the value before a majority had accepted it",
        learned.iter().all(|t| t.is_some_and(|t| t >= t_accepted)),
    );
    story.check(
        format!("a majority accepted x=1 in ballot {ballot:?} ({} Accepted answers)", accepted.len()),
        accepted.len() >= 2,
    );
    let value = sim.committed(proposer).first().map(|e| e.payload.clone());
    story.check(
        "every learner learned the same value, x=1, for slot 1",
        value == Some(Payload::Command(set(1, "x", "1")))
            && nodes.iter().all(|n| sim.committed(*n).first().map(|e| &e.payload) == value.as_ref()),
    );
    story.check("no safety violation", sim.violations().is_empty());
    story.set_events(sim.trace().events().iter().filter(|e| !matches!(e.what, What::Role { .. })).cloned(), 3);
    story
}

/// Runs the duel: n3 is down, so every majority of three needs both n1 and n2,
/// and both propose at time zero. Each proposer's own acceptor promises its
/// new ballot the moment a refusal arrives, which is before the other
/// proposer's Accept gets there, so without backoff every Accept meets a
/// fresher promise: the schedule repeats forever with rising ballots.
/// Returns the simulator after `limit` of virtual time (or once both commands committed).
fn duel(backoff: bool, limit: Duration) -> Sim<Paxos> {
    let config = PaxosConfig { backoff, ..PaxosConfig::default() };
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
        What::Deliver { from, to, msg } if msg.starts_with("Nack") => Some((e.at_ns, *from, *to, msg.clone())),
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
