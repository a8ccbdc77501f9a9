//! The narrated scenarios: runs from the consensus literature, each told in
//! plain words and checked — every claim a story makes is verified on the run
//! it describes.
//!
//! Each scenario's code is its example, `examples/<name>.rs` in the
//! repository's root package, so that a reader who opens the example sees the
//! whole scenario; this crate compiles those same files as modules so that
//! `quorum trace` (Mermaid, JSON or text) and the tests can run every one.
//! What the examples share stands here: [`Story`], [`common`] and
//! [`example_main`].
#![deny(missing_docs)]

// The example files name this crate as `quorum_scenarios`, as their binaries
// see it; compiled in here they need the same name for the crate itself.
extern crate self as quorum_scenarios;

pub mod common;
mod story;

pub use story::Story;

// Each scenario is its example file, compiled here as a module; its `main`
// is dead code in this crate (only the example's binary calls it).
#[allow(dead_code)]
#[path = "../../../examples/agreement.rs"]
mod agreement;
#[allow(dead_code)]
#[path = "../../../examples/compare.rs"]
mod compare;
#[allow(dead_code)]
#[path = "../../../examples/flp.rs"]
mod flp;
#[allow(dead_code)]
#[path = "../../../examples/majority_overlap.rs"]
mod majority_overlap;
#[allow(dead_code)]
#[path = "../../../examples/multipaxos_phase2.rs"]
mod multipaxos_phase2;
#[allow(dead_code)]
#[path = "../../../examples/paxos_dueling.rs"]
mod paxos_dueling;
#[allow(dead_code)]
#[path = "../../../examples/paxos_single_decree.rs"]
mod paxos_single_decree;
#[allow(dead_code)]
#[path = "../../../examples/raft_election.rs"]
mod raft_election;
#[allow(dead_code)]
#[path = "../../../examples/raft_partition.rs"]
mod raft_partition;
#[allow(dead_code)]
#[path = "../../../examples/raft_replication.rs"]
mod raft_replication;
#[allow(dead_code)]
#[path = "../../../examples/raft_terms.rs"]
mod raft_terms;
#[allow(dead_code)]
#[path = "../../../examples/zab_recovery.rs"]
mod zab_recovery;

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
        run: flp::flp,
    },
    Scenario {
        name: "raft-election",
        protocol: "raft",
        about: "a 5-node election with a split vote, resolved by randomized timeouts",
        run: raft_election::split_vote,
    },
    Scenario {
        name: "raft-replication",
        protocol: "raft",
        about: "log replication with one slow follower; commit on a majority",
        run: raft_replication::slow_follower,
    },
    Scenario {
        name: "raft-terms",
        protocol: "raft",
        about: "leader failure, a split vote, re-election",
        run: raft_terms::term_progression,
    },
    Scenario {
        name: "raft-partition",
        protocol: "raft",
        about: "the minority cannot commit; the stale leader steps down; its entries are replaced",
        run: raft_partition::partition,
    },
    Scenario {
        name: "majority-overlap",
        protocol: "raft",
        about: "why a committed entry survives every leader change",
        run: majority_overlap::majority_overlap,
    },
    Scenario {
        name: "paxos-single-decree",
        protocol: "paxos",
        about: "Basic Paxos: Prepare/Promise, Accept/Accepted, learners learn from a majority",
        run: paxos_single_decree::single_decree,
    },
    Scenario {
        name: "paxos-dueling",
        protocol: "paxos",
        about: "dueling proposers livelock without backoff; randomized backoff ends it",
        run: paxos_dueling::dueling,
    },
    Scenario {
        name: "multipaxos-phase2",
        protocol: "multipaxos",
        about: "one Phase 1, then Phase 2 alone per command; a new leader fills a hole with a no-op",
        run: multipaxos_phase2::phase2,
    },
    Scenario {
        name: "zab-recovery",
        protocol: "zab",
        about: "election, discovery, sync, broadcast; the leader crashes; a new epoch; TRUNC",
        run: zab_recovery::recovery,
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

/// The body of every example's `main`: runs the scenario, prints its
/// narration (or, with `--mermaid`, `--json` or `--text`, its trace), and
/// exits non-zero if any claim of the story failed.
pub fn example_main(scenario: fn() -> Story) {
    let story = scenario();
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
