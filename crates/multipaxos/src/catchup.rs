//! Catch-up: a replica that missed decisions asks a peer (the leader, usually)
//! for the chosen values from its first missing slot; a peer that already
//! folded those slots into a snapshot streams the snapshot first.
//!
//! **Bounded messages.** A `Decided` answer carries at most `catch_up_batch`
//! values and, past the first, at most `snapshot_chunk_bytes` of them. A
//! snapshot travels in pieces of at most `snapshot_chunk_bytes`
//! (`SnapshotChunk`), pulled one at a time by the receiver (`SnapshotPull`):
//! one piece in flight per receiver is the flow control, and the sender keeps
//! no state per receiver. A lost piece is asked for again on the receiver's
//! next catch-up turn (its leader's next heartbeat, at most once per
//! `catch_up_after`). A receiver resumes only from the peer it started with;
//! a new peer (the leader changed) or a sender whose snapshot moved on starts
//! it over from the first piece of that sender's current snapshot, because
//! two snapshots at the same index need not be the same bytes.

use crate::{Message, MultiPaxos, PlantedBug, SnapshotPiece};
use quorum_core::{Bytes, NodeId, Snapshot, SnapshotMeta, Stamp};
use quorum_paxos::Chosen;
use tracing::debug;

/// A snapshot being received, piece by piece.
#[derive(Clone, Debug, Hash)]
pub(crate) struct Incoming {
    /// The peer sending it.
    from: NodeId,
    index: u64,
    stamp: Stamp,
    meta: Bytes,
    total: u64,
    /// The bytes received so far, in order.
    data: Vec<u8>,
}

impl MultiPaxos {
    /// Asks `peer` for what we miss, at most once per `catch_up_after`: the
    /// next piece of the snapshot we are receiving from it, or the chosen
    /// values after our commit point.
    pub(crate) fn request_catch_up(&mut self, peer: NodeId) {
        if peer == self.id {
            return;
        }
        if self.last_catch_up.is_some_and(|at| self.now < at + self.config.catch_up_after) {
            return;
        }
        self.last_catch_up = Some(self.now);
        if let Some(incoming) = self.incoming.as_ref().filter(|i| i.from == peer) {
            let (index, offset) = (incoming.index, incoming.data.len() as u64);
            self.outbox.send(peer, Message::SnapshotPull { index, offset });
            return;
        }
        // Another peer (the leader changed): its snapshot, if it sends one, starts over.
        self.incoming = None;
        let from = self.learner.committed() + 1;
        self.outbox.send(peer, Message::CatchUp { from });
    }

    /// Asks again for the rest of a catch-up whose answer was lost. A leader
    /// that removed itself and handed the cluster to this node speaks no
    /// more, and if this node has not caught up to the slot that made it a
    /// voter, nothing else would ever ask (seed 255 of `quorum sim -p
    /// multipaxos --churn --nodes 2 --profile tiny-caps`).
    pub(crate) fn resume_catch_up(&mut self) {
        let behind = self.heard_commit.is_some_and(|(_, commit)| commit > self.learner.committed());
        if !behind && self.incoming.is_none() {
            if self.leader.is_none() {
                self.ask_a_member();
            }
            return;
        }
        if let Some(peer) = self.incoming.as_ref().map(|i| i.from).or(self.leader) {
            self.request_catch_up(peer);
        }
    }

    /// No leader has spoken to this learner since it started. The one that
    /// promoted it may have removed itself and handed over before this node
    /// learned of it, and the node then restarted, forgetting the commit
    /// point it was told: only a voter campaigns, so nothing would ever
    /// change (seed 31150 of `quorum sim -p multipaxos --churn --nodes 2
    /// --profile drift --seed-start 30000`). It asks one member at random,
    /// once per timer; a removed node answers too (`on_catch_up`).
    fn ask_a_member(&mut self) {
        let peers = self.peers();
        if !peers.is_empty() {
            let peer = peers[self.rng.index(peers.len())];
            self.request_catch_up(peer);
        }
    }

    /// Answers a catch-up request: the first piece of the snapshot if `first`
    /// is below it (the asker pulls the rest, then asks again), else chosen values.
    pub(crate) fn on_catch_up(&mut self, asker: NodeId, first: u64) {
        if self.snapshot.as_ref().is_some_and(|s| first <= s.index) {
            debug!(node = self.id.0, %asker, "streaming a snapshot");
            self.send_snapshot_chunk(asker, 0);
            return;
        }
        let chosen = self.learner.chosen_within(first, self.config.catch_up_batch, self.config.snapshot_chunk_bytes);
        if let Some(last) = chosen.last().map(|c| c.slot) {
            let more = last < self.learner.committed();
            self.outbox.send(asker, Message::Decided { chosen, more });
        }
    }

    /// A receiver asks for the piece at `offset` of our snapshot at `index`.
    pub(crate) fn on_snapshot_pull(&mut self, asker: NodeId, index: u64, offset: u64) {
        let Some(snapshot) = self.snapshot.as_ref() else { return };
        // Our snapshot moved on (or was never this one): start over with the current one.
        let offset = if snapshot.index == index { offset } else { 0 };
        self.send_snapshot_chunk(asker, offset);
    }

    /// Sends the piece of our snapshot that starts at `offset`.
    fn send_snapshot_chunk(&mut self, to: NodeId, offset: u64) {
        let Some(snapshot) = self.snapshot.as_ref() else { return };
        let total = snapshot.data.len() as u64;
        if offset > total || (offset == total && total > 0) {
            return; // nothing there: a confused or stale request
        }
        let start = offset as usize;
        let mut end = (start + self.config.snapshot_chunk_bytes.max(1)).min(snapshot.data.len());
        if self.config.planted(PlantedBug::WholeSnapshot) {
            end = snapshot.data.len();
        }
        let meta = if offset == 0 { snapshot.meta.clone() } else { Bytes::new() };
        let chunk = Message::SnapshotChunk(SnapshotPiece {
            index: snapshot.index,
            stamp: snapshot.stamp,
            meta,
            total,
            offset,
            data: snapshot.data.slice(start..end),
        });
        self.outbox.send(to, chunk);
    }

    /// Chosen values from a peer. A capped answer that taught us something
    /// is followed by the next request at once, not at the next heartbeat:
    /// with a small `catch_up_batch` a replica hundreds of slots behind
    /// would otherwise fall further behind a busy leader. An answer that
    /// taught nothing (another peer's answer covered it) ends the stream.
    pub(crate) fn on_decided(&mut self, from: NodeId, chosen: Vec<Chosen>, more: bool) {
        if chosen.is_empty() && more {
            // "You propose in slots I committed and compacted into my
            // snapshot" (`on_accept`): only that snapshot can teach us those
            // slots, so ask for it, unless another peer's is on its way.
            if self.incoming.as_ref().is_none_or(|i| i.from == from) {
                self.request_catch_up(from);
            }
            return;
        }
        let before = self.learner.first_unknown();
        for c in chosen {
            if !self.decide_reported(from, c) {
                break;
            }
        }
        self.pump();
        let next = self.learner.first_unknown();
        if more && next > before {
            self.last_catch_up = Some(self.now);
            self.outbox.send(from, Message::CatchUp { from: next });
        }
    }

    /// A piece of a peer's snapshot. Pieces arrive one at a time, in order;
    /// anything else is dropped and asked for again on the next turn.
    pub(crate) fn on_snapshot_chunk(&mut self, from: NodeId, piece: SnapshotPiece) {
        let SnapshotPiece { index, stamp, meta, total, offset, data } = piece;
        if index <= self.learner.committed() {
            self.incoming = None; // we have all of it already
            return;
        }
        let fits = offset.checked_add(data.len() as u64).is_some_and(|end| end <= total);
        if !fits {
            debug!(node = self.id.0, %from, index, offset, total, "dropping a malformed snapshot piece");
            return;
        }
        let same = |i: &Incoming| i.from == from && i.index == index && i.stamp == stamp && i.total == total;
        match self.incoming.as_mut() {
            Some(incoming) if same(incoming) && incoming.data.len() as u64 == offset => {
                incoming.data.extend_from_slice(&data);
            }
            _ if offset == 0 => {
                let data = data.to_vec();
                self.incoming = Some(Incoming { from, index, stamp, meta, total, data });
            }
            _ => return, // out of order, a duplicate, or from another transfer
        }
        let incoming = self.incoming.as_ref().expect("set above");
        let received = incoming.data.len() as u64;
        // The next piece at once: pulling is the flow control.
        self.last_catch_up = Some(self.now);
        if received < total {
            self.outbox.send(from, Message::SnapshotPull { index, offset: received });
            return;
        }
        let incoming = self.incoming.take().expect("set above");
        let snapshot = Snapshot { index, stamp, meta: incoming.meta, data: Bytes::from(incoming.data) };
        self.on_install_snapshot(from, snapshot);
        // Then the chosen values after it.
        let from_slot = self.learner.committed() + 1;
        self.outbox.send(from, Message::CatchUp { from: from_slot });
    }

    /// A peer's snapshot, received whole: if it is ahead of us, it replaces our committed prefix.
    pub(crate) fn on_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        if snapshot.index <= self.learner.committed() {
            return;
        }
        // The configuration in force at its index replaces ours (an empty
        // meta comes from a version that had no changes: ours stands).
        let config = match SnapshotMeta::decode(&snapshot.meta) {
            Ok(meta) => meta.membership,
            Err(_) if snapshot.meta.is_empty() => self.config().clone(),
            Err(why) => return self.drop_message(from, &format!("snapshot metadata: {why}")),
        };
        let old = self.config().clone();
        self.configs.reset(snapshot.index, config);
        debug!(node = self.id.0, index = snapshot.index, "installing a snapshot");
        self.learner.skip_to(snapshot.index);
        self.acceptor.forget_upto(snapshot.index);
        if let crate::State::Leader(leader) = &mut self.state {
            leader.proposals.retain(|&slot, _| slot > snapshot.index);
        }
        self.install = Some(snapshot.clone());
        self.snapshot_to_write = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
        if *self.config() != old {
            self.on_config_committed(&old);
        }
    }
}
