//! Catch-up: a replica that missed decisions asks a peer (the leader, usually)
//! for the chosen values from its first missing slot; a peer that already
//! folded those slots into a snapshot sends the snapshot first.

use crate::{Message, MultiPaxos};
use quorum_core::{NodeId, Snapshot};
use tracing::debug;

impl MultiPaxos {
    /// Asks `peer` for what we miss, at most once per `catch_up_after`.
    pub(crate) fn request_catch_up(&mut self, peer: NodeId) {
        if peer == self.id {
            return;
        }
        if self.last_catch_up.is_some_and(|at| self.now < at + self.config.catch_up_after) {
            return;
        }
        self.last_catch_up = Some(self.now);
        let from = self.learner.committed() + 1;
        self.outbox.send(peer, Message::CatchUp { from });
    }

    /// Answers a catch-up request: the snapshot if `first` is below it, then chosen values.
    pub(crate) fn on_catch_up(&mut self, asker: NodeId, first: u64) {
        let mut first = first;
        if let Some(snapshot) = self.snapshot.as_ref().filter(|s| first <= s.index) {
            debug!(node = self.id.0, %asker, index = snapshot.index, "sending a snapshot");
            self.outbox.send(asker, Message::InstallSnapshot { snapshot: snapshot.clone() });
            first = snapshot.index + 1;
        }
        let chosen = self.learner.chosen_from(first, self.config.catch_up_batch);
        if !chosen.is_empty() {
            self.outbox.send(asker, Message::Decided { chosen });
        }
    }

    /// A peer's snapshot: if it is ahead of us, it replaces our committed prefix.
    pub(crate) fn on_install_snapshot(&mut self, snapshot: Snapshot) {
        if snapshot.index <= self.learner.committed() {
            return;
        }
        debug!(node = self.id.0, index = snapshot.index, "installing a snapshot");
        self.learner.skip_to(snapshot.index);
        self.acceptor.forget_upto(snapshot.index);
        if let crate::State::Leader(leader) = &mut self.state {
            leader.proposals.retain(|&slot, _| slot > snapshot.index);
        }
        self.install = Some(snapshot.clone());
        self.snapshot_to_write = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
    }
}
