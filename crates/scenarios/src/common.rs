//! Helpers shared by the scenarios: scripted configs, commands, observers,
//! and the narration of elections that several Raft scenarios tell.

use crate::Story;
use quorum_core::{ClientId, Command, Duration, Instant, KvOp, NodeId, Protocol, Role};
use quorum_raft::{Raft, RaftConfig};
use quorum_sim::{Latency, Sim, SimConfig, TraceEvent, What};
use std::cell::RefCell;
use std::rc::Rc;

/// A scripted cluster: no workload, no random faults, 1 ms links, full trace.
pub fn scripted(nodes: usize, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(nodes, seed);
    c.clients.count = 0;
    c.network.latency = Latency::Constant(Duration::from_millis(1));
    c.snapshot_every = None;
    c.trace = true;
    c
}

/// A `SET key value` command from client 1.
pub fn set(seq: u64, key: &str, value: &str) -> Command {
    let op = KvOp::Put { key: key.as_bytes().to_vec().into(), value: value.as_bytes().to_vec().into() };
    Command::new(ClientId(1), seq, op.encode())
}

/// The messages sent during a run, recorded (not dropped) through the drop filter.
pub type Sent<M> = Rc<RefCell<Vec<(NodeId, NodeId, M)>>>;

/// Starts recording every message the cluster sends.
pub fn record_sends<P: Protocol>(sim: &mut Sim<P>) -> Sent<P::Message> {
    let sent: Sent<P::Message> = Rc::new(RefCell::new(Vec::new()));
    let log = sent.clone();
    sim.set_drop_filter(move |from, to, msg: &P::Message| {
        log.borrow_mut().push((from, to, msg.clone()));
        false
    });
    sent
}

/// The current leader, if exactly one live node claims the highest term's leadership.
pub fn leader<P: Protocol>(sim: &Sim<P>) -> Option<NodeId> {
    sim.leader()
}

/// Runs until some node leads; returns it.
pub fn elect<P: Protocol>(sim: &mut Sim<P>, limit: Duration) -> Option<NodeId> {
    sim.run_until(limit, |s| s.leader().is_some());
    sim.leader()
}

/// `nodes` Raft nodes with default settings on the scripted
/// network, run until one leads: the opening of most Raft stories.
pub fn raft_with_leader(nodes: usize, seed: u64) -> (Sim<Raft>, NodeId) {
    let mut sim = Sim::<Raft>::new(scripted(nodes, seed), RaftConfig::default());
    let leader = elect(&mut sim, Duration::from_secs(2)).expect("a leader");
    (sim, leader)
}

/// Runs (for at most `limit`) until every member has applied `index`.
pub fn all_applied<P: Protocol>(sim: &mut Sim<P>, index: u64, limit: Duration) -> bool {
    sim.run_until(limit, |s| s.members().iter().all(|m| s.applied_index(*m) >= index))
}

/// Role changes recorded in the trace: (time, node, role, term).
pub fn role_changes(events: &[TraceEvent]) -> Vec<(Instant, u64, String, u64)> {
    events
        .iter()
        .filter_map(|e| match &e.what {
            What::Role { node, role, term, .. } => Some((Instant::from_nanos(e.at_ns), *node, role.clone(), *term)),
            _ => None,
        })
        .collect()
}

/// The terms in which some node became candidate, and which nodes did.
pub fn candidates_by_term(events: &[TraceEvent]) -> std::collections::BTreeMap<u64, Vec<u64>> {
    let mut m: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for (_, node, role, term) in role_changes(events) {
        if role == Role::Candidate.to_string() {
            let v = m.entry(term).or_default();
            if !v.contains(&node) {
                v.push(node);
            }
        }
    }
    m
}

/// Who became leader of each term.
pub fn leaders_by_term(events: &[TraceEvent]) -> std::collections::BTreeMap<u64, u64> {
    role_changes(events)
        .into_iter()
        .filter(|(_, _, role, _)| role == &Role::Leader.to_string())
        .map(|(_, node, _, term)| (term, node))
        .collect()
}

/// True for a trace event worth drawing: not a heartbeat or its answer.
pub fn not_heartbeat(e: &TraceEvent) -> bool {
    match &e.what {
        What::Deliver { msg, .. } | What::Drop { msg, .. } => {
            !msg.contains("entries: []") && !msg.starts_with("AppendReply")
        }
        _ => true,
    }
}

/// Names a list of node ids: "n1, n2 and n3".
pub fn names(ids: &[u64]) -> String {
    let parts: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
    match parts.len() {
        0 => "nobody".into(),
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

/// Is this trace event a message of one of the given kinds (by the start of
/// its printed form)? Events that are not messages count as of every kind.
pub fn is_kind(e: &TraceEvent, kinds: &[&str]) -> bool {
    match &e.what {
        What::Deliver { msg, .. } | What::Drop { msg, .. } => kinds.iter().any(|k| msg.starts_with(k)),
        _ => true,
    }
}

/// Raft with election timeouts drawn from `min_ms..max_ms` and no pre-vote,
/// so that a narrow window makes candidates collide.
pub fn election_timeouts(min_ms: u64, max_ms: u64) -> RaftConfig {
    RaftConfig::default().with(|c| {
        c.election_timeout_min = Duration::from_millis(min_ms);
        c.election_timeout_max = Duration::from_millis(max_ms);
        c.pre_vote = false;
    })
}

/// Tells, term by term, who stood and who won; returns the number of split
/// terms and of won ones.
pub fn narrate_terms(story: &mut Story, sim: &Sim<Raft>) -> (usize, usize) {
    let events = sim.trace().events();
    let candidates = candidates_by_term(events);
    let leaders = leaders_by_term(events);
    let (mut split, mut won) = (0, 0);
    for (term, who) in &candidates {
        let at = events
            .iter()
            .find(|e| matches!(&e.what, What::Role { term: t, role, .. } if t == term && role == "candidate"))
            .map_or(sim.now(), |e| Instant::from_nanos(e.at_ns));
        match leaders.get(term) {
            Some(l) => {
                won += 1;
                story.say(at, format!("term {term}: {} stood; n{l} won a majority of votes and leads", names(who)));
            }
            None => {
                split += 1;
                story.say(at, format!("term {term}: {} stood at once; the votes split and nobody won", names(who)));
            }
        }
    }
    (split, won)
}
