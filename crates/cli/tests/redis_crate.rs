//! The `redis` crate, unmodified with its default settings, against real
//! `quorum node` processes of every protocol (issue 21): the same small
//! application the Python and Node.js clients run (`redis_py.rs`,
//! `node_clients.rs`): a lock with a deadline that expires, counters through
//! a pipeline, a transaction with `EXPIRE` in it, an optimistic transaction
//! with `WATCH`, a hash, `SCAN`.

mod processes;

use processes::ProcCluster;
use redis::Commands;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn application(conn: &mut redis::Connection) -> redis::RedisResult<()> {
    // A lock with a deadline: taken once, expires, taken again.
    let lock = |conn: &mut redis::Connection, who: &str, opts: redis::SetOptions| -> redis::RedisResult<bool> {
        let answer: Option<String> = conn.set_options("lock", who, opts)?;
        Ok(answer.is_some())
    };
    let nx_px = redis::SetOptions::default()
        .conditional_set(redis::ExistenceCheck::NX)
        .with_expiration(redis::SetExpiry::PX(300));
    assert!(lock(conn, "me", nx_px.clone())?);
    assert!(!lock(conn, "you", nx_px)?, "a second SET NX took the lock");
    let deadline = Instant::now() + Duration::from_secs(5);
    while conn.exists::<_, bool>("lock")? && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let nx_ex = redis::SetOptions::default()
        .conditional_set(redis::ExistenceCheck::NX)
        .with_expiration(redis::SetExpiry::EX(10));
    assert!(lock(conn, "you", nx_ex)?, "the expired lock could not be taken");
    assert!((9..=10).contains(&conn.ttl::<_, i64>("lock")?));

    // Counters through a pipeline (not a transaction).
    let mut pipe = redis::pipe();
    for _ in 0..50 {
        pipe.incr("counter", 1);
    }
    let counts: Vec<i64> = pipe.query(conn)?;
    assert_eq!(counts, (1..=50).collect::<Vec<_>>());

    // A transaction: one log entry.
    let (set, a, hits, expired): (String, i64, i64, bool) =
        redis::pipe().atomic().set("a", 1).incr("a", 1).incr("hits", 1).expire("hits", 60).query(conn)?;
    assert_eq!((set.as_str(), a, hits, expired), ("OK", 2, 1, true));
    assert!(conn.ttl::<_, i64>("hits")? >= 59);

    // An optimistic transaction: WATCH, read, MULTI ... EXEC.
    let (bumped,): (i64,) = redis::transaction(conn, &["a"], |conn, pipe| {
        let a: i64 = conn.get("a")?;
        pipe.set("a", a + 10).ignore().get("a").query(conn)
    })?;
    assert_eq!(bumped, 12);

    // A hash.
    conn.hset_multiple::<_, _, _, ()>("user:1", &[("name", "ada"), ("visits", "1")])?; // HMSET
    assert_eq!(conn.hlen::<_, i64>("user:1")?, 2);
    assert_eq!(conn.hincr::<_, _, _, i64>("user:1", "visits", 2)?, 3);
    let all: BTreeMap<String, String> = conn.hgetall("user:1")?;
    assert_eq!(all, BTreeMap::from([("name".into(), "ada".into()), ("visits".into(), "3".into())]));

    // SCAN through every page.
    for i in 0..30 {
        conn.set::<_, _, ()>(format!("scan:{i}"), i)?;
    }
    let mut keys = conn.scan_match::<_, String>("scan:*")?.collect::<Result<Vec<_>, _>>()?;
    keys.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("scan:{i}")).collect();
    expected.sort();
    assert_eq!(keys, expected);
    Ok(())
}

#[test]
fn the_redis_crate_runs_an_application_on_every_protocol() {
    for protocol in ["paxos", "multipaxos", "raft", "zab"] {
        let cluster = ProcCluster::start(protocol, 3);
        // Node 2: a follower in most runs, which forwards to the leader.
        let mut conn = cluster.client(2);
        if let Err(e) = application(&mut conn) {
            panic!("{protocol}: {e}\nnode 2 log:\n{}", cluster.log(2));
        }
        println!("{protocol}: the redis crate ok");
    }
}
