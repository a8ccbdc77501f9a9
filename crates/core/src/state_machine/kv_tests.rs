//! The store's increments and deadlines.

use super::testing::{apply, b};
use super::*;

#[test]
fn incr_sums_at_its_index_and_refuses_what_is_not_an_integer() {
    let mut store = KvStore::new();
    // With the sequence number given: a retry reuses one.
    let mut apply_as =
        |seq: u64, op: KvOp| KvResult::decode(&store.apply(seq, &Command::new(ClientId(1), seq, op.encode()))).unwrap();
    assert_eq!(apply_as(1, KvOp::Incr { key: b("n"), by: 5 }), KvResult::Integer(5));
    // A retry of the same (client, seq) is answered, not applied again.
    assert_eq!(apply_as(1, KvOp::Incr { key: b("n"), by: 5 }), KvResult::Integer(5));
    assert_eq!(apply_as(2, KvOp::Incr { key: b("n"), by: -7 }), KvResult::Integer(-2));
    let overflow = apply_as(3, KvOp::Incr { key: b("n"), by: i64::MIN });
    assert_eq!(overflow, KvResult::Invalid("increment or decrement would overflow".into()));
    for (seq, text) in [(4, "x"), (5, "007"), (6, " 1"), (7, "+1"), (8, "99999999999999999999")] {
        apply_as(seq, KvOp::Put { key: b("s"), value: b(text) });
        let got = apply_as(100 + seq, KvOp::Incr { key: b("s"), by: 1 });
        assert_eq!(got, KvResult::Invalid("value is not an integer or out of range".into()), "{text}");
    }
    apply_as(120, KvOp::HSet { key: b("h"), pairs: vec![(b("f"), b("1"))], if_new: false });
    assert_eq!(apply_as(121, KvOp::Incr { key: b("h"), by: 1 }), KvResult::WrongType);
    assert_eq!(store.get(b"n"), Some(&b("-2")));
}

fn expire(key: &str, at: Option<u64>, when: ExpireIf) -> KvOp {
    KvOp::Expire { key: b(key), at: at.map_or(Ttl::Persist, Ttl::At), now: 1_000, when }
}

#[test]
fn only_the_leaders_sweep_deletes_keys_past_their_deadline() {
    let mut store = KvStore::new();
    apply(&mut store, KvOp::Put { key: b("a"), value: b("1") });
    apply(&mut store, KvOp::Put { key: b("b"), value: b("2") });
    assert_eq!(apply(&mut store, expire("a", Some(2_000), ExpireIf::Always)), KvResult::Swapped(true));
    assert_eq!(apply(&mut store, expire("b", Some(3_000), ExpireIf::Always)), KvResult::Swapped(true));
    assert_eq!(apply(&mut store, expire("none", Some(3_000), ExpireIf::Always)), KvResult::Swapped(false));
    // Past the deadline by any clock, the key stays until a sweep is applied.
    assert_eq!(store.housekeeping(1_999), None);
    let sweep = store.housekeeping(2_500).expect("a is due at 2,500");
    assert_eq!(KvOp::decode(&sweep).unwrap(), KvOp::Sweep { now: 2_500 });
    assert_eq!(store.get(b"a"), Some(&b("1")));
    assert_eq!(apply(&mut store, KvOp::Sweep { now: 2_500 }), KvResult::Deleted(true));
    assert_eq!((store.get(b"a"), store.get(b"b")), (None, Some(&b("2"))));
    assert_eq!(apply(&mut store, KvOp::Deadline { key: b("b") }), KvResult::Deadline { exists: true, at: Some(3_000) });
    assert_eq!(apply(&mut store, KvOp::Sweep { now: 2_600 }), KvResult::Deleted(false));
    assert_eq!(store.expiring(), 1);
}

#[test]
fn writes_keep_or_drop_a_deadline_as_redis_does() {
    let mut store = KvStore::new();
    let txn = |writes: Vec<(&str, Option<&str>)>, ttls: Vec<(&str, Ttl)>| KvOp::Txn {
        checks: vec![],
        writes: writes.into_iter().map(|(k, v)| (b(k), v.map(b))).collect(),
        ttls: ttls.into_iter().map(|(k, t)| (b(k), t)).collect(),
        now: 1_000,
    };
    // SET k v EX: value and deadline at one index.
    apply(&mut store, txn(vec![("k", Some("1"))], vec![("k", Ttl::At(5_000))]));
    assert_eq!(store.deadline(b"k"), Some(5_000));
    // A compare-and-set (APPEND) keeps it, and so does INCR.
    apply(&mut store, KvOp::Cas { key: b("k"), expected: Some(b("1")), new: b("2") });
    assert_eq!(store.deadline(b"k"), Some(5_000));
    assert_eq!(apply(&mut store, KvOp::Incr { key: b("k"), by: 40 }), KvResult::Integer(42));
    assert_eq!(apply(&mut store, KvOp::Incr { key: b("k"), by: -40 }), KvResult::Integer(2));
    assert_eq!(store.deadline(b"k"), Some(5_000));
    // RENAME carries it; the old name loses it.
    apply(&mut store, txn(vec![("k", None), ("j", Some("2"))], vec![("j", Ttl::From(b("k")))]));
    assert_eq!((store.deadline(b"k"), store.deadline(b"j")), (None, Some(5_000)));
    // A plain SET drops it; so does a delete.
    apply(&mut store, KvOp::Put { key: b("j"), value: b("3") });
    assert_eq!(store.deadline(b"j"), None);
    apply(&mut store, txn(vec![("d", Some("1"))], vec![("d", Ttl::At(9_000)), ("gone", Ttl::At(9_000))]));
    apply(&mut store, KvOp::Del { key: b("d") });
    assert_eq!((store.deadline(b"d"), store.deadline(b"gone"), store.expiring()), (None, None, 0));
    // NX / XX / GT / LT, PERSIST, and a deadline already past.
    apply(&mut store, KvOp::Put { key: b("e"), value: b("1") });
    assert_eq!(apply(&mut store, expire("e", Some(4_000), ExpireIf::HasDeadline)), KvResult::Swapped(false));
    assert_eq!(apply(&mut store, expire("e", Some(4_000), ExpireIf::Later)), KvResult::Swapped(false));
    assert_eq!(apply(&mut store, expire("e", Some(4_000), ExpireIf::NoDeadline)), KvResult::Swapped(true));
    assert_eq!(apply(&mut store, expire("e", Some(3_000), ExpireIf::Later)), KvResult::Swapped(false));
    assert_eq!(apply(&mut store, expire("e", Some(3_000), ExpireIf::Earlier)), KvResult::Swapped(true));
    assert_eq!(apply(&mut store, expire("e", None, ExpireIf::Always)), KvResult::Swapped(true));
    assert_eq!(apply(&mut store, expire("e", None, ExpireIf::Always)), KvResult::Swapped(false));
    assert_eq!(apply(&mut store, expire("e", Some(900), ExpireIf::Always)), KvResult::Swapped(true));
    assert_eq!(store.get(b"e"), None, "a deadline before the command's clock deletes at once");
}

#[test]
fn deadlines_survive_a_snapshot_and_a_clear_drops_them() {
    let mut store = KvStore::new();
    apply(&mut store, KvOp::Put { key: b("a"), value: b("1") });
    apply(&mut store, expire("a", Some(7_000), ExpireIf::Always));
    let mut copy = KvStore::new();
    copy.restore(&store.snapshot()).unwrap();
    assert_eq!(copy, store);
    assert_eq!(copy.deadline(b"a"), Some(7_000));
    apply(&mut copy, KvOp::Clear);
    assert_eq!((copy.expiring(), copy.housekeeping(u64::MAX)), (0, None));
}

#[test]
fn a_relative_deadline_counts_from_the_clock_the_leader_stamped() {
    let mut store = KvStore::new();
    // SET k v EX 10, taken by a node whose clock read 1,000 ...
    let set = KvOp::Txn {
        checks: vec![],
        writes: vec![(b("k"), Some(b("v")))],
        ttls: vec![(b("k"), Ttl::In(10_000))],
        now: 1_000,
    };
    // ... and proposed by a leader whose clock reads 5,000.
    let stamped = KvOp::decode(&store.stamp(&set.encode(), 5_000).unwrap()).unwrap();
    assert!(matches!(stamped, KvOp::Txn { now: 5_000, .. }), "{stamped:?}");
    apply(&mut store, stamped);
    assert_eq!(store.deadline(b"k"), Some(15_000));
    let expire = KvOp::Expire { key: b("k"), at: Ttl::In(500), now: 1_000, when: ExpireIf::Always };
    let stamped = KvOp::decode(&store.stamp(&expire.encode(), 7_000).unwrap()).unwrap();
    apply(&mut store, stamped);
    assert_eq!(store.deadline(b"k"), Some(7_500));
    // Commands without time are proposed as they are.
    assert_eq!(store.stamp(&KvOp::Put { key: b("k"), value: b("w") }.encode(), 7_000), None);
    assert_eq!(store.stamp(b"not an operation", 7_000), None);
}

#[test]
fn one_sweep_deletes_at_most_max_swept_keys_earliest_first() {
    let mut store = KvStore::new();
    let n = MAX_SWEPT + 5;
    let ttls = (0..n).map(|i| (b(&format!("k{i:06}")), Ttl::At(100 + i as u64))).collect();
    let writes = (0..n).map(|i| (b(&format!("k{i:06}")), Some(b("v")))).collect();
    apply(&mut store, KvOp::Txn { checks: vec![], writes, ttls, now: 0 });
    assert_eq!(apply(&mut store, KvOp::Sweep { now: u64::MAX }), KvResult::Deleted(true));
    assert_eq!(store.len(), 5, "the latest five are left for the next sweep");
    assert!(store.get(b"k010004").is_some() && store.get(b"k009999").is_none());
    assert!(store.housekeeping(u64::MAX).is_some());
    apply(&mut store, KvOp::Sweep { now: u64::MAX });
    assert_eq!((store.len(), store.housekeeping(u64::MAX)), (0, None));
}
