//! Unmodified Node.js clients against real `quorum node` processes (issue
//! 21): ioredis and node-redis (npm's `redis`), each with its default
//! settings, run `clients/app.mjs` on a 3-node cluster of every protocol: a
//! lock with a deadline that expires, counters through a pipeline, a
//! transaction with `EXPIRE` in it, a hash, `SCAN`. `.ci/run` installs
//! Node.js and both libraries into `target/node-clients`; without them the
//! test says it skipped and how to install them.

mod processes;

use processes::ProcCluster;
use std::path::PathBuf;
use std::process::Command;

/// Where `.ci/run` installs the libraries (`npm install --prefix`).
fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/node-clients")
}

/// Why the clients cannot run here, if they cannot.
fn missing_node_clients() -> Option<String> {
    if let Err(e) = Command::new("node").arg("--version").output() {
        return Some(format!("node cannot be run ({e})"));
    }
    for module in ["ioredis", "redis"] {
        if !clients_dir().join("node_modules").join(module).join("package.json").exists() {
            return Some(format!(
                "{module} is not installed in {} (npm install --prefix target/node-clients ioredis redis)",
                clients_dir().display()
            ));
        }
    }
    None
}

#[test]
fn ioredis_and_node_redis_run_an_application_on_every_protocol() {
    if let Some(why) = missing_node_clients() {
        println!("SKIPPED ioredis_and_node_redis_run_an_application_on_every_protocol: {why}");
        return;
    }
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/app.mjs");
    for protocol in ["paxos", "multipaxos", "raft", "zab"] {
        let cluster = ProcCluster::start(protocol, 3);
        // Node 2: a follower in most runs, which forwards to the leader.
        let port = cluster.clients[&2].port().to_string();
        for library in ["ioredis", "redis"] {
            let out = Command::new("timeout")
                .args(["60", "node"])
                .arg(&app)
                .args([library, &port])
                .env("NODE_CLIENTS_DIR", clients_dir())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stdout.trim() == "ok",
                "{protocol}, {library}: failed:\n{stdout}{stderr}\nnode 2 log:\n{}",
                cluster.log(2)
            );
            println!("{protocol}: {library} ok");
            // The next library starts from an empty store.
            let _: () = redis::cmd("FLUSHDB").query(&mut cluster.client(2)).unwrap();
        }
    }
}
