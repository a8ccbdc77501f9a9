//! Basic Paxos, one decree: Prepare/Promise, Accept/Accepted, and learners
//! that learn the value once a majority accepted it in one ballot.
//!
//! `cargo run --example paxos_single_decree` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::{Duration, Instant, NodeId, Payload};
use quorum_paxos::{Ballot, Message, Paxos, PaxosConfig};
use quorum_scenarios::common::{record_sends, scripted, set, Sent};
use quorum_scenarios::Story;
use quorum_sim::{Sim, What};

fn main() {
    quorum_scenarios::example_main(single_decree);
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
