//! Writes in flight: what each protocol keeps between issuing a
//! [`WriteBatch`](crate::WriteBatch) and the driver's `on_persisted` for it.
//!
//! A node numbers its writes (tags 1, 2, 3, ...); the driver reports them
//! durable in that order, and a report for tag `t` covers every write up to
//! `t`. Until then, whatever depends on a write waits beside its tag: the
//! log index it makes durable (Raft, Zab), the votes that start to count
//! (Paxos's acceptor), or a message a node sent itself that must not be
//! handled before its own write lands (Paxos's outbox); in a driver, a
//! durable send ([`DurabilityGate`](crate::DurabilityGate)). [`WriteQueue`] holds
//! both the numbering and those waiting items, so each protocol writes the
//! bookkeeping once, the same way.

use std::collections::VecDeque;

/// Numbers a node's writes and holds what waits for each to be durable.
#[derive(Clone, Debug, Hash)]
pub struct WriteQueue<T> {
    issued: u64,
    durable: u64,
    waiting: VecDeque<(u64, T)>,
}

impl<T> Default for WriteQueue<T> {
    fn default() -> Self {
        WriteQueue { issued: 0, durable: 0, waiting: VecDeque::new() }
    }
}

impl<T> WriteQueue<T> {
    /// An empty queue: no write issued, tags start at 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tag the next write will carry.
    pub fn next_tag(&self) -> u64 {
        self.issued + 1
    }

    /// The tag of the last write issued (0 before the first).
    pub fn last_issued(&self) -> u64 {
        self.issued
    }

    /// The tag of the last write reported durable (0 before the first).
    pub fn last_durable(&self) -> u64 {
        self.durable
    }

    /// True while some write issued here is not yet reported durable.
    pub fn in_flight(&self) -> bool {
        self.issued > self.durable
    }

    /// Takes the next tag for a write about to be issued.
    pub fn issue(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    /// Takes the next tag, with `item` released once that write is durable.
    pub fn issue_with(&mut self, item: T) -> u64 {
        let tag = self.issue();
        self.hold(tag, item);
        tag
    }

    /// Holds `item` until write `tag` is durable. Tags must not go back:
    /// items leave in the order they were held.
    pub fn hold(&mut self, tag: u64, item: T) {
        if let Some((last, _)) = self.waiting.back() {
            assert!(tag >= *last, "held for write {tag} after write {last}");
        }
        self.waiting.push_back((tag, item));
    }

    /// Holds `item` until every write issued so far is durable; with none in
    /// flight, hands it back at once.
    pub fn hold_for_issued(&mut self, item: T) -> Option<T> {
        if self.in_flight() {
            self.hold(self.issued, item);
            None
        } else {
            Some(item)
        }
    }

    /// Write `tag` and every write before it are durable: the items that
    /// waited for them, oldest first.
    pub fn persisted(&mut self, tag: u64) -> impl Iterator<Item = T> + '_ {
        assert!(tag >= self.durable, "durability went backwards: {tag} after {}", self.durable);
        self.durable = tag;
        std::iter::from_fn(move || match self.waiting.front() {
            Some((t, _)) if *t <= tag => self.waiting.pop_front().map(|(_, item)| item),
            _ => None,
        })
    }

    /// The items still waiting, oldest first.
    pub fn waiting(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.waiting.iter().map(|(_, item)| item)
    }

    /// The items still waiting, to amend (a truncated log caps what a write
    /// in flight still vouches for).
    pub fn waiting_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.waiting.iter_mut().map(|(_, item)| item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_leave_when_their_write_and_every_earlier_one_is_durable() {
        let mut q = WriteQueue::new();
        assert_eq!(q.issue_with("a"), 1);
        assert_eq!(q.issue(), 2);
        q.hold(2, "b");
        assert_eq!(q.issue_with("c"), 3);
        assert_eq!(q.persisted(0).count(), 0);
        assert_eq!(q.persisted(2).collect::<Vec<_>>(), ["a", "b"]);
        assert!(q.in_flight());
        assert_eq!(q.waiting().collect::<Vec<_>>(), [&"c"]);
        assert_eq!(q.persisted(3).collect::<Vec<_>>(), ["c"]);
        assert!(!q.in_flight());
        assert_eq!(q.next_tag(), 4);
    }

    #[test]
    fn with_nothing_in_flight_an_item_is_handed_back_at_once() {
        let mut q = WriteQueue::new();
        assert_eq!(q.hold_for_issued("now"), Some("now"));
        q.issue();
        assert_eq!(q.hold_for_issued("later"), None);
        assert_eq!(q.persisted(1).collect::<Vec<_>>(), ["later"]);
    }

    #[test]
    #[should_panic(expected = "durability went backwards")]
    fn a_report_older_than_the_last_is_the_drivers_bug() {
        let mut q: WriteQueue<()> = WriteQueue::new();
        q.issue();
        q.issue();
        q.persisted(2).for_each(drop);
        q.persisted(1).for_each(drop);
    }
}
