//! Zab: election, discovery, synchronization and broadcast; then the leader
//! crashes and the ensemble recovers in a new epoch.
//!
//! `cargo run --example zab_recovery` tells it; add `--mermaid`, `--json` or `--text`
//! after `--` for its trace. `quorum trace` runs it too.

use quorum_core::{Duration, Instant, NodeId, Payload};
use quorum_scenarios::common::{all_applied, elect, names, record_sends, scripted, set};
use quorum_scenarios::Story;
use quorum_sim::{Sim, TraceEvent, What};
use quorum_zab::{Message, Zab, ZabConfig};

fn main() {
    quorum_scenarios::example_main(recovery);
}

/// True for a trace event worth drawing: no pings, no election votes (the
/// role notes show who settled on whom).
fn worth_drawing(e: &TraceEvent) -> bool {
    match &e.what {
        What::Deliver { msg, .. } | What::Drop { msg, .. } => {
            !msg.starts_with("Ping") && !msg.starts_with("Notification")
        }
        _ => true,
    }
}

/// The first delivery whose message starts with `kind`, at or after `from`: (time, from, to).
fn first(sim: &Sim<Zab>, kind: &str, from: Instant) -> Option<(Instant, u64, u64)> {
    sim.trace().events().iter().filter(|e| e.at_ns >= from.as_nanos()).find_map(|e| match &e.what {
        What::Deliver { from, to, msg, .. } if msg.starts_with(kind) => {
            Some((Instant::from_nanos(e.at_ns), *from, *to))
        }
        _ => None,
    })
}

/// When some node first took `role` at or after `from`.
fn role_at(sim: &Sim<Zab>, role: &str, from: Instant) -> Option<Instant> {
    sim.trace()
        .events()
        .iter()
        .filter(|e| e.at_ns >= from.as_nanos())
        .find(|e| matches!(&e.what, What::Role { role: r, .. } if r == role))
        .map(|e| Instant::from_nanos(e.at_ns))
}

/// Kinds of sync message (Diff, Trunc, Snap) delivered to `to` at or after `from`.
fn syncs_to(sim: &Sim<Zab>, to: NodeId, from: Instant) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for e in sim.trace().events().iter().filter(|e| e.at_ns >= from.as_nanos()) {
        if let What::Deliver { to: t, msg, .. } = &e.what {
            for kind in ["Diff", "Trunc", "Snap"] {
                if *t == to.0 && msg.starts_with(&format!("{kind} {{")) {
                    kinds.push(kind);
                }
            }
        }
    }
    kinds
}

/// Tells the four phases of one leader's start, as the trace shows them from `since`.
fn narrate_phases(story: &mut Story, sim: &Sim<Zab>, leader: NodeId, since: Instant) -> bool {
    let epoch = sim.node(leader).map_or(0, |n| n.current_epoch());
    let steps = [
        ("FollowerInfo", "discovery: the followers send FOLLOWERINFO with their accepted epoch"),
        ("NewEpoch", "the leader proposes NEWEPOCH, one above every accepted epoch it heard of"),
        ("AckEpoch", "followers persist the new accepted epoch and answer ACKEPOCH with their history"),
        ("Diff", "synchronization: the leader sends each follower what it lacks (DIFF)"),
        ("NewLeader", "then NEWLEADER; a follower persists the history and the current epoch in one write"),
        ("AckNewLeader", "and acknowledges; a quorum of acks establishes the epoch"),
        ("UpToDate", "UPTODATE: the followers may serve; broadcast begins"),
    ];
    let mut last = since;
    let mut in_order = true;
    for (kind, text) in steps {
        match first(sim, kind, since) {
            Some((at, _, _)) => {
                in_order &= at >= last;
                last = at;
                story.say(at, format!("{text} (epoch {epoch})"));
            }
            None => in_order = false,
        }
    }
    in_order
}

/// The first epoch: election, discovery, sync, then two writes broadcast.
/// Returns the leader, its epoch, and when the followers settled on it.
fn start_first_epoch(story: &mut Story, sim: &mut Sim<Zab>) -> (NodeId, u64, Instant) {
    let old = elect(sim, Duration::from_secs(2)).expect("a leader");
    sim.run_for(Duration::from_millis(2));
    let (t0, _, _) = first(sim, "Notification", Instant::ZERO).unwrap_or((sim.now(), 0, 0));
    story.say(
        t0,
        "fast leader election: every node starts LOOKING and sends a vote for itself, (epoch, last zxid, id); a node that sees a better vote adopts it and tells everyone",
    );
    let settled = role_at(sim, "follower", Instant::ZERO).unwrap_or(sim.now());
    let first_epoch = sim.node(old).map_or(0, |n| n.current_epoch());
    story.say(
        settled,
        format!("every history is empty, so the highest id wins: once a quorum votes for {old} and no better vote comes within finalize_wait, the others follow {old}"),
    );
    story.check("with equal histories, fast leader election picks the highest id", old == NodeId(3));
    let phases = narrate_phases(story, sim, old, Instant::ZERO);
    story.check(
        format!("discovery, then synchronization, then broadcast, in that order; {old} leads epoch {first_epoch}"),
        phases && first_epoch == 1,
    );

    let bcast = sim.now();
    for seq in 1..=2u64 {
        sim.propose(old, set(seq, "k", &seq.to_string())).expect("the leader orders writes");
    }
    all_applied(sim, 2, Duration::from_secs(1));
    if let (Some((p, _, _)), Some((a, _, _)), Some((c, _, _))) =
        (first(sim, "Proposal", bcast), first(sim, "Ack {", bcast), first(sim, "Commit", bcast))
    {
        story.say(p, "broadcast: the leader sends PROPOSAL k=1, k=2 with zxids in its epoch over FIFO links");
        story.say(a, "followers log them durably and ACK");
        story.say(c, "with a quorum of acks (its own and one more) the leader sends COMMIT; everyone applies k=1, k=2");
    }
    story.check(
        "the three nodes applied k=1 and k=2 at indexes 1 and 2",
        sim.members().iter().all(|m| sim.applied_index(*m) == 2 && sim.committed(*m) == sim.committed(old)),
    );

    (old, first_epoch, settled)
}

/// The leader logs a proposal that never leaves it and crashes; the others
/// elect a new leader in a new epoch and commit a write. Returns the new
/// leader, its epoch, and the orphan's index.
fn crash_and_new_epoch(story: &mut Story, sim: &mut Sim<Zab>, old: NodeId) -> (NodeId, u64, u64) {
    // The leader logs a proposal that never leaves it, then crashes.
    sim.set_drop_filter(move |from, _, m| from == old && matches!(m, Message::Proposal { .. }));
    sim.propose(old, set(3, "k", "orphan")).expect("the leader orders writes");
    sim.run_for(Duration::from_millis(5));
    let orphan = sim.node(old).map_or(0, |n| n.history().last_index());
    story.say(
        sim.now(),
        format!("{old} logs k=orphan at index {orphan}, but its PROPOSALs are lost; then {old} crashes"),
    );
    sim.crash(old);
    sim.clear_drop_filter();
    let crash_at = sim.now();
    let others: Vec<NodeId> = sim.members().iter().copied().filter(|m| *m != old).collect();
    sim.run_until(Duration::from_secs(3), |s| {
        s.leader().is_some_and(|l| l != old && s.node(l).is_some_and(|n| n.established_epoch().is_some()))
    });
    let new = sim.leader().expect("a new leader");
    let new_epoch = sim.node(new).map_or(0, |n| n.current_epoch());
    let noticed = sim
        .trace()
        .events()
        .iter()
        .any(|e| e.at_ns >= crash_at.as_nanos() && matches!(e.what, What::LinkDown { peer, .. } if peer == old.0));
    story.say(
        role_at(sim, "candidate", crash_at).unwrap_or(sim.now()),
        format!(
            "{} lose their FIFO connections to {old} and go back to LOOKING",
            names(&others.iter().map(|n| n.0).collect::<Vec<_>>())
        ),
    );
    story.say(
        sim.now(),
        format!("they elect {new}, which runs discovery and sync again and establishes epoch {new_epoch}"),
    );
    story.check("the followers noticed the crash by their broken connections", noticed);
    sim.propose(new, set(4, "k", "fresh")).expect("the new leader orders writes");
    sim.run_until(Duration::from_secs(1), |s| others.iter().all(|m| s.applied_index(*m) >= 3));
    story.say(sim.now(), format!("{new} commits k=fresh at index 3 with the two of three that are up"));

    (new, new_epoch, orphan)
}

/// The old leader restarts and is synchronized by TRUNC.
fn rejoin(story: &mut Story, sim: &mut Sim<Zab>, old: NodeId, new: NodeId, orphan: u64) {
    let restart_at = sim.now();
    sim.restart(old);
    let sent = record_sends(sim);
    sim.run_until(Duration::from_secs(3), |s| s.applied_index(old) >= 3);
    let kinds = syncs_to(sim, old, restart_at);
    let trunc = sent.borrow().iter().find_map(|(_, to, m)| match m {
        Message::Trunc { index, zxid, entries, .. } if *to == old => Some((*index, format!("{zxid:?}"), entries.len())),
        _ => None,
    });
    story.say(
        restart_at,
        format!("{old} restarts with k=orphan on disk at index {orphan}, finds {new} leading and follows it; its ACKEPOCH reports a history that ends in a zxid {new} never had"),
    );
    if let Some((index, zxid, appended)) = &trunc {
        story.say(
            sim.now(),
            format!("{new} sends TRUNC: keep up to index {index} (zxid {zxid}, which both hold), drop the rest, append {appended} entry (k=fresh); NEWLEADER, UPTODATE, and {old} applies all three"),
        );
    }
    story.check(
        format!("TRUNC cut {old}'s history back to index 2, below its orphan ({kinds:?})"),
        trunc.as_ref().is_some_and(|(index, _, _)| *index == 2) && kinds.contains(&"Trunc"),
    );
    let orphan_cmd = Payload::Command(set(3, "k", "orphan"));
    story.check(
        "k=orphan, never acknowledged by a quorum, is gone from every history and was never applied",
        sim.members().iter().all(|m| {
            sim.node(*m).is_some_and(|n| n.history().iter().all(|e| e.payload != orphan_cmd))
                && sim.committed(*m).iter().all(|e| e.payload != orphan_cmd)
        }),
    );
    story.check(
        "all three nodes hold the same state (k=fresh)",
        sim.members().iter().all(|m| sim.kv(*m) == sim.kv(new) && sim.applied_index(*m) == 3),
    );
}

/// Zab from start to recovery: the first epoch's four phases, broadcast, a
/// leader crash with a proposal nobody else logged, a new epoch, and TRUNC.
pub fn recovery() -> Story {
    let mut story = Story::new("Zab: election, discovery, sync, broadcast; a leader crash and a new epoch");
    let mut sim = Sim::<Zab>::new(scripted(3, 4), ZabConfig::default());
    let (old, first_epoch, settled) = start_first_epoch(&mut story, &mut sim);
    let (new, new_epoch, orphan) = crash_and_new_epoch(&mut story, &mut sim, old);
    story.check(format!("the new leader runs a higher epoch ({first_epoch} -> {new_epoch})"), new_epoch > first_epoch);
    rejoin(&mut story, &mut sim, old, new, orphan);
    story.check("no safety violation", sim.violations().is_empty());
    story.set_events(
        sim.trace().events().iter().filter(|e| e.at_ns >= settled.as_nanos() && worth_drawing(e)).cloned(),
        3,
    );
    story
}
