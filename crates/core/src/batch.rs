//! Cutting what a node sends into messages that fit a peer's frame.
//!
//! Every batch a protocol sends (appended entries, proposals, catch-up
//! answers, promise pages) is capped twice: by a count and by bytes. The byte
//! cap is what keeps a message under the transport's frame limit; a message
//! over it is refused by the receiver, and a retry would send the same bytes
//! again. The first item always goes: it fitted the message that brought it.

use serde::Serialize;

/// How many of the leading items (by their `sizes`) go in one message: at most
/// `max_count` (zero when there is no room), and no more than `max_bytes` in
/// all unless a single item is larger on its own (with room, one item always
/// goes when there is one).
pub fn fitting(sizes: impl IntoIterator<Item = usize>, max_count: usize, max_bytes: usize) -> usize {
    let mut room = Room::new(max_count, max_bytes);
    sizes.into_iter().take_while(|&size| room.admits(size)).count()
}

/// The rule of [`fitting`], one item at a time, for a message filled from
/// items produced lazily (a promise page read from the acceptor's votes as
/// far as it goes).
#[derive(Clone, Copy, Debug)]
pub struct Room {
    max_count: usize,
    max_bytes: usize,
    count: usize,
    bytes: usize,
}

impl Room {
    /// An empty message that holds at most `max_count` items and `max_bytes`
    /// bytes of them (past the first).
    pub fn new(max_count: usize, max_bytes: usize) -> Room {
        Room { max_count, max_bytes, count: 0, bytes: 0 }
    }

    /// Whether the next item, of `size` bytes, goes in; it is counted if so.
    /// Once an item is refused, the message is full: callers stop there.
    pub fn admits(&mut self, size: usize) -> bool {
        let bytes = self.bytes.saturating_add(size);
        if self.count >= self.max_count || (self.count > 0 && bytes > self.max_bytes) {
            return false;
        }
        self.count += 1;
        self.bytes = bytes;
        true
    }
}

/// The encoded size of `value` in a message (postcard, as every transport
/// encodes messages).
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::fitting;

    #[test]
    fn the_count_and_the_bytes_both_cap_a_batch_and_one_item_always_goes() {
        assert_eq!(fitting([10, 10, 10, 10], 3, 100), 3, "count");
        assert_eq!(fitting([10, 10, 10, 10], 9, 25), 2, "bytes");
        assert_eq!(fitting([10, 10, 10, 10], 9, 30), 3, "exactly full");
        assert_eq!(fitting([500, 10], 9, 100), 1, "one oversized item still goes, alone");
        assert_eq!(fitting([10, 10], 0, 100), 0, "no room, nothing goes");
        assert_eq!(fitting(std::iter::empty(), 9, 100), 0);
    }
}
