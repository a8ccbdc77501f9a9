//! Leader election (§5.2), the election restriction (§5.4.1), PreVote
//! (thesis §9.6), CheckQuorum and leases on votes (thesis §6.2, §4.2.3), and
//! the term rules every message goes through.

use crate::message::{Append, AppendReply, Message, Reject, SnapshotReply, VoteReply, VoteRequest};
use crate::node::{LeaderState, State};
use crate::progress::Progress;
use crate::Out;
use crate::{Raft, ReadMode};
use quorum_core::{Instant, Majority, NodeId, Payload, VoteResult};

impl Raft {
    /// True while this node refuses to help depose a leader it hears from
    /// (thesis §4.2.3): a follower that heard from a leader less than an
    /// election timeout ago, or a leader. Only with CheckQuorum, which is
    /// what makes a leader that lost its quorum step down.
    pub(crate) fn in_lease(&self, now: Instant) -> bool {
        if !self.config.check_quorum {
            return false;
        }
        self.state == State::Leader || self.heard_leader_at.is_some_and(|t| now < t + self.config.election_timeout_min)
    }

    /// Applies the term rules to an incoming message. Returns false if the
    /// message must not be processed further.
    pub(crate) fn step_term(&mut self, now: Instant, from: NodeId, msg: &Message, out: &mut Out) -> bool {
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
            // Figure 2: only a leader's message or a granted vote restarts a
            // follower's election timer (`on_vote_request` restarts it when it
            // grants). A follower told of a newer term by a candidate it may
            // refuse keeps its deadline: else a candidate with a stale log
            // that campaigns again and again keeps the voter it needs, which
            // holds the longer log, from ever campaigning itself.
            let keep = (self.state == State::Follower && leader.is_none()).then_some(self.election_deadline);
            self.become_follower(now, term, leader);
            if let Some(deadline) = keep {
                self.election_deadline = deadline;
            }
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
                Message::Snapshot(c) => {
                    let reply =
                        SnapshotReply { term: self.term, index: c.index, next_offset: 0, done: false, round: c.round };
                    self.send_durable(from, Message::SnapshotReply(reply), out);
                }
                Message::Vote(v) => {
                    let reply = VoteReply { term: self.term, granted: false, pre_vote: v.pre_vote };
                    self.send_durable(from, Message::VoteReply(reply), out);
                }
                _ => {}
            }
            return false;
        }
        true
    }

    /// The driver reports that the connection to `peer` broke. If `peer` is
    /// the leader we follow, that is a strong hint that it died: a killed
    /// process's sockets close at once (a frozen or cut-off one keeps them
    /// open, and then only the election timeout can tell). So we forget the
    /// leader and bring the election timer forward to a short randomized
    /// delay, instead of waiting out a whole election timeout.
    ///
    /// The hint can be wrong (one connection reset while the leader lives),
    /// and it must not depose a healthy leader. It does not, because the early
    /// campaign starts with PreVote (thesis §9.6): every follower that still
    /// hears the leader refuses the pre-vote (and with CheckQuorum ignores it,
    /// thesis §4.2.3), as does the leader, so the term moves only once a
    /// majority has lost the leader too. Without PreVote our early campaign
    /// would raise our term at once, and our next answer to the leader would
    /// depose it; so the hint is taken only with PreVote on.
    ///
    /// Until that early campaign starts, messages from the suspected leader
    /// do not count as hearing from it (`heard_from_leader`): on datagram
    /// links what it sent just before dying can arrive after the news, and
    /// would otherwise re-arm our refusal of other candidates' pre-votes.
    ///
    /// Safety never rests on the hint: a vote is still one per term, durable,
    /// and for an up-to-date log (§5.2, §5.4.1). The one promise the hint could
    /// break is the lease on votes that lease reads rely on (thesis §6.4.1:
    /// no vote for another node within an election timeout of hearing from the
    /// leader), so with lease reads that promise is kept and the early timer
    /// waits for it to run out.
    pub(crate) fn on_leader_link_down(&mut self, now: Instant, peer: NodeId) {
        if !self.config.pre_vote || self.state != State::Follower || self.leader != Some(peer) {
            return;
        }
        tracing::debug!(node = self.id.0, term = self.term, %peer, "link to the leader broke: campaigning soon");
        self.leader = None;
        self.suspected = Some((peer, self.term));
        let mut start = now;
        if self.lease_reads() {
            if let Some(heard) = self.heard_leader_at {
                start = start.max(heard + self.config.election_timeout_min);
            }
        } else {
            // We no longer hear a leader: stop refusing (pre-)votes for it.
            self.heard_leader_at = None;
        }
        // A short randomized delay, so that the followers (all told at once by a
        // crash) do not campaign together and split the vote (§5.2). It is at
        // least a tenth of the timeout, so the others have heard of the crash
        // too by the time our pre-votes reach them.
        let min = self.config.election_timeout_min.as_nanos();
        let deadline = start + quorum_core::Duration::from_nanos(self.rng.range(min / 10, min / 3));
        self.election_deadline = self.election_deadline.min(deadline);
    }

    /// True if leaders serve lease reads, which need followers to keep their
    /// lease on votes (thesis §6.4.1).
    fn lease_reads(&self) -> bool {
        self.config.read_mode == ReadMode::Lease && self.config.check_quorum
    }

    /// The election timer fired (§5.2): campaign, via a pre-vote if enabled.
    pub(crate) fn on_election_timeout(&mut self, now: Instant, out: &mut Out) {
        self.reset_election_timer(now);
        self.suspected = None;
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
    pub(crate) fn become_pre_candidate(&mut self, now: Instant, out: &mut Out) {
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
    pub(crate) fn become_candidate(&mut self, now: Instant, transfer: bool, out: &mut Out) {
        assert!(self.can_campaign(), "only voters campaign");
        self.term += 1;
        self.vote = Some(self.id);
        self.persist_hard_state();
        self.flush(out); // our own vote counts once this write is durable (`count_votes`)
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
    pub(crate) fn on_vote_request(&mut self, now: Instant, from: NodeId, req: VoteRequest, out: &mut Out) {
        // §5.4.1: grant only if the candidate's log is at least as up-to-date as ours.
        let up_to_date = (req.last_term, req.last_index) >= (self.log.last_stamp().major, self.log.last_index());
        if req.pre_vote {
            // Thesis §9.6: no pre-vote while a leader is heard from (with or without CheckQuorum).
            let hears_leader = self.state == State::Leader
                || self.heard_leader_at.is_some_and(|t| now < t + self.config.election_timeout_min);
            let granted = req.term > self.term && up_to_date && !hears_leader;
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
        if granted && self.config.planted(crate::PlantedBug::VoteBeforePersisted) {
            self.flush(out);
            out.send(from, Message::VoteReply(reply));
            return;
        }
        self.send_durable(from, Message::VoteReply(reply), out);
    }

    /// A vote or pre-vote answer.
    pub(crate) fn on_vote_reply(&mut self, now: Instant, from: NodeId, reply: VoteReply, out: &mut Out) {
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

    pub(crate) fn count_votes(&mut self, now: Instant, out: &mut Out) {
        let voters = &self.configs.current().voters;
        // A candidate's own vote counts once its term and vote are durable
        // (a candidate writes nothing else). A lone voter counting it at once
        // led a term that a crash made it forget, then led that term again
        // with other entries at the same indexes (seed 108 of `quorum sim -p
        // raft --churn --nodes 2 --profile crash-storm`).
        let own_counts = self.state != State::Candidate || !self.writes.in_flight();
        let granted = self.votes.iter().filter(|v| voters.contains(v) && (own_counts || **v != self.id)).count();
        let rejected = self.rejections.iter().filter(|v| voters.contains(v)).count();
        match Majority::of(voters.len()).tally(granted, rejected) {
            VoteResult::Won => match self.state {
                State::PreCandidate => self.become_candidate(now, false, out),
                State::Candidate => self.become_leader(now, out),
                _ => unreachable!("votes are only counted while campaigning"),
            },
            VoteResult::Lost => self.become_follower(now, self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// Won the election: take over replication and append a no-op, so that
    /// entries of earlier terms commit with it (§5.4.2, thesis §6.4).
    pub(crate) fn become_leader(&mut self, now: Instant, out: &mut Out) {
        assert_eq!(self.state, State::Candidate);
        tracing::info!(node = self.id.0, term = self.term, "become leader");
        self.state = State::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.lead = LeaderState {
            heartbeat_deadline: now + self.config.heartbeat_interval,
            check_quorum_deadline: now + self.config.election_timeout_min,
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
        self.lead.check_quorum_deadline = now + self.config.election_timeout_min;
        let voters = self.configs.current().voters.clone();
        let active = voters
            .iter()
            .filter(|v| **v == self.id || self.lead.progress.get(v).is_some_and(|p| p.recent_active))
            .count();
        for p in self.lead.progress.values_mut() {
            p.recent_active = false;
        }
        if !Majority::of(voters.len()).is_reached(active) {
            tracing::info!(node = self.id.0, term = self.term, active, "check-quorum failed: stepping down");
            self.become_follower(now, self.term, None);
            self.heard_leader_at = None;
        }
    }

    /// A heartbeat or append from the leader of our term.
    pub(crate) fn heard_from_leader(&mut self, now: Instant, from: NodeId) {
        assert_ne!(self.state, State::Leader, "Figure 3, election safety: two leaders in term {}", self.term);
        if self.suspected == Some((from, self.term)) && self.state == State::Follower {
            // Its link broke: what it sent before may still arrive (datagram
            // links reorder), so this does not prove it alive. The entries
            // count; the early campaign, refused if it lives, settles the rest.
            // But our answer will renew its lease (read.rs), so with lease
            // reads we keep the promise that answer makes: no vote for anyone
            // else, and no campaign of our own, for an election timeout.
            if self.lease_reads() && !self.config.planted(crate::PlantedBug::SuspectedAckWithoutLease) {
                // The early campaign moves back by as much as the lease did,
                // keeping its random offset (at least a tenth of the timeout).
                let before = self.heard_leader_at.replace(now).unwrap_or(now);
                let tenth = quorum_core::Duration::from_nanos(self.config.election_timeout_min.as_nanos() / 10);
                let floor = now + self.config.election_timeout_min + tenth;
                if self.election_deadline < floor {
                    self.election_deadline = (self.election_deadline + now.saturating_since(before)).max(floor);
                }
            }
            return;
        }
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
