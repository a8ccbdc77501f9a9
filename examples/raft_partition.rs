//! Raft under a network partition: the minority cannot commit, the stale
//! leader steps down, and its uncommitted entries are replaced.
//!
//! `cargo run --example raft_partition` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::{Duration, NodeId, Payload, Role};
use quorum_scenarios::common::{all_applied, not_heartbeat, raft_with_leader, set};
use quorum_scenarios::Story;

fn main() {
    quorum_scenarios::example_main(partition);
}

/// A network partition: the minority cannot commit, the majority elects a new
/// leader, and after healing the stale leader steps down and its uncommitted
/// entries are replaced.
pub fn partition() -> Story {
    let mut story = Story::new("Raft under a network partition");
    let (mut sim, old) = raft_with_leader(5, 3);
    let old_term = sim.status(old).unwrap().term;
    sim.propose(old, set(1, "a", "1")).unwrap();
    all_applied(&mut sim, 2, Duration::from_secs(1));
    story.say(sim.now(), format!("{old} leads term {old_term}; a=1 is committed on all five nodes"));
    let buddy = sim.members().iter().copied().find(|m| *m != old).unwrap();
    let majority: Vec<NodeId> = sim.members().iter().copied().filter(|m| *m != old && *m != buddy).collect();
    sim.partition(&[&[old, buddy], &majority]);
    let cut_at = sim.now();
    story.say(
        cut_at,
        format!(
            "the network splits: {{{old}, {buddy}}} | {{{}}}",
            majority.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
        ),
    );
    sim.propose(old, set(2, "b", "stale")).unwrap();
    let stale_index = sim.status(old).unwrap().last_index;
    story.say(sim.now(), format!("a client writes b=stale to {old}, which appends it at index {stale_index}"));
    let new = {
        sim.run_until(Duration::from_secs(2), |s| {
            majority.iter().any(|m| s.status(*m).is_some_and(|st| st.role == Role::Leader))
        });
        majority.iter().copied().find(|m| sim.status(*m).unwrap().role == Role::Leader).expect("the majority elects")
    };
    let new_term = sim.status(new).unwrap().term;
    story.say(sim.now(), format!("the majority side elects {new} in term {new_term}"));
    sim.propose(new, set(3, "c", "fresh")).unwrap();
    sim.run_until(Duration::from_secs(1), |s| s.status(new).unwrap().commit_index >= s.status(new).unwrap().last_index);
    story.say(sim.now(), format!("{new} commits c=fresh with three of five votes"));
    sim.run_until(Duration::from_secs(1), |s| s.status(old).unwrap().role != Role::Leader);
    let stepped_down = sim.status(old).unwrap().role != Role::Leader;
    story.say(
        sim.now(),
        format!("{old} has not heard from a majority for an election timeout: with CheckQuorum it steps down"),
    );
    story.check(
        format!("{old}'s write at index {stale_index} never committed in the minority"),
        sim.status(old).unwrap().commit_index < stale_index,
    );
    story.check("the stale leader stepped down before the partition healed (CheckQuorum)", stepped_down);
    sim.heal();
    story.say(sim.now(), "the partition heals");
    sim.run_until(Duration::from_secs(2), |s| s.members().iter().all(|m| s.applied_index(*m) >= s.applied_index(new)));
    let replaced = sim
        .node(old)
        .unwrap()
        .log()
        .get(stale_index)
        .is_some_and(|e| !matches!(&e.payload, Payload::Command(c) if c.seq == 2));
    story.say(
        sim.now(),
        format!("{old} accepts {new}'s log: its uncommitted b=stale at index {stale_index} is overwritten"),
    );
    story.check("the stale leader's uncommitted entry was replaced by the new leader's", replaced);
    story.check(
        "every node applied the same entries",
        sim.members().iter().all(|m| sim.committed(*m) == sim.committed(new)),
    );
    story.check("no safety violation", sim.violations().is_empty());
    story.set_events(
        sim.trace().events().iter().filter(|e| e.at_ns >= cut_at.as_nanos() && not_heartbeat(e)).cloned(),
        5,
    );
    story
}
