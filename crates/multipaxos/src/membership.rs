//! Membership changes: configurations as values in the log ("Paxos Made
//! Simple" §3, with α = 1 at each change only).
//!
//! **When a configuration takes effect.** A configuration chosen in slot `s`
//! decides every slot after `s`; a node puts it in force once it has
//! committed `s` (every slot up to `s` is chosen and known). The leader
//! proposes nothing past `s` until then (`Leader::barrier`), so every slot
//! in flight is decided by one configuration, the one the leader has in
//! force: its tallies count only that configuration's voters, and a
//! learner's or removed node's vote is stored but never counts. Pipelining
//! pauses for one round trip per change, not for every slot.
//!
//! **Phase 1 across changes.** A candidate knows the configuration in force
//! at its commit point, not the ones chosen past it. So it follows the
//! chain: with promises from a majority of its own configuration it works
//! out, as P2c does for any slot, the value each slot past its commit point
//! must keep; where such a value is a configuration, the slots past it are
//! decided by that one, and the candidate also needs promises from a
//! majority of it (it sends Prepares to voters it had not asked). A leader
//! found that way holds the values past each configuration until the
//! configuration commits, as it does with its own changes.
//!
//! **One change at a time, one voter at a time.** A leader starts a change
//! only when none is in flight and Phase 1's values are committed, and a
//! change adds or removes one voter ([`Membership::changed`]), so the
//! majorities of consecutive configurations overlap — which the leader's
//! CheckQuorum and read lease rely on. A configuration records how many
//! changes led to it ([`Membership::epoch`]); one chosen where another than
//! the one it was made from is in force is void, so a change re-proposed by
//! a later leader after a rival change won an earlier slot never jumps two voters.
//!
//! **Who takes part.** A node answers Prepares and Accepts only while its
//! configuration lists it (as voter or learner). A node that joins with
//! empty storage stays silent until it has caught up to the configuration
//! that adds it, so its empty promise never stands in for the votes a
//! removed node (whose disk was wiped) once held; a node that learned it
//! was removed falls silent too. Only voters campaign. When a change that
//! removes nodes commits, the leader tells them its commit point, so they
//! learn that they are out; a leader that removed itself hands leadership to
//! a voter (`TakeOver`) and steps down.
//!
//! **A learner catches up** through the usual catch-up (chosen values, or
//! the snapshot, whose metadata carries the configuration in force at its
//! index). Promoting it is refused while its commit point, as its heartbeat
//! acknowledgements report it, is more than a window of slots behind the leader's.

use crate::{Message, MultiPaxos, State};
use quorum_core::{ChangeError, Instant, Membership, MembershipChange, NodeId, Payload};
use quorum_paxos::Ballot;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{debug, info};

impl MultiPaxos {
    /// The configuration in force here: the newest this node has committed.
    pub(crate) fn config(&self) -> &Membership {
        self.configs.current()
    }

    /// True if this node votes in its configuration (and takes part).
    pub(crate) fn is_voter(&self) -> bool {
        self.takes_part() && self.config().voters.contains(&self.id)
    }

    /// True if this node's acceptor takes part: its configuration lists it,
    /// and if it joined, it has caught up to where the cluster was when a
    /// leader first spoke to it. Replaying the log from an empty disk, a
    /// joiner passes configurations that list an earlier incarnation of its
    /// id, whose votes it does not hold; only past the present are they its own.
    pub(crate) fn takes_part(&self) -> bool {
        self.config().contains(self.id) && !self.joining()
    }

    /// True while this node joined and has not caught up to its floor.
    pub(crate) fn joining(&self) -> bool {
        self.join_floor.is_none_or(|floor| self.learner.committed() < floor)
    }

    /// A learner's (or an outsider's) timer: it never suspects or campaigns,
    /// only waits for the next leader to speak, and asks again for what it
    /// knows it lacks.
    pub(crate) fn stay_out(&mut self) {
        if matches!(self.state, State::Candidate(_)) {
            self.step_down(None);
        }
        self.suspicion = None;
        self.election_deadline = self.random_election_deadline();
        self.resume_catch_up();
    }

    /// True unless this node leads with a configuration change in flight.
    pub fn membership_committed(&self) -> bool {
        match &self.state {
            State::Leader(leader) => !leader.change_in_flight(self.learner.committed()),
            _ => true,
        }
    }

    /// Proposes an operator's change at once, in the next free slot; it takes
    /// effect once that slot commits. Returns the slot.
    pub fn change(&mut self, change: &MembershipChange) -> Result<u64, ChangeError> {
        let committed = self.learner.committed();
        let State::Leader(leader) = &self.state else {
            return Err(ChangeError::NotLeader(self.leader.filter(|&l| l != self.id)));
        };
        if leader.change_in_flight(committed) || committed < leader.takeover_upto {
            return Err(ChangeError::Busy);
        }
        let old = self.config();
        let new = old.changed(change)?;
        // The window is how far a voter may lag. The answer must be to one
        // of the last heartbeats (within a retransmission period), and is
        // judged against the commit point that heartbeat carried if we know
        // it (our probe, below), else against ours now.
        let slack = self.config.window as u64;
        let recent = |sent: Instant| self.now < sent + self.config.heartbeat_interval + self.config.retransmit_after;
        let caught_up = |v: NodeId| {
            leader.commits.get(&v).is_some_and(|&(c, sent)| {
                let then = match leader.probe {
                    Some((to, at, commit)) if to == v && at == sent => commit,
                    _ => committed,
                };
                c + slack >= then && recent(sent)
            })
        };
        let behind = new.voters.iter().copied().filter(|v| !old.voters.contains(v)).find(|&v| !caught_up(v));
        if let Some(v) = behind {
            // Under load Accepts stand in for heartbeats, so a learner may
            // have had none to answer lately: ask it now, so that the
            // operator's retry finds a fresh answer.
            let State::Leader(leader) = &mut self.state else { unreachable!("checked above") };
            let (ballot, sent_at) = (leader.ballot, self.now);
            leader.probe = Some((v, sent_at, committed));
            self.outbox.send(v, Message::Heartbeat { ballot, commit: committed, sent_at });
            return Err(ChangeError::NotCaughtUp(v));
        }
        let voters = old.voters.len();
        let State::Leader(leader) = &mut self.state else { unreachable!("checked above") };
        let slot = leader.take_slot();
        info!(node = self.id.0, slot, %change, "membership change proposed");
        leader.add_proposal(slot, Payload::Membership(new.clone()), voters, self.now);
        self.send_accepts(vec![(slot, Payload::Membership(new))], None);
        Ok(slot)
    }

    /// A configuration committed here (its slot and every one before it).
    pub(crate) fn on_config_committed(&mut self, old: &Membership) {
        info!(node = self.id.0, voters = ?self.config().voters, learners = ?self.config().learners, "configuration in force");
        if matches!(self.state, State::Candidate(_)) && !self.is_voter() {
            self.stay_out();
        }
        let State::Leader(leader) = &self.state else { return };
        let (ballot, commit) = (leader.ballot, self.learner.committed());
        // Those removed hear the commit point, and so that they are out. A
        // leader that removed itself tells every member: it stops leading
        // now, and may be the only node that knows the change chosen.
        let removed_itself = !self.is_voter();
        let told: Vec<NodeId> = old
            .voters
            .iter()
            .chain(&old.learners)
            .copied()
            .filter(|n| *n != self.id && (removed_itself || !self.config().contains(*n)))
            .collect();
        for node in told {
            self.outbox.send(node, Message::Heartbeat { ballot, commit, sent_at: self.now });
        }
        if self.is_voter() {
            // CheckQuorum against the new voters at once (the tick runs now):
            // a change can leave too few of them in reach.
            if let State::Leader(leader) = &mut self.state {
                leader.heartbeat_due = self.now;
            }
            self.pump();
            return;
        }
        // Removed itself: hand over to the voter that answered last, then step down.
        if let Some(successor) = self.successor() {
            info!(node = self.id.0, %successor, "removed from the configuration: handing over");
            self.outbox.send(successor, Message::TakeOver { ballot });
        }
        self.step_down(None);
    }

    /// Transfers leadership to the voter heard from last, if there is one.
    pub(crate) fn hand_off_to_successor(&mut self) -> bool {
        self.successor().is_some_and(|to| self.transfer(to).is_ok())
    }

    /// The other voter this leader heard from most recently.
    fn successor(&self) -> Option<NodeId> {
        let State::Leader(leader) = &self.state else { return None };
        let voters = &self.config().voters;
        leader.heard_at().filter(|(n, _)| voters.contains(n) && *n != self.id).max_by_key(|(_, at)| *at).map(|(n, _)| n)
    }

    /// Leadership transfer: tell `target`, a voter, to take over at once.
    /// This leader leads on until the target's Phase 1 reaches it (its
    /// higher ballot), so nothing waits for an election timeout.
    pub fn transfer(&mut self, target: NodeId) -> Result<(), ChangeError> {
        let State::Leader(leader) = &self.state else {
            return Err(ChangeError::NotLeader(self.leader.filter(|&l| l != self.id)));
        };
        if target == self.id {
            return Ok(());
        }
        if !self.config().voters.contains(&target) {
            return Err(ChangeError::UnknownNode(target));
        }
        let ballot = leader.ballot;
        info!(node = self.id.0, %target, "leadership transfer");
        self.outbox.send(target, Message::TakeOver { ballot });
        Ok(())
    }

    /// Our leader asks us to take over: campaign now, unless we are still
    /// receiving a snapshot. Then our Phase 1 would start below a peer's
    /// snapshot, which no promise can carry: it could not win before the
    /// snapshot is in, and its ballot would depose the leader that asked,
    /// leaving no leader for as long (seed 50762 of `quorum sim -p
    /// multipaxos --churn --nodes 7 --profile tiny-caps --seed-start 50000`).
    /// The leader leads on; the transfer is asked again or dropped.
    pub(crate) fn on_take_over(&mut self, from: NodeId, ballot: Ballot) {
        let from_our_leader = ballot == self.leader_ballot && ballot.owner() == Some(from);
        if self.incoming.is_some() {
            debug!(node = self.id.0, %from, "asked to take over while receiving a snapshot: not yet");
            return;
        }
        if from_our_leader && self.is_voter() && matches!(self.state, State::Follower) {
            self.start_election();
        }
    }

    /// The configurations a candidate needs a majority of: its own, then
    /// each one that the values its complete promises report (P2c: a chosen
    /// value, else the one accepted in the highest ballot) put in force past
    /// its commit point, in slot order.
    pub(crate) fn chain(&self, promised: &BTreeMap<u64, (Ballot, &Payload, bool)>) -> Vec<Membership> {
        let mut chain = vec![self.config().clone()];
        for (_, value, _) in promised.values() {
            if let Payload::Membership(next) = value {
                if next.follows(chain.last().expect("never empty")) {
                    chain.push(next.clone());
                }
            }
        }
        chain
    }

    /// True if `promisers` hold a majority of every configuration in the
    /// chain; otherwise asks the voters of the chain not asked yet.
    pub(crate) fn chain_reached(&mut self, chain: &[Membership], promisers: &BTreeSet<NodeId>) -> bool {
        let State::Candidate(candidate) = &mut self.state else { return false };
        let (ballot, from) = (candidate.ballot, candidate.from);
        let mut reached = true;
        for config in chain {
            if config.is_quorum(promisers) {
                continue;
            }
            reached = false;
            for &voter in &config.voters {
                if candidate.asked.insert(voter) {
                    self.outbox.send_durable(voter, Message::Prepare { ballot, from });
                }
            }
        }
        reached
    }
}
