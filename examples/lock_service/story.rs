//! The story: a lease runs out while its holder is paused, the leader crashes,
//! and the fencing token is what keeps the paused holder's late write out.

use crate::client::Client;
use crate::cluster::Cluster;
use crate::diagram::Diagram;
use crate::lock::{Fenced, FencedStorage, Grant, LockReply, LockRequest};
use bytes::Bytes;
use quorum::core::{Instant, NodeId};
use quorum_scenarios::Story;
use std::time::Duration;

/// The lock both clients want.
const LOCK: &str = "the-report";
/// How long a grant lasts.
const LEASE_MS: u64 = 1_500;
/// Elections and catching up take well under this on loopback.
const PATIENCE: Duration = Duration::from_secs(10);

/// Runs the story on a fresh cluster and returns it, told and checked, with
/// its sequence diagram.
pub fn run() -> (Story, Diagram) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = runtime.expect("a tokio runtime");
    let mut story =
        Story::new("A lock service with fencing tokens on a 3-node quorum-raft cluster (TCP, fsync'd logs)");
    let mut diagram = Diagram::default();
    let mut teller = Teller { story: &mut story, diagram: &mut diagram, start: std::time::Instant::now() };
    if let Err(e) = runtime.block_on(tell(&mut teller)) {
        teller.story.check(format!("the cluster answered every request ({e})"), false);
    }
    (story, diagram)
}

/// Narrates with the wall-clock time since the start, and keeps the clients' clock.
struct Teller<'a> {
    story: &'a mut Story,
    diagram: &'a mut Diagram,
    start: std::time::Instant,
}

impl Teller<'_> {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn say(&mut self, text: impl Into<String>) {
        let at = Instant::from_nanos(self.start.elapsed().as_nanos() as u64);
        self.story.say(at, text);
    }

    fn check(&mut self, claim: impl Into<String>, holds: bool) -> Result<(), String> {
        let claim = claim.into();
        if self.story.check(claim.clone(), holds) {
            Ok(())
        } else {
            Err(format!("the claim '{claim}' did not hold; the story stops here"))
        }
    }

    /// `who` asks the cluster and gets `reply`: an arrow each way.
    fn exchange(&mut self, who: &str, request: impl std::fmt::Display, reply: &LockReply) {
        self.diagram.ask(who, "cluster", request);
        self.diagram.answer("cluster", who, reply);
    }

    /// `who` writes to the fenced storage with `token`.
    fn write(&mut self, who: &str, token: u64, outcome: &Result<(), Fenced>) {
        self.diagram.ask(who, "storage", format!("write with token {token}"));
        self.diagram.answer("storage", who, accepted(outcome));
    }

    fn acquire(&self, owner: &str) -> LockRequest {
        LockRequest::Acquire { lock: LOCK.into(), owner: owner.into(), now_ms: self.now_ms(), lease_ms: LEASE_MS }
    }
}

fn accepted(write: &Result<(), Fenced>) -> String {
    write.as_ref().map_or_else(|fenced| fenced.to_string(), |()| "accepted".to_string())
}

fn granted(reply: &LockReply) -> Option<&Grant> {
    match reply {
        LockReply::Granted(grant) => Some(grant),
        _ => None,
    }
}

async fn tell(t: &mut Teller<'_>) -> Result<(), String> {
    let mut cluster = Cluster::start(3).await?;
    let (first_leader, first_term) = cluster.leader(PATIENCE).await?;
    t.say(format!("Three quorum-raft nodes serve the lock service over TCP; {first_leader} leads term {first_term}."));
    let (mut alice, mut bob) = (Client::new("alice", 1), Client::new("bob", 2));
    let mut storage = FencedStorage::default();

    let reply = alice.command(&cluster, t.acquire(alice.name)).await?;
    t.say(format!("alice asks for '{LOCK}' with a {LEASE_MS} ms lease: {reply}."));
    t.exchange("alice", format!("acquire {LOCK}, lease {LEASE_MS} ms"), &reply);
    let alice_grant = granted(&reply).cloned().ok_or("alice was not granted the lock")?;
    t.check("alice's grant carries fencing token 1", alice_grant.token == 1)?;
    let reply = bob.command(&cluster, t.acquire(bob.name)).await?;
    t.say(format!("bob asks too: {reply}."));
    t.exchange("bob", format!("acquire {LOCK}"), &reply);
    t.check("while alice's lease runs, bob is refused", matches!(reply, LockReply::Busy(ref g) if g.owner == "alice"))?;
    let written = storage.write(alice_grant.token, "alice's first draft");
    t.say(format!("alice writes to the storage with token {}: {}.", alice_grant.token, accepted(&written)));
    t.write("alice", alice_grant.token, &written);
    t.check("the storage accepts alice's write with token 1", written.is_ok())?;

    t.say("alice pauses (a long GC pause); she still believes she holds the lock.");
    t.diagram.note("alice", "paused, still believes she holds the lock");
    cluster.crash(first_leader).await;
    t.say(format!("The leader, {first_leader}, crashes (its task is dropped, its sockets close)."));
    let (leader, term) = cluster.leader(PATIENCE).await?;
    t.say(format!("The two survivors elect {leader} in term {term}."));
    t.diagram.note("cluster", format!("leader {first_leader} crashes, {leader} elected in term {term}"));
    t.check("a new leader is elected among the survivors", leader != first_leader && term > first_term)?;
    let log_before = last_index(&cluster, leader).await?;
    let reply = bob.query(&cluster, LockRequest::Holder { lock: LOCK.into() }).await?;
    t.say(format!("bob asks who holds the lock (a query: ReadIndex on the new leader): {reply}."));
    t.exchange("bob", "who holds it (ReadIndex query)", &reply);
    let survived = matches!(reply, LockReply::Holder(Some(ref g)) if *g == alice_grant);
    t.check("alice's grant survived the crash: it was committed on a majority", survived)?;
    let log_after = last_index(&cluster, leader).await?;
    t.check("the query was answered without a log entry", log_after == log_before)?;

    let wait_ms = alice_grant.expires_ms.saturating_sub(t.now_ms()) + 50;
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    t.say(format!("alice's lease runs out at {} ms on the clients' clock.", alice_grant.expires_ms));
    t.diagram.note("cluster", format!("alice's lease runs out at {} ms", alice_grant.expires_ms));
    let reply = bob.command(&cluster, t.acquire(bob.name)).await?;
    t.say(format!("bob asks again: {reply}."));
    t.exchange("bob", format!("acquire {LOCK}"), &reply);
    let bob_grant = granted(&reply).cloned().ok_or("bob was not granted the expired lock")?;
    t.check("bob gets the lock with a newer token, 2", bob_grant.token == 2 && bob_grant.owner == "bob")?;
    let written = storage.write(bob_grant.token, "bob's edit");
    t.say(format!("bob writes with token {}: {}.", bob_grant.token, accepted(&written)));
    t.write("bob", bob_grant.token, &written);
    t.check("the storage accepts bob's write with token 2", written.is_ok())?;

    t.say("alice wakes up and, unaware her lease ran out, writes with her old token.");
    let late = storage.write(alice_grant.token, "alice's stale draft");
    t.say(format!("The storage answers: {}.", accepted(&late)));
    t.write("alice", alice_grant.token, &late);
    t.check("the storage rejects alice's late write: token 1 is older than 2", late.is_err())?;
    let tokens: Vec<u64> = storage.writes.iter().map(|(token, _)| *token).collect();
    t.check("the storage holds alice's first write then bob's, nothing after", tokens == [1, 2])?;

    cluster.restart(first_leader).await?;
    t.say(format!("{first_leader} restarts from its write-ahead log and catches up."));
    t.diagram.note("cluster", format!("{first_leader} restarts from its log and catches up"));
    agree_after_catch_up(t, &cluster, first_leader, &bob_grant).await?;

    let reply = alice.command(&cluster, LockRequest::Release { lock: LOCK.into(), token: alice_grant.token }).await?;
    t.say(format!("alice tries to release the lock with token 1: {reply}."));
    t.exchange("alice", format!("release with token {}", alice_grant.token), &reply);
    t.check("a stale token cannot release bob's lock", reply == LockReply::NotHolder)?;
    let reply = bob.command(&cluster, LockRequest::Release { lock: LOCK.into(), token: bob_grant.token }).await?;
    t.say(format!("bob releases it with token 2: {reply}."));
    t.exchange("bob", format!("release with token {}", bob_grant.token), &reply);
    t.check("bob's release succeeds", reply == LockReply::Released)?;
    cluster.shutdown().await;
    Ok(())
}

/// The last index in `node`'s log.
async fn last_index(cluster: &Cluster, node: NodeId) -> Result<u64, String> {
    let status = cluster.node(node).ok_or("the node is not running")?.status().await;
    Ok(status.ok_or("the node stopped")?.status.last_index)
}

/// Waits until every node has applied the leader's commits, then reads each
/// node's own copy of the lock (a local read: no protocol involved).
async fn agree_after_catch_up(
    t: &mut Teller<'_>,
    cluster: &Cluster,
    restarted: NodeId,
    grant: &Grant,
) -> Result<(), String> {
    let (leader, _) = cluster.leader(PATIENCE).await?;
    let target =
        cluster.node(leader).ok_or("no leader")?.status().await.ok_or("the leader stopped")?.status.commit_index;
    cluster.node(restarted).ok_or("the restarted node is not running")?;
    // Every node, not only the restarted one: a follower learns the commit
    // index with the leader's next message, so on a busy machine the other
    // follower can still be a step behind when the restarted one is done.
    let give_up = tokio::time::Instant::now() + PATIENCE;
    for node in cluster.nodes() {
        while node.status().await.map_or(0, |s| s.applied_index) < target {
            if tokio::time::Instant::now() > give_up {
                return Err(format!("{} did not catch up to index {target}", node.id()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let query = LockRequest::Holder { lock: LOCK.into() }.encode();
    let mut views = Vec::new();
    for node in cluster.nodes() {
        let answer = node.read_local(query.clone()).await.unwrap_or_else(|| Bytes::from_static(b"stopped"));
        views.push((node.id(), LockReply::decode(&answer).map_err(|e| e.to_string())?));
    }
    for (id, view) in &views {
        t.say(format!("{id}'s own copy of the lock table (a local read): {view}."));
    }
    let agree = views.iter().all(|(_, v)| *v == LockReply::Holder(Some(grant.clone())));
    t.check(
        format!("all three nodes, the restarted one included, agree: bob holds the lock with token {}", grant.token),
        views.len() == 3 && agree,
    )
}
