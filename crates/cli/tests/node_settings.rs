//! `quorum node` settings from the sample docs/node.toml, the environment and
//! flags, in that order of weight, as the node reports them in INFO and on
//! /metrics; and a bad value refused with a message naming the settings.

mod processes;

use processes::{free_addr, wait_until, Proc, BIN};
use std::process::{Command, Stdio};
use std::time::Duration;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/node.toml");

fn node(dir: &std::path::Path, client: std::net::SocketAddr, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let peer = free_addr();
    let mut cmd = Command::new(BIN);
    cmd.args(["node", "--config", SAMPLE, "--peers", &format!("1={peer}"), "--client", &client.to_string()])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    cmd
}

#[test]
fn the_sample_config_runs_with_environment_and_flags_on_top_and_reports_what_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_addr();
    let client = free_addr();
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let mut cmd = node(
        dir.path(),
        client,
        &["--metrics", &metrics.to_string(), "--set", "election_timeout_max_ms=350", "--log-format", "json"],
        &[
            ("QUORUM_MAX_INFLIGHT", "3"),
            ("QUORUM_HEARTBEAT_INTERVAL_MS", "40"),
            ("QUORUM_ELECTION_TIMEOUT_MAX_MS", "999"),
        ],
    );
    let _node = Proc(cmd.stderr(log).spawn().unwrap());
    let mut info = String::new();
    wait_until("the node answers INFO", Duration::from_secs(15), || {
        let Ok(client) = redis::Client::open(format!("redis://{client}/")) else { return false };
        let Ok(mut conn) = client.get_connection() else { return false };
        info = redis::cmd("INFO").query(&mut conn).unwrap_or_default();
        !info.is_empty()
    });
    let text = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    assert!(info.contains("election_timeout_min_ms:150\r\n"), "from the file: {info}\n{text}");
    assert!(info.contains("max_inflight:3\r\n"), "from the environment, which nothing else sets: {info}");
    assert!(info.contains("heartbeat_interval_ms:50\r\n"), "the file wins over the environment: {info}");
    assert!(info.contains("election_timeout_max_ms:350\r\n"), "the flag wins over the environment: {info}");
    assert!(info.contains("read_mode:read_index\r\n"), "{info}");
    let mut page = String::new();
    wait_until("/metrics answers", Duration::from_secs(10), || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(metrics) else { return false };
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
        page.clear();
        s.read_to_string(&mut page).is_ok() && page.contains("200 OK")
    });
    assert!(page.contains("quorum_setting{key=\"max_inflight\",value=\"3\"} 1"), "{page}");
    // --log-format json: every line of the log is a JSON object.
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "protocol settings"), "{log}");
}

#[test]
fn a_setting_that_cannot_work_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = node(dir.path(), free_addr(), &["--set", "election_timeout_min_ms=400"], &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("election_timeout_min_ms must be below election_timeout_max_ms"), "{err}");
    let out = node(dir.path(), free_addr(), &[], &[("QUORUM_READ_MODE", "fast")]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("QUORUM_READ_MODE: read_mode: 'fast' is not valid"));
}
