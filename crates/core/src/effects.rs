//! Effects: what a protocol asks its driver to do.
//!
//! Every protocol input takes `out: &mut Effects<M>` and pushes effects onto it
//! in order. The driver carries them out in that order:
//!
//! - [`Effect::Send`] leaves at once. A leader uses it to replicate entries while
//!   its own write of them is still in flight (Raft thesis §10.2.1).
//! - [`Effect::SendDurable`] leaves only once every write issued *before it* is
//!   durable. Votes, promises and acknowledgements use it: nothing that depends
//!   on a write leaves the node before the write is safe. Drivers implement the
//!   rule with [`DurabilityGate`], so it lives in one place.
//! - [`Effect::Persist`] makes a batch durable; the driver reports it back with
//!   `on_persisted(tag)`, in issue order.
//! - [`Effect::Commit`] hands over the next committed entry, in index order;
//!   the driver applies it to the state machine and answers a waiting client.
//! - [`Effect::InstallSnapshot`] replaces the state machine's contents.
//! - [`Effect::ReadReady`] / [`Effect::ReadFailed`] answer a `read` request.

use crate::{Entry, NodeId, NotLeader, Snapshot, WriteBatch, WriteQueue};

/// The id a driver gives a read request, echoed back in `ReadReady`/`ReadFailed`.
pub type ReadId = u64;

/// One thing the driver must do.
#[derive(Clone, Debug, Hash)]
#[non_exhaustive]
pub enum Effect<M> {
    /// Send `msg` to `to` now.
    Send {
        /// Destination.
        to: NodeId,
        /// The message.
        msg: M,
    },
    /// Send `msg` to `to` once every write issued before this effect is durable.
    SendDurable {
        /// Destination.
        to: NodeId,
        /// The message.
        msg: M,
    },
    /// Make a batch durable, then call `on_persisted(batch.tag)`.
    Persist(WriteBatch),
    /// The next committed entry, to apply in index order.
    Commit(Entry),
    /// Replace the state machine with this snapshot (received from a leader).
    InstallSnapshot(Snapshot),
    /// A linearizable read may be served once the state machine has applied `index`.
    ReadReady {
        /// The driver's id for the read.
        id: ReadId,
        /// The commit index the read must wait for.
        index: u64,
    },
    /// A read could not be served here (for example, leadership was lost).
    ReadFailed {
        /// The driver's id for the read.
        id: ReadId,
        /// Who may serve it instead.
        reason: NotLeader,
    },
}

/// An ordered list of effects, filled by one protocol input.
#[derive(Debug, Hash)]
pub struct Effects<M> {
    list: Vec<Effect<M>>,
}

impl<M> Default for Effects<M> {
    fn default() -> Self {
        Effects { list: Vec::new() }
    }
}

impl<M> Effects<M> {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends a message now.
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.list.push(Effect::Send { to, msg });
    }

    /// Sends a message once every write issued so far is durable.
    pub fn send_durable(&mut self, to: NodeId, msg: M) {
        self.list.push(Effect::SendDurable { to, msg });
    }

    /// Issues a write; ignored if the batch is empty.
    pub fn persist(&mut self, batch: WriteBatch) {
        if !batch.is_empty() {
            self.list.push(Effect::Persist(batch));
        }
    }

    /// Hands over the next committed entry.
    pub fn commit(&mut self, entry: Entry) {
        self.list.push(Effect::Commit(entry));
    }

    /// Asks the driver to replace its state machine with a snapshot.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) {
        self.list.push(Effect::InstallSnapshot(snapshot));
    }

    /// Answers a read: serve it once `index` is applied.
    pub fn read_ready(&mut self, id: ReadId, index: u64) {
        self.list.push(Effect::ReadReady { id, index });
    }

    /// Answers a read: it cannot be served here.
    pub fn read_failed(&mut self, id: ReadId, reason: NotLeader) {
        self.list.push(Effect::ReadFailed { id, reason });
    }

    /// Appends any effect.
    pub fn push(&mut self, effect: Effect<M>) {
        self.list.push(effect);
    }

    /// True when nothing was asked.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Number of effects.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The effects so far, in order.
    pub fn as_slice(&self) -> &[Effect<M>] {
        &self.list
    }

    /// Takes every effect out, leaving the list empty (and its buffer reusable).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect<M>> {
        self.list.drain(..)
    }

    /// Every message sent, in order, with whether it waits for durability
    /// (`SendDurable`). For tests that drive a protocol by hand.
    pub fn sent(&self) -> Vec<(NodeId, M, bool)>
    where
        M: Clone,
    {
        let sent = self.list.iter().filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg.clone(), false)),
            Effect::SendDurable { to, msg } => Some((*to, msg.clone(), true)),
            _ => None,
        });
        sent.collect()
    }

    /// Every write batch issued, in order.
    pub fn writes(&self) -> Vec<&WriteBatch> {
        self.list.iter().filter_map(|e| if let Effect::Persist(b) = e { Some(b) } else { None }).collect()
    }

    /// The index of every entry committed, in order.
    pub fn commits(&self) -> Vec<u64> {
        self.list.iter().filter_map(|e| if let Effect::Commit(e) = e { Some(e.index) } else { None }).collect()
    }
}

/// The driver's half of the durability rule: holds `SendDurable` messages until
/// every write issued before them is durable. Writes are counted in issue order;
/// both drivers feed it the same way.
#[derive(Clone, Debug, Hash)]
pub struct DurabilityGate<M> {
    writes: WriteQueue<(NodeId, M)>,
}

impl<M> Default for DurabilityGate<M> {
    fn default() -> Self {
        DurabilityGate { writes: WriteQueue::new() }
    }
}

impl<M> DurabilityGate<M> {
    /// A gate with no writes outstanding.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that a write was issued.
    pub fn write_issued(&mut self) {
        self.writes.issue();
    }

    /// A durable send: returns it back if it may leave now, or holds it.
    pub fn send(&mut self, to: NodeId, msg: M) -> Option<(NodeId, M)> {
        self.writes.hold_for_issued((to, msg))
    }

    /// Records that the oldest outstanding write is durable; returns the messages
    /// it released, in the order they were emitted.
    pub fn write_durable(&mut self) -> Vec<(NodeId, M)> {
        assert!(self.writes.in_flight(), "a write became durable that was never issued");
        let next = self.writes.last_durable() + 1;
        self.writes.persisted(next).collect()
    }

    /// Writes issued but not yet durable.
    pub fn outstanding(&self) -> u64 {
        self.writes.last_issued() - self.writes.last_durable()
    }

    /// A crash: held messages were never sent, and outstanding writes are gone.
    pub fn crash(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_sends_wait_for_writes_issued_before_them_only() {
        let mut gate = DurabilityGate::new();
        assert_eq!(gate.send(NodeId(2), "free"), Some((NodeId(2), "free")));
        gate.write_issued();
        assert_eq!(gate.send(NodeId(2), "after-1"), None);
        gate.write_issued();
        assert_eq!(gate.send(NodeId(3), "after-2"), None);
        assert_eq!(gate.write_durable(), vec![(NodeId(2), "after-1")]);
        assert_eq!(gate.write_durable(), vec![(NodeId(3), "after-2")]);
        assert_eq!(gate.outstanding(), 0);
    }

    #[test]
    fn a_crash_drops_held_messages() {
        let mut gate = DurabilityGate::new();
        gate.write_issued();
        assert_eq!(gate.send(NodeId(2), 1), None);
        gate.crash();
        assert_eq!(gate.outstanding(), 0);
        assert_eq!(gate.send(NodeId(2), 2), Some((NodeId(2), 2)));
    }

    #[test]
    fn empty_batches_are_not_issued() {
        let mut out: Effects<()> = Effects::new();
        out.persist(WriteBatch::new(1));
        assert!(out.is_empty());
    }
}
