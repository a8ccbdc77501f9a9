//! Catching up and filling holes.
//!
//! Commits leave strictly in slot order, so one undecided slot blocks every
//! later one. A node notices when its next slot stays unknown while later
//! slots are in use. It first asks its peers for decided values (`CatchUp`,
//! answered with `Decided`): the slot may be decided and the news lost. If the
//! slot is still unknown a little later (randomized, so that nodes rarely
//! compete), it proposes a no-op there. Phase 1 then finds any value that may
//! have been chosen and proposes it instead (P2c); otherwise the no-op fills
//! the hole left by a proposer that crashed or gave up. A proposer killed
//! with a full window leaves that many holes side by side, so the slots after
//! the next one that were in use when it got stuck and are still unknown are
//! filled at the same time, as many as the node's own window allows.

use crate::{Message, Paxos};
use quorum_core::{Duration, Instant, NodeId, Payload};
use tracing::debug;

/// The next slot has been unknown since `since`, while later slots were in use.
#[derive(Clone, Copy, Debug, Hash)]
pub(crate) struct Stall {
    /// The commit point it is stuck at.
    committed: u64,
    since: Instant,
    /// The highest slot seen in use when it got stuck: a slot up to here
    /// still unknown a hole timer later was most likely left by a proposer
    /// that died (a slot above it may be a live proposer's fresh one).
    upto: u64,
    /// When its holes may be filled: a hole timer (randomized, so that nodes
    /// rarely compete) after it began, or at once when the commit point has
    /// just moved within the holes a ripe stall found, so that a dead
    /// proposer's holes past one window do not each wait a timer again.
    ripe: Instant,
}

impl Paxos {
    /// Answers a catch-up request with the decided values from `first` on
    /// (none, if the asker is not behind this node: that answer still tells a
    /// restarted node that a peer heard it).
    pub(crate) fn on_catch_up(&mut self, asker: NodeId, first: u64) {
        let chosen = self.learner.chosen_within(first, self.config.catch_up_batch, self.config.catch_up_bytes);
        let more = chosen.last().is_some_and(|c| c.slot < self.learner.highest_chosen());
        debug!(node = self.id.0, %asker, first, values = chosen.len(), more, "answering a catch-up request");
        self.outbox.send(asker, Message::Decided { chosen, more });
    }

    /// After a restart, asks every peer for the values decided since, until one answers.
    pub(crate) fn catch_up_after_restart(&mut self) {
        if self.boot_catch_up.is_some_and(|at| self.now >= at) {
            // Not the commit point: right after a restart the recovered log
            // is known chosen but not yet handed over, and answers covering
            // only what this node holds would end the exchange.
            let next = self.learner.first_unknown();
            self.boot_catch_up = Some(self.now + self.config.catch_up_after);
            debug!(node = self.id.0, from = next, "asking the peers for what was decided while this node was down");
            for to in self.peers().collect::<Vec<_>>() {
                self.outbox.send(to, Message::CatchUp { from: next });
            }
        }
    }

    /// Every `sync_every`, asks every peer for what was decided beyond what
    /// this node knows (see `PaxosConfig::sync_every`).
    pub(crate) fn sync_with_peers(&mut self) {
        if self.now < self.next_sync {
            return;
        }
        self.next_sync = self.now + self.config.sync_every;
        let from = self.learner.first_unknown();
        for to in self.peers().collect::<Vec<_>>() {
            self.outbox.send(to, Message::CatchUp { from });
        }
    }

    /// Notes whether the next slot is stuck while later slots are in use.
    pub(crate) fn track_stall(&mut self) {
        let committed = self.learner.committed();
        if self.highest_slot_seen <= committed {
            self.stalled = None;
        } else if self.stalled.is_none_or(|s| s.committed != committed) {
            let now = self.now;
            let carried = self.stalled.filter(|s| now >= s.ripe && s.upto > committed);
            self.stalled = Some(match carried {
                Some(s) => Stall { committed, since: now, upto: s.upto, ripe: now },
                None => {
                    let after = self.config.fill_hole_after;
                    let wait = after + Duration::from_nanos(self.rng.range(0, after.as_nanos() + 1));
                    Stall { committed, since: now, upto: self.highest_slot_seen, ripe: now + wait }
                }
            });
        }
    }

    /// Catch-up, then hole filling, for a stuck next slot.
    pub(crate) fn unblock(&mut self) {
        let Some(Stall { committed, since, upto, ripe }) = self.stalled else { return };
        let next = committed + 1;
        if self.now >= since + self.config.catch_up_after && self.now >= self.last_catch_up + self.config.catch_up_after
        {
            self.last_catch_up = self.now;
            let first = self.learner.first_unknown();
            for to in self.peers().collect::<Vec<_>>() {
                self.outbox.send(to, Message::CatchUp { from: first });
            }
        }
        if self.now < ripe {
            return;
        }
        // The next slot whatever the window (it blocks everything), the holes
        // after it while the window has room.
        let last = upto.min(next.saturating_add(self.config.max_in_flight as u64));
        for slot in next..=last {
            let room = slot == next || self.proposer.instances.len() < self.config.max_in_flight;
            if room && self.learner.chosen(slot).is_none() && !self.proposer.instances.contains_key(&slot) {
                debug!(node = self.id.0, slot, "filling a hole with a no-op");
                self.start_instance(slot, Payload::Noop);
            }
        }
    }

    pub(crate) fn unblock_deadline(&self) -> Option<Instant> {
        let Stall { committed, since, ripe, .. } = self.stalled?;
        let catch_up = (since + self.config.catch_up_after).max(self.last_catch_up + self.config.catch_up_after);
        if self.proposer.instances.contains_key(&(committed + 1)) {
            // Already fighting for the hole: only the catch-up timer matters.
            return Some(catch_up);
        }
        Some(catch_up.min(ripe))
    }
}
