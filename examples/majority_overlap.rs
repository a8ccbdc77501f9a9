//! Why a committed entry survives every leader change: majorities overlap.
//!
//! `cargo run --example majority_overlap` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::{Duration, NodeId};
use quorum_raft::{Message, Raft, RaftConfig};
use quorum_scenarios::common::{all_applied, elect, names, not_heartbeat, record_sends, scripted, set};
use quorum_scenarios::Story;
use quorum_sim::Sim;

fn main() {
    quorum_scenarios::example_main(majority_overlap);
}

/// Majority overlap: the nodes that stored a committed entry and the nodes that
/// elect any later leader always share a member, so every new leader has it.
pub fn majority_overlap() -> Story {
    let mut story = Story::new("Majority overlap: a committed entry survives every leader change");
    let mut sim = Sim::<Raft>::new(scripted(5, 5), RaftConfig::default());
    let sent = record_sends(&mut sim);
    let first = elect(&mut sim, Duration::from_secs(2)).expect("a leader");
    // Two followers miss the entry, so exactly a bare majority stores it.
    let behind: Vec<NodeId> = sim.members().iter().copied().filter(|m| *m != first).take(2).collect();
    for b in &behind {
        sim.cut_one_way(first, *b);
    }
    sim.propose(first, set(1, "k", "committed")).unwrap();
    let index = sim.status(first).unwrap().last_index;
    sim.run_until(Duration::from_secs(1), |s| s.status(first).unwrap().commit_index >= index);
    let holders: Vec<u64> = sim
        .members()
        .iter()
        .filter(|m| sim.node(**m).is_some_and(|n| n.log().last_index() >= index))
        .map(|m| m.0)
        .collect();
    story.say(
        sim.now(),
        format!("{first} commits k=committed at index {index}; only {} store it (a bare majority)", names(&holders)),
    );
    sim.heal();
    let mut all_had_it = true;
    let mut leader = first;
    for round in 1..=3 {
        sim.crash(leader);
        let before = sent.borrow().len();
        sim.run_until(Duration::from_secs(3), |s| s.leader().is_some_and(|l| l != leader));
        let Some(next) = sim.leader() else { break };
        let term = sim.status(next).unwrap().term;
        let voters: Vec<u64> = sent.borrow()[before..]
            .iter()
            .filter(|(_, to, m)| {
                *to == next && matches!(m, Message::VoteReply(r) if r.granted && !r.pre_vote && r.term == term)
            })
            .map(|(from, _, _)| from.0)
            .chain(std::iter::once(next.0))
            .collect();
        let shared: Vec<u64> = voters.iter().copied().filter(|v| holders.contains(v)).collect();
        let has = sim.node(next).unwrap().log().last_index() >= index;
        all_had_it &= has;
        story.say(
            sim.now(),
            format!(
                "round {round}: {leader} crashes; {next} wins term {term} with votes from {}; of those, {} stored the entry, so {next}'s log had to be at least as up to date",
                names(&voters),
                names(&shared)
            ),
        );
        story.check(
            format!("round {round}: the electing majority overlaps the majority that stored the entry"),
            !shared.is_empty(),
        );
        sim.restart(leader);
        leader = next;
    }
    all_applied(&mut sim, index, Duration::from_secs(2));
    story.check("every new leader held the committed entry when elected", all_had_it);
    story.check(
        "every node applied the committed entry at the same index",
        sim.members().iter().all(|m| {
            sim.committed(*m)
                .iter()
                .any(|e| e.index == index && matches!(&e.payload, quorum_core::Payload::Command(c) if c.seq == 1))
        }),
    );
    story.check("no safety violation", sim.violations().is_empty());
    story.set_events(sim.trace().events().iter().filter(|e| not_heartbeat(e)).cloned(), 5);
    story
}
