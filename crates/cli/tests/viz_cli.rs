//! `quorum viz` and `quorum trace --format html` without a browser: bad
//! settings and replay files are refused with the reason before anything is
//! served; the server answers its page, its scripts, the tour list and each
//! tour over plain HTTP. (The page itself is driven in viz_browser.rs.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn quorum(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quorum")).args(args).output().unwrap()
}

#[test]
fn bad_settings_and_replay_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("actions.json");
    std::fs::write(&bad, r#"[{"step": 1, "at_ns": 0, "action": {"do": "crash", "node": 7}}]"#).unwrap();
    let cases: [(Vec<&str>, &str); 4] = [
        (vec!["viz", "--nodes", "40"], "choose 1 to 9"),
        (vec!["viz", "--replay", "/no/such/file.json"], "cannot read /no/such/file.json"),
        (vec!["viz", "--nodes", "3", "--replay", bad.to_str().unwrap()], "action 0: there is no node 7"),
        (vec!["viz", "--protocol", "nope"], "invalid value 'nope'"),
    ];
    for (args, why) in cases {
        let out = quorum(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

#[test]
fn trace_writes_a_scenario_as_one_page_that_plays_it() {
    let out = quorum(&["trace", "--scenario", "zab-recovery", "--format", "html"]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains(r#""protocol":"zab""#) && page.contains(r#""kind":"deliver""#));
    assert!(!page.contains("src=\"http"), "no script from the network");
}

fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[test]
fn the_server_answers_its_page_scripts_and_tours() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["viz", "--port", "0", "--protocol", "multipaxos"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.split("127.0.0.1:").nth(1).and_then(|r| r.split('/').next()).unwrap().parse().unwrap();
    assert!(line.contains("multipaxos, 5 nodes, seed 1"), "{line}");
    let (head, body) = get(port, "/");
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/html"), "{head}");
    assert!(body.contains(r#"<script src="/app.js">"#));
    for script in ["/app.js", "/draw.js"] {
        let (head, body) = get(port, script);
        assert!(head.contains("text/javascript") && body.len() > 1000, "{script}: {head}");
    }
    let (_, tours) = get(port, "/tours");
    let tours: serde_json::Value = serde_json::from_str(&tours).unwrap();
    assert!(tours.as_array().unwrap().iter().any(|t| t["name"] == "raft-partition"));
    let (head, body) = get(port, "/tour/raft-partition");
    assert!(head.starts_with("HTTP/1.1 200") && body.contains(r#""title":"Raft under a network partition""#), "{head}");
    let (head, body) = get(port, "/tour/nope");
    assert!(head.starts_with("HTTP/1.1 404") && body.contains("no scenario 'nope'"), "{head}");
    let (head, _) = get(port, "/ws");
    assert!(!head.starts_with("HTTP/1.1 200"), "a plain GET is not a WebSocket: {head}");
    child.kill().unwrap();
    child.wait().unwrap();
}
