//! Unit tests of both checkers, and the cross-check of the register check
//! and the reduced search against the plain search on random histories.

use super::*;
use quorum_core::{ClientId, Instant};

fn t(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

fn op(client: u64, kv: KvOp, from: u64, to: Option<u64>, result: KvResult) -> Operation {
    Operation {
        client: ClientId(client),
        seq: from,
        op: kv,
        invoked: t(from),
        outcome: match to {
            Some(to) => Outcome::Ok { at: t(to), result },
            None => Outcome::Unknown,
        },
        answered_by: None,
    }
}

fn put(v: &'static str) -> KvOp {
    KvOp::Put { key: Bytes::from_static(b"x"), value: Bytes::from_static(v.as_bytes()) }
}

fn get() -> KvOp {
    KvOp::Get { key: Bytes::from_static(b"x") }
}

fn val(v: &'static str) -> KvResult {
    KvResult::Value(Some(Bytes::from_static(v.as_bytes())))
}

#[test]
fn concurrent_writes_with_a_read_that_sees_either() {
    for seen in ["a", "b"] {
        let h = vec![
            op(1, put("a"), 0, Some(10), KvResult::Done),
            op(2, put("b"), 1, Some(11), KvResult::Done),
            op(3, get(), 12, Some(13), val(seen)),
        ];
        assert!(check(&h).is_ok(), "reading {seen} after concurrent writes is linearizable");
    }
}

#[test]
fn a_stale_read_is_caught() {
    let h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(1, put("b"), 2, Some(3), KvResult::Done),
        op(2, get(), 4, Some(5), val("a")),
    ];
    let err = check(&h).unwrap_err();
    assert_eq!(err.key, "x");
    assert!(err.detail.contains("no linearization"), "{err}");
}

#[test]
fn a_lost_write_is_caught() {
    let h = vec![op(1, put("a"), 0, Some(1), KvResult::Done), op(2, get(), 2, Some(3), KvResult::Value(None))];
    assert!(check(&h).is_err());
}

#[test]
fn a_read_of_a_value_never_written_is_caught() {
    let h = vec![op(1, put("a"), 0, Some(1), KvResult::Done), op(2, get(), 0, Some(3), val("zzz"))];
    assert!(check(&h).is_err());
}

#[test]
fn a_timed_out_write_may_show_up_later_or_never() {
    let shows_up = vec![
        op(1, put("a"), 0, None, KvResult::Done),
        op(2, get(), 5, Some(6), KvResult::Value(None)),
        op(2, get(), 100, Some(101), val("a")),
    ];
    assert!(check(&shows_up).is_ok());
    let never = vec![op(1, put("a"), 0, None, KvResult::Done), op(2, get(), 100, Some(101), KvResult::Value(None))];
    assert!(check(&never).is_ok());
    // But once seen it cannot be unseen.
    let flicker = vec![
        op(1, put("a"), 0, None, KvResult::Done),
        op(2, get(), 5, Some(6), val("a")),
        op(2, get(), 7, Some(8), KvResult::Value(None)),
    ];
    assert!(check(&flicker).is_err());
}

#[test]
fn cas_and_delete_follow_the_model() {
    let cas = |e: Option<&'static str>, n: &'static str| KvOp::Cas {
        key: Bytes::from_static(b"x"),
        expected: e.map(|s| Bytes::from_static(s.as_bytes())),
        new: Bytes::from_static(n.as_bytes()),
    };
    let good = vec![
        op(1, cas(None, "a"), 0, Some(1), KvResult::Swapped(true)),
        op(1, cas(None, "b"), 2, Some(3), KvResult::Swapped(false)),
        op(1, KvOp::Del { key: Bytes::from_static(b"x") }, 4, Some(5), KvResult::Deleted(true)),
        op(1, get(), 6, Some(7), KvResult::Value(None)),
    ];
    assert!(check(&good).is_ok());
    let bad = vec![
        op(1, cas(None, "a"), 0, Some(1), KvResult::Swapped(true)),
        op(2, cas(None, "b"), 2, Some(3), KvResult::Swapped(true)),
    ];
    assert!(check(&bad).is_err(), "two CAS from absent cannot both succeed in sequence");
}

#[test]
fn keys_are_checked_independently() {
    let y = |v: &'static str| KvOp::Put { key: Bytes::from_static(b"y"), value: Bytes::from_static(v.as_bytes()) };
    let h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(1, y("b"), 2, Some(3), KvResult::Done),
        op(2, get(), 4, Some(5), val("a")),
    ];
    assert!(check(&h).is_ok());
}

/// Every method gives this verdict on `h`.
fn all_agree(h: &[Operation]) -> bool {
    let verdicts: Vec<bool> =
        [Method::Auto, Method::Search, Method::PlainSearch].iter().map(|m| check_with(h, *m).is_ok()).collect();
    assert!(verdicts.iter().all(|v| *v == verdicts[0]), "methods disagree ({verdicts:?}) on {h:#?}");
    verdicts[0]
}

/// `check` refuses `h` saying `says`, and every method agrees that it is not
/// linearizable.
fn assert_every_check_refuses(h: &[Operation], says: &str) {
    let err = check(h).unwrap_err();
    assert!(err.detail.contains(says), "{err}");
    assert!(!all_agree(h));
}

fn del() -> KvOp {
    KvOp::Del { key: Bytes::from_static(b"x") }
}

fn cas(e: Option<&'static str>, n: &'static str) -> KvOp {
    KvOp::Cas {
        key: Bytes::from_static(b"x"),
        expected: e.map(|s| Bytes::from_static(s.as_bytes())),
        new: Bytes::from_static(n.as_bytes()),
    }
}

#[test]
fn the_register_check_decides_puts_reads_and_successful_cas() {
    let h = vec![
        op(1, put("a"), 0, Some(10), KvResult::Done),
        op(2, put("b"), 1, Some(11), KvResult::Done),
        op(3, get(), 12, Some(13), val("b")),
        op(3, cas(Some("b"), "c"), 14, Some(15), KvResult::Swapped(true)),
        op(2, get(), 16, Some(17), val("c")),
    ];
    assert_eq!(check_with(&h, Method::Auto), Ok(Decided { by_register: 1, by_search: 0, by_counter: 0 }));
    assert!(all_agree(&h));
}

#[test]
fn overlapping_forward_zones_are_a_violation() {
    // a is read after b was read, but b was written after a was read: a, b, a.
    let h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(2, put("b"), 0, Some(1), KvResult::Done),
        op(3, get(), 2, Some(3), val("a")),
        op(3, get(), 4, Some(5), val("b")),
        op(4, get(), 6, Some(7), val("a")),
    ];
    assert_every_check_refuses(&h, "overlap");
}

#[test]
fn a_backward_zone_inside_a_forward_one_is_a_violation() {
    // 'b' is written and read entirely while 'a' must hold.
    let h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(2, put("b"), 2, Some(3), KvResult::Done),
        op(3, get(), 2, Some(3), val("b")),
        op(4, get(), 4, Some(5), val("a")),
    ];
    assert_every_check_refuses(&h, "ran inside that stretch");
}

#[test]
fn a_read_before_the_write_it_saw_is_a_violation() {
    let h = vec![op(1, get(), 0, Some(1), val("a")), op(2, put("a"), 2, Some(3), KvResult::Done)];
    let err = check(&h).unwrap_err();
    assert!(err.detail.contains("returned before it was written"), "{err}");
}

#[test]
fn two_cas_from_one_value_is_a_violation() {
    let h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(2, cas(Some("a"), "b"), 2, Some(3), KvResult::Swapped(true)),
        op(3, cas(Some("a"), "c"), 2, Some(3), KvResult::Swapped(true)),
    ];
    assert_every_check_refuses(&h, "both replaced");
}

#[test]
fn an_unanswered_cas_that_was_seen_took_effect() {
    let h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(2, cas(Some("a"), "b"), 2, None, KvResult::Done),
        op(3, get(), 10, Some(11), val("b")),
        op(3, get(), 12, Some(13), val("a")),
    ];
    assert!(!all_agree(&h), "once b replaced a, a cannot come back");
}

#[test]
fn deletes_and_failed_cas_go_to_the_search() {
    let h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(2, del(), 2, Some(3), KvResult::Deleted(true)),
        op(3, cas(Some("a"), "b"), 4, Some(5), KvResult::Swapped(false)),
        op(3, get(), 6, Some(7), KvResult::Value(None)),
    ];
    assert_eq!(check_with(&h, Method::Auto), Ok(Decided { by_register: 0, by_search: 1, by_counter: 0 }));
    assert!(all_agree(&h));
}

#[test]
fn a_violation_among_unique_values_is_found_even_with_deletes() {
    let h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(1, put("b"), 2, Some(3), KvResult::Done),
        op(2, get(), 4, Some(5), val("a")),
        op(3, del(), 6, Some(7), KvResult::Deleted(true)),
    ];
    let err = check(&h).unwrap_err();
    assert!(err.detail.contains("ran inside that stretch"), "the register check found it: {err}");
}

/// Whether the register check alone decides `h`: some key fails it, or it decides every key.
fn register_decides(h: &[Operation]) -> bool {
    let mut per_key: std::collections::BTreeMap<&Bytes, Vec<&Operation>> = Default::default();
    for o in h.iter().filter(|o| !(o.op.is_read() && o.outcome == Outcome::Unknown)) {
        per_key.entry(o.op.key()).or_default().push(o);
    }
    let verdicts: Vec<register::Verdict> = per_key.values().map(|ops| register::decide(ops)).collect();
    verdicts.iter().any(|v| matches!(v, register::Verdict::Violation(_)))
        || verdicts.iter().all(|v| matches!(v, register::Verdict::Linearizable))
}

/// The number of random histories the cross-check runs (`LINCHECK_CROSS_CHECKS`
/// overrides it for a long run).
fn cross_checks() -> u64 {
    std::env::var("LINCHECK_CROSS_CHECKS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000)
}

/// The register check (where it decides), the reduced search and the plain
/// search agree on random small histories, correct ones and ones with a
/// planted stale read, lost write or reordered writes.
#[test]
fn the_checkers_agree_on_random_histories() {
    use gen::{Fault, GenConfig};
    let faults = [None, Some(Fault::StaleRead), Some(Fault::LostWrite), Some(Fault::ReorderedWrites)];
    let runs = cross_checks();
    let mut by_register = 0;
    // [fault][register decided][linearizable]
    let mut tally = [[[0u64; 2]; 2]; 4];
    for seed in 0..runs {
        let mut rng = quorum_core::Rng::new(seed ^ 0x5eed);
        let fault = rng.index(faults.len());
        let mix = rng.index(3);
        let cfg = GenConfig {
            clients: 1 + rng.index(4),
            keys: 1 + rng.index(2),
            ops: 1 + rng.index(12),
            read_ratio: 0.45,
            cas_ratio: if mix == 0 { 0.0 } else { 0.15 },
            delete_ratio: if mix == 2 { 0.1 } else { 0.0 },
            unknown_ratio: [0.0, 0.05, 0.2][rng.index(3)],
            max_gap: rng.range(0, 4),
            max_latency: rng.range(0, 4),
            fault: faults[fault],
        };
        let h = gen::history(seed, &cfg);
        let plain = check_with(&h, Method::PlainSearch).is_ok();
        let reduced = check_with(&h, Method::Search).is_ok();
        let auto = check_with(&h, Method::Auto);
        let register_decided = register_decides(&h);
        assert_eq!(
            (auto.is_ok(), reduced),
            (plain, plain),
            "seed {seed}: auto/reduced vs plain search disagree ({:?}) on {cfg:?}: {h:#?}",
            auto
        );
        if fault == 0 {
            assert!(plain, "seed {seed}: a history generated without a fault is linearizable: {h:#?}");
        }
        by_register += register_decided as u64;
        tally[fault][register_decided as usize][plain as usize] += 1;
    }
    eprintln!(
        "{runs} histories, {by_register} decided by the register check; [fault][register][linearizable]: {tally:?}"
    );
    if runs >= 50_000 {
        for (fault, t) in tally.iter().enumerate().skip(1) {
            assert!(
                t[1][0] > runs / 40,
                "fault {:?}: too few violations the register check decided: {t:?}",
                faults[fault]
            );
            assert!(t[0][0] > 0, "fault {:?}: no violation the search decided: {t:?}", faults[fault]);
        }
    }
}

/// Seen at 300 clients: a write whose call came before a compare-and-set
/// from absent but which must be placed after it. Trying that write first
/// makes the compare-and-set impossible for good, and before the search knew
/// that, it tried every order of the other writes first.
#[test]
fn a_write_that_forecloses_a_cas_from_absent_is_a_dead_end_at_once() {
    let mut h = vec![
        op(1, put("early"), 0, Some(49), KvResult::Done),
        op(2, cas(None, "first"), 1, Some(50), KvResult::Swapped(true)),
        op(3, cas(None, "late"), 1, Some(100), KvResult::Swapped(false)),
    ];
    for (i, name) in NAMES.iter().enumerate() {
        h.push(op(10 + i as u64, put(name), 0, Some(100), KvResult::Done));
    }
    h.push(op(99, get(), 101, Some(102), val("p7")));
    assert_eq!(check_with(&h, Method::Search), Ok(Decided { by_register: 0, by_search: 1, by_counter: 0 }));
}

/// Forty names for concurrent writes.
const NAMES: [&str; 40] = [
    "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11", "p12", "p13", "p14", "p15", "p16", "p17",
    "p18", "p19", "p20", "p21", "p22", "p23", "p24", "p25", "p26", "p27", "p28", "p29", "p30", "p31", "p32", "p33",
    "p34", "p35", "p36", "p37", "p38", "p39",
];

/// Seen at 200 clients: two compare-and-sets from absent need two stretches
/// of absence, so two deletes; once a write has used up the one delete left
/// for them, the state is a dead end, though "a delete is left" held.
#[test]
fn each_cas_from_absent_needs_a_stretch_of_absence_of_its_own() {
    let mut h = vec![
        op(1, cas(None, "a"), 0, Some(50), KvResult::Swapped(true)),
        op(2, put("x"), 0, Some(40), KvResult::Done),
        op(3, del(), 0, Some(60), KvResult::Deleted(true)),
        op(4, cas(None, "b"), 0, Some(70), KvResult::Swapped(true)),
    ];
    for (i, name) in NAMES.iter().enumerate() {
        h.push(op(10 + i as u64, put(name), 0, Some(100), KvResult::Done));
    }
    h.push(op(99, get(), 101, Some(102), val("p7")));
    assert_eq!(check_with(&h, Method::Search), Ok(Decided { by_register: 0, by_search: 1, by_counter: 0 }));
}

/// Seen at 200 clients: dozens of writes that never got an answer (clients
/// that gave up while there was no leader) may each take effect at any point
/// after their call. Those that write values nobody saw are interchangeable,
/// so a violation is proved without trying every subset of them.
#[test]
fn unanswered_writes_of_unseen_values_are_interchangeable() {
    let mut h = vec![
        op(1, put("a"), 0, Some(1), KvResult::Done),
        op(2, put("b"), 2, Some(3), KvResult::Done),
        op(3, get(), 4, Some(5), val("a")),
    ];
    for (i, name) in NAMES.iter().enumerate() {
        h.push(op(10 + i as u64, put(name), 0, None, KvResult::Done));
    }
    let err = check_with(&h, Method::Search).unwrap_err();
    assert!(err.detail.contains("no linearization") && !err.detail.contains("gave up"), "{err}");
}

/// Seen at 200 clients: reads of absent called after the writes that must
/// come before them returned. Once a write follows the last delete, those
/// reads can never be placed; the search must see that before they are
/// called, not after trying every order of the writes in between.
#[test]
fn reads_of_absent_not_yet_called_need_a_delete_too() {
    let mut h = vec![op(1, put("a"), 0, Some(5), KvResult::Done), op(2, del(), 1, Some(10), KvResult::Deleted(true))];
    for (i, name) in NAMES.iter().enumerate() {
        h.push(op(10 + i as u64, put(name), 2, Some(11), KvResult::Done));
    }
    h.push(op(99, get(), 12, Some(20), KvResult::Value(None)));
    assert_eq!(check_with(&h, Method::Search), Ok(Decided { by_register: 0, by_search: 1, by_counter: 0 }));
}

/// Seen at 200 clients (Raft, high load, seed 358: 1,943 operations on a key,
/// 38 s before the search gave up, decided in under 0.1 s since): the first
/// requests all wait for the first election, so dozens of answered writes of
/// values nobody read, and deletes, overlap one another. Operations that do
/// the same thing with the same result are interchangeable once called, so
/// only the one that returns first is tried; without that, proving this
/// history wrong took every subset of the writes.
#[test]
fn answered_twins_are_interchangeable_too() {
    let mut h = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        h.push(op(10 + i as u64, put(name), 0, Some(10), KvResult::Done));
    }
    for c in 0..4 {
        h.push(op(50 + c, del(), 0, Some(10), KvResult::Deleted(true)));
    }
    // After all of them: one write's value, then absent, with no delete left.
    h.push(op(98, get(), 20, Some(21), val(NAMES[0])));
    h.push(op(99, get(), 30, Some(31), KvResult::Value(None)));
    let err = check_with(&h, Method::Search).unwrap_err();
    assert!(err.detail.contains("no linearization") && !err.detail.contains("gave up"), "{err}");
}

#[test]
fn a_multi_key_transaction_or_an_expiry_is_refused_not_judged_key_by_key() {
    let x = Bytes::from_static(b"x");
    let txn =
        KvOp::Txn { checks: vec![], writes: vec![(x.clone(), Some(Bytes::from_static(b"a")))], ttls: vec![], now: 0 };
    let expire = KvOp::Expire { key: x, at: quorum_core::Ttl::At(5), now: 1, when: quorum_core::ExpireIf::Always };
    for (refused, shown) in [(txn, "(txn of 0 checks, 1 writes"), (expire, "(expire x at At(5))")] {
        let h = vec![op(1, refused, 0, Some(10), KvResult::Swapped(true)), op(2, get(), 12, Some(13), val("a"))];
        let err = check(&h).unwrap_err();
        let why = "multi-key transaction, scan or clear, or an expiry, which this checker cannot judge";
        assert!(err.detail.contains(why) && err.detail.contains(shown), "{err:?}");
    }
}

#[test]
fn increments_are_judged_against_a_counter_and_a_doubled_one_is_caught() {
    let incr = || KvOp::Incr { key: Bytes::from_static(b"k"), by: 1 };
    let n = KvResult::Integer;
    let get = || KvOp::Get { key: Bytes::from_static(b"k") };
    // Two concurrent increments in either order, an unanswered one that took
    // effect (the read sees 3), and one that did not.
    let h = vec![
        op(1, incr(), 0, Some(10), n(2)),
        op(2, incr(), 1, Some(9), n(1)),
        op(3, incr(), 11, None, KvResult::Done),
        op(4, get(), 20, Some(21), val("3")),
        op(5, incr(), 30, None, KvResult::Done),
        op(6, get(), 40, Some(41), KvResult::Value(Some(Bytes::from_static(b"3")))),
    ];
    assert_eq!(check_with(&h, Method::Auto), Ok(Decided { by_register: 0, by_search: 0, by_counter: 1 }));
    // An increment counted twice: 1, then 3 with nothing between.
    let doubled = vec![op(1, incr(), 0, Some(1), n(1)), op(2, incr(), 2, Some(3), n(3))];
    let err = check_with(&doubled, Method::Auto).unwrap_err();
    assert!(err.detail.contains("no linearization") && err.detail.contains("incrby k 1"), "{err}");
    // Two increments both answered 1: one was lost.
    let lost = vec![op(1, incr(), 0, Some(5), n(1)), op(2, incr(), 1, Some(6), n(1))];
    assert!(check_with(&lost, Method::Auto).unwrap_err().detail.contains("no linearization"));
}

/// Seen at 200 clients (Zab, high load, seed 798: 3,292 operations on a key,
/// undecided after 20 million steps, decided in 8 ms since): a
/// compare-and-set that never got an answer wrote a value a later read saw, so
/// it did take effect, and succeeded. Knowing that when it starts, the search
/// keeps the value it expects until it is placed, instead of learning it when
/// the read is due, after every order of the writes in between.
#[test]
fn an_unanswered_cas_whose_value_was_read_keeps_what_it_expects() {
    let mut h = vec![op(1, put("a"), 0, Some(1), KvResult::Done), op(2, cas(Some("a"), "b"), 2, None, KvResult::Done)];
    for (i, name) in NAMES.iter().enumerate() {
        h.push(op(10 + i as u64, put(name), 3, Some(100), KvResult::Done));
        h.push(op(60 + i as u64, get(), 3, Some(100), val(name)));
    }
    // b needs a, and every write above replaced a before it returned.
    h.push(op(99, get(), 101, Some(102), val("b")));
    let err = check_with(&h, Method::Search).unwrap_err();
    assert!(err.detail.contains("no linearization") && !err.detail.contains("gave up"), "{err}");
}

/// Seen at 200 clients (Raft, high load, seed 896: 11,234 operations on a
/// key, undecided after 20 million steps, decided in 0.6 s since): dozens of
/// writes that never got an answer, and many written values read and then
/// never looked at again. Two rules keep the search small, and without
/// either it gives up on this history: an unanswered write that would leave
/// the state as it is is never placed (it can come last, where it changes
/// nothing either), and a value no unplaced operation compares with is one
/// state with every other such value, so orders of finished writes meet again.
#[test]
fn idle_unanswered_writes_and_finished_values_do_not_multiply_the_search() {
    let mut h = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        h.push(op(10 + i as u64, put(name), 0, None, KvResult::Done));
    }
    for i in 0..18 {
        let value = Bytes::from(format!("q{i}"));
        let key = Bytes::from_static(b"x");
        h.push(op(100 + i, KvOp::Put { key, value: value.clone() }, 1, Some(50), KvResult::Done));
        h.push(op(200 + i, get(), 1, Some(50), KvResult::Value(Some(value))));
    }
    // q0 is read after a compare-and-set found something else there, but
    // nothing can write it again.
    h.push(op(97, cas(Some("q0"), "z"), 55, Some(56), KvResult::Swapped(false)));
    h.push(op(98, get(), 57, Some(58), val("q0")));
    let err = check_with(&h, Method::Search).unwrap_err();
    assert!(err.detail.contains("no linearization") && !err.detail.contains("gave up"), "{err}");
}
