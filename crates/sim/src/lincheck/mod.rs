//! A linearizability checker for key-value histories.
//!
//! Keys are independent (linearizability is local), so the history is split
//! per key and each key is decided alone by one of two procedures:
//!
//! 1. **The register check** (the `register` module, near-linear). Every value a client
//!    writes is unique (`c<client>.<seq>`, see `client.rs`), so each read says
//!    which write it saw, and linearizability of a register can be decided
//!    without search (Gibbons and Korach, "Testing shared memories", 1997).
//!    It decides keys with puts, reads and successful compare-and-sets; on
//!    keys that also have deletes, failed compare-and-sets or answers that
//!    carry no result it still finds every violation it can prove, and hands
//!    the rest to the search.
//! 2. **The search** (the `search` module): Wing and Gong's search with Lowe's
//!    memoisation, the general fallback, with reductions that keep it exact:
//!    an operation that cannot change the state (a read, a failed
//!    compare-and-set, a delete of an absent key) is placed as soon as it can
//!    be, without branching; while the register holds a unique value that
//!    some unplaced read still needs, no other write may be placed; a state
//!    from which "absent" can no longer come back in time for the operations
//!    that must see it is abandoned at once; and unanswered writes of values
//!    nobody saw are interchangeable. It gives up (and says so) after a step
//!    budget.
//!
//! ## The register criterion
//!
//! Write `x < y` when operation `x` returned before `y` was invoked (touching
//! intervals are concurrent). A *cluster* is a written value `v` with its
//! write and every operation that must see `v`: the reads that returned `v`
//! and the compare-and-set that replaced `v` (at most one can). The initial
//! absent value is a cluster whose write happens before everything. For a
//! cluster let `f` be the earliest return and `s` the latest invocation among
//! its operations. A compare-and-set `a -> b` glues cluster `a` directly
//! before cluster `b`; a chain of glued clusters is treated as one, with `f`
//! and `s` over all its operations.
//!
//! The history is linearizable if and only if:
//! - every read and every successful compare-and-set names a value that some
//!   operation wrote, and at most one compare-and-set replaced each value;
//! - compare-and-set chains have no cycles, no operation of a chain returns
//!   before its first write was invoked, and no operation of a later cluster
//!   in a chain returns before an operation of an earlier one is invoked;
//! - the *forward* zones (clusters with `f < s`, which must hold their value
//!   over the whole open interval `(f, s)`) are pairwise disjoint, the
//!   initial cluster's zone being `(-inf, s)`;
//! - no *backward* zone (a cluster with `s <= f`, whose operations all
//!   overlap at some instant of `[s, f]`) lies inside a forward zone.
//!
//! Why. While a cluster's value is held no other value can be (values are
//! unique and never come back), so the stretches of time over which clusters
//! hold their value are disjoint. A forward cluster's write takes effect by
//! `f` and its last reader by `s` no earlier, so its stretch covers `(f, s)`;
//! two such stretches cannot overlap, and a backward cluster, which takes
//! effect by `f` and is read last no earlier than `s`, cannot fit inside
//! one. That is necessity. For sufficiency, build a linearization: a forward
//! cluster's write at `f` and each of its operations at a point of its own
//! interval within `[f, s]`; a backward cluster, all at one instant of `[s, f]`
//! that no open forward zone covers (one exists, or the zone would lie inside
//! a forward zone); sort by those instants. Chains hold because each glued
//! cluster starts when the previous one's last operation does. An unanswered
//! write that nobody saw is left out: it may take effect after everything.
//!
//! The conditions are checked by sorting the forward zones and looking up,
//! for each backward zone, the forward zone that starts last before it:
//! `O(n log n)` per key.
//!
//! Deletes make "absent" a value that can come back, and a failed
//! compare-and-set only says the value was *not* something; which absent
//! stretch a read of absent saw is then a choice, and choosing reads-from for
//! non-unique values is NP-complete in general (Gibbons and Korach). So on such
//! keys the register check applies only the conditions over unique values,
//! which stay necessary: a failure there is a violation; otherwise the search
//! decides.
//!
//! An operation that never got an answer may have taken effect or not: it gets
//! a return time of "never", so it may be placed anywhere after its call,
//! including after everything else, which is the same as not at all. A read
//! that never got an answer constrains nothing and is left out.

mod counter;
pub mod gen;
mod model;
mod register;
mod search;

pub use model::{check_model, Model, MODEL_STEP_BUDGET};

use crate::history::{Operation, Outcome};
use bytes::Bytes;
use quorum_core::{KvOp, KvResult};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A key whose history is not linearizable (or could not be decided), with the
/// operations on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotLinearizable {
    /// The key.
    pub key: String,
    /// Why, with the operations involved (or how far the search got).
    pub detail: String,
}

impl std::fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {}: {}", self.key, self.detail)
    }
}

/// Which procedure decides each key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The register check where it decides, the search otherwise (what the
    /// simulator uses).
    Auto,
    /// The search only, with its reductions.
    Search,
    /// Plain Wing–Gong/Lowe search without reductions: the reference the
    /// others are tested against. Exponential in concurrency.
    PlainSearch,
}

/// How each key of the last history was decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decided {
    /// Keys decided by the register check.
    pub by_register: usize,
    /// Keys decided by the search.
    pub by_search: usize,
    /// Keys with increments, decided by the search against a counter model.
    pub by_counter: usize,
}

/// Checks a whole history; returns the first key that fails.
pub fn check(history: &[Operation]) -> Result<(), NotLinearizable> {
    check_with(history, Method::Auto).map(|_| ())
}

/// Checks a whole history with the given method; on success, says how the keys were decided.
pub fn check_with(history: &[Operation], method: Method) -> Result<Decided, NotLinearizable> {
    let is_incr = |o: &Operation| matches!(o.op, KvOp::Incr { .. });
    if let Some(txn) = history.iter().find(|o| !o.op.is_register_op() && !is_incr(o)) {
        return Err(NotLinearizable {
            key: String::from_utf8_lossy(txn.op.key()).into_owned(),
            detail: format!(
                "{}#{} ({}) is a multi-key transaction, scan or clear, or an expiry, which this checker cannot \
                 judge: it decides each key alone, which holds only for get, put, delete, compare-and-set and \
                 increment",
                txn.client,
                txn.seq,
                show_op(&txn.op)
            ),
        });
    }
    let mut per_key: BTreeMap<&Bytes, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        let unanswered_read = op.op.is_read() && op.outcome == Outcome::Unknown;
        if !unanswered_read {
            per_key.entry(op.op.key()).or_default().push(op);
        }
    }
    let mut decided = Decided::default();
    // Keys with increments: the register check needs unique written values.
    let counters: Vec<&Bytes> =
        per_key.iter().filter(|(_, ops)| ops.iter().any(|o| is_incr(o))).map(|(k, _)| *k).collect();
    for key in counters {
        let ops: Vec<Operation> = per_key.remove(key).unwrap_or_default().into_iter().cloned().collect();
        model::check_model(&ops, &counter::Cell::default(), |_| ())
            .map_err(|e| NotLinearizable { key: String::from_utf8_lossy(key).into_owned(), detail: e.detail })?;
        decided.by_counter += 1;
    }
    for (key, ops) in per_key {
        let fail = |detail| NotLinearizable { key: String::from_utf8_lossy(key).into_owned(), detail };
        match method {
            Method::Auto => match register::decide(&ops) {
                register::Verdict::Linearizable => decided.by_register += 1,
                register::Verdict::Violation(detail) => return Err(fail(detail)),
                register::Verdict::Undecided => {
                    search::check_key(&ops, true).map_err(fail)?;
                    decided.by_search += 1;
                }
            },
            Method::Search | Method::PlainSearch => {
                search::check_key(&ops, method == Method::Search).map_err(fail)?;
                decided.by_search += 1;
            }
        }
    }
    Ok(decided)
}

/// One line per operation: who, what, when, and the answer.
fn describe_ops(s: &mut String, ops: &[&Operation]) {
    for o in ops {
        let end = match &o.outcome {
            Outcome::Ok { at, result } => format!("{at} -> {}", show_result(result)),
            Outcome::Unknown => "never answered".to_string(),
        };
        let _ = write!(s, "\n  {}#{} {} invoked {} answered {end}", o.client, o.seq, show_op(&o.op), o.invoked);
    }
}

/// A short human form of an operation.
pub fn show_op(op: &KvOp) -> String {
    let b = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match op {
        KvOp::Get { key } => format!("get {}", b(key)),
        KvOp::Put { key, value } => format!("put {}={}", b(key), b(value)),
        KvOp::Del { key } => format!("del {}", b(key)),
        KvOp::Cas { key, expected, new } => {
            format!("cas {} {}->{}", b(key), expected.as_ref().map_or("(absent)".into(), b), b(new))
        }
        KvOp::Txn { checks, writes, ttls, .. } => {
            format!("txn of {} checks, {} writes and {} deadlines", checks.len(), writes.len(), ttls.len())
        }
        KvOp::Scan { cursor, .. } => format!("scan from {cursor}"),
        KvOp::Clear => "clear".to_string(),
        KvOp::Expire { key, at, .. } => format!("expire {} at {at:?}", b(key)),
        KvOp::Deadline { key } => format!("deadline of {}", b(key)),
        KvOp::Sweep { now } => format!("sweep at {now}"),
        KvOp::HSet { key, pairs, .. } => format!("hset {} of {} fields", b(key), pairs.len()),
        KvOp::HDel { key, fields } => format!("hdel {} of {} fields", b(key), fields.len()),
        KvOp::HIncr { key, field, by } => format!("hincrby {} {} {by}", b(key), b(field)),
        KvOp::Incr { key, by } => format!("incrby {} {by}", b(key)),
        KvOp::HGet { key, .. } => format!("hget {}", b(key)),
    }
}

/// A short human form of a result.
pub fn show_result(result: &KvResult) -> String {
    match result {
        KvResult::Value(Some(v)) => format!("'{}'", String::from_utf8_lossy(v)),
        KvResult::Value(None) => "(absent)".to_string(),
        KvResult::Done => "ok".to_string(),
        KvResult::Deleted(b) => format!("deleted={b}"),
        KvResult::Swapped(b) => format!("swapped={b}"),
        KvResult::Invalid(e) => format!("invalid: {e}"),
        KvResult::Stale => "stale".to_string(),
        KvResult::Keys { cursor, keys } => format!("{} keys, next {cursor}", keys.len()),
        KvResult::Deadline { exists, at } => format!("exists={exists} deadline={at:?}"),
        KvResult::WrongType => "wrong type".to_string(),
        KvResult::Count(n) => format!("count={n}"),
        KvResult::Integer(n) => format!("{n}"),
        KvResult::Fields(fields) => format!("{} fields", fields.len()),
    }
}

#[cfg(test)]
mod tests;
