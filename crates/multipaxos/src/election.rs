//! Phase 1 for every slot at once: failure detection, candidacy, taking over.
//!
//! A follower that hears no leader for a randomized timeout becomes a candidate
//! with a ballot above every round it has seen and sends `Prepare(b, from)`.
//! With promises from a majority it becomes leader and re-proposes, in its own
//! ballot, every uncommitted slot any promiser reported: the value of the
//! highest-ballot proposal reported for the slot ("Paxos Made Simple" P2c), or
//! a no-op where nobody accepted anything, which fills the old leader's holes.

use crate::leader::Leader;
use crate::{Message, MultiPaxos, State};
use quorum_core::{Instant, NodeId, Payload};
use quorum_paxos::{Accepted, Ballot, Chosen};
use std::collections::{BTreeMap, BTreeSet};
use tracing::{debug, info, warn};

/// What a promiser told the candidate, page by page.
#[derive(Clone, Debug, Hash)]
pub(crate) struct PromiseBody {
    chosen: Vec<Chosen>,
    accepted: Vec<(u64, Accepted)>,
    /// The pages so far cover every slot from the candidate's `from` to here.
    covered: u64,
    /// The last page came: the promise covers every slot.
    complete: bool,
}

/// One page of a promise as it arrived.
#[derive(Clone, Debug, Hash)]
pub(crate) struct PromisePage {
    pub(crate) first: u64,
    pub(crate) last: Option<u64>,
    pub(crate) chosen: Vec<Chosen>,
    pub(crate) accepted: Vec<(u64, Accepted)>,
}

/// How far a promiser's knowledge goes, to tell whether its promise is complete.
#[derive(Copy, Clone, Debug, Hash)]
pub(crate) struct PromiseKnown {
    /// The promiser's snapshot point: values at or below it are not reported.
    pub(crate) snapshot_index: u64,
    /// The promiser's commit point.
    pub(crate) committed: u64,
}

/// A node running Phase 1.
#[derive(Clone, Debug, Hash)]
pub(crate) struct Candidate {
    pub(crate) ballot: Ballot,
    /// The first slot this candidate does not know committed.
    pub(crate) from: u64,
    promises: BTreeMap<NodeId, PromiseBody>,
    /// The nodes sent a Prepare in this ballot.
    pub(crate) asked: BTreeSet<NodeId>,
    /// A promiser is ahead of `from` (past its snapshot or its capped
    /// list): this node catches up first, and a later ballot, from a later
    /// commit point, is the one that can win.
    behind: bool,
}

impl MultiPaxos {
    /// Phase 1a: a fresh ballot, promised by our own acceptor before the
    /// Prepares leave (durable), so the ballot is never reused after a crash.
    pub(crate) fn start_election(&mut self) {
        if !self.is_voter() {
            return self.stay_out(); // only voters lead (`membership.rs`)
        }
        let ballot = Ballot::next_above(self.max_round, self.id);
        self.max_round = ballot.round;
        let from = self.learner.committed() + 1;
        info!(node = self.id.0, ?ballot, from, "suspecting the leader: phase 1");
        let asked: BTreeSet<NodeId> = self.peers().into_iter().chain([self.id]).collect();
        self.state = State::Candidate(Candidate { ballot, from, promises: BTreeMap::new(), asked, behind: false });
        self.leader = None;
        self.election_deadline = self.random_election_deadline();
        self.suspicion = None;
        // Our own acceptor first, in this step, so that its promise is in this
        // step's write and the Prepares below leave only once it is durable.
        self.on_prepare(self.id, ballot, from);
        for to in self.peers() {
            self.outbox.send_durable(to, Message::Prepare { ballot, from });
        }
    }

    /// Phase 1b arrived. With a majority, take over.
    pub(crate) fn on_promise(&mut self, from: NodeId, ballot: Ballot, page: PromisePage, known: PromiseKnown) {
        let State::Candidate(candidate) = &mut self.state else { return };
        if candidate.ballot != ballot {
            return;
        }
        let so_far = candidate.promises.get(&from);
        let covered = so_far.map_or(candidate.from - 1, |b| b.covered);
        if so_far.is_some_and(|b| b.complete) || page.first > covered.saturating_add(1) {
            return; // a duplicate, or a page past one still missing (reordered)
        }
        if page.last.is_some_and(|last| last <= covered) {
            return; // a duplicate page
        }
        let PromisePage { first, last, chosen, accepted } = page;
        let reported_upto = chosen.last().map_or(first.max(candidate.from) - 1, |c| c.slot);
        if known.snapshot_index >= candidate.from || known.committed > reported_upto {
            // The promiser committed (and may have forgotten the votes of) slots
            // whose values this promise does not carry: in its snapshot, or past
            // the capped list. Catch up first; a later ballot will do.
            debug!(node = self.id.0, %from, ?known, "behind a peer: catching up first");
            candidate.behind = true;
            self.request_catch_up(from);
            return;
        }
        let highest_reported = chosen.iter().map(|c| c.slot).chain(accepted.iter().map(|(s, _)| *s)).max();
        if highest_reported.is_some_and(|slot| slot > candidate.from.saturating_add(crate::MAX_SLOTS_ABOVE_COMMIT)) {
            // Each slot reported becomes a proposal at once: far behind the
            // promiser, catch up first rather than propose a million slots.
            debug!(node = self.id.0, %from, ?highest_reported, "far behind a peer: catching up first");
            candidate.behind = true;
            self.request_catch_up(from);
            return;
        }
        if let Some(c) = chosen.iter().find(|c| self.learner.conflict(c.slot, &c.value).is_some()) {
            let slot = c.slot;
            warn!(node = self.id.0, %from, slot, "a promise reports another value chosen than we know: dropped");
            self.drop_message(from, "a promise with another value for a slot known chosen");
            return;
        }
        if last.is_some() && !candidate.behind {
            // A page with more to come keeps this ballot alive: with small
            // pages and many slots past the commit point, Phase 1 takes
            // more round trips than an election timeout lasts, and a new
            // ballot would start it over from the first page, every time
            // (seed 40981 of `quorum sim -p multipaxos --churn --nodes 7
            // --profile tiny-caps --seed-start 40000`). Once every promise
            // is complete (or stops coming), the timer runs as before. Not
            // a ballot that is behind a promiser: it pages from a commit
            // point that its catch-up leaves behind, and kept alive it held
            // off the later ballot that could win for as long as a lagging
            // acceptor had pages, until a rival's ballot cut it off, over
            // and over (seed 50762 of the same run from 50000).
            self.election_deadline = self.random_election_deadline();
        }
        let State::Candidate(candidate) = &mut self.state else { unreachable!("checked above") };
        let body = candidate.promises.entry(from).or_insert_with(|| PromiseBody {
            chosen: Vec::new(),
            accepted: Vec::new(),
            covered,
            complete: false,
        });
        // Only what the pages so far did not cover: a page that overlaps them
        // (sent again, or by a confused peer) adds nothing twice, so a body
        // holds at most one report per slot.
        body.chosen.extend(chosen.into_iter().filter(|c| c.slot > covered));
        body.accepted.extend(accepted.into_iter().filter(|(slot, _)| *slot > covered));
        match last {
            Some(last) => {
                // More past this page: ask for the next one, in the same ballot.
                body.covered = last;
                self.outbox.send(from, Message::Prepare { ballot, from: last + 1 });
            }
            None => {
                body.complete = true;
                if self.phase1_reached() {
                    self.become_leader();
                }
            }
        }
    }

    /// True once the complete promises hold a majority of every
    /// configuration on the chain from this node's commit point
    /// (`membership.rs`); asks the voters still missing.
    fn phase1_reached(&mut self) -> bool {
        let State::Candidate(candidate) = &self.state else { return false };
        let complete = candidate.promises.iter().filter(|(_, b)| b.complete);
        let promisers: BTreeSet<NodeId> = complete.clone().map(|(n, _)| *n).collect();
        // Each slot's value as P2c picks it: known chosen first (ours or
        // reported), else the one accepted in the highest ballot.
        let mut promised: BTreeMap<u64, (Ballot, &Payload, bool)> = BTreeMap::new();
        for (slot, (ballot, value)) in self.learner.chosen_above(candidate.from) {
            promised.insert(slot, (ballot, value, true));
        }
        for (_, body) in complete {
            for c in &body.chosen {
                promised.insert(c.slot, (c.ballot, &c.value, true));
            }
            for (slot, accepted) in &body.accepted {
                let better = promised.get(slot).is_none_or(|(b, _, chosen)| !chosen && accepted.ballot > *b);
                if better {
                    promised.insert(*slot, (accepted.ballot, &accepted.value, false));
                }
            }
        }
        let chain = self.chain(&promised);
        self.chain_reached(&chain, &promisers)
    }

    /// Phase 1 succeeded: learn what is known chosen, re-propose the rest.
    fn become_leader(&mut self) {
        let State::Candidate(candidate) = std::mem::replace(&mut self.state, State::Follower) else {
            unreachable!("only a candidate becomes leader")
        };
        let ballot = candidate.ballot;
        self.state = State::Candidate(Candidate {
            ballot,
            from: candidate.from,
            promises: BTreeMap::new(),
            asked: candidate.asked,
            behind: false,
        });
        let mut highest: BTreeMap<u64, Accepted> = BTreeMap::new();
        let mut last_slot = self.learner.committed();
        for (from, body) in candidate.promises.into_iter().filter(|(_, b)| b.complete) {
            for c in body.chosen {
                last_slot = last_slot.max(c.slot);
                if !self.decide_reported(from, c) {
                    break;
                }
            }
            for (slot, accepted) in body.accepted {
                last_slot = last_slot.max(slot);
                // P2c: keep the highest-ballot proposal reported for each slot.
                if highest.get(&slot).is_none_or(|h| accepted.ballot > h.ballot) {
                    highest.insert(slot, accepted);
                }
            }
        }
        if self.own_ballot() != Some(ballot) || self.acceptor.promised_all() != ballot {
            return; // a higher ballot showed up meanwhile
        }
        // New commands go above every slot anyone reported and every slot this
        // node knows chosen. Its own promise reports those too, but it need
        // not be among the promises counted, and a new slot must never land
        // on a chosen one.
        last_slot = last_slot.max(self.learner.highest_chosen());
        let mut leader = Leader::new(ballot, last_slot + 1, self.now);
        leader.takeover_upto = last_slot;
        let ignore_promises = self.config.planted(crate::PlantedBug::IgnorePromisedValues);
        let voters = self.config().voters.len();
        for slot in self.learner.committed() + 1..=last_slot {
            if let Some((_, known)) = self.learner.chosen(slot) {
                if leader.barrier.is_some() {
                    // Past a configuration not yet in force: `release_held`
                    // meets this one in order, and if it is a configuration
                    // too, makes it the next barrier (values past it are
                    // decided by it, not by the one in force before).
                    leader.held.insert(slot, known.clone());
                } else if matches!(known, Payload::Membership(_)) {
                    // A configuration known chosen holds back what follows it.
                    leader.barrier = Some(slot);
                }
                continue;
            }
            // A slot nobody reported was never chosen (a majority answered): a no-op fills it.
            let mut value = highest.remove(&slot).map_or(Payload::Noop, |a| a.value);
            if ignore_promises {
                value = Payload::Noop;
            }
            if leader.barrier.is_some() {
                // Past a configuration not yet in force: proposed once it is.
                leader.held.insert(slot, value);
            } else {
                leader.add_proposal(slot, value, voters, self.now);
            }
        }
        info!(node = self.id.0, ?ballot, reproposed = leader.proposals.len(), "leading");
        let resend: Vec<(u64, Payload)> = leader.proposals.iter().map(|(&s, p)| (s, p.value.clone())).collect();
        self.state = State::Leader(Box::new(leader));
        self.leader = Some(self.id);
        self.leader_ballot = ballot;
        self.send_accepts(resend, None);
    }

    /// Leaves candidacy or leadership for a higher ballot; follows `leader` if known.
    pub(crate) fn step_down(&mut self, leader: Option<NodeId>) {
        if !matches!(self.state, State::Follower) {
            debug!(node = self.id.0, ?leader, "stepping down");
        }
        self.state = State::Follower;
        self.leader = leader.filter(|&l| l != self.id);
        self.election_deadline = self.random_election_deadline();
    }

    /// A message from the leader of `ballot` (accepted by our acceptor): follow it.
    pub(crate) fn follow(&mut self, ballot: Ballot) {
        self.saw(ballot);
        if self.own_ballot().is_some_and(|own| own == ballot) {
            return;
        }
        if self.own_ballot().is_some() {
            self.step_down(ballot.owner());
        }
        if self.suspects(ballot) {
            return; // sent before its link broke, perhaps: see hint.rs
        }
        if ballot >= self.leader_ballot {
            self.leader_ballot = ballot;
            self.leader = ballot.owner();
        }
        if ballot == self.leader_ballot {
            self.last_leader_contact = self.now;
            // The leader is alive after all (a link reset, not a crash).
            self.suspicion = None;
        }
        self.election_deadline = self.random_election_deadline();
    }

    /// For tests: when this node would start an election if it hears nothing.
    #[allow(dead_code)]
    pub(crate) fn election_deadline(&self) -> Instant {
        self.election_deadline
    }
}
