//! `quorum sim` as a user runs it: summaries, JSON, exit codes, replays.

mod common;

use common::{quorum, refused, stdout_of};

#[test]
fn a_clean_sweep_exits_zero_and_reports_json() {
    let (code, stdout, _) =
        quorum(&["sim", "--protocol", "primary-backup", "--nodes", "3", "--seeds", "30", "--faults", "all", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["protocol"], "primary-backup");
    assert_eq!(v["seeds"], 30);
    assert_eq!(v["violations"], 0);
    assert!(v["ops_ok"].as_u64().unwrap() > 0);
}

#[test]
fn counters_are_linearizable_on_every_protocol_under_every_fault() {
    // The counter model itself, and the planted double increment it catches:
    // crates/sim/tests/counters.rs.
    for protocol in ["paxos", "multipaxos", "raft", "zab"] {
        let stdout = stdout_of(&["sim", "--protocol", protocol, "--profile", "counters", "--seeds", "60", "--json"], 0);
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
        assert_eq!((v["profile"].as_str(), v["violations"].as_u64()), (Some("counters"), Some(0)), "{stdout}");
        assert!(v["ops_ok"].as_u64().unwrap() > 60 * 500, "{protocol}: {stdout}");
    }
}

#[test]
fn local_reads_on_zab_are_counted_and_checked_for_session_order() {
    let args = ["sim", "--protocol", "zab", "--nodes", "3", "--seeds", "10", "--local-reads", "0.5", "--json"];
    let stdout = stdout_of(&args, 0);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["violations"], 0);
    // 904 local reads in these 10 seeds (pauses included in the faults).
    assert!(v["local_reads"].as_u64().unwrap() > 10 * 50, "{stdout}");
    refused(&["sim", "--protocol", "zab", "--local-reads", "2"], "--local-reads");
}

#[test]
fn a_violation_exits_non_zero_naming_the_seed_and_the_replay_command() {
    let (code, stdout, _) =
        quorum(&["sim", "--protocol", "planted-divergence", "--nodes", "3", "--seeds", "40", "--faults", "all"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAILED seed"), "{stdout}");
    let replay = stdout.lines().find_map(|l| l.trim().strip_prefix("replay: ")).expect("a replay command");
    assert!(replay.starts_with("quorum sim --protocol planted-divergence"), "{replay}");
    // The replay command reproduces the failure.
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let (code, trace, _) = quorum(&args);
    assert_eq!(code, 1);
    assert!(trace.contains("VIOLATION state machine safety"), "the trace shows the violation");
}

#[test]
fn one_seed_twice_prints_the_same_trace_hash_and_mermaid_renders() {
    let args = ["sim", "--protocol", "primary-backup", "--seed", "11", "--json"];
    let (_, a, _) = quorum(&args);
    let (_, b, _) = quorum(&args);
    let hash = |s: &str| serde_json::from_str::<serde_json::Value>(s.trim()).unwrap()["trace_hash"].clone();
    assert_eq!(hash(&a), hash(&b));
    let (code, mermaid, _) = quorum(&[
        "sim",
        "--protocol",
        "primary-backup",
        "--nodes",
        "3",
        "--seed",
        "1",
        "--duration",
        "0.05",
        "--trace",
        "mermaid",
    ]);
    assert_eq!(code, 0);
    assert!(mermaid.starts_with("sequenceDiagram\n    participant C1"), "{}", &mermaid[..200.min(mermaid.len())]);
    assert!(mermaid.contains("N1->>N2: Replicate"));
}

#[test]
fn churn_changes_raft_membership_in_every_seed_and_is_refused_elsewhere() {
    let args = ["sim", "--protocol", "raft", "--nodes", "3", "--seeds", "20", "--duration", "1", "--churn", "--json"];
    let stdout = stdout_of(&args, 0);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["violations"], 0);
    assert!(v["membership_changes"].as_u64().unwrap() >= 20, "{v}");
    // Only where no node counts the learner as a voter: 2 in these 20 seeds.
    assert!(v["wiped_disks"].as_u64().unwrap() >= 1, "the operator replaces learners' disks too: {v}");
    // One seed replays with the same interventions: the same trace hash, and the trace names them.
    let one = ["sim", "--protocol", "raft", "--nodes", "3", "--duration", "1", "--churn", "--seed", "4"];
    let (_, a, _) = quorum(&[&one[..], &["--json"]].concat());
    let (_, b, _) = quorum(&[&one[..], &["--json"]].concat());
    let hash = |s: &str| serde_json::from_str::<serde_json::Value>(s.trim()).unwrap()["trace_hash"].clone();
    assert_eq!(hash(&a), hash(&b));
    let (_, text, _) = quorum(&[&one[..], &["--trace", "text"]].concat());
    assert!(text.contains("is told: remove n") || text.contains("is told: transfer"), "no intervention in the trace");
    refused(&["sim", "--protocol", "paxos", "--seeds", "1", "--churn"], "--churn");
    refused(&["sim", "--protocol", "raft", "--profile", "lease-fifo", "--seeds", "1", "--churn"], "lease disturbance");
}

/// The operator acts only on the nodes the cluster has: in seed 1298 of
/// Multi-Paxos under `hostile`, a corrupted message had put a learner n6
/// into the configuration of 5 nodes, and replacing its disk stopped the
/// run with a panic of the simulator's ("no node n6 in a cluster of 5").
#[test]
fn churn_under_corruption_leaves_forged_members_alone() {
    let args = ["sim", "--protocol", "multipaxos", "--profile", "hostile", "--churn", "--seed", "1298", "--json"];
    let stdout = stdout_of(&args, 0);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["violations"], 0, "{v}");
    assert!(v["membership_changes"].as_u64().unwrap() > 0, "{v}");
}

/// A disk is replaced only where no node still counts its owner as a
/// voter: in seed 19 of Raft with `counters` on 4 nodes, a node whose log
/// ended before a removal counted the wiped node's fresh vote in the old
/// configuration and became a second leader of term 8.
#[test]
fn churn_replaces_no_disk_a_lagging_node_still_counts_as_a_voter() {
    let args =
        ["sim", "--protocol", "raft", "--profile", "counters", "--nodes", "4", "--churn", "--seed", "19", "--json"];
    let stdout = stdout_of(&args, 0);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["violations"], 0, "{v}");
}

/// Seed 50762 of `quorum sim -p multipaxos --churn --nodes 7 --profile
/// tiny-caps --seed-start 50000` (convergence): a leader transferred its
/// leadership to a node still pulling its snapshot; that node's Phase 1
/// started below the snapshot, so no promise from the snapshot's holder
/// could count, and its ballot deposed the leader. Candidate after
/// candidate paged through a lagging acceptor's old votes, each ballot kept
/// alive by the pages although it was behind, until a rival cut it off:
/// three nodes applied nothing past 66 and 143 in the last 500 ms. Now a
/// node receiving a snapshot declines to take over, and a ballot behind a
/// promiser lets its timer run.
#[test]
fn a_multipaxos_node_receiving_a_snapshot_declines_to_take_over() {
    replay_clean(
        &["-p", "multipaxos", "--churn", "--nodes", "7", "--profile", "tiny-caps", "--seed", "50762"],
        "quorum_multipaxos=debug",
        "asked to take over while receiving a snapshot",
        "seed 50762 no longer transfers leadership to a node receiving a snapshot: find another seed",
    );
}

/// Runs one seed of `quorum sim` with `log` on: no violation, and the log
/// shows `reached` (the path the seed was kept for), or the test fails with `lost`.
fn replay_clean(args: &[&str], log: &str, reached: &str, lost: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quorum"))
        .arg("sim")
        .args(args)
        .arg("--json")
        .env("RUST_LOG", log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["violations"], 0, "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(reached), "{lost}");
}

/// Seed 70972 of `quorum sim -p zab --churn --nodes 4` (`convergence`): no
/// leader for the last 1.2 s. n2 had missed the entry that removed n1, so it
/// needed three votes of four where n3 and n4 needed two of three. Each of
/// n3 and n4 in turn won a round with n2's vote, led alone for initLimit and
/// gave up, out of phase with the other, and n2 never counted either. Now a
/// LOOKING node follows a node that leads in its own round from a history as
/// far as its own, instead of standing against it.
#[test]
fn a_zab_node_follows_a_leader_of_its_own_round() {
    replay_clean(
        &["-p", "zab", "--churn", "--nodes", "4", "--seed", "70972"],
        "quorum_zab=debug",
        "a leader of our round: following it",
        "seed 70972 no longer reaches a LOOKING node beside a leader of its round: find another seed",
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    refused(&["sim", "--protocol", "rafft"], "[possible values: paxos, multipaxos, raft, zab, primary-backup");
    refused(&["sim", "--protocol", "primary-backup", "--faults", "sometimes"], "sometimes");
}

#[test]
fn trace_prints_a_scenario_and_refuses_a_mismatched_protocol() {
    let (code, mermaid, stderr) =
        quorum(&["trace", "--protocol", "raft", "--scenario", "raft-election", "--format", "mermaid"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(mermaid.starts_with("sequenceDiagram"), "{mermaid}");
    assert!(mermaid.contains("candidate (term 1)"), "the split vote's candidates are drawn");
    refused(&["trace", "--protocol", "zab", "--scenario", "raft-election"], "runs raft, not zab");
    let (code, list, _) = quorum(&["trace", "--protocol", "raft", "--list"]);
    assert_eq!(code, 0);
    assert!(list.contains("majority-overlap"));
}

#[test]
fn profiles_are_reported_replayed_and_refused_where_they_do_not_apply() {
    let stdout = stdout_of(&["sim", "--protocol", "raft", "--profile", "high-load", "--seeds", "2", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["profile"], "high-load");
    assert_eq!(v["violations"], 0);
    // 200 clients for 2 virtual seconds each.
    assert!(v["ops_ok"].as_u64().unwrap() > 2 * 200 * 10, "{stdout}");

    let (code, stdout, _) =
        quorum(&["sim", "--protocol", "planted-divergence", "--profile", "tiny-caps", "--nodes", "3", "--seeds", "40"]);
    assert_eq!(code, 1, "{stdout}");
    let replay = stdout.lines().find_map(|l| l.trim().strip_prefix("replay: ")).expect("a replay command");
    assert!(replay.contains("--profile tiny-caps"), "{replay}");

    refused(&["sim", "--protocol", "paxos", "--profile", "lease-fifo"], "--profile lease-fifo does not apply to paxos");
}

#[test]
fn a_shipping_build_refuses_planted_bugs_and_names_the_known_ones() {
    refused(
        &["sim", "--protocol", "raft", "--planted", "vote-before-persisted"],
        "build it with `--features planted-bugs`",
    );
    let (code, _, stderr) = quorum(&["sim", "--protocol", "raft", "--planted", "no-such-bug"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("no planted bug 'no-such-bug' in raft: choose one of suspected-ack-without-lease"),
        "{stderr}"
    );
    refused(
        &["sim", "--protocol", "primary-backup", "--planted", "vote-before-persisted"],
        "--planted plants a bug in paxos, multipaxos, raft or zab",
    );
}

#[test]
fn history_writes_one_runs_operations_as_json_and_needs_a_seed() {
    let path = std::env::temp_dir().join(format!("quorum-history-{}.json", std::process::id()));
    let file = path.to_str().unwrap();
    let (code, _, stderr) = quorum(&["sim", "--protocol", "raft", "--nodes", "3", "--seed", "4", "--history", file]);
    assert_eq!(code, 0, "{stderr}");
    let history: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let ops = history.as_array().expect("an array of operations");
    assert!(ops.len() > 100, "{} operations", ops.len());
    assert!(ops.iter().all(|op| op["invoked"].is_u64() && op.get("outcome").is_some()), "{}", ops[0]);
    std::fs::remove_file(&path).unwrap();
    refused(&["sim", "--protocol", "raft", "--history", file], "give --seed too");
}

#[test]
fn shell_completions_know_the_commands_and_the_protocols() {
    let script = stdout_of(&["completions", "bash"], 0);
    for word in ["_quorum", "sim", "node", "admin", "restore", "multipaxos", "planted-lost-write"] {
        assert!(script.contains(word), "no '{word}' in the bash completions");
    }
    refused(&["completions", "tcsh"], "invalid value 'tcsh'");
    refused(&["node", "--protocol", "planted-lost-write"], "invalid value 'planted-lost-write'");
}

#[test]
fn rust_log_shows_the_protocols_decisions_stamped_with_seed_and_virtual_time() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["sim", "--protocol", "raft", "--seeds", "1", "--seed-start", "3"])
        .env("RUST_LOG", "quorum_raft=info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("become leader")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.starts_with("seed 3 t="), "{line}");
    // Without RUST_LOG the run says nothing on stderr but its summary.
    let (_, _, quiet) = quorum(&["sim", "--protocol", "raft", "--seeds", "1"]);
    assert!(!quiet.contains("become leader"), "{quiet}");
}
