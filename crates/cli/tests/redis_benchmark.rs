//! `redis-benchmark`, unmodified, against real `quorum node` processes of
//! every protocol (issue 21): every test of its default list that quorum
//! serves runs without an error. The others (lists, sets, sorted sets,
//! streams) are named in `UNSERVED`; the test checks that each really is
//! refused, so the list cannot go stale. Without `redis-benchmark` (Debian's
//! `redis-tools`, which `.ci/run` installs) the test says it skipped.

mod processes;

use processes::{wait_for_leader, ProcCluster};
use std::process::Command;

/// The tests of redis-benchmark's default list that quorum serves.
const SERVED: &[&str] = &["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "HSET", "MSET"];
/// The rest of the default list, and a command each sends.
const UNSERVED: &[(&str, &str)] = &[
    ("LPUSH", "LPUSH"),
    ("RPUSH", "RPUSH"),
    ("LPOP", "LPOP"),
    ("RPOP", "RPOP"),
    ("SADD", "SADD"),
    ("SPOP", "SPOP"),
    ("ZADD", "ZADD"),
    ("ZPOPMIN", "ZPOPMIN"),
    ("LRANGE_100", "LRANGE"),
    ("XADD", "XADD"),
];

#[test]
fn redis_benchmark_runs_every_default_test_quorum_serves_on_every_protocol() {
    if let Err(e) = Command::new("redis-benchmark").arg("--version").output() {
        println!("SKIPPED redis_benchmark_runs_every_default_test_quorum_serves_on_every_protocol: redis-benchmark cannot be run ({e}); apt-get install redis-tools");
        return;
    }
    for protocol in ["paxos", "multipaxos", "raft", "zab"] {
        let cluster = ProcCluster::start(protocol, 3);
        // Basic Paxos has no leader: any peer takes writes.
        let leader = if protocol == "paxos" { 1 } else { wait_for_leader(&cluster) };
        let port = cluster.clients[&leader].port().to_string();
        let out = Command::new("timeout")
            .args(["120", "redis-benchmark", "-p", &port, "-n", "1000", "-c", "10", "--csv", "-t", &SERVED.join(",")])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.trim().is_empty(), "{protocol}: {stdout}{stderr}");
        for test in SERVED {
            // A CSV line per test: "SET","12345.68",... (the name, then
            // requests per second); "MSET (10 keys)" names its key count.
            let name_of = |line: &str| line.split(',').next().unwrap_or("").trim_matches('"').to_string();
            let line = stdout.lines().find(|l| name_of(l).split(" (").next() == Some(test)).unwrap_or_else(|| {
                panic!("{protocol}: no result for {test}:\n{stdout}{stderr}");
            });
            let rps: f64 = line.split(',').nth(1).unwrap().trim_matches('"').parse().unwrap();
            assert!(rps > 0.0, "{protocol} {test}: {line}");
            println!("{protocol} {test}: {rps:.0} requests/s");
        }
        let mut conn = cluster.client(leader);
        for (_, command) in UNSERVED {
            let err = redis::cmd(command).arg("k").arg("v").query::<()>(&mut conn).unwrap_err();
            assert!(err.to_string().contains("unknown command"), "{command}: {err}");
        }
    }
}
