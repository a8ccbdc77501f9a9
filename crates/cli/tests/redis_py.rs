//! An unmodified client library against real `quorum node` processes (issue
//! 21): redis-py, speaking RESP3 (`protocol=3`), runs a small application on
//! a 3-node cluster of every protocol: a lock taken with `SET NX`, counters
//! bumped through a pipeline, read-modify-writes, multi-key reads, a
//! transaction (redis-py's default pipeline), an optimistic one with `WATCH`
//! and a watched key changed under it, `GETDEL`, `RENAME`, a lock with a
//! deadline (`SET NX PX`) that expires, `INCR` and `EXPIRE` in one
//! transaction, a hash, `SCAN`. `.ci/run`
//! installs redis-py with pip; without it (or without python3) the test says
//! it skipped and why.

mod processes;

use processes::ProcCluster;
use std::process::Command;

const APP: &str = r#"
import sys, redis
r = redis.Redis(port=int(sys.argv[1]), protocol=3, decode_responses=True)
assert r.ping()
assert r.client_info()["resp"] == "3", r.client_info()
assert r.set("lock", "me", nx=True) is True
assert r.set("lock", "you", nx=True) is None, "a second SET NX took the lock"
assert r.get("lock") == "me"
with r.pipeline(transaction=False) as p:
    for _ in range(50):
        p.incr("counter")
    answers = p.execute()
assert answers == list(range(1, 51)), answers
assert r.incrby("counter", -10) == 40
assert r.append("log", "a") == 1 and r.append("log", "bc") == 3
assert r.mget("lock", "missing", "log") == ["me", None, "abc"]
assert r.exists("lock", "log", "missing") == 2
assert r.delete("lock") == 1
assert r.set("lock", "you", nx=True) is True, "a released lock can be taken again"
# A lock that expires: SET NX PX, then the leader's sweep deletes it.
assert r.set("lease", "me", nx=True, px=300) is True
assert r.set("lease", "you", nx=True, px=300) is None
assert 0 < r.pttl("lease") <= 300
import time
deadline = time.time() + 5
while r.exists("lease") and time.time() < deadline:
    time.sleep(0.05)
assert r.set("lease", "you", nx=True, ex=10) is True, "the expired lease could not be taken"
assert 9 <= r.ttl("lease") <= 10
assert r.persist("lease") is True and r.ttl("lease") == -1
# A hash.
assert r.hset("user:1", mapping={"name": "ada", "visits": 1}) == 2
assert r.hincrby("user:1", "visits", 2) == 3
assert r.hgetall("user:1") == {"name": "ada", "visits": "3"}
assert r.hmget("user:1", "name", "nope") == ["ada", None]
assert r.hdel("user:1", "visits") == 1 and r.hlen("user:1") == 1
assert r.type("user:1") == "hash"
try:
    r.incr("user:1")
    raise AssertionError("INCR on a hash")
except redis.ResponseError as e:
    assert "WRONGTYPE" in str(e), e
with r.pipeline() as p:  # redis-py's default pipeline: MULTI ... EXEC, one log entry
    p.set("a", "1")
    p.incr("a")
    p.mset({"b": "2", "c": "3"})
    p.get("b")
    p.incr("hits")
    p.expire("hits", 60)  # the rate-limiter idiom: the deadline in the same entry
    assert p.execute() == [True, 2, True, "2", 1, True]
assert 59 <= r.ttl("hits") <= 60
def bump(pipe):
    value = int(pipe.get("a"))
    pipe.multi()
    pipe.set("a", value + 10)
r.transaction(bump, "a")  # WATCH a, read, MULTI, SET, EXEC
assert r.get("a") == "12"
other = redis.Redis(port=int(sys.argv[1]), decode_responses=True)
with r.pipeline() as p:
    p.watch("a")
    other.set("a", "changed")
    p.multi()
    p.set("a", "mine")
    try:
        p.execute()
        raise AssertionError("EXEC ran although a watched key changed")
    except redis.WatchError:
        pass
assert r.get("a") == "changed"
assert r.getdel("c") == "3" and r.get("c") is None
assert r.rename("b", "d") and r.mget("b", "d") == [None, "2"]
for i in range(30):
    r.set(f"scan:{i}", i)
assert sorted(r.scan_iter(match="scan:*", count=4)) == sorted(f"scan:{i}" for i in range(30))
assert sorted(r.keys("scan:1*")) == sorted(["scan:1"] + [f"scan:{i}" for i in range(10, 20)])
assert r.flushdb() is True and r.keys("*") == []
print("ok")
"#;

/// Why redis-py cannot run here, if it cannot.
fn missing_python_client() -> Option<String> {
    match Command::new("python3").args(["-c", "import redis; print(redis.__version__)"]).output() {
        Err(e) => Some(format!("python3 cannot be run ({e})")),
        Ok(out) if !out.status.success() => Some("redis-py is not installed (pip install redis)".to_string()),
        Ok(_) => None,
    }
}

#[test]
fn redis_py_runs_an_application_on_every_protocol_over_resp3() {
    if let Some(why) = missing_python_client() {
        println!("SKIPPED redis_py_runs_an_application_on_every_protocol_over_resp3: {why}");
        return;
    }
    for protocol in ["paxos", "multipaxos", "raft", "zab"] {
        let cluster = ProcCluster::start(protocol, 3);
        // Node 2: a follower in most runs, which forwards to the leader.
        let port = cluster.clients[&2].port().to_string();
        let out = Command::new("python3").args(["-c", APP, &port]).output().expect("python3 ran above");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.trim() == "ok",
            "{protocol}: redis-py failed:\n{stdout}{stderr}\nnode 2 log:\n{}",
            cluster.log(2)
        );
        println!("{protocol}: redis-py ok");
    }
}
