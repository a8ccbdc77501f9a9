//! Multi-Paxos's own invariants beside "one value chosen per slot":
//! CheckQuorum, judged from outside, and each node's votes agreeing with
//! what it knows chosen.

use crate::{MultiPaxos, State};
use quorum_core::{Instant, StepInvariant};

/// "What a node knows chosen, its acceptor holds": for every slot above its
/// commit points (in memory and on disk) that a node's learner knows chosen, its acceptor's vote
/// there is the chosen value, in a ballot at least the highest one the
/// value is known chosen in. The acceptor's vote is what survives a restart
/// (the learner is rebuilt from it) and what the node reports in a Promise,
/// so a vote that a stale Accept overwrote, or a stamp older than the
/// decision's, is a divergence or a wrong promise waiting for the next crash
/// or election. Judged on the node that stepped.
#[derive(Debug, Default)]
pub struct VotesMatchDecisions;

impl StepInvariant<MultiPaxos> for VotesMatchDecisions {
    const NAME: &'static str = "multipaxos: votes match decisions";

    fn check_stepped(
        &mut self,
        _now: Instant,
        node: &MultiPaxos,
        _nodes: &[Option<&MultiPaxos>],
    ) -> Result<(), String> {
        // At or below either commit point a slot's stored entry holds the
        // chosen value and the vote is gone: after a restart the learner
        // knows those slots again, from storage, before it hands them over.
        let above = node.learner.committed().max(node.persisted_commit) + 1;
        for (slot, (ballot, value)) in node.learner.chosen_above(above) {
            match node.acceptor.accepted(slot) {
                Some(vote) if vote.value == *value && vote.ballot >= ballot => {}
                vote => {
                    return Err(format!(
                        "{} knows {value:?} chosen in slot {slot} in {ballot:?}, but its acceptor holds {vote:?} there",
                        node.id
                    ))
                }
            }
        }
        Ok(())
    }
}

/// "A leader leads only while a majority hears it": once its leadership is
/// older than an election timeout, a leader has heard from a majority
/// (itself included) within the last election timeout plus one heartbeat
/// interval (the most its check can lag: it runs on the heartbeat timer). A
/// leader cut off in a minority that leads on keeps taking commands that
/// cannot commit, and holds its clients until they time out.
///
/// Judged only while the leader's heartbeat is not overdue: a node that was
/// paused has not run its timer yet when it handles what arrived meanwhile.
#[derive(Debug, Default)]
pub struct CheckQuorum;

impl StepInvariant<MultiPaxos> for CheckQuorum {
    const NAME: &'static str = "multipaxos: check quorum";

    fn check_stepped(
        &mut self,
        _now: Instant,
        node: &MultiPaxos,
        _nodes: &[Option<&MultiPaxos>],
    ) -> Result<(), String> {
        let State::Leader(leader) = &node.state else { return Ok(()) };
        let now = node.now;
        if now >= leader.heartbeat_due {
            return Ok(());
        }
        let window = node.config.election_timeout + node.config.heartbeat_interval;
        if leader.has_quorum(now, window, node.configs.current(), node.id) {
            return Ok(());
        }
        Err(format!(
            "{} leads ballot {:?} at {now:?} with no majority heard within {window:?} (an election timeout and a heartbeat)",
            node.id, leader.ballot
        ))
    }
}
