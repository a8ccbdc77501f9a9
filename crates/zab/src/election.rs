//! Phase 0: Fast Leader Election (ZooKeeper's `FastLeaderElection`).
//!
//! A LOOKING node votes for itself, `(currentEpoch, last zxid, id)`, and
//! broadcasts the vote with its logical clock (round). It adopts any better
//! vote of its round, and jumps to a higher round when it sees one. Once a
//! quorum of its round agrees with its vote, it waits `finalize_wait` for a
//! better vote; if none comes, it settles: LEADING if the vote names itself,
//! FOLLOWING otherwise. Peers that already follow or lead answer a LOOKING node
//! with their leader, so a node joining a running ensemble settles on the
//! established leader once a quorum of them names it and the leader itself
//! says LEADING (ZooKeeper's `outofelection` set and `checkLeader`).
//!
//! Election only picks who tries to lead: safety rests on discovery's checks.

use crate::message::{Message, Notification, PeerState, Vote};
use crate::state::State;
use crate::Out;
use crate::Zab;
use quorum_core::{Instant, NodeId};
use tracing::debug;

impl Zab {
    /// Enters LOOKING: a new round, voting for itself (`lookForLeader`).
    pub(crate) fn become_looking(&mut self, now: Instant, out: &mut Out) {
        self.look_for(now, None, out);
    }

    /// Enters LOOKING voting for `successor` (a leadership transfer) if it is
    /// another voter of our configuration, else for ourselves. The vote
    /// carries our own history's rank: the successor's own vote, as up to
    /// date as the old leader's history, ranks at least as high.
    pub(crate) fn look_for(&mut self, now: Instant, successor: Option<NodeId>, out: &mut Out) {
        debug!(node = self.id.0, epoch = self.hard.current_epoch, round = self.election.round + 1, "LOOKING");
        self.fail_reads(out);
        self.set_state(State::Looking);
        let voter = self.may_lead();
        let e = &mut self.election;
        // Only voters start rounds (ZooKeeper's voters ignore the rounds of
        // non-voters, `validVoter`): a learner goes LOOKING whenever its
        // leader is silent, and each new round of its would make the voters
        // that join it drop the votes they had tallied. It takes the
        // voters' round from their notifications instead.
        if voter {
            e.round += 1;
        }
        e.received.clear();
        e.out_of_election.clear();
        e.finalize_at = None;
        e.resend_ticks = 1;
        self.election.vote = match successor {
            Some(to) if to != self.id && self.configs.current().voters.contains(&to) => {
                Vote { leader: to, ..self.own_vote() }
            }
            _ => self.own_vote(),
        };
        self.broadcast_vote(now, out);
        self.check_quorum_for_vote(now);
    }

    fn notification(&self) -> Notification {
        let state = match self.established_epoch() {
            Some(_) => PeerState::Established,
            None => self.peer_state(),
        };
        Notification { round: self.election.round, state, vote: self.election.vote }
    }

    /// Sends this node's vote to every peer and schedules the next re-send.
    fn broadcast_vote(&mut self, now: Instant, out: &mut Out) {
        let n = self.notification();
        // The members we know, and every node that sent us a vote in this
        // election: where our history is behind, a voter it does not list
        // may count on our vote (seed 385 of `quorum sim -p zab --churn
        // --nodes 4 --local-reads 0.5` elected no one for its last second).
        let e = &self.election;
        let heard = e.received.keys().chain(e.out_of_election.keys()).copied();
        let to: std::collections::BTreeSet<NodeId> = self.peers().chain(heard).filter(|p| *p != self.id).collect();
        for peer in to {
            out.send(peer, Message::Notification(n));
        }
        let jitter = self.rng.range(0, self.config.tick.as_nanos() / 4 + 1);
        self.election.resend_at =
            now + self.config.tick * self.election.resend_ticks + quorum_core::Duration::from_nanos(jitter);
    }

    /// A notification arrived.
    pub(crate) fn on_notification(&mut self, now: Instant, from: NodeId, n: Notification, out: &mut Out) {
        match &mut self.state {
            State::Looking => self.looking_notification(now, from, n, out),
            State::Following(f) => {
                // Our leader went back to LOOKING after it led us, or started
                // an election of a later round than the one we settled in
                // (in discovery, a notice of our round may predate its own
                // settling): it gave up.
                if from == f.leader
                    && n.state == PeerState::Looking
                    && (f.phase != crate::state::FollowerPhase::Discovery || n.round > self.election.round)
                {
                    self.become_looking(now, out);
                    self.looking_notification(now, from, n, out);
                } else if n.state == PeerState::Looking {
                    out.send(from, Message::Notification(self.notification()));
                }
            }
            State::Leading(l) => {
                if n.state == PeerState::Looking {
                    // A learner that is LOOKING again abandoned its session.
                    l.learners.remove(&from);
                    out.send(from, Message::Notification(self.notification()));
                }
            }
        }
    }

    fn looking_notification(&mut self, now: Instant, from: NodeId, n: Notification, out: &mut Out) {
        if n.state == PeerState::Looking {
            // It no longer follows or leads: what it said before no longer
            // names an established leader. (Kept, it could make this node
            // follow a leader the others have left, while they vote for this
            // node: two would-be leaders trading places every initLimit.)
            self.election.out_of_election.remove(&from);
            let e = &mut self.election;
            if n.round < e.round {
                // A straggler: tell it about our round.
                out.send(from, Message::Notification(self.notification()));
                return;
            }
            let newer = n.round > e.round;
            if newer {
                // A newer round: join it, starting again from our own vote.
                e.round = n.round;
                e.received.clear();
                e.finalize_at = None;
            }
            // Recorded before any broadcast, which then reaches the sender too.
            e.received.insert(from, (n.round, n.vote));
            if newer {
                let own = self.own_vote();
                self.election.vote = if n.vote.beats(&own) { n.vote } else { own };
                self.broadcast_vote(now, out);
            } else if n.vote.beats(&self.election.vote) {
                self.election.vote = n.vote;
                self.election.finalize_at = None;
                self.broadcast_vote(now, out);
            } else if self.election.vote.beats(&n.vote) {
                // The sender has not seen our better vote (it may have arrived
                // before the sender was LOOKING): tell it now rather than at
                // our next re-send. Its vote only improves, so this ends.
                out.send(from, Message::Notification(self.notification()));
            }
            self.check_quorum_for_vote(now);
            return;
        }
        // The sender follows or leads already.
        if n.round == self.election.round {
            self.election.received.insert(from, (n.round, n.vote));
            if self.agreed_on(n.vote.leader) && self.check_leader(n.vote.leader, n.round) {
                self.election.vote = n.vote;
                return self.settle(now, out);
            }
        }
        self.election.out_of_election.insert(from, (n.round, n.state, n.vote));
        let leader = n.vote.leader;
        if !self.configs.current().contains(leader) && !self.election.out_of_election.contains_key(&leader) {
            // Our history is behind the configuration: ask the leader itself
            // whether it leads (`check_leader` needs its answer).
            out.send(leader, Message::Notification(self.notification()));
        }
        if n.state == PeerState::Established && from == leader {
            self.election.round = n.round;
            self.election.vote = n.vote;
            return self.settle(now, out);
        }
        // It leads in our own round, from a history as far as ours: a quorum
        // of this round chose it, as it counts. Follow it rather than stand
        // against it. Otherwise two nodes that each won a round in turn (each
        // helped by a node whose configuration is behind, and which counted
        // neither) waited initLimit alone, out of phase, and traded places
        // until the end of the run (seed 70972 of `quorum sim -p zab --churn
        // --nodes 4`). The leader still counts its own quorum of followers.
        let own = self.own_vote();
        if n.state == PeerState::Leading
            && from == leader
            && leader != self.id
            && n.round == self.election.round
            && (n.vote.epoch, n.vote.zxid) >= (own.epoch, own.zxid)
        {
            debug!(node = self.id.0, leader = leader.0, round = n.round, "a leader of our round: following it");
            self.election.vote = n.vote;
            return self.settle(now, out);
        }
        // Every node that says it follows or leads `leader` counts, voter or
        // not in our configuration: our history may be behind theirs, and a
        // learner of ours may vote by now. This only decides whom we try to
        // follow; the leader counts its own quorum.
        let agreeing = self.election.out_of_election.values().filter(|(_, _, v)| v.leader == leader).count();
        let majority = self.configs.current().majority();
        if leader != self.id && majority.is_reached(agreeing) && self.check_leader(leader, n.round) {
            self.election.round = n.round;
            self.election.vote = n.vote;
            self.settle(now, out);
        }
    }

    /// ZooKeeper's `checkLeader`: never follow a leader that does not say it leads.
    fn check_leader(&self, leader: NodeId, round: u64) -> bool {
        if leader == self.id {
            return round == self.election.round;
        }
        self.election
            .out_of_election
            .get(&leader)
            .is_some_and(|(_, state, _)| matches!(state, PeerState::Leading | PeerState::Established))
    }

    /// True if a quorum of the voters of this round vote for `leader`, this
    /// node included if its own vote names `leader`: even if our history
    /// says we do not vote, as it may be behind the one that made us a voter
    /// (a node that would not count itself could stay out of the only
    /// quorum left). FLE only picks whom to follow; leaders count their own
    /// quorum.
    fn agreed_on(&self, leader: NodeId) -> bool {
        let round = self.election.round;
        let conf = self.configs.current();
        let others = self
            .election
            .received
            .iter()
            .filter(|(p, (r, v))| *r == round && v.leader == leader && **p != self.id && conf.voters.contains(p))
            .count();
        // Except for ourselves while only `may_lead`'s exception lets us
        // stand: our vote is no voter's in this configuration, and counted,
        // a node whose removal the others committed while it was away
        // elected itself alone, again every initLimit, before the leader's
        // answer could reach it (seed 75 of `quorum sim -p zab --churn
        // --nodes 2 --profile crash-storm`).
        let own = self.election.vote.leader == leader && (leader != self.id || self.is_voter());
        conf.majority().is_reached(others + usize::from(own))
    }

    /// Once a quorum agrees with our vote, start the finalize wait.
    fn check_quorum_for_vote(&mut self, now: Instant) {
        let leader = self.election.vote.leader;
        if self.agreed_on(leader) && self.election.finalize_at.is_none() {
            self.election.finalize_at = Some(now + self.config.finalize_wait);
        }
    }

    /// Re-sends the vote, or settles once the finalize wait passed.
    pub(crate) fn election_timer(&mut self, now: Instant, out: &mut Out) {
        if let Some(at) = self.election.finalize_at {
            if now >= at {
                if self.agreed_on(self.election.vote.leader) {
                    return self.settle(now, out);
                }
                self.election.finalize_at = None;
            }
        }
        if now >= self.election.resend_at {
            self.election.resend_ticks = (self.election.resend_ticks * 2).min(self.config.max_notification_ticks);
            self.broadcast_vote(now, out);
        }
    }

    /// Leaves LOOKING for the leader in our vote.
    fn settle(&mut self, now: Instant, out: &mut Out) {
        let leader = self.election.vote.leader;
        debug!(node = self.id.0, leader = leader.0, round = self.election.round, "settled");
        self.election.finalize_at = None;
        if leader == self.id && !self.may_lead() {
            // Chosen by peers whose history makes us a voter, while ours does
            // not (yet): we cannot count a quorum we are not part of.
            debug!(node = self.id.0, "not a voter in our own configuration: not leading");
        } else if leader == self.id {
            self.become_leader(now, out);
        } else {
            self.become_follower(now, leader, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::message::{Message, Notification, PeerState, Vote};
    use crate::testkit::*;
    use quorum_core::{Effects, NodeId, Protocol, Role, Stamp};

    fn votes_sent(out: &Effects<Message>) -> Vec<(NodeId, Notification)> {
        sent(out)
            .into_iter()
            .filter_map(|(to, m, _)| match m {
                Message::Notification(n) => Some((to, n)),
                _ => None,
            })
            .collect()
    }

    /// A follower still in discovery ignores its leader's LOOKING notices of
    /// the round it settled in (sent before the leader settled too), but one
    /// of a later round means the leader gave up and started an election:
    /// the follower joins it. Seed 31304 of `quorum sim -p zab --churn
    /// --nodes 2 --profile crash-storm --seed-start 30000`: a learner that
    /// restarted followed the leader of round 1, which had just lost its
    /// quorum and was LOOKING in round 2; the learner answered every notice
    /// with its round-1 FOLLOWING one, which the leader could not count, and
    /// both sat there (one settling again each initLimit) to the end.
    #[test]
    fn a_follower_in_discovery_joins_its_leaders_later_election_round() {
        let mut z = node(2, 3);
        let mut out = Effects::new();
        z.on_message(at(1), NodeId(3), vote_note(1, PeerState::Following, 1), &mut out);
        z.on_message(at(1), NodeId(1), vote_note(1, PeerState::Leading, 1), &mut out);
        assert_eq!(z.peer_state(), PeerState::Following);
        let mut out = Effects::new();
        z.on_message(at(2), NodeId(1), vote_note(1, PeerState::Looking, 1), &mut out);
        assert_eq!(z.peer_state(), PeerState::Following, "a notice of the round it settled in is stale");
        let mut out = Effects::new();
        z.on_message(at(3), NodeId(1), vote_note(2, PeerState::Looking, 1), &mut out);
        assert_eq!(z.peer_state(), PeerState::Looking, "its leader started a new election");
        assert_eq!(z.election.round, 2);
        assert!(votes_sent(&out).iter().any(|(to, n)| *to == NodeId(1) && n.round == 2));
    }

    #[test]
    fn a_fresh_node_is_looking_and_votes_for_itself_with_its_epoch_and_last_zxid() {
        let mut z = node_from(2, 3, stored((3, 1), 3, &[(3, 1), (3, 2)]));
        assert_eq!(z.status().role, Role::Candidate);
        let mut out = Effects::new();
        z.on_timer(at(0), &mut out);
        let votes = votes_sent(&out);
        assert_eq!(votes.len(), 2, "one vote to each peer");
        assert_eq!(votes[0].1.vote, Vote { leader: NodeId(2), zxid: Stamp::new(3, 2), epoch: 3 });
        assert_eq!(votes[0].1.state, PeerState::Looking);
    }

    #[test]
    fn fle_adopts_a_better_vote_of_its_round_and_announces_it() {
        let mut z = node_from(3, 3, stored((1, 1), 1, &[(1, 1)]));
        let mut out = Effects::new();
        let better = Vote { leader: NodeId(1), zxid: Stamp::new(1, 5), epoch: 1 };
        let n = Notification { round: 1, state: PeerState::Looking, vote: better };
        z.on_message(at(1), NodeId(1), Message::Notification(n), &mut out);
        assert_eq!(z.election.vote, better);
        assert!(votes_sent(&out).iter().all(|(_, n)| n.vote == better));
        // A worse vote changes nothing.
        let mut out = Effects::new();
        let worse = Notification { round: 1, state: PeerState::Looking, vote: Vote { leader: NodeId(2), ..better } };
        let worse = Notification { vote: Vote { zxid: Stamp::new(1, 1), ..worse.vote }, ..worse };
        z.on_message(at(2), NodeId(2), Message::Notification(worse), &mut out);
        assert_eq!(z.election.vote, better);
    }

    /// Seed 385 of `quorum sim -p zab --churn --nodes 4 --local-reads 0.5`:
    /// a node whose history predates n4's promotion sent its votes only to
    /// the members it knew. The nodes that knew n4 as a voter settled on n4
    /// with that node's vote; n4, which never got it, did not, and took up a
    /// fourth node's vote instead, round after round. A vote now also goes
    /// to every node that sent one in this election.
    #[test]
    fn fle_announces_its_vote_to_a_voter_its_history_does_not_list() {
        let mut z = node(2, 3); // members n1..n3: n4 is not in this history
        let mut out = Effects::new();
        z.on_timer(at(0), &mut out);
        let round = z.election.round;
        let mut out = Effects::new();
        let better = Vote { leader: NodeId(4), zxid: Stamp::new(1, 9), epoch: 1 };
        let n = Notification { round, state: PeerState::Looking, vote: better };
        z.on_message(at(1), NodeId(4), Message::Notification(n), &mut out);
        assert_eq!(z.election.vote, better, "a better vote is taken up whoever sends it");
        let to: Vec<NodeId> =
            votes_sent(&out).into_iter().filter(|(_, n)| n.vote == better).map(|(to, _)| to).collect();
        assert!(to.contains(&NodeId(4)), "n4 counts on this vote and must hear it: sent to {to:?}");
    }

    #[test]
    fn fle_jumps_to_a_higher_round_and_answers_a_lower_one() {
        let mut z = node(1, 3);
        let mut out = Effects::new();
        z.on_message(at(1), NodeId(2), vote_note(7, PeerState::Looking, 2), &mut out);
        assert_eq!(z.election.round, 7);
        let mut out = Effects::new();
        z.on_message(at(2), NodeId(3), vote_note(3, PeerState::Looking, 3), &mut out);
        let replies = votes_sent(&out);
        assert_eq!(replies.len(), 1);
        assert_eq!((replies[0].0, replies[0].1.round), (NodeId(3), 7), "the straggler learns our round");
    }

    #[test]
    fn fle_settles_only_after_the_finalize_wait_once_a_quorum_agrees() {
        let mut z = node(3, 3);
        let mut out = Effects::new();
        z.on_message(at(1), NodeId(1), vote_note(1, PeerState::Looking, 3), &mut out);
        assert!(z.election.finalize_at.is_some(), "a quorum (2 of 3) agrees on node 3");
        assert_eq!(z.peer_state(), PeerState::Looking, "it waits for a better vote first");
        let at_finalize = z.election.finalize_at.unwrap();
        let mut out = Effects::new();
        z.on_timer(at_finalize, &mut out);
        assert_eq!(z.peer_state(), PeerState::Leading);
    }

    /// Seed 2 of `quorum sim -p zab --churn --profile crash-storm`: a
    /// leader of two voters lost its quorum; the other voter came back and
    /// settled to follow it, but a learner, hearing no leader, went LOOKING
    /// again and again, each time in a new round, and the leader joined each
    /// one, dropping the vote it had tallied: no leader for the last second
    /// of the run. Only voters start rounds now.
    #[test]
    fn a_learner_looking_again_starts_no_round_and_resets_no_tally() {
        let mut learner = node(4, 3); // outside the configuration of nodes 1-3
        let mut out = Effects::new();
        learner.on_message(at(1), NodeId(1), vote_note(3, PeerState::Looking, 1), &mut out);
        assert_eq!(learner.election.round, 3, "it takes the voters' round");
        learner.become_looking(at(2), &mut out);
        assert_eq!(learner.election.round, 3, "and starts none of its own");

        let mut voter = node(3, 3);
        voter.on_message(at(1), NodeId(1), vote_note(3, PeerState::Looking, 3), &mut out);
        assert!(voter.election.finalize_at.is_some(), "a quorum (2 of 3) agrees on node 3 in round 3");
        let mut out = Effects::new();
        learner.become_looking(at(3), &mut out);
        let (_, note) = votes_sent(&out).into_iter().find(|(to, _)| *to == NodeId(3)).expect("a vote to node 3");
        voter.on_message(at(4), NodeId(4), Message::Notification(note), &mut out);
        assert_eq!(voter.election.round, 3);
        let at_finalize = voter.election.finalize_at.expect("the tally stands");
        voter.on_timer(at_finalize, &mut out);
        assert_eq!(voter.peer_state(), PeerState::Leading);

        let mut again = node(2, 3);
        let before = again.election.round;
        again.become_looking(at(5), &mut out);
        assert_eq!(again.election.round, before + 1, "a voter starts a round");
    }

    #[test]
    fn a_better_vote_during_the_finalize_wait_cancels_settling() {
        let mut z = node(2, 3);
        let mut out = Effects::new();
        z.on_message(at(1), NodeId(1), vote_note(1, PeerState::Looking, 2), &mut out);
        assert!(z.election.finalize_at.is_some());
        z.on_message(at(2), NodeId(3), vote_note(1, PeerState::Looking, 3), &mut out);
        assert_eq!(z.election.vote.leader, NodeId(3));
        assert!(z.agreed_on(NodeId(3)), "node 3 and this node vote for 3");
        // Node 3's vote plus ours is a quorum for 3: finalize restarts for it.
        let f = z.election.finalize_at.expect("a quorum agrees on node 3 now");
        z.on_timer(f, &mut out);
        assert_eq!(z.peer_state(), PeerState::Following);
    }

    #[test]
    fn a_joiner_follows_an_established_leader_named_by_a_quorum_of_non_looking_peers() {
        let mut z = node(3, 3);
        let mut out = Effects::new();
        z.on_message(at(1), NodeId(2), vote_note(4, PeerState::Following, 1), &mut out);
        assert_eq!(z.peer_state(), PeerState::Looking, "the leader itself has not said it leads");
        z.on_message(at(1), NodeId(1), vote_note(4, PeerState::Leading, 1), &mut out);
        assert_eq!(z.peer_state(), PeerState::Following);
        assert_eq!(z.election.round, 4);
        assert!(sent(&out).iter().any(|(to, m, _)| *to == NodeId(1) && matches!(m, Message::FollowerInfo { .. })));
    }

    /// Seen in the simulator (zab seed 6900, 5 nodes): three peers that had
    /// followed node 4 went LOOKING and voted for node 5; node 5 still
    /// counted their old FOLLOWING notifications, followed node 4 when its
    /// LEADING notification came, and the two swapped roles every initLimit
    /// with no quorum behind either.
    #[test]
    fn a_peer_that_is_looking_again_no_longer_counts_for_the_leader_it_followed() {
        let mut z = node(5, 5);
        let mut out = Effects::new();
        for peer in [1, 2, 3] {
            z.on_message(at(1), NodeId(peer), vote_note(4, PeerState::Following, 4), &mut out);
        }
        for peer in [1, 2, 3] {
            z.on_message(at(2), NodeId(peer), vote_note(5, PeerState::Looking, 5), &mut out);
        }
        z.on_message(at(3), NodeId(4), vote_note(4, PeerState::Leading, 4), &mut out);
        assert_eq!(z.peer_state(), PeerState::Looking, "only node 4 still says it leads");
        let f = z.election.finalize_at.expect("a quorum of round 5 votes for node 5");
        z.on_timer(f, &mut out);
        assert_eq!(z.peer_state(), PeerState::Leading);
    }

    #[test]
    fn followers_and_leaders_answer_looking_peers_with_their_leader() {
        let mut z = follower_in_broadcast();
        let mut out = Effects::new();
        z.on_message(at(10), NodeId(3), vote_note(9, PeerState::Looking, 3), &mut out);
        let replies = votes_sent(&out);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].1.state, PeerState::Following);
        assert_eq!(replies[0].1.vote.leader, NodeId(1));
    }
}
