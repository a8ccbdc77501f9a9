//! Raft log replication with one slow follower: entries commit on a majority.
//!
//! `cargo run --example raft_replication` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::Duration;
use quorum_scenarios::common::{not_heartbeat, raft_with_leader, set};
use quorum_scenarios::Story;

fn main() {
    quorum_scenarios::example_main(slow_follower);
}

/// Log replication with one slow follower: entries commit on a majority without it.
pub fn slow_follower() -> Story {
    let mut story = Story::new("Raft log replication: commit on a majority, one follower slow");
    let (mut sim, leader) = raft_with_leader(3, 2);
    story.say(sim.now(), format!("{leader} leads term {}", sim.status(leader).unwrap().term));
    let slow = sim.members().iter().copied().rev().find(|m| *m != leader).expect("a follower");
    let fast = sim.members().iter().copied().find(|m| *m != leader && *m != slow).expect("another follower");
    sim.set_node_delay(slow, Duration::from_millis(40));
    story.say(sim.now(), format!("messages to and from {slow} now take 41 ms instead of 1 ms"));
    let start = sim.now();
    for (i, (k, v)) in [("x", "1"), ("y", "2"), ("z", "3")].iter().enumerate() {
        sim.propose(leader, set(i as u64 + 1, k, v)).expect("the leader accepts");
    }
    let last = sim.status(leader).unwrap().last_index;
    story
        .say(sim.now(), format!("the client sends x=1, y=2, z=3 to {leader}; they take indexes {}..={last}", last - 2));
    sim.run_until(Duration::from_secs(1), |s| s.status(leader).unwrap().commit_index >= last);
    let committed_at = sim.now();
    let slow_had = sim.applied_index(slow);
    story.say(
        committed_at,
        format!("{leader} commits up to {last} after {fast} acknowledges: {} of 3 is a majority", 2),
    );
    story.check(
        format!(
            "committed within a few ms ({:.1} ms), without waiting for the slow follower",
            (committed_at - start).as_millis_f64()
        ),
        (committed_at - start) < Duration::from_millis(10),
    );
    story.check(format!("{slow} had not applied them yet when they committed"), slow_had < last);
    sim.run_until(Duration::from_secs(1), |s| s.applied_index(slow) >= last);
    story.say(sim.now(), format!("{slow} receives the entries and applies them too"));
    story.check(
        "the slow follower catches up and applies the same entries",
        sim.committed(slow) == sim.committed(leader),
    );
    story.set_events(
        sim.trace().events().iter().filter(|e| e.at_ns >= start.as_nanos() && not_heartbeat(e)).cloned(),
        3,
    );
    story
}
