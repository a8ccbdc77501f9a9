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
fn a_report_directory_gets_markdown_and_three_charts() {
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

#[test]
fn real_mode_runs_raft_processes_and_reports_recovery_from_kill_9() {
    let args = [
        "bench",
        "--mode",
        "real",
        "-p",
        "raft",
        "--nodes",
        "3",
        "--clients",
        "2",
        "--duration",
        "2.5",
        "--warmup",
        "0.3",
        "--fault-at",
        "0.8",
        "--fault-until",
        "1.8",
        "--json",
    ];
    let (code, stdout, stderr) = quorum(&args);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let r = &v["results"][0];
    assert_eq!(r["mode"], "real");
    assert!(r["throughput_ops"].as_f64().unwrap() > 50.0, "{r}");
    let recovery = r["recovery_ms"].as_f64().expect("a recovery time after kill -9");
    assert!(recovery > 0.0 && recovery < 1500.0, "recovery {recovery} ms");
    assert!(r["victim"].as_str().unwrap().contains("the leader"), "{r}");
}
