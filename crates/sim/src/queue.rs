//! The event queue: a min-heap ordered by (virtual time, insertion sequence), so
//! events at the same instant run in the order they were scheduled.
//!
//! The heap holds small keys; the events themselves (a message can be hundreds
//! of bytes) stay put in a slab of reused slots, so sifting moves 24 bytes per
//! step instead of a whole event.

use quorum_core::Instant;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Key {
    at: Instant,
    seq: u64,
    /// Where the event waits in `EventQueue::slots`.
    slot: u32,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Pending events in time order.
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    /// Every pending event, at the slot its key names; `None` where free.
    slots: Vec<Option<E>>,
    /// Slots emptied by `pop`, taken again by `push`.
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> EventQueue<E> {
    pub(crate) fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), next_seq: 0 }
    }

    pub(crate) fn push(&mut self, at: Instant, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                // More than 4 billion events pending at once would exhaust
                // memory long before this conversion could fail.
                let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 pending events");
                self.slots.push(Some(event));
                slot
            }
        };
        self.heap.push(Key { at, seq, slot });
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, E)> {
        let key = self.heap.pop()?;
        let event = self.slots[key.slot as usize].take().expect("a queued key names a filled slot");
        self.free.push(key.slot);
        Some((key.at, event))
    }

    /// Every pending event, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Instant, &E)> {
        self.heap
            .iter()
            .map(|k| (k.at, self.slots[k.slot as usize].as_ref().expect("a queued key names a filled slot")))
    }

    pub(crate) fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|k| k.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_insertion_order() {
        let mut q = EventQueue::new();
        q.push(Instant::from_nanos(5), "b");
        q.push(Instant::from_nanos(1), "a");
        q.push(Instant::from_nanos(5), "c");
        assert_eq!(q.peek_time(), Some(Instant::from_nanos(1)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!["a", "b", "c"]);
    }
}
