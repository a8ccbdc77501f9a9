//! Runnable scenarios from the consensus literature, each narrated in plain
//! words and checked: every claim a story makes is verified on the run it
//! describes. `cargo run --example <name>` runs one; `quorum trace` prints any
//! as Mermaid, JSON or text.

mod agreement;
pub mod common;
mod compare;
mod elections;
mod multipaxos;
mod paxos;
mod replication;
mod story;
mod zab;

pub use story::Story;

/// One scenario.
pub struct Scenario {
    /// Its name (also the example's name, with `-` for `_`).
    pub name: &'static str,
    /// The protocol it runs (`all` for one that runs every protocol).
    pub protocol: &'static str,
    /// What it shows, in one line.
    pub about: &'static str,
    /// Runs it.
    pub run: fn() -> Story,
}

/// Every scenario, in the order a reader should take them.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "agreement",
        protocol: "raft",
        about: "three nodes, one crashed, the other two still agree",
        run: agreement::agreement,
    },
    Scenario {
        name: "flp",
        protocol: "raft",
        about: "colliding timeouts elect nobody, safely; randomized timeouts end it",
        run: elections::flp,
    },
    Scenario {
        name: "raft-election",
        protocol: "raft",
        about: "a 5-node election with a split vote, resolved by randomized timeouts",
        run: elections::split_vote,
    },
    Scenario {
        name: "raft-replication",
        protocol: "raft",
        about: "log replication with one slow follower; commit on a majority",
        run: replication::slow_follower,
    },
    Scenario {
        name: "raft-terms",
        protocol: "raft",
        about: "leader failure, a split vote, re-election",
        run: elections::term_progression,
    },
    Scenario {
        name: "raft-partition",
        protocol: "raft",
        about: "the minority cannot commit; the stale leader steps down; its entries are replaced",
        run: replication::partition,
    },
    Scenario {
        name: "majority-overlap",
        protocol: "raft",
        about: "why a committed entry survives every leader change",
        run: agreement::majority_overlap,
    },
    Scenario {
        name: "paxos-single-decree",
        protocol: "paxos",
        about: "Basic Paxos: Prepare/Promise, Accept/Accepted, learners learn from a majority",
        run: paxos::single_decree,
    },
    Scenario {
        name: "paxos-dueling",
        protocol: "paxos",
        about: "dueling proposers livelock without backoff; randomized backoff ends it",
        run: paxos::dueling,
    },
    Scenario {
        name: "multipaxos-phase2",
        protocol: "multipaxos",
        about: "one Phase 1, then Phase 2 alone per command; a new leader fills a hole with a no-op",
        run: multipaxos::phase2,
    },
    Scenario {
        name: "zab-recovery",
        protocol: "zab",
        about: "election, discovery, sync, broadcast; the leader crashes; a new epoch; TRUNC",
        run: zab::recovery,
    },
    Scenario {
        name: "compare",
        protocol: "all",
        about: "the four protocols under one light load: latency bounds and recovery side by side",
        run: compare::compare,
    },
];

/// Finds a scenario by name (`_` and `-` are the same).
pub fn find(name: &str) -> Option<&'static Scenario> {
    let name = name.replace('_', "-");
    ALL.iter().find(|s| s.name == name)
}

/// The body of every example: runs the scenario, prints its narration (or,
/// with `--mermaid`, `--json` or `--text`, its trace), and exits non-zero if
/// any claim of the story failed.
pub fn example_main(name: &str) {
    let scenario = find(name).unwrap_or_else(|| panic!("no scenario named {name}"));
    let story = (scenario.run)();
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "--mermaid" => print!("{}", story.mermaid()),
        "--json" => println!("{}", story.trace_json()),
        "--text" => print!("{}", story.trace_text()),
        "" => print!("{}", story.narration()),
        other => {
            eprintln!("unknown option {other}: use --mermaid, --json or --text (or nothing for the narration)");
            std::process::exit(2);
        }
    }
    if !story.passed() {
        eprintln!("{}", story.narration());
        eprintln!("this run did not show what the scenario claims");
        std::process::exit(1);
    }
}
