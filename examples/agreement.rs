//! The agreement problem: three nodes, one crashed, the other two still agree.
//!
//! `cargo run --example agreement` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::{Duration, NodeId};
use quorum_scenarios::common::{all_applied, names, not_heartbeat, raft_with_leader, set};
use quorum_scenarios::Story;

fn main() {
    quorum_scenarios::example_main(agreement);
}

/// Three nodes, one crashed: the other two still agree, and the third catches up.
pub fn agreement() -> Story {
    let mut story = Story::new("The agreement problem: three nodes, one crashed, two still agree");
    let (mut sim, leader) = raft_with_leader(3, 4);
    story.say(sim.now(), format!("{leader} was elected; the three nodes will agree on one sequence of commands"));
    sim.propose(leader, set(1, "x", "1")).unwrap();
    all_applied(&mut sim, 2, Duration::from_secs(1));
    story.say(sim.now(), "x=1 is applied by all three");
    let down = sim.members().iter().copied().find(|m| *m != leader).unwrap();
    sim.crash(down);
    let crash_at = sim.now();
    story.say(crash_at, format!("{down} crashes"));
    sim.propose(leader, set(2, "x", "2")).unwrap();
    sim.propose(leader, set(3, "y", "3")).unwrap();
    let last = sim.status(leader).unwrap().last_index;
    let up: Vec<NodeId> = sim.members().iter().copied().filter(|m| *m != down).collect();
    let both = sim.run_until(Duration::from_secs(1), |s| up.iter().all(|m| s.applied_index(*m) >= last));
    story.say(
        sim.now(),
        format!(
            "x=2 and y=3 commit with two of three: {} apply them",
            names(&up.iter().map(|n| n.0).collect::<Vec<_>>())
        ),
    );
    story.check("two live nodes out of three still commit new commands", both);
    story.check(
        "the two live nodes applied exactly the same commands in the same order",
        sim.committed(up[0]) == sim.committed(up[1]),
    );
    sim.restart(down);
    story.say(sim.now(), format!("{down} restarts from its disk"));
    sim.run_until(Duration::from_secs(2), |s| s.applied_index(down) >= last);
    story.say(sim.now(), format!("{down} learns the missing entries from {leader} and applies them"));
    story
        .check("after restarting, the third node agrees with the others", sim.committed(down) == sim.committed(leader));
    story.check("no safety violation", sim.violations().is_empty());
    story.set_events(sim.trace().events().iter().filter(|e| not_heartbeat(e)).cloned(), 3);
    story
}
