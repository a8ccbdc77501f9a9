//! `quorum check` as a user runs it: a clean bound exits 0 and says it was
//! exhausted; a planted bug exits 1 with the broken property, the steps and
//! a Mermaid diagram; bad input is a clear error.

mod common;

use common::quorum;

#[test]
fn a_small_raft_bound_is_exhausted_and_exits_zero() {
    let args = ["check", "--protocol", "raft", "--commands", "0", "--crashes", "0", "--timers", "1", "--depth", "60"];
    let (code, stdout, _) = quorum(&args);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("no violation within these bounds (every state expanded)"), "{stdout}");
    assert!(stdout.contains("a leader: first at depth"), "{stdout}");
}

#[test]
fn a_planted_lost_write_exits_one_with_a_counterexample() {
    let args = ["check", "--protocol", "planted-lost-write", "--commands", "2", "--crashes", "1", "--timers", "2"];
    let (code, stdout, _) = quorum(&args);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("VIOLATION    applied prefixes agree (4 steps)"), "{stdout}");
    assert!(stdout.contains("n1: crashes (unsynced writes lost)"), "{stdout}");
    assert!(stdout.contains("```mermaid\nsequenceDiagram"), "{stdout}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let (code, _, stderr) = quorum(&["check", "--protocol", "raft", "--nodes", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--nodes must be between 1 and 7"), "{stderr}");
    let (code, _, stderr) = quorum(&["check", "--protocol", "nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown protocol 'nope'"), "{stderr}");
}
