//! Membership: the configurations in the log, and single-server changes
//! (Raft thesis §4.1 and §4.2).
//!
//! A configuration takes effect as soon as its entry is in a node's log,
//! committed or not; a truncated entry takes its configuration with it.
//! Changes add or remove one voter at a time, so the old and new majorities
//! always overlap, and a leader starts a change only after the previous one
//! committed and after it committed an entry of its own term (the fix to the
//! single-server algorithm described on raft-dev in 2015).

use crate::message::Message;
use crate::node::State;
use crate::Out;
use crate::Raft;
use quorum_core::{check_single_change, ChangeError, Instant, Membership, MembershipChange, NodeId, Payload};

/// True if `id` votes in `m`.
pub(crate) fn is_voter(m: &Membership, id: NodeId) -> bool {
    m.voters.contains(&id)
}

impl Raft {
    /// Proposes a new configuration: add or remove one voter, or change
    /// learners (§4.1: single-server changes). A node promoted to voter
    /// must keep pace with the leader: its match index within one pipeline
    /// of appends of the leader's commit index. Returns the index of the
    /// configuration entry.
    pub fn propose_membership(&mut self, now: Instant, new: Membership, out: &mut Out) -> Result<u64, ChangeError> {
        if self.state != State::Leader {
            return Err(ChangeError::NotLeader(self.leader));
        }
        // One change at a time, and only after this leader committed its no-op.
        if self.configs.current_index() > self.commit || self.commit < self.lead.term_start {
            return Err(ChangeError::Busy);
        }
        let old = self.configs.current().clone();
        check_single_change(&old, &new)?;
        // A new voter must keep pace: it has acknowledged appends, answered
        // since the last CheckQuorum, and trails the commit point by no more
        // than one full pipeline (what may be in flight to it). Under load a
        // strict `match_index >= commit` is rarely true at the instant the
        // operator asks, and never for a learner on a slower link.
        let pipeline = (self.config.max_inflight * self.config.max_entries_per_message) as u64;
        let keeps_pace = |p: &crate::progress::Progress| {
            p.recent_active && p.match_index > 0 && p.match_index + pipeline >= self.commit
        };
        for v in new.voters.iter().filter(|v| !old.voters.contains(v) && **v != self.id) {
            let caught_up = self.lead.progress.get(v).is_some_and(keeps_pace);
            if !caught_up {
                return Err(ChangeError::NotCaughtUp(*v));
            }
        }
        let promoted: Vec<NodeId> =
            new.voters.iter().copied().filter(|v| !old.voters.contains(v) && *v != self.id).collect();
        let index = self.append_new(Payload::Membership(new));
        self.sync_progress(now);
        tracing::info!(node = self.id.0, term = self.term, index, "membership change proposed");
        // The round `broadcast_round` starts next is the first a new voter's answers count from.
        let round = self.lead.round + 1;
        for v in &promoted {
            if let Some(pr) = self.lead.progress.get_mut(v) {
                pr.count_from_round(round, now);
            }
        }
        self.broadcast_round(now, out);
        self.finish(now, out);
        Ok(index)
    }

    /// Carries out an operator's change: the configuration it makes of the
    /// current one ([`Membership::changed`] says what is refused), proposed
    /// as a single-server change.
    pub fn change(&mut self, now: Instant, change: &MembershipChange, out: &mut Out) -> Result<u64, ChangeError> {
        let new = self.configs.current().changed(change)?;
        self.propose_membership(now, new, out)
    }

    /// Adds `node` as a learner: it receives the log but does not vote.
    pub fn add_learner(&mut self, now: Instant, node: NodeId, out: &mut Out) -> Result<u64, ChangeError> {
        self.change(now, &MembershipChange::AddLearner { node, address: None }, out)
    }

    /// Adds `node` as a learner that listens for peers at `address`; the
    /// address goes into the configuration entry, so every member learns it
    /// from the log (see [`Membership::addresses`]).
    pub fn add_learner_at(
        &mut self,
        now: Instant,
        node: NodeId,
        address: &str,
        out: &mut Out,
    ) -> Result<u64, ChangeError> {
        self.change(now, &MembershipChange::AddLearner { node, address: Some(address.to_string()) }, out)
    }

    /// Promotes a caught-up learner (or adds a caught-up node) to voter.
    pub fn promote(&mut self, now: Instant, node: NodeId, out: &mut Out) -> Result<u64, ChangeError> {
        self.change(now, &MembershipChange::Promote(node), out)
    }

    /// Removes a voter or learner; the leader itself may be removed, and
    /// steps down once the change commits.
    pub fn remove_node(&mut self, now: Instant, node: NodeId, out: &mut Out) -> Result<u64, ChangeError> {
        self.change(now, &MembershipChange::Remove(node), out)
    }

    /// The configuration in force (the newest in this node's log).
    pub fn membership(&self) -> &Membership {
        self.configs.current()
    }

    /// True if this node knows the configuration in force to be committed:
    /// no other can take over from it.
    pub fn membership_committed(&self) -> bool {
        self.configs.current_index() <= self.commit
    }

    /// A leader whose own removal committed steps down (thesis §4.2.2),
    /// first handing leadership to the most up-to-date voter.
    ///
    /// The hand-over is a transfer: no more proposals, the successor brought
    /// up to our last entry, then TimeoutNow, and only then the step down.
    /// Told to campaign while it lacks entries that another voter holds, the
    /// successor would lose, and the cluster would wait out an election
    /// timeout with no leader (under load, 7 of 40 simulated removals did:
    /// `a_leader_that_removes_itself_under_load_hands_over_without_an_election_timeout`).
    /// If the transfer gives up (an election timeout), it steps down anyway.
    pub(crate) fn maybe_step_down_removed(&mut self, now: Instant, out: &mut Out) {
        if self.state != State::Leader || is_voter(self.configs.current(), self.id) {
            return;
        }
        if self.commit < self.configs.current_index() {
            return; // §4.2.2: it manages the cluster until the change commits
        }
        if !self.lead.lease_revoked {
            if self.lead.transfer.is_some() {
                return; // TimeoutNow goes once the successor has our last entry
            }
            if !self.lead.handing_over {
                self.lead.handing_over = true;
                if let Some(to) = self.best_successor() {
                    self.start_transfer(now, to, out);
                    if !self.lead.lease_revoked {
                        return;
                    }
                }
            }
        }
        tracing::info!(node = self.id.0, term = self.term, "removed from the configuration: stepping down");
        self.become_follower(now, self.term, None);
    }

    /// The leader's pick to lead after it: the other voter whose log matches
    /// its own furthest (`None` if not leader or alone).
    pub(crate) fn best_successor(&self) -> Option<NodeId> {
        if self.state != State::Leader {
            return None;
        }
        self.lead
            .progress
            .iter()
            .filter(|(id, _)| **id != self.id && self.configs.current().voters.contains(id))
            .max_by_key(|(_, p)| p.match_index)
            .map(|(id, _)| *id)
    }

    /// Leadership transfer (thesis §3.10): stop taking proposals, bring
    /// `target` up to date, then tell it to campaign at once (TimeoutNow).
    /// Gives up after an election timeout.
    pub fn transfer_leadership(&mut self, now: Instant, target: NodeId, out: &mut Out) -> Result<(), ChangeError> {
        if self.state != State::Leader {
            return Err(ChangeError::NotLeader(self.leader));
        }
        if target == self.id {
            return Ok(());
        }
        if !is_voter(self.configs.current(), target) {
            return Err(ChangeError::UnknownNode(target));
        }
        tracing::info!(node = self.id.0, term = self.term, %target, "leadership transfer");
        self.start_transfer(now, target, out);
        self.finish(now, out);
        Ok(())
    }

    /// Takes no more proposals, and sends `target` TimeoutNow once it has our
    /// last entry (at once if it has it now); gives up after an election timeout.
    fn start_transfer(&mut self, now: Instant, target: NodeId, out: &mut Out) {
        self.lead.transfer = Some((target, now + self.config.election_timeout_max));
        self.maybe_send_timeout_now(target, out);
        self.replicate_to(now, target, out);
    }

    /// Sends TimeoutNow once the transfer target has the whole log.
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId, out: &mut Out) {
        let Some((target, _)) = self.lead.transfer else { return };
        let caught_up = self.lead.progress.get(&peer).is_some_and(|p| p.match_index == self.log.last_index());
        if target == peer && caught_up {
            self.lead.lease_revoked = true;
            out.send(target, Message::TimeoutNow { term: self.term });
        }
    }

    /// TimeoutNow from our leader: campaign now, past any lease.
    pub(crate) fn on_timeout_now(&mut self, now: Instant, out: &mut Out) {
        if self.state == State::Leader || !self.can_campaign() {
            return;
        }
        self.become_candidate(now, true, out);
    }
}
