//! `quorum check` as a user runs it: a clean bound exits 0 and says it was
//! exhausted; a planted bug exits 1 with the broken property, the steps and
//! a Mermaid diagram; bad input is a clear error.

mod common;

use common::{refused, stdout_of};

#[test]
fn a_small_raft_bound_is_exhausted_and_exits_zero() {
    let args = ["check", "--protocol", "raft", "--commands", "0", "--crashes", "0", "--timers", "1", "--depth", "60"];
    let stdout = stdout_of(&args, 0);
    assert!(stdout.contains("no violation within these bounds (every state expanded)"), "{stdout}");
    assert!(stdout.contains("a leader: first at depth"), "{stdout}");
}

#[test]
fn a_planted_lost_write_exits_one_with_a_counterexample() {
    let args = ["check", "--protocol", "planted-lost-write", "--commands", "2", "--crashes", "1", "--timers", "2"];
    let stdout = stdout_of(&args, 1);
    assert!(stdout.contains("VIOLATION    applied entries are durable on a majority (1 steps)"), "{stdout}");
    assert!(stdout.contains("n1 applied c1#1(2B) at index 1 while only 0 of 3 voters' disks held it"), "{stdout}");
    assert!(stdout.contains("1. client proposes v0 at n1"), "{stdout}");
    assert!(stdout.contains("```mermaid\nsequenceDiagram"), "{stdout}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    refused(&["check", "--protocol", "raft", "--nodes", "0"], "--nodes must be between 1 and 7");
    refused(&["check", "--protocol", "nope"], "invalid value 'nope'");
    refused(&["check", "--protocol", "raft", "--max-seconds=-1"], "--max-seconds must be a positive number");
    refused(&["check", "--protocol", "raft", "--set", "nonsense=1"], "--set unknown setting 'nonsense'");
    refused(&["check", "--protocol", "paxos", "--changes", "1"], "paxos has no membership changes");
    refused(&["check", "--protocol", "raft", "--spares", "1"], "give --changes too");
    // The shipping build has no planted bugs, and says how to get them.
    refused(&["check", "--protocol", "raft", "--planted", "vote-before-persisted"], "--features planted-bugs");
}

#[test]
fn a_time_limit_ends_a_large_bound_with_an_honest_result() {
    let args = ["check", "--protocol", "raft", "--commands", "2", "--crashes", "1", "--max-seconds", "1"];
    let stdout = stdout_of(&args, 0);
    assert!(stdout.contains("no violation in the states explored (stopped by the time limit)"), "{stdout}");
}

#[test]
fn random_walks_say_so_and_never_claim_to_exhaust_a_bound() {
    let args =
        ["check", "--protocol", "zab", "--search", "random", "--seed", "3", "--depth", "100", "--max-states", "20000"];
    let stdout = stdout_of(&args, 0);
    assert!(stdout.contains("depth <= 100, random walks, seed 3"), "{stdout}");
    assert!(stdout.contains("no violation in the states explored (stopped by the state limit)"), "{stdout}");
    // A planted lost write: the walk that found it replays as steps.
    let args = ["check", "--protocol", "planted-lost-write", "--search", "random", "--commands", "2", "--timers", "2"];
    let stdout = stdout_of(&args, 1);
    assert!(stdout.contains("VIOLATION    applied entries are durable on a majority"), "{stdout}");
}
