//! Multi-Paxos's own invariant beside "one value chosen per slot":
//! CheckQuorum, judged from outside.

use crate::{MultiPaxos, State};
use quorum_core::{Instant, StepInvariant};

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
