//! The link-down hint: a broken connection to the leader is a strong hint that
//! it died. A killed process's sockets close at once; a frozen or cut-off one
//! keeps them open, and then only the election timeout can tell.
//!
//! A follower told (`Protocol::on_link_down`) that its link to the leader
//! broke forgets the leader and, after a short randomized delay, asks its
//! peers whether they lost the leader too (`Suspect`). Once a majority agrees,
//! itself included, it starts Phase 1 at once instead of waiting out a whole
//! election timeout.
//!
//! **Why ask first.** In Multi-Paxos, Phase 1 disrupts by construction: our own
//! acceptor promises the new ballot at once, refuses the old leader's next
//! Accept or heartbeat, and that Nack makes the old leader step down. A link
//! can break while the leader lives (one connection reset), so acting on the
//! hint alone could depose a healthy leader. The question is Raft's PreVote
//! (Ongaro's thesis §9.6) for Paxos: it writes nothing and changes no promise,
//! and a node that leads, or heard from its leader within an election timeout,
//! says no. So an early Phase 1 needs a majority that lost the leader, and if
//! the question fails the ordinary election timer still runs: a hint can only
//! make recovery earlier, never later.
//!
//! **The election timer asks too.** A follower whose timer fires does not run
//! Phase 1 at once either: it asks the same question. A node that was cut off,
//! or restarted while its peers' connections to it were still backing off,
//! would otherwise come back with a higher ballot and depose a leader that
//! every other node still hears.
//!
//! **Safety** does not rest on any of this: ballots, promises and accepts are
//! untouched. With `read_lease`, a node keeps its promise not to promise
//! another candidate within an election timeout of hearing from the leader
//! or of acknowledging its heartbeat (`read.rs`): it says no until then, and
//! an early question, or its own Phase 1, waits for it. A suspecting follower
//! does not count the leader's messages as contact but still acknowledges its
//! heartbeats, and every acknowledgement binds it.

use crate::{Message, MultiPaxos, State};
use quorum_core::{Duration, Instant, NodeId};
use quorum_paxos::Ballot;
use std::collections::BTreeSet;
use tracing::info;

/// A follower's suspicion that its leader died.
#[derive(Clone, Debug, Hash)]
pub(crate) enum Suspicion {
    /// Ask the peers at this time.
    Waiting {
        /// When to ask.
        at: Instant,
    },
    /// Asked; these nodes (ourselves included) lost the leader too.
    Asking {
        /// Who agreed.
        agreed: BTreeSet<NodeId>,
    },
}

impl MultiPaxos {
    /// The link to `peer` broke: if it is our leader, suspect it soon.
    pub(crate) fn on_leader_link_down(&mut self, peer: NodeId) {
        if !matches!(self.state, State::Follower) || self.leader != Some(peer) {
            return;
        }
        self.leader = None;
        // A short randomized delay, so the followers (all told at once by a
        // crash) do not all start Phase 1 together; at least a tenth of the
        // timeout, so the others have heard of the crash by the time we ask.
        let start = self.lease_bound_until().map_or(self.now, |bound| bound.max(self.now));
        let timeout = self.config.election_timeout.as_nanos();
        let at = start + Duration::from_nanos(self.rng.range(timeout / 10, timeout / 3));
        info!(node = self.id.0, %peer, "link to the leader broke: suspecting it");
        if at < self.election_deadline {
            self.suspicion = Some(Suspicion::Waiting { at });
        }
    }

    /// True while we wait to ask about the leader of `ballot`. Its messages
    /// then do not count as hearing from it: on datagram links what it sent
    /// just before dying can arrive after the news, and would otherwise make
    /// us refuse (and give up) the question. They are still processed; if it
    /// lives, the question fails and its next heartbeat restores it.
    pub(crate) fn suspects(&self, ballot: Ballot) -> bool {
        matches!(self.suspicion, Some(Suspicion::Waiting { .. })) && ballot == self.leader_ballot
    }

    /// When a pending question is due.
    pub(crate) fn suspicion_due(&self) -> Option<Instant> {
        match self.suspicion {
            Some(Suspicion::Waiting { at }) => Some(at),
            _ => None,
        }
    }

    /// The election timer fired with no word from a leader. Ask the peers
    /// before Phase 1, as after a broken link: a node that was away (cut
    /// off, or restarted) while the others still hear a healthy leader must
    /// not depose it. If the question fails, the next timeout asks again.
    pub(crate) fn suspect_after_timeout(&mut self) {
        self.election_deadline = self.random_election_deadline();
        self.suspicion = Some(Suspicion::Waiting { at: self.now });
        self.suspicion_tick();
    }

    /// The timer: ask every peer whether it lost the leader too.
    pub(crate) fn suspicion_tick(&mut self) {
        if self.suspicion_due().is_none_or(|at| self.now < at) {
            return;
        }
        if let Some(bound) = self.lease_bound_until().filter(|&b| self.now < b) {
            // We acknowledged a heartbeat too recently: a leader may hold a
            // lease on it. Ask (and campaign) only once it is over.
            self.suspicion = Some(Suspicion::Waiting { at: bound });
            return;
        }
        if self.config().is_quorum([&self.id]) {
            return self.start_election(); // alone: nobody to ask
        }
        self.suspicion = Some(Suspicion::Asking { agreed: BTreeSet::from([self.id]) });
        let ballot = self.leader_ballot;
        for to in self.peers() {
            self.outbox.send(to, Message::Suspect { ballot });
        }
    }

    /// True if this node leads, or heard from its leader within an election
    /// timeout (with leases: from any leader, even one it since forgot).
    fn hears_leader(&self) -> bool {
        let recent = self.now < self.last_leader_contact + self.config.election_timeout;
        let bound = self.lease_bound_until().is_some_and(|b| self.now < b);
        matches!(self.state, State::Leader(_)) || (recent && self.leader.is_some()) || bound
    }

    /// A peer asks whether we lost the leader of `ballot` too. Answering
    /// changes nothing here. We also say no for an election timeout after
    /// promising a higher ballot to another node: someone is taking over, and
    /// a second Phase 1 would only duel. After that the candidate is presumed
    /// dead too, or nobody could ever take over from it.
    pub(crate) fn on_suspect(&mut self, from: NodeId, ballot: Ballot) {
        let taking_over = self.acceptor.promised_all() > ballot
            && self.last_promise_to_other.is_some_and(|at| self.now < at + self.config.election_timeout);
        let agree = !self.hears_leader() && !taking_over;
        self.outbox.send(from, Message::SuspectReply { ballot, agree });
    }

    /// An answer to our question: with a majority agreeing, start Phase 1.
    pub(crate) fn on_suspect_reply(&mut self, from: NodeId, ballot: Ballot, agree: bool) {
        if !agree || ballot != self.leader_ballot || !matches!(self.state, State::Follower) {
            return;
        }
        let config = self.configs.current();
        let Some(Suspicion::Asking { agreed }) = &mut self.suspicion else { return };
        agreed.insert(from);
        if config.is_quorum(agreed.iter()) {
            if self.lease_bound_until().is_some_and(|b| self.now < b) {
                // A heartbeat acknowledged since we asked: wait for its lease.
                return self.suspect_after_timeout();
            }
            self.start_election();
        }
    }
}
