//! Runs the `quorum` binary the way a user would.

use std::process::Command;

/// Runs `quorum ARGS`; returns (exit code, stdout, stderr).
pub fn quorum(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quorum")).args(args).output().expect("quorum runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `quorum args` is refused as a usage error (exit status 2) whose message
/// contains `says`.
#[allow(dead_code)] // not every test binary that includes this module refuses something
pub fn refused(args: &[&str], says: &str) {
    let (code, stdout, stderr) = quorum(args);
    assert_eq!(code, 2, "quorum {args:?}: {stdout}{stderr}");
    assert!(stderr.contains(says), "quorum {args:?} should say {says:?}: {stderr}");
}

/// Runs `quorum args`, asserts it exits with `code`, and returns what it
/// printed on stdout.
#[allow(dead_code)] // not every test binary that includes this module needs it
pub fn stdout_of(args: &[&str], code: i32) -> String {
    let (got, stdout, stderr) = quorum(args);
    assert_eq!(got, code, "quorum {args:?}: {stdout}{stderr}");
    stdout
}
