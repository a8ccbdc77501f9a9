//! `quorum bench` as a user runs it.

mod common;

use common::{quorum, refused};

#[test]
fn json_output_has_every_promised_field_for_every_protocol() {
    let (code, stdout, stderr) =
        quorum(&["bench", "--json", "--duration", "2", "--fault-at", "0.8", "--fault-until", "1.5"]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let results = v["results"].as_array().expect("results array");
    assert!(!results.is_empty());
    for r in results {
        for field in [
            "protocol",
            "mode",
            "throughput_ops",
            "recovery_ms",
            "recovery_to_90pct_ms",
            "msgs_per_commit",
            "bytes_per_commit",
            "elections",
        ] {
            assert!(r.get(field).is_some(), "missing {field} in {r}");
        }
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(r["latency_ms"][p].as_f64().is_some(), "missing latency {p} in {r}");
        }
        assert_eq!(r["mode"], "sim");
        assert!(r["throughput_ops"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn a_report_directory_gets_markdown_three_charts_and_the_json() {
    let dir = std::env::temp_dir().join(format!("quorum-bench-report-{}", std::process::id()));
    let (code, _, stderr) = quorum(&[
        "bench",
        "--duration",
        "1.5",
        "--fault-at",
        "0.5",
        "--fault-until",
        "1",
        "--report",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let md = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(md.contains("| protocol | runs | ops/s"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).expect("JSON");
    assert_eq!(json["results"].as_array().map(Vec::len), Some(5), "a row per protocol: {json}");
    for chart in ["latency_cdf.svg", "throughput.svg", "recovery.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && (svg.contains("polyline") || svg.contains("rect")), "{chart} looks empty");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn inconsistent_fault_times_are_refused_with_a_clear_message() {
    refused(&["bench", "--fault-at", "3", "--fault-until", "2"], "--fault-at < --fault-until");
}

/// `quorum bench --mode real --nodes 3 --warmup 0.3 --json` with `flags`:
/// the results, one per protocol.
fn real_bench(flags: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["bench", "--mode", "real", "--nodes", "3", "--warmup", "0.3", "--json"];
    args.extend_from_slice(flags);
    let (code, stdout, stderr) = quorum(&args);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    v["results"].as_array().expect("results").clone()
}

#[test]
fn real_mode_runs_raft_processes_and_reports_recovery_from_kill_9() {
    let flags = ["-p", "raft", "--clients", "2", "--duration", "2.5", "--fault-at", "0.8", "--fault-until", "1.8"];
    let r = &real_bench(&flags)[0];
    assert_eq!(r["mode"], "real");
    assert!(r["throughput_ops"].as_f64().unwrap() > 50.0, "{r}");
    let recovery = r["recovery_ms"].as_f64().expect("a recovery time after kill -9");
    assert!(recovery > 0.0 && recovery < 1500.0, "recovery {recovery} ms");
    assert!(r["victim"].as_str().unwrap().contains("the leader"), "{r}");
    // Peer traffic from the nodes' /metrics, the killed leader's included:
    // each write is sent to two followers and acknowledged, in batches.
    let msgs = r["msgs_per_commit"].as_f64().expect("peer messages counted");
    let bytes = r["bytes_per_commit"].as_f64().expect("peer bytes counted");
    assert!(msgs > 0.5 && msgs < 50.0, "{r}");
    assert!(bytes > 2.0 * 128.0, "two copies of each 128-byte value at least: {r}");
}

/// A real run checks its clients' history for linearizability: their reads
/// and writes (a write whose answer never came may or may not have taken
/// effect) and a final read of every key written. Raft and Zab stay
/// linearizable through their leader's kill -9; nodes that serve reads from
/// their own copy (`--local-reads`) are caught answering a stale value.
#[test]
fn real_runs_are_checked_for_linearizability_and_local_reads_are_caught() {
    let load =
        ["-p", "raft", "-p", "zab", "--clients", "8", "--keys", "10", "--read-ratio", "0.5", "--duration", "2.5"];
    let crash = [&load[..], &["--fault-at", "0.8", "--fault-until", "1.6"]].concat();
    for r in real_bench(&crash) {
        assert_eq!(r["violations"], 0, "{r}");
        assert!(r["violation"].is_null(), "{r}");
        // Reads and writes of 8 clients for 2.5 s, and the final reads.
        assert!(r["checked_ops"].as_u64().unwrap() > 1000, "{r}");
    }
    // A violation makes the run exit with status 1, after its report.
    let mut local = vec!["bench", "--mode", "real", "--nodes", "3", "--warmup", "0.3", "--json"];
    local.extend_from_slice(&load);
    local.extend_from_slice(&["--fault", "none", "--local-reads"]);
    let (code, stdout, stderr) = quorum(&local);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the clients' history is not linearizable"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    for r in v["results"].as_array().expect("results") {
        assert!(r["violations"].as_u64().unwrap() >= 1, "local reads passed the check: {r}");
        let why = r["violation"].as_str().expect("the violation, explained");
        assert!(why.starts_with("key k") && why.contains("no linearization"), "{why}");
    }
}

/// `--fault reconfigure` on real processes: Raft, Multi-Paxos and Zab each
/// add and promote two nodes and remove two founders (the leader first)
/// under load.
#[test]
fn real_mode_reconfigures_raft_multipaxos_and_zab_under_load() {
    let protocols = ["-p", "raft", "-p", "multipaxos", "-p", "zab"];
    let flags = [&protocols[..], &["--clients", "4", "--duration", "3", "--fault", "reconfigure", "--fault-at", "0.8"]];
    let results = real_bench(&flags.concat());
    assert_eq!(results.len(), 3);
    for r in &results {
        let m = &r["membership"];
        let changes = m["changes"].as_array().unwrap();
        let names: Vec<&str> = changes.iter().map(|c| c["change"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 4, "{r}");
        assert!(names[0] == "add+promote n4" && names[2] == "add+promote n5", "{names:?}");
        assert!(names[1].ends_with("(leader)") && !names[3].ends_with("(leader)"), "{names:?}");
        for c in changes {
            // Generous bounds (the machine is shared); the figures are what
            // the issue asks the command to report, not a speed test.
            let stopped = c["unavailable_ms"].as_f64().unwrap();
            assert!(stopped > 0.0 && stopped < 3000.0, "{c}");
            let caught_up = c["caught_up_ms"].as_f64();
            assert_eq!(caught_up.is_some(), c["change"].as_str().unwrap().starts_with("add"), "{c}");
        }
    }
}

/// `--fault chaos` on real processes: one member at a time killed or
/// frozen, over and over, and the clients' history still linearizable.
#[test]
fn real_runs_stay_linearizable_through_chaos() {
    let flags = ["-p", "raft", "-p", "multipaxos", "--clients", "6", "--keys", "10", "--read-ratio", "0.3"];
    let chaos = ["--duration", "3", "--fault", "chaos", "--fault-at", "0.5", "--fault-until", "2.5"];
    for r in real_bench(&[&flags[..], &chaos[..]].concat()) {
        assert_eq!(r["violations"], 0, "{r}");
        assert!(r["checked_ops"].as_u64().unwrap() > 500, "{r}");
        // 2 s of faults, each 100 to 700 ms: at least three.
        let what = r["victim"].as_str().expect("what the chaos did");
        let words: Vec<&str> = what.split(' ').collect();
        let times: u32 = words.windows(2).find(|w| w[1] == "times").and_then(|w| w[0].parse().ok()).expect(what);
        assert!(what.starts_with("one member at a time") && times >= 3, "{what}");
    }
}

/// `--chaos-down 3` on three members: the whole cluster killed or frozen at
/// once (the schedule comes from the seed, and this one takes all three
/// down together), and every acknowledged write still there afterwards.
#[test]
fn real_runs_stay_linearizable_when_chaos_takes_the_whole_cluster_down() {
    let flags = ["-p", "raft", "--clients", "6", "--keys", "10", "--read-ratio", "0.3", "--seed", "5"];
    let chaos =
        ["--duration", "3", "--fault", "chaos", "--fault-at", "0.5", "--fault-until", "2.5", "--chaos-down", "3"];
    let r = &real_bench(&[&flags[..], &chaos[..]].concat())[0];
    assert_eq!(r["violations"], 0, "{r}");
    assert!(r["checked_ops"].as_u64().unwrap() > 300, "{r}");
    let what = r["victim"].as_str().expect("what the chaos did");
    assert!(what.starts_with("up to 3 members at a time (3 reached)"), "{what}");
}

#[test]
fn reconfigure_and_chaos_are_refused_where_they_cannot_run() {
    refused(&["bench", "--fault", "chaos"], "needs --mode real");
    refused(&["bench", "--mode", "real", "--chaos-down", "2"], "needs --fault chaos");
    refused(
        &["bench", "--mode", "real", "--fault", "chaos", "--nodes", "3", "--chaos-down", "4"],
        "at most --nodes (3)",
    );
    refused(&["bench", "--fault", "reconfigure"], "needs --mode real");
    refused(&["bench", "--mode", "real", "--fault", "reconfigure", "--reference", "redis"], "no --reference");
}

/// The reference systems this machine has installed; the others are named.
fn installed_references() -> Vec<&'static str> {
    let on_path = |p: &str| {
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    let mut found = Vec::new();
    for (name, present, package) in [
        ("etcd", on_path("etcd"), "etcd-server"),
        ("zookeeper", on_path("java") && std::path::Path::new("/usr/share/java/zookeeper.jar").is_file(), "zookeeper"),
        ("redis", on_path("redis-server"), "redis-server"),
    ] {
        if present {
            found.push(name);
        } else {
            println!("SKIPPED the {name} reference: not installed (apt-get install {package})");
        }
    }
    found
}

#[test]
fn reference_systems_run_under_the_same_load_and_lose_their_leader_to_kill_9() {
    let references = installed_references();
    if references.is_empty() {
        return;
    }
    let list = references.join(",");
    let args = [
        "bench",
        "--mode",
        "real",
        "-p",
        "raft",
        "--reference",
        &list,
        "--nodes",
        "3",
        "--clients",
        "2",
        "--duration",
        "3",
        "--warmup",
        "0.3",
        "--fault-at",
        "1",
        "--fault-until",
        "2",
        "--json",
    ];
    let (code, stdout, stderr) = quorum(&args);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let rows = v["results"].as_array().expect("results");
    let names: Vec<&str> = rows.iter().map(|r| r["protocol"].as_str().unwrap()).collect();
    let mut expected = vec!["raft"];
    expected.extend(&references);
    assert_eq!(names, expected);
    for r in rows {
        assert!(r["throughput_ops"].as_f64().unwrap() > 50.0, "{r}");
        if r["protocol"] != "raft" {
            assert!(r["msgs_per_commit"].is_null(), "a reference's peer traffic is not counted: {r}");
        }
        if r["protocol"] == "redis" {
            // One server: no leader to lose, so no fault and no recovery.
            assert!(r["recovery_ms"].is_null() && r["victim"].is_null(), "{r}");
        } else {
            assert!(r["victim"].as_str().unwrap().contains("the leader"), "{r}");
            let recovery = r["recovery_ms"].as_f64().expect("a recovery time after kill -9");
            assert!(recovery > 0.0 && recovery < 3000.0, "{r}");
            assert!(r["elections"].as_f64().unwrap() >= 1.0, "a new leader after kill -9: {r}");
        }
    }
}

#[test]
fn references_and_no_fsync_need_real_mode_and_known_names() {
    refused(&["bench", "--reference", "redis"], "--mode real");
    refused(&["bench", "--unsafe-no-fsync"], "--mode real");
    refused(&["bench", "--local-reads"], "--mode real");
    refused(&["bench", "--mode", "real", "--rate", "500"], "--rate (open loop) runs in the simulator only");
    refused(&["bench", "--mode", "real", "--reference", "mysql"], "choose etcd, zookeeper or redis");
}
