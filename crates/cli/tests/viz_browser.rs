//! `quorum viz` in a real headless browser (issue 20): `viz/browser.mjs`
//! drives Chromium through puppeteer-core, for every protocol: wait for a
//! leader, crash it by clicking, see a new one elected, write and see the
//! write applied on a majority, rewind, screenshot (into
//! `target/viz-screenshots`); a second tab keeps its own cluster; at full
//! speed the page draws at least 30 frames a second and receives under
//! 1 MB/s. `.ci/run` installs Chromium (Debian's `chromium`) and
//! puppeteer-core into `target/viz-browser`; without them the test says it
//! skipped and how to install them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where `.ci/run` installs puppeteer-core (`npm install --prefix`).
fn modules() -> PathBuf {
    workspace().join("target/viz-browser/node_modules")
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if let Err(e) = Command::new("node").arg("--version").output() {
        return Some(format!("node cannot be run ({e})"));
    }
    if chromium().is_none() {
        return Some("no Chromium at /usr/bin/chromium (apt-get install chromium)".into());
    }
    if !modules().join("puppeteer-core/package.json").exists() {
        return Some(format!(
            "puppeteer-core is not installed in {} (npm install --prefix target/viz-browser puppeteer-core@23)",
            modules().display()
        ));
    }
    None
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_learner_crashes_the_leader_writes_and_rewinds_in_a_real_browser() {
    if let Some(why) = missing() {
        println!("SKIPPED a_learner_crashes_the_leader_writes_and_rewinds_in_a_real_browser: {why}");
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["viz", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("quorum viz starts");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url =
        line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("no address in {line:?}"));
    let shots = workspace().join("target/viz-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/viz/browser.mjs");
    let out = Command::new("timeout")
        .args(["300", "node"])
        .arg(&script)
        .arg(url)
        .arg(&shots)
        .arg(chromium().unwrap())
        .arg(modules())
        .output()
        .unwrap();
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "the browser test failed:\n{stdout}{stderr}");
    for protocol in ["raft", "multipaxos", "zab", "paxos", "primary-backup"] {
        assert!(stdout.contains(&format!("{protocol}: crashed")), "{protocol} not toured:\n{stdout}");
        assert!(shots.join(format!("{protocol}-4-rewound.png")).exists());
    }
}
