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
    let mut bytes = 0usize;
    let mut keep = 0;
    for size in sizes.into_iter().take(max_count) {
        bytes = bytes.saturating_add(size);
        if keep > 0 && bytes > max_bytes {
            break;
        }
        keep += 1;
    }
    keep
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
