//! Membership: the configurations in the history, and single-server changes.
//!
//! ZooKeeper 3.5 reconfigures with a transaction that the old and the new
//! quorum both acknowledge (Shraer, Reed, Malkhi, Junqueira, USENIX ATC
//! 2012). We take the simpler rule quorum's Raft uses, which needs no joint
//! quorum: a change adds or removes *one* voter, so every majority of the old
//! voters meets every majority of the new ones.
//!
//! - A configuration is a transaction (`Payload::Membership`) and takes
//!   effect at a node as soon as it is in that node's history, committed or
//!   not: appended as a PROPOSAL, or part of the DIFF, TRUNC or SNAP applied
//!   at NEWLEADER. A truncated entry takes its configuration with it; a
//!   snapshot carries the configuration in force at its index in its metadata.
//! - A configuration, and what follows it, commits only once a majority of
//!   the voters before it holds it too, as in ZooKeeper: the old and the
//!   new quorum both.
//! - Every quorum a node counts is a majority of the *voters* of its own
//!   configuration: FLE votes, FOLLOWERINFO and ACKEPOCH, ACK of NEWLEADER,
//!   ACKs of proposals, ping answers for `sync`. Learners go through
//!   discovery and synchronisation like followers and receive the stream, but
//!   their votes and acks count for nothing, and no node follows or becomes a
//!   leader that does not vote in its own configuration.
//! - Only an established leader (its initial history committed: Raft's "an
//!   entry of its own term first") proposes a change, and only when the one
//!   before is committed.
//! - A leader removed from the voters leads until the change commits, then
//!   tells its followers to look for a new leader at once (RESET) rather than
//!   letting them wait out `syncLimit`, and stops.
//! - Leadership transfer (ZooKeeper has none): the leader stops proposing,
//!   waits until the target has acknowledged its whole history, then tells
//!   every follower to look for a leader voting for the target (TRANSFER),
//!   and does so itself. With the longest history and every vote, the target
//!   wins the election after one `finalize_wait`. If the target does not
//!   catch up within `syncLimit`, the leader gives up and carries on.
//!
//! Why the histories stay safe: a committed transaction is held by a majority
//! of the voters in force at the leader that committed it; a new leader's
//! ACKEPOCH quorum is a majority of the voters in its own history, which
//! differs from the committing one by at most one voter once the previous
//! change committed, so the two quorums meet, and the "leader not behind its
//! quorum" rule makes the leader hold what the meeting node holds. A learner
//! ahead of a new leader is simply truncated: nothing it holds alone can be
//! committed.

use crate::message::Message;
use crate::state::{FollowerPhase, LeaderPhase, Stage, State};
use crate::{Out, Zab};
use quorum_core::{
    check_single_change, ChangeError, Configs, Entry, InitError, Instant, Log, Membership, MembershipChange, NodeId,
    Payload, Snapshot, SnapshotMeta,
};

/// The configuration a snapshot says was in force at its index; `None` for a
/// snapshot without metadata (written before Zab kept it there).
pub(crate) fn of_snapshot(snapshot: &Snapshot) -> Result<Option<Membership>, String> {
    if snapshot.meta.is_empty() {
        return Ok(None);
    }
    SnapshotMeta::decode(&snapshot.meta).map(|m| Some(m.membership))
}

/// The configurations of a node starting from `snapshot` and `log`: the
/// snapshot's (or, with none, the founding `members`, all voters), then
/// every one in the history.
pub(crate) fn recover(members: &[NodeId], snapshot: Option<&Snapshot>, log: &Log) -> Result<Configs, InitError> {
    let founding = Membership { voters: members.to_vec(), ..Membership::default() };
    let base = match snapshot.map(of_snapshot).transpose() {
        Ok(m) => m.flatten().unwrap_or(founding),
        Err(why) => return Err(InitError::corrupt("snapshot metadata", why)),
    };
    let mut configs = Configs::new(log.offset(), base);
    for e in log.iter() {
        if let Payload::Membership(m) = &e.payload {
            if !m.is_sane() {
                return Err(InitError::corrupt("history", format!("entry {} holds {m:?}", e.index)));
            }
            configs.push(e.index, m.clone());
        }
    }
    Ok(configs)
}

/// True if the voters of `conf` among `peers`, with `me` if `with_me` and it
/// votes, make a majority of `conf`.
pub(crate) fn quorum_of(conf: &Membership, me: NodeId, peers: impl Iterator<Item = NodeId>, with_me: bool) -> bool {
    let peers = peers.filter(|p| *p != me && conf.voters.contains(p)).count();
    let own = with_me && conf.voters.contains(&me);
    conf.majority().is_reached(peers + usize::from(own))
}

impl Zab {
    /// True if this node votes in the configuration in force.
    pub(crate) fn is_voter(&self) -> bool {
        self.configs.current().voters.contains(&self.id)
    }

    /// True if `node` may follow this leader: a member of the configuration
    /// in force, or of the one before while the newest is not known
    /// committed. A voter whose removal is pending must be let in, since the
    /// removal commits only with a majority of the voters before it too
    /// (seed 3 of `quorum sim -p zab --nodes 2 --churn`: the leader turned
    /// away the one node whose ack it waited for).
    pub(crate) fn may_follow_us(&self, node: NodeId) -> bool {
        self.configs.current().contains(node) || self.pending_previous().is_some_and(|c| c.contains(node))
    }

    /// True if this node may stand for election and lead: it votes in the
    /// configuration in force, or in the one before while this node does
    /// not know the newest committed. A leader that proposed its own removal
    /// and then lost its quorum may hold the newest history, and a voter of
    /// the old configuration that lacks it needs its ACKEPOCH and gives up
    /// at it (it is ahead): only the old leader can bring that history to
    /// the others (seed 86 of `quorum sim -p zab --nodes 2 --churn`). As a
    /// leader it counts the quorums of its newest configuration, which may
    /// leave it out, and stops leading once the removal commits.
    pub(crate) fn may_lead(&self) -> bool {
        self.is_voter() || self.pending_previous().is_some_and(|c| c.voters.contains(&self.id))
    }

    /// The configuration before the one in force, while this node does not
    /// know the newest committed: until then its voters still decide too.
    fn pending_previous(&self) -> Option<&Membership> {
        self.configs.pending_previous(self.commit_index)
    }

    /// True if the voters among `peers` (and this node, if `with_me` and it
    /// votes) make a majority of the configuration in force.
    pub(crate) fn is_quorum(&self, peers: impl Iterator<Item = NodeId>, with_me: bool) -> bool {
        quorum_of(self.configs.current(), self.id, peers, with_me)
    }

    /// Entries were appended to the history: the configurations among them
    /// take effect.
    pub(crate) fn note_appended(&mut self, entries: &[Entry]) {
        for e in entries {
            if let Payload::Membership(m) = &e.payload {
                self.configs.push(e.index, m.clone());
            }
        }
    }

    /// The configuration in force at this node (the newest in its history).
    pub fn membership(&self) -> &Membership {
        self.configs.current()
    }

    /// The highest index both quorums hold, given each node's acknowledged
    /// index: a majority of the voters in force, and, while the newest
    /// configuration is not committed, a majority of the voters before it
    /// too. ZooKeeper's rule (Shraer et al. 2012): a new configuration is
    /// committed by the old and the new quorum both. With one voter changed
    /// at a time either majority alone would meet every other, so this is
    /// belt and braces, at the price of one more ack while a change is open.
    pub(crate) fn committed_by_quorums(&self, acked: impl Fn(NodeId) -> u64) -> u64 {
        let agreed = self.configs.current().quorum_value(&acked);
        match self.pending_previous() {
            Some(before) => agreed.min(before.quorum_value(&acked)),
            None => agreed,
        }
    }

    /// True if this node knows the configuration in force to be committed.
    pub fn membership_committed(&self) -> bool {
        self.configs.current_index() <= self.commit_index
    }

    /// Carries out an operator's change as a single-server change proposed
    /// by this leader. Returns the index of the configuration transaction.
    pub fn change(&mut self, _now: Instant, change: &MembershipChange, out: &mut Out) -> Result<u64, ChangeError> {
        let leader = match &self.state {
            State::Following(f) => Some(f.leader),
            _ => None,
        };
        let State::Leading(l) = &self.state else { return Err(ChangeError::NotLeader(leader)) };
        if l.phase != LeaderPhase::Broadcast {
            return Err(ChangeError::NotLeader(None));
        }
        // One change at a time, and only once this leader's epoch is established.
        if !self.membership_committed() || self.commit_index < l.established_index || l.transfer.is_some() {
            return Err(ChangeError::Busy);
        }
        let old = self.configs.current().clone();
        let new = old.changed(change)?;
        check_single_change(&old, &new)?;
        // A new voter must keep pace: synchronised in this epoch and behind
        // the commit point by no more than what may be in flight to it.
        let pipeline = self.config.max_inflight_entries;
        for v in new.voters.iter().filter(|v| !old.voters.contains(v) && **v != self.id) {
            let keeps_pace = l
                .learners
                .get(v)
                .is_some_and(|x| x.stage == Stage::Active && x.acked > 0 && x.acked + pipeline >= self.commit_index);
            if !keeps_pace {
                return Err(ChangeError::NotCaughtUp(*v));
            }
        }
        let promoted: Vec<NodeId> = new.voters.iter().filter(|v| !old.voters.contains(v)).copied().collect();
        let index = self.propose_payload(Payload::Membership(new), out);
        if let State::Leading(l) = &mut self.state {
            for v in promoted {
                if let Some(x) = l.learners.get_mut(&v) {
                    x.counts_from = index;
                }
            }
        }
        tracing::info!(node = self.id.0, index, %change, "membership change proposed");
        Ok(index)
    }

    /// Leadership transfer: no more proposals; once `target` holds our whole
    /// history, TRANSFER to every follower and LOOKING for `target` here.
    /// Gives up after `syncLimit`.
    pub fn transfer_leadership(&mut self, now: Instant, target: NodeId, out: &mut Out) -> Result<(), ChangeError> {
        let leader = match &self.state {
            State::Following(f) => Some(f.leader),
            _ => None,
        };
        let State::Leading(l) = &mut self.state else { return Err(ChangeError::NotLeader(leader)) };
        if l.phase != LeaderPhase::Broadcast {
            return Err(ChangeError::NotLeader(None));
        }
        if target == self.id {
            return Ok(());
        }
        if !self.configs.current().voters.contains(&target) {
            return Err(ChangeError::UnknownNode(target));
        }
        tracing::info!(node = self.id.0, %target, "leadership transfer");
        l.transfer = Some((target, now + self.config.sync_limit()));
        self.maybe_hand_over(now, out);
        Ok(())
    }

    /// Hands over once the transfer's target acknowledged our whole history;
    /// gives the transfer up at its deadline.
    pub(crate) fn maybe_hand_over(&mut self, now: Instant, out: &mut Out) {
        let last = self.log.last_index();
        let State::Leading(l) = &mut self.state else { return };
        let Some((to, deadline)) = l.transfer else { return };
        let epoch = l.epoch();
        if now >= deadline {
            tracing::info!(node = self.id.0, %to, "leadership transfer gave up: the target did not catch up");
            l.transfer = None;
            return self.flush_queue(now, out);
        }
        if !l.learners.get(&to).is_some_and(|x| x.stage == Stage::Active && x.acked >= last) {
            return;
        }
        for (peer, _) in l.learners.iter().filter(|(_, x)| x.in_stream()) {
            out.send(*peer, Message::Transfer { epoch, to });
        }
        tracing::info!(node = self.id.0, epoch, %to, "handing leadership over");
        self.look_for(now, Some(to), out);
    }

    /// TRANSFER from our leader: look for a leader now, voting for `to`.
    pub(crate) fn on_transfer(&mut self, now: Instant, from: NodeId, epoch: u64, to: NodeId, out: &mut Out) {
        let State::Following(f) = &self.state else { return };
        if from != f.leader || f.phase == FollowerPhase::Discovery || epoch != f.epoch {
            return;
        }
        self.look_for(now, Some(to), out);
    }

    /// The leader's pick to lead after it: the other voter that acknowledged
    /// the most (`None` if not an established leader, or alone).
    pub(crate) fn best_successor(&self) -> Option<NodeId> {
        let State::Leading(l) = &self.state else { return None };
        let voters = &self.configs.current().voters;
        l.learners
            .iter()
            .filter(|(id, x)| voters.contains(id) && x.stage == Stage::Active)
            .max_by_key(|(_, x)| x.acked)
            .map(|(id, _)| *id)
    }

    /// A leader whose removal committed tells its followers to look for a new
    /// leader now (RESET), and stops leading.
    pub(crate) fn maybe_step_down_removed(&mut self, now: Instant, out: &mut Out) {
        if self.is_voter() || !self.membership_committed() {
            return;
        }
        let State::Leading(l) = &self.state else { return };
        let Some(epoch) = l.epoch else { return };
        for (peer, _) in l.learners.iter().filter(|(_, x)| x.in_stream()) {
            out.send(*peer, Message::Reset { epoch });
        }
        tracing::info!(node = self.id.0, epoch, "removed from the voters: handing over");
        self.become_looking(now, out);
    }
}
