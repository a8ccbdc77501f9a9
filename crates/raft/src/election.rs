//! Leader election (§5.2), the election restriction (§5.4.1), PreVote
//! (thesis §9.6), CheckQuorum and leases on votes (thesis §6.2, §4.2.3), and
//! the term rules every message goes through.

use crate::message::{Append, AppendReply, Message, Reject, VoteReply, VoteRequest};
use crate::node::{LeaderState, State};
use crate::progress::Progress;
use crate::Raft;
use quorum_core::{majority, Effects, Instant, NodeId, Payload};

impl Raft {
    /// True while this node refuses to help depose a leader it hears from
    /// (thesis §4.2.3): a follower that heard from a leader less than an
    /// election timeout ago, or a leader. Only with CheckQuorum, which is
    /// what makes a leader that lost its quorum step down.
    pub(crate) fn in_lease(&self, now: Instant) -> bool {
        if !self.config.check_quorum {
            return false;
        }
        self.state == State::Leader
            || self.heard_leader_at.is_some_and(|t| now < t + self.config.election_timeout_min())
    }

    /// Applies the term rules to an incoming message. Returns false if the
    /// message must not be processed further.
    pub(crate) fn step_term(&mut self, now: Instant, from: NodeId, msg: &Message, out: &mut Effects<Message>) -> bool {
        let term = msg.term();
        if term > self.term {
            match msg {
                Message::Vote(v) if !v.transfer && self.in_lease(now) => {
                    tracing::debug!(node = self.id.0, %from, "ignoring vote request inside a leader's lease");
                    return false;
                }
                // A pre-vote changes nothing, neither asked nor granted.
                Message::Vote(v) if v.pre_vote => return true,
                Message::VoteReply(r) if r.pre_vote && r.granted => return true,
                _ => {}
            }
            let leader = match msg {
                Message::Append(_) | Message::Snapshot(_) | Message::TimeoutNow { .. } => Some(from),
                _ => None,
            };
            self.become_follower(now, term, leader);
            return true;
        }
        if term < self.term {
            // Tell a stale leader or candidate about the newer term, so it steps down.
            match msg {
                Message::Append(a) => {
                    let reply = AppendReply {
                        term: self.term,
                        result: Err(Reject { prev_index: a.prev_index, conflict_term: None, conflict_index: 0 }),
                        round: a.round,
                    };
                    self.send_durable(from, Message::AppendReply(reply), out);
                }
                Message::Snapshot(_) | Message::Vote(_) => {
                    let pre_vote = matches!(msg, Message::Vote(v) if v.pre_vote);
                    let reply = VoteReply { term: self.term, granted: false, pre_vote };
                    self.send_durable(from, Message::VoteReply(reply), out);
                }
                _ => {}
            }
            return false;
        }
        true
    }

    /// The election timer fired (§5.2): campaign, via a pre-vote if enabled.
    pub(crate) fn on_election_timeout(&mut self, now: Instant, out: &mut Effects<Message>) {
        self.reset_election_timer(now);
        if !self.can_campaign() {
            return; // learners and removed nodes never campaign
        }
        if self.config.pre_vote {
            self.become_pre_candidate(now, out);
        } else {
            self.become_candidate(now, false, out);
        }
    }

    fn vote_request(&self, term: u64, pre_vote: bool, transfer: bool) -> Message {
        Message::Vote(VoteRequest {
            term,
            last_index: self.log.last_index(),
            last_term: self.log.last_stamp().major,
            pre_vote,
            transfer,
        })
    }

    fn other_voters(&self) -> Vec<NodeId> {
        self.configs.current().voters.iter().copied().filter(|v| *v != self.id).collect()
    }

    /// PreVote: ask whether we could win before disturbing anyone's term.
    pub(crate) fn become_pre_candidate(&mut self, now: Instant, out: &mut Effects<Message>) {
        tracing::debug!(node = self.id.0, term = self.term, "pre-vote campaign");
        self.state = State::PreCandidate;
        self.leader = None;
        self.votes = [self.id].into();
        self.rejections.clear();
        let msg = self.vote_request(self.term + 1, true, false);
        for v in self.other_voters() {
            out.send(v, msg.clone());
        }
        self.count_votes(now, out);
    }

    /// §5.2: increment the term, vote for self, ask every voter. The vote
    /// requests leave only once the new term and vote are durable.
    pub(crate) fn become_candidate(&mut self, now: Instant, transfer: bool, out: &mut Effects<Message>) {
        assert!(self.can_campaign(), "only voters campaign");
        self.term += 1;
        self.vote = Some(self.id);
        self.persist_hard_state();
        tracing::debug!(node = self.id.0, term = self.term, transfer, "campaign");
        self.state = State::Candidate;
        self.leader = None;
        self.votes = [self.id].into();
        self.rejections.clear();
        self.reset_election_timer(now);
        let msg = self.vote_request(self.term, false, transfer);
        for v in self.other_voters() {
            self.send_durable(v, msg.clone(), out);
        }
        self.count_votes(now, out);
    }

    /// A vote or pre-vote request at our term (or a pre-vote for a later one).
    pub(crate) fn on_vote_request(&mut self, now: Instant, from: NodeId, req: VoteRequest, out: &mut Effects<Message>) {
        // §5.4.1: grant only if the candidate's log is at least as up-to-date as ours.
        let up_to_date = (req.last_term, req.last_index) >= (self.log.last_stamp().major, self.log.last_index());
        if req.pre_vote {
            let granted = req.term > self.term && up_to_date;
            let term = if granted { req.term } else { self.term };
            out.send(from, Message::VoteReply(VoteReply { term, granted, pre_vote: true }));
            return;
        }
        assert_eq!(req.term, self.term, "step_term aligned the terms");
        // §5.2: at most one vote per term, first come first served.
        let can_vote = self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        let granted = can_vote && up_to_date;
        if granted {
            self.state = State::Follower; // a pre-candidate gives up its own campaign
            self.vote = Some(from);
            self.persist_hard_state();
            self.reset_election_timer(now);
        }
        tracing::debug!(node = self.id.0, term = self.term, %from, granted, "vote");
        let reply = VoteReply { term: self.term, granted, pre_vote: false };
        self.send_durable(from, Message::VoteReply(reply), out);
    }

    /// A vote or pre-vote answer.
    pub(crate) fn on_vote_reply(&mut self, now: Instant, from: NodeId, reply: VoteReply, out: &mut Effects<Message>) {
        let expected = if reply.pre_vote {
            self.state == State::PreCandidate && reply.term == self.term + 1
        } else {
            self.state == State::Candidate && reply.term == self.term
        };
        if !expected || !self.configs.current().voters.contains(&from) {
            return;
        }
        if reply.granted {
            self.votes.insert(from);
        } else {
            self.rejections.insert(from);
        }
        self.count_votes(now, out);
    }

    fn count_votes(&mut self, now: Instant, out: &mut Effects<Message>) {
        let voters = &self.configs.current().voters;
        let needed = majority(voters.len());
        let granted = self.votes.iter().filter(|v| voters.contains(v)).count();
        if granted >= needed {
            match self.state {
                State::PreCandidate => self.become_candidate(now, false, out),
                State::Candidate => self.become_leader(now, out),
                _ => unreachable!("votes are only counted while campaigning"),
            }
        } else if self.rejections.len() >= needed {
            self.become_follower(now, self.term, None);
        }
    }

    /// Won the election: take over replication and append a no-op, so that
    /// entries of earlier terms commit with it (§5.4.2, thesis §6.4).
    pub(crate) fn become_leader(&mut self, now: Instant, out: &mut Effects<Message>) {
        assert_eq!(self.state, State::Candidate);
        tracing::info!(node = self.id.0, term = self.term, "become leader");
        self.state = State::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.lead = LeaderState {
            heartbeat_deadline: now + self.config.heartbeat_interval(),
            check_quorum_deadline: now + self.config.election_timeout_min(),
            // The first appends open round 1, so their answers can start a lease.
            round: 1,
            rounds: [(1, now)].into(),
            ..LeaderState::default()
        };
        self.sync_progress(now);
        self.lead.term_start = self.append_new(Payload::Noop);
        let peers: Vec<NodeId> = self.lead.progress.keys().copied().collect();
        for peer in peers {
            self.send_append(now, peer, true, out);
        }
    }

    /// Keeps one progress record per member of the current configuration.
    pub(crate) fn sync_progress(&mut self, now: Instant) {
        let conf = self.configs.current().clone();
        let next = self.log.last_index() + 1;
        let members: Vec<NodeId> = conf.voters.iter().chain(conf.learners.iter()).copied().collect();
        self.lead.progress.retain(|id, _| members.contains(id));
        for m in members {
            if m != self.id {
                self.lead.progress.entry(m).or_insert_with(|| Progress::new(next, now));
            }
        }
    }

    /// CheckQuorum (thesis §6.2): a leader that heard from no quorum within an
    /// election timeout steps down, so clients find the real leader.
    pub(crate) fn check_quorum(&mut self, now: Instant) {
        self.lead.check_quorum_deadline = now + self.config.election_timeout_min();
        let voters = self.configs.current().voters.clone();
        let active = voters
            .iter()
            .filter(|v| **v == self.id || self.lead.progress.get(v).is_some_and(|p| p.recent_active))
            .count();
        for p in self.lead.progress.values_mut() {
            p.recent_active = false;
        }
        if active < majority(voters.len()) {
            tracing::info!(node = self.id.0, term = self.term, active, "check-quorum failed: stepping down");
            self.become_follower(now, self.term, None);
            self.heard_leader_at = None;
        }
    }

    /// A heartbeat or append from the leader of our term.
    pub(crate) fn heard_from_leader(&mut self, now: Instant, from: NodeId) {
        assert_ne!(self.state, State::Leader, "Figure 3, election safety: two leaders in term {}", self.term);
        if self.state != State::Follower || self.leader != Some(from) {
            self.become_follower(now, self.term, Some(from));
        }
        self.heard_leader_at = Some(now);
        self.reset_election_timer(now);
    }

    /// Builds a heartbeat to `to` at its match index (nothing to check, nothing to store).
    pub(crate) fn heartbeat_to(&self, match_index: u64, match_term: u64) -> Message {
        Message::Append(Append {
            term: self.term,
            prev_index: match_index,
            prev_term: match_term,
            entries: Vec::new(),
            commit: self.commit,
            round: self.lead.round,
        })
    }
}
