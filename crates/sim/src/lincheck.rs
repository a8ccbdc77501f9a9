//! A linearizability checker for key-value histories.
//!
//! Wing & Gong's search with Lowe's memoisation (the algorithm Knossos and
//! Porcupine use): walk the history in real-time order, tentatively linearize
//! any operation whose call has been seen, and backtrack when an operation's
//! return is reached before it could be placed. A cache of (set of linearized
//! operations, model state) prunes states already explored.
//!
//! Keys are independent in a key-value store, so the history is split per key
//! and each part checked alone: the search is exponential only in concurrency.
//! An operation that never got an answer may have taken effect or not: it gets
//! a return time of "never" and any result, so it may be placed anywhere after
//! its call — including after everything else, which is the same as not at all.

use crate::history::{Operation, Outcome};
use bytes::Bytes;
use quorum_core::{KvOp, KvResult};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

/// Give up (and say so) after this many search steps on one key.
const STEP_BUDGET: u64 = 20_000_000;

/// A key whose history is not linearizable, with the operations on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotLinearizable {
    /// The key.
    pub key: String,
    /// The operations on the key and how far the search got.
    pub detail: String,
}

impl std::fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {}: {}", self.key, self.detail)
    }
}

/// Checks a whole history; returns the first key that fails.
pub fn check(history: &[Operation]) -> Result<(), NotLinearizable> {
    let mut per_key: BTreeMap<&Bytes, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        let unanswered_read = op.op.is_read() && op.outcome == Outcome::Unknown;
        if !unanswered_read {
            per_key.entry(op.op.key()).or_default().push(op);
        }
    }
    for (key, ops) in per_key {
        check_key(&ops).map_err(|detail| NotLinearizable { key: String::from_utf8_lossy(key).into_owned(), detail })?;
    }
    Ok(())
}

/// Model operations over small value ids (0 means absent).
#[derive(Clone, Copy, Debug)]
enum ModelOp {
    Get,
    Put(u32),
    Del,
    Cas { expected: u32, new: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ModelResult {
    Value(u32),
    Done,
    Deleted(bool),
    Swapped(bool),
    Any,
}

/// Applies `op` to `state`; `None` if the observed result is impossible there.
fn step(state: u32, op: ModelOp, result: ModelResult) -> Option<u32> {
    use ModelResult::Any;
    match op {
        ModelOp::Get => {
            matches!(result, Any).then_some(state).or((result == ModelResult::Value(state)).then_some(state))
        }
        ModelOp::Put(v) => matches!(result, ModelResult::Done | Any).then_some(v),
        ModelOp::Del => (result == Any || result == ModelResult::Deleted(state != 0)).then_some(0),
        ModelOp::Cas { expected, new } => {
            let swapped = state == expected;
            (result == Any || result == ModelResult::Swapped(swapped)).then_some(if swapped { new } else { state })
        }
    }
}

struct Values(HashMap<Bytes, u32>);

impl Values {
    fn id(&mut self, v: &Option<Bytes>) -> u32 {
        match v {
            None => 0,
            Some(b) => {
                let next = self.0.len() as u32 + 1;
                *self.0.entry(b.clone()).or_insert(next)
            }
        }
    }
}

fn model(op: &Operation, values: &mut Values) -> (ModelOp, ModelResult) {
    let mop = match &op.op {
        KvOp::Get { .. } => ModelOp::Get,
        KvOp::Put { value, .. } => ModelOp::Put(values.id(&Some(value.clone()))),
        KvOp::Del { .. } => ModelOp::Del,
        KvOp::Cas { expected, new, .. } => {
            ModelOp::Cas { expected: values.id(expected), new: values.id(&Some(new.clone())) }
        }
    };
    let res = match &op.outcome {
        Outcome::Unknown => ModelResult::Any,
        Outcome::Ok { result, .. } => match result {
            KvResult::Value(v) => ModelResult::Value(values.id(v)),
            KvResult::Done => ModelResult::Done,
            KvResult::Deleted(b) => ModelResult::Deleted(*b),
            KvResult::Swapped(b) => ModelResult::Swapped(*b),
            KvResult::Invalid(_) | KvResult::Stale => ModelResult::Any,
        },
    };
    (mop, res)
}

const NIL: usize = usize::MAX;

/// Doubly linked list of call/return events, from which linearized operations
/// are lifted out and put back on backtrack.
struct Events {
    op: Vec<usize>,
    is_call: Vec<bool>,
    next: Vec<usize>,
    prev: Vec<usize>,
    ret_of: Vec<usize>,
}

impl Events {
    fn lift(&mut self, call: usize) {
        let ret = self.ret_of[self.op[call]];
        for i in [call, ret] {
            let (p, n) = (self.prev[i], self.next[i]);
            self.next[p] = n;
            if n != NIL {
                self.prev[n] = p;
            }
        }
    }

    fn unlift(&mut self, call: usize) {
        let ret = self.ret_of[self.op[call]];
        for i in [ret, call] {
            let (p, n) = (self.prev[i], self.next[i]);
            self.next[p] = i;
            if n != NIL {
                self.prev[n] = i;
            }
        }
    }
}

fn check_key(ops: &[&Operation]) -> Result<(), String> {
    let mut values = Values(HashMap::new());
    let models: Vec<(ModelOp, ModelResult)> = ops.iter().map(|o| model(o, &mut values)).collect();

    // Index 0 is the list head; events follow in real-time order, calls before
    // returns at the same instant (operations that touch in time are concurrent).
    let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, o) in ops.iter().enumerate() {
        order.push((o.invoked.as_nanos(), 0, i));
        order.push((o.completed_at().map_or(u64::MAX, |t| t.as_nanos()), 1, i));
    }
    order.sort_unstable();
    let len = order.len() + 1;
    let mut ev = Events {
        op: vec![0; len],
        is_call: vec![false; len],
        next: (1..=len).map(|i| if i == len { NIL } else { i }).collect(),
        prev: (0..len).map(|i| if i == 0 { NIL } else { i - 1 }).collect(),
        ret_of: vec![0; ops.len()],
    };
    for (pos, (_, kind, op)) in order.iter().enumerate() {
        ev.op[pos + 1] = *op;
        ev.is_call[pos + 1] = *kind == 0;
        if *kind == 1 {
            ev.ret_of[*op] = pos + 1;
        }
    }

    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, u32)> = HashSet::new();
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut state = 0u32;
    let mut deepest = 0usize;
    let mut steps = 0u64;
    let mut cur = ev.next[0];
    while ev.next[0] != NIL {
        steps += 1;
        if steps > STEP_BUDGET {
            return Err(format!("search gave up after {STEP_BUDGET} steps over {} operations", ops.len()));
        }
        if ev.is_call[cur] {
            let op = ev.op[cur];
            if let Some(new_state) = step(state, models[op].0, models[op].1) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), new_state)) {
                    stack.push((cur, state));
                    deepest = deepest.max(stack.len());
                    state = new_state;
                    ev.lift(cur);
                    cur = ev.next[0];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            cur = ev.next[cur];
        } else {
            // A return whose operation could not be placed before it: backtrack.
            let Some((call, prev_state)) = stack.pop() else {
                return Err(explain(ops, deepest));
            };
            let op = ev.op[call];
            linearized[op / 64] &= !(1 << (op % 64));
            state = prev_state;
            ev.unlift(call);
            cur = ev.next[call];
        }
    }
    Ok(())
}

fn explain(ops: &[&Operation], deepest: usize) -> String {
    let mut s = format!(
        "no linearization of {} operations exists (at most {deepest} could be ordered); operations on the key:",
        ops.len()
    );
    let mut sorted: Vec<&&Operation> = ops.iter().collect();
    sorted.sort_by_key(|o| o.invoked);
    for o in sorted.iter().take(40) {
        let end = match &o.outcome {
            Outcome::Ok { at, result } => format!("{at} -> {}", show_result(result)),
            Outcome::Unknown => "never answered".to_string(),
        };
        let _ = write!(s, "\n  {}#{} {} invoked {} answered {end}", o.client, o.seq, show_op(&o.op), o.invoked);
    }
    if sorted.len() > 40 {
        let _ = write!(s, "\n  ... and {} more", sorted.len() - 40);
    }
    s
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
    }
}

#[cfg(test)]
mod tests {
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
}
