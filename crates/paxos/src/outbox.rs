//! The outbox: one write and the sends that follow it, per protocol step.
//!
//! A node handles an input, possibly changing durable state and queueing
//! messages. At the end of the step [`Outbox::finish`] issues at most one
//! [`WriteBatch`] and then every queued send, so a durable send always comes
//! after the write it depends on. Messages a node sends to itself (a proposer
//! asking its own acceptor) never touch the driver: they are delivered through
//! [`Outbox::next_local`], and a durable one only once the write it follows is
//! reported by `on_persisted` — the same rule the driver applies to peers.

use quorum_core::{Effects, NodeId, WriteBatch, WriteQueue};
use std::collections::VecDeque;

/// Sends and local deliveries queued by one node.
#[derive(Clone, Debug, Hash)]
pub struct Outbox<M> {
    id: NodeId,
    sends: Vec<(NodeId, M, bool)>,
    local_ready: VecDeque<M>,
    local_durable: Vec<M>,
    /// The node's writes, with the local deliveries waiting for them.
    writes: WriteQueue<M>,
}

impl<M> Outbox<M> {
    /// An empty outbox for node `id`; write tags start after zero.
    pub fn new(id: NodeId) -> Self {
        Outbox {
            id,
            sends: Vec::new(),
            local_ready: VecDeque::new(),
            local_durable: Vec::new(),
            writes: WriteQueue::new(),
        }
    }

    /// Sends `msg` now (to itself: delivered within this step).
    pub fn send(&mut self, to: NodeId, msg: M) {
        if to == self.id {
            self.local_ready.push_back(msg);
        } else {
            self.sends.push((to, msg, false));
        }
    }

    /// Sends `msg` once every write issued so far, and this step's, is durable.
    pub fn send_durable(&mut self, to: NodeId, msg: M) {
        if to == self.id {
            self.local_durable.push(msg);
        } else {
            self.sends.push((to, msg, true));
        }
    }

    /// The next message this node sent itself that may be handled now.
    pub fn next_local(&mut self) -> Option<M> {
        self.local_ready.pop_front()
    }

    /// Ends a step: issues `batch` (if any) with the next tag, then the sends.
    /// `batch` is built by the caller only if [`Outbox::next_tag`] is used as its tag.
    pub fn finish(&mut self, batch: Option<WriteBatch>, out: &mut Effects<M>) {
        if let Some(batch) = batch {
            assert_eq!(batch.tag, self.writes.next_tag(), "write tags must follow one another");
            self.writes.issue();
            out.persist(batch);
        }
        for msg in self.local_durable.drain(..) {
            if let Some(msg) = self.writes.hold_for_issued(msg) {
                self.local_ready.push_back(msg);
            }
        }
        for (to, msg, durable) in self.sends.drain(..) {
            if durable {
                out.send_durable(to, msg);
            } else {
                out.send(to, msg);
            }
        }
    }

    /// The tag the next write must carry.
    pub fn next_tag(&self) -> u64 {
        self.writes.next_tag()
    }

    /// True while some local delivery waits (ready now or held for a write).
    pub fn has_local_work(&self) -> bool {
        !self.local_ready.is_empty() || !self.local_durable.is_empty()
    }

    /// Write `tag` and every write before it are durable: releases the local
    /// deliveries that waited for them.
    pub fn persisted(&mut self, tag: u64) {
        let issued = self.writes.last_issued();
        assert!(tag <= issued, "write {tag} reported durable but only {issued} issued");
        self.local_ready.extend(self.writes.persisted(tag));
    }
}

/// A node of the Paxos family (Basic and Multi-Paxos) as [`run_step`]
/// drives it: an outbox, a handler for the messages it sends itself, and
/// what it emits and writes at the end of a step.
pub trait Stepped {
    /// Its message type.
    type Message;
    /// Its outbox.
    fn outbox(&mut self) -> &mut Outbox<Self::Message>;
    /// Its acceptor (the `OneValuePerSlot` invariant reads its durable votes).
    fn acceptor(&self) -> &crate::Acceptor;
    /// Handles a message it sent itself.
    fn deliver_local(&mut self, msg: Self::Message);
    /// Emits what became ready (commits in order, snapshots to install).
    fn emit_ready(&mut self, out: &mut Effects<Self::Message>);
    /// The write this step needs, if any.
    fn take_batch(&mut self) -> Option<WriteBatch>;
    /// The commit point, which a step never moves back (nor the acceptor's
    /// promise for every slot).
    fn committed(&self) -> u64;
}

/// The [`Stepped`] methods every node of the family writes the same way,
/// for a struct with `id`, `outbox`, `acceptor` and `learner` fields and a
/// `handle(from, msg)` method. Expanded inside the `impl Stepped` block.
#[macro_export]
macro_rules! stepped_accessors {
    () => {
        fn outbox(&mut self) -> &mut $crate::outbox::Outbox<Self::Message> {
            &mut self.outbox
        }
        fn acceptor(&self) -> &$crate::Acceptor {
            &self.acceptor
        }
        fn committed(&self) -> u64 {
            self.learner.committed()
        }
        fn deliver_local(&mut self, msg: Self::Message) {
            self.handle(self.id, msg);
        }
    };
}

/// The write a step of the Paxos family needs: what the acceptor changed
/// (votes as entries, promises in the hard state), with the commit point
/// riding along whenever the hard state is written anyway. `must_write`
/// forces a write when the acceptor has nothing to add (Basic Paxos records a
/// moved commit point; Multi-Paxos a snapshot). `encode` makes the hard state
/// from the acceptor and the commit point it records.
pub fn acceptor_write(
    acceptor: &mut crate::Acceptor,
    tag: u64,
    committed: u64,
    persisted_commit: &mut u64,
    must_write: bool,
    encode: impl FnOnce(&crate::Acceptor, u64) -> Vec<u8>,
) -> Option<WriteBatch> {
    if !acceptor.is_dirty() && !must_write {
        return None;
    }
    let commit_moved = committed != *persisted_commit;
    let (promises_changed, entries) = acceptor.flush(tag);
    let hard_state = (promises_changed || commit_moved).then(|| {
        *persisted_commit = committed;
        encode(acceptor, committed).into()
    });
    Some(WriteBatch { tag, hard_state, entries, ..Default::default() })
}

/// Runs one input to completion: the input, then the local deliveries it
/// started, each round emitting what became ready, issuing at most one write
/// and the sends that follow it, until nothing local is left.
pub fn run_step<N: Stepped>(node: &mut N, out: &mut Effects<N::Message>, input: impl FnOnce(&mut N)) {
    let progress = |node: &N| (node.committed(), node.acceptor().promised_all());
    let (committed_before, promised_before) = progress(node);
    input(node);
    loop {
        while let Some(msg) = node.outbox().next_local() {
            node.deliver_local(msg);
        }
        node.emit_ready(out);
        let batch = node.take_batch();
        node.outbox().finish(batch, out);
        if !node.outbox().has_local_work() {
            break;
        }
    }
    let (committed, promised) = progress(node);
    assert!(committed >= committed_before, "the commit point moved back");
    assert!(promised >= promised_before, "a promise was withdrawn");
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::Effect;

    #[test]
    fn durable_sends_follow_the_write_and_local_ones_wait_for_it() {
        let mut outbox: Outbox<&str> = Outbox::new(NodeId(1));
        let mut out = Effects::new();
        outbox.send_durable(NodeId(2), "promise-to-2");
        outbox.send_durable(NodeId(1), "promise-to-self");
        outbox.send(NodeId(1), "now-to-self");
        let batch = WriteBatch { tag: outbox.next_tag(), hard_state: Some(Default::default()), ..Default::default() };
        outbox.finish(Some(batch), &mut out);
        assert!(matches!(out.as_slice()[0], Effect::Persist(_)));
        assert!(matches!(out.as_slice()[1], Effect::SendDurable { to: NodeId(2), .. }));
        assert_eq!(outbox.next_local(), Some("now-to-self"));
        assert_eq!(outbox.next_local(), None);
        outbox.persisted(1);
        assert_eq!(outbox.next_local(), Some("promise-to-self"));
    }
}
