//! Multi-Paxos: one Phase 1 for every slot, then Phase 2 alone per command;
//! a leader change whose Phase 1 fills the old leader's holes with no-ops.
//!
//! `cargo run --example multipaxos_phase2` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::{Duration, Instant, NodeId, Payload};
use quorum_multipaxos::{Message, MultiPaxos, MultiPaxosConfig};
use quorum_scenarios::common::{all_applied, elect, names, scripted, set, Sent};
use quorum_scenarios::Story;
use quorum_sim::{Sim, TraceEvent, What};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

fn main() {
    quorum_scenarios::example_main(phase2);
}

/// True for a trace event worth drawing: not a heartbeat or its answer.
fn not_heartbeat(e: &TraceEvent) -> bool {
    match &e.what {
        What::Deliver { msg, .. } | What::Drop { msg, .. } => !msg.starts_with("Heartbeat"),
        _ => true,
    }
}

/// Counts network sends (not a node's messages to itself) matching `pick`, from `start` on.
fn count(sent: &Sent<Message>, start: usize, pick: impl Fn(&Message) -> bool) -> usize {
    sent.borrow()[start..].iter().filter(|(from, to, m)| from != to && pick(m)).count()
}

/// Phase 1 once: the first node to time out prepares every slot and leads.
fn phase1_once(story: &mut Story, sim: &mut Sim<MultiPaxos>, sent: &Sent<Message>) -> NodeId {
    let leader = elect(sim, Duration::from_secs(2)).expect("a leader");
    let ballot = sim.node(leader).and_then(|n| n.leading_ballot()).expect("the leader has a ballot");
    let prepares = count(sent, 0, |m| matches!(m, Message::Prepare { .. }));
    let one_ballot =
        sent.borrow().iter().all(|(_, _, m)| !matches!(m, Message::Prepare { ballot: b, .. } if *b != ballot));
    story.say(
        sim.now(),
        format!("{leader}'s election timeout fires first: it sends Prepare({ballot:?}) for every slot at once, the others promise, and it leads"),
    );
    story.check(
        format!("the election took exactly one Phase 1 round: {prepares} Prepare messages, all for {ballot:?}"),
        prepares == 2 && one_ballot,
    );

    leader
}

/// Phase 2 alone: five commands, one Accept round each. Returns when the first committed.
fn steady_state(story: &mut Story, sim: &mut Sim<MultiPaxos>, sent: &Sent<Message>, leader: NodeId) -> Instant {
    let before = sent.borrow().len();
    let mut slowest = Duration::ZERO;
    let mut first_done = sim.now();
    for seq in 1..=5u64 {
        let proposed = sim.now();
        sim.propose(leader, set(seq, "k", &seq.to_string())).expect("the leader orders commands");
        sim.run_until(Duration::from_secs(1), |s| s.applied_index(leader) >= seq);
        slowest = slowest.max(sim.now() - proposed);
        if seq == 1 {
            first_done = sim.now();
        }
    }
    all_applied(sim, 5, Duration::from_secs(1));
    let (p, a, ad) = (
        count(sent, before, |m| matches!(m, Message::Prepare { .. })),
        count(sent, before, |m| matches!(m, Message::Accept { .. })),
        count(sent, before, |m| matches!(m, Message::Accepted { .. })),
    );
    story.say(
        sim.now(),
        format!(
            "five commands, one after the other: each is one Accept to each follower and one Accepted back, so {leader} commits each {:.1} ms after it was proposed at most; followers learn the commit point from the next Accept or heartbeat",
            slowest.as_millis_f64()
        ),
    );
    story.check(
        format!(
            "each command committed at the leader within one round trip plus an fsync ({:.1} ms)",
            slowest.as_millis_f64()
        ),
        slowest <= Duration::from_micros(2_500),
    );
    story.check(format!("no Prepare during the five commands ({p} sent)"), p == 0);
    story.check(
        format!("Phase 2 alone: {a} Accepts and {ad} Accepted for 5 commands (2 and 2 each)"),
        a == 10 && ad == 10,
    );
    story.check(
        "all three nodes applied the five commands in the same order",
        sim.members().iter().all(|m| sim.applied_index(*m) == 5 && sim.committed(*m) == sim.committed(leader)),
    );

    first_done
}

/// A hole at slot 6, the leader crashes, and the next leader's Phase 1 fills
/// the hole with a no-op. Returns when the hole was made.
fn leader_change(
    story: &mut Story,
    sim: &mut Sim<MultiPaxos>,
    sent: &Sent<Message>,
    lose: &Cell<Option<NodeId>>,
    leader: NodeId,
) -> Instant {
    // A hole: slot 6's Accept is lost everywhere, slot 7's reaches n2 only.
    let hole_at = sim.now();
    lose.set(Some(leader));
    sim.propose(leader, set(6, "k", "lost")).expect("leader");
    sim.run_for(Duration::from_millis(1));
    sim.propose(leader, set(7, "k", "kept")).expect("leader");
    sim.run_for(Duration::from_millis(5));
    story.say(
        hole_at,
        format!("{leader} proposes k=lost for slot 6 and k=kept for slot 7; slot 6's Accepts are lost, slot 7's reaches only n2"),
    );
    sim.crash(leader);
    lose.set(None);
    story.say(sim.now(), format!("{leader} crashes before it retransmits: slot 6 is accepted by {leader} alone"));
    let before = sent.borrow().len();
    let others: Vec<NodeId> = sim.members().iter().copied().filter(|m| *m != leader).collect();
    sim.run_until(Duration::from_secs(2), |s| others.iter().all(|m| s.applied_index(*m) >= 7));
    let new = sim.leader().expect("a new leader");
    let new_ballot = sim.node(new).and_then(|n| n.leading_ballot()).expect("ballot");
    let rounds = count(sent, before, |m| matches!(m, Message::Prepare { .. }));
    let slot = |n: NodeId, i: u64| sim.committed(n).iter().find(|e| e.index == i).map(|e| e.payload.clone());
    let led_at = sim
        .trace()
        .events()
        .iter()
        .find(|e| {
            e.at_ns > hole_at.as_nanos()
                && matches!(&e.what, What::Role { node, role, .. } if *node == new.0 && role == "leader")
        })
        .map_or(sim.now(), |e| Instant::from_nanos(e.at_ns));
    story.say(
        led_at,
        format!(
            "{new}'s election timeout fires; it runs Phase 1 with {new_ballot:?}: {} k=kept accepted in slot 7, nobody reports slot 6, so {new} proposes a no-op for slot 6 and k=kept again for slot 7",
            if new == NodeId(2) { "its own acceptor (n2) holds" } else { "n2's promise reports" }
        ),
    );
    story.say(sim.now(), format!("{} commit slots 6 and 7", names(&others.iter().map(|n| n.0).collect::<Vec<_>>())));
    story.check(
        format!("the new leader's Phase 1 is again one round ({rounds} Prepares, one to the crashed {leader})"),
        rounds == 2,
    );
    story.check(
        "slot 6, which no promiser had accepted, was filled with a no-op",
        others.iter().all(|m| slot(*m, 6) == Some(Payload::Noop)),
    );
    story.check(
        "slot 7, accepted by a majority before the crash, kept its value k=kept",
        others.iter().all(|m| slot(*m, 7) == Some(Payload::Command(set(7, "k", "kept")))),
    );
    sim.restart(leader);
    sim.run_until(Duration::from_secs(2), |s| s.applied_index(leader) >= 7);
    let slot = |n: NodeId, i: u64| sim.committed(n).iter().find(|e| e.index == i).map(|e| e.payload.clone());
    story.say(
        sim.now(),
        format!("{leader} restarts, follows {new}, and learns that slot 6 holds the no-op, not its own k=lost"),
    );
    story.check(
        format!("{} applied the same seven slots, the no-op at 6 included", names(&[1, 2, 3])),
        slot(leader, 6) == Some(Payload::Noop) && sim.members().iter().all(|m| sim.committed(*m) == sim.committed(new)),
    );
    hole_at
}

/// Multi-Paxos: one Phase 1, then Phase 2 alone for a run of commands; then a
/// leader change whose Phase 1 fills a hole with a no-op.
pub fn phase2() -> Story {
    let mut story = Story::new("Multi-Paxos: Phase 1 once, then one round trip per command");
    let mut sim = Sim::<MultiPaxos>::new(scripted(3, 3), MultiPaxosConfig::default());
    // Records every send, and drops what `lose` says (the hole-making schedule below).
    let sent: Sent<Message> = Rc::new(RefCell::new(Vec::new()));
    let lose: Rc<Cell<Option<NodeId>>> = Rc::new(Cell::new(None));
    let (log, cut) = (sent.clone(), lose.clone());
    sim.set_drop_filter(move |from, to, msg: &Message| {
        log.borrow_mut().push((from, to, msg.clone()));
        // While `lose` names the leader, its Accepts for slot 6 are lost and
        // those for slot 7 reach only n2.
        cut.get() == Some(from)
            && matches!(msg, Message::Accept { entries, .. }
                if entries.iter().any(|(s, _)| *s == 6) || (entries.iter().any(|(s, _)| *s == 7) && to != NodeId(2)))
    });
    let leader = phase1_once(&mut story, &mut sim, &sent);
    let first_done = steady_state(&mut story, &mut sim, &sent, leader);
    let hole_at = leader_change(&mut story, &mut sim, &sent, &lose, leader);
    story.check("no safety violation", sim.violations().is_empty());
    // The diagram: the election and the first command, then the hole and the
    // leader change (without the restarted node replaying slots 1-5).
    let drawn = |e: &&TraceEvent| {
        let replay = e.at_ns >= hole_at.as_nanos() && matches!(e.what, What::Commit { index, .. } if index <= 5);
        (e.at_ns <= first_done.as_nanos() || e.at_ns >= hole_at.as_nanos()) && !replay && not_heartbeat(e)
    };
    story.set_events(sim.trace().events().iter().filter(drawn).cloned(), 3);
    story
}
