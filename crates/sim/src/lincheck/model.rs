//! Linearizability against a sequential model of your own.
//!
//! A [`Model`] is the specification: a value that takes one operation at a
//! time and says what it answers. The history is linearizable if some order
//! of its operations that respects real time (an operation that returned
//! before another was invoked comes first) gives every answered operation the
//! answer its client got. Unanswered operations may take effect at any point
//! after their call, or not at all. This is Wing and Gong's search with
//! Lowe's memoisation: a (set of placed operations, model state) pair already
//! explored is not explored again. Two reductions keep it exact: a read that
//! was never answered is left out (it constrains nothing), and an unanswered
//! operation that would leave the model's state as it is, is not placed there
//! (leaving it out altogether is the same linearization). Siblings are tried
//! answered first, so that the unanswered ones, which most linearizations
//! leave out, come last.
//!
//! The search is exponential in the number of concurrent operations, so
//! [`check_model`] first splits the history by `partition` (operations of
//! different partitions must commute: different keys, different locks with
//! no shared clock), and each partition has a step budget; past it the check
//! says it gave up, rather than pass or fail on a guess.

use super::NotLinearizable;
use crate::history::{Operation, Outcome};
use quorum_core::Instant;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};

/// A sequential specification: the state of the abstract object, which
/// answers one operation at a time. Keep it to what answers depend on (no
/// sessions, no log index): states that answer alike should compare equal,
/// which is what lets the search merge orders that end in the same place.
pub trait Model: Clone + Hash + Eq {
    /// An operation.
    type Op;
    /// Its answer.
    type Output: PartialEq;
    /// Applies `op` and returns its answer.
    fn step(&mut self, op: &Self::Op) -> Self::Output;
    /// Whether `op` changes nothing (an unanswered one is left out).
    fn is_read(op: &Self::Op) -> bool;
    /// A short human form of an operation, for the report.
    fn show_op(op: &Self::Op) -> String;
    /// A short human form of an answer.
    fn show_output(output: &Self::Output) -> String;
}

type ModelOp<M> = Operation<<M as Model>::Op, <M as Model>::Output>;

/// Steps (operations placed) the search may take per partition.
pub const MODEL_STEP_BUDGET: u64 = 2_000_000;

/// Checks `history` against `initial`, partition by partition (`partition`
/// names the part of the state an operation touches; each part starts from
/// `initial`).
pub fn check_model<M: Model, K: Ord + std::fmt::Debug>(
    history: &[ModelOp<M>],
    initial: &M,
    partition: impl Fn(&M::Op) -> K,
) -> Result<(), NotLinearizable> {
    let mut parts: BTreeMap<K, Vec<&ModelOp<M>>> = BTreeMap::new();
    for op in history {
        parts.entry(partition(&op.op)).or_default().push(op);
    }
    for (key, ops) in parts {
        search::<M>(&ops, initial).map_err(|detail| NotLinearizable { key: format!("{key:?}"), detail })?;
    }
    Ok(())
}

struct Call<'a, M: Model> {
    invoked: Instant,
    /// `None`: never answered (may take effect at any time after the call, or never).
    returned: Option<Instant>,
    op: &'a ModelOp<M>,
}

/// One level of the depth-first search: the state before placing, and the
/// call placed (its next sibling is tried on backtrack).
struct Frame<M> {
    state: M,
    placed: usize,
}

fn search<M: Model>(ops: &[&ModelOp<M>], initial: &M) -> Result<(), String> {
    let mut calls: Vec<Call<'_, M>> = ops
        .iter()
        .filter(|o| o.outcome != Outcome::Unknown || !M::is_read(&o.op))
        .map(|o| Call { invoked: o.invoked, returned: o.completed_at(), op: o })
        .collect();
    calls.sort_by_key(|c| (c.returned.is_none(), c.invoked));
    let n = calls.len();
    let must = calls.iter().filter(|c| c.returned.is_some()).count();
    let mut placed = vec![false; n];
    // The placed set's hash, kept up to date as calls are placed and taken
    // back (XOR of one random key per call), instead of hashed anew each step.
    let keys: Vec<u64> = (0..n as u64).map(call_key).collect();
    let mut placed_hash = 0u64;
    let mut placed_answered = 0usize;
    let mut state = initial.clone();
    let mut stack: Vec<Frame<M>> = Vec::new();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut steps = 0u64;
    let mut deepest = 0usize;
    // At the furthest the search got: the first answered calls it could not place.
    let mut furthest: Vec<usize> = Vec::new();
    // The next candidate to try at the current level.
    let mut cursor = 0usize;
    loop {
        if placed_answered == must {
            return Ok(());
        }
        // Candidates: unplaced calls invoked no later than the earliest
        // return among unplaced answered calls (nothing unplaced returned before them).
        let horizon = (0..n).filter(|&i| !placed[i]).filter_map(|i| calls[i].returned).min();
        let next = (cursor..n).find(|&i| !placed[i] && horizon.is_none_or(|h| calls[i].invoked <= h));
        let Some(i) = next else {
            // Dead end: undo the last placement and try its next sibling.
            let Some(frame) = stack.pop() else {
                return Err(dead_end::<M>(&calls, deepest, &furthest));
            };
            placed[frame.placed] = false;
            placed_hash ^= keys[frame.placed];
            if calls[frame.placed].returned.is_some() {
                placed_answered -= 1;
            }
            state = frame.state;
            cursor = frame.placed + 1;
            continue;
        };
        cursor = i + 1; // the sibling to try next, should this one not do
        steps += 1;
        if steps > MODEL_STEP_BUDGET {
            let left: Vec<String> = furthest.iter().map(|&j| describe::<M>(calls[j].op)).collect();
            return Err(format!(
                "search gave up after {MODEL_STEP_BUDGET} steps over {n} operations (placed at most {deepest}; \
                 then unplaced: {})",
                left.join("; ")
            ));
        }
        let mut next_state = state.clone();
        let output = next_state.step(&calls[i].op.op);
        match &calls[i].op.outcome {
            Outcome::Ok { result, .. } if *result != output => continue,
            Outcome::Unknown if next_state == state => continue,
            _ => {}
        }
        if !seen.insert((placed_hash ^ keys[i], state_hash(&next_state))) {
            continue;
        }
        placed[i] = true;
        placed_hash ^= keys[i];
        if calls[i].returned.is_some() {
            placed_answered += 1;
        }
        stack.push(Frame { state: std::mem::replace(&mut state, next_state), placed: i });
        if stack.len() > deepest {
            deepest = stack.len();
            furthest = (0..n).filter(|&j| !placed[j] && calls[j].returned.is_some()).take(3).collect();
        }
        cursor = 0;
    }
}

fn describe<M: Model>(op: &ModelOp<M>) -> String {
    let end = match &op.outcome {
        Outcome::Ok { at, result } => format!("{at} -> {}", M::show_output(result)),
        Outcome::Unknown => "never answered".to_string(),
    };
    format!("{}#{} {} invoked {} answered {end}", op.client, op.seq, M::show_op(&op.op), op.invoked)
}

fn state_hash<M: Hash>(state: &M) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state.hash(&mut h);
    h.finish()
}

fn dead_end<M: Model>(calls: &[Call<'_, M>], deepest: usize, furthest: &[usize]) -> String {
    let left: Vec<String> = furthest.iter().map(|&j| describe::<M>(calls[j].op)).collect();
    let mut s = format!(
        "no linearization of {} operations exists (the search placed at most {deepest}; then none of these fit: {}); the first operations:",
        calls.len(),
        left.join("; ")
    );
    let mut by_call: Vec<&Call<'_, M>> = calls.iter().collect();
    by_call.sort_by_key(|c| c.invoked);
    for c in by_call.iter().take(40) {
        s.push_str(&format!("\n  {}", describe::<M>(c.op)));
    }
    if calls.len() > 40 {
        s.push_str(&format!("\n  ... and {} more", calls.len() - 40));
    }
    s
}

/// A well-mixed key for call `i` (splitmix64), for the placed set's hash.
fn call_key(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use quorum_core::{ClientId, KvOp, KvResult};

    /// The key-value store's specification, as a test model.
    #[derive(Clone, Default, Hash, PartialEq, Eq)]
    struct Kv(BTreeMap<Bytes, Bytes>);

    impl Model for Kv {
        type Op = KvOp;
        type Output = KvResult;
        fn step(&mut self, op: &KvOp) -> KvResult {
            match op {
                KvOp::Get { key } => KvResult::Value(self.0.get(key).cloned()),
                KvOp::Put { key, value } => {
                    self.0.insert(key.clone(), value.clone());
                    KvResult::Done
                }
                KvOp::Del { key } => KvResult::Deleted(self.0.remove(key).is_some()),
                KvOp::Cas { key, expected, new } => {
                    let swap = self.0.get(key) == expected.as_ref();
                    if swap {
                        self.0.insert(key.clone(), new.clone());
                    }
                    KvResult::Swapped(swap)
                }
                KvOp::Txn { checks, writes, .. } => {
                    let holds = checks.iter().all(|(k, v)| self.0.get(k) == v.as_ref());
                    for (k, v) in writes.iter().filter(|_| holds) {
                        match v {
                            Some(v) => self.0.insert(k.clone(), v.clone()),
                            None => self.0.remove(k),
                        };
                    }
                    KvResult::Swapped(holds)
                }
                KvOp::Clear => {
                    self.0.clear();
                    KvResult::Done
                }
                KvOp::Scan { .. } => KvResult::Invalid("this test model does not scan".into()),
                _ => KvResult::Invalid("this test model has no deadlines or hashes".into()),
            }
        }
        fn is_read(op: &KvOp) -> bool {
            op.is_read()
        }
        fn show_op(op: &KvOp) -> String {
            crate::lincheck::show_op(op)
        }
        fn show_output(output: &KvResult) -> String {
            crate::lincheck::show_result(output)
        }
    }

    fn op(client: u64, seq: u64, op: KvOp, at: (u64, Option<u64>), result: KvResult) -> Operation {
        let outcome = match at.1 {
            Some(t) => Outcome::Ok { at: Instant::from_nanos(t), result },
            None => Outcome::Unknown,
        };
        Operation { client: ClientId(client), seq, op, invoked: Instant::from_nanos(at.0), outcome, answered_by: None }
    }

    fn put(v: &str) -> KvOp {
        KvOp::Put { key: "k".into(), value: v.to_string().into() }
    }

    fn get() -> KvOp {
        KvOp::Get { key: "k".into() }
    }

    fn read(v: Option<&str>) -> KvResult {
        KvResult::Value(v.map(|v| v.to_string().into()))
    }

    fn check(h: &[Operation]) -> Result<(), NotLinearizable> {
        check_model(h, &Kv::default(), |op| op.key().clone())
    }

    #[test]
    fn concurrent_writes_may_take_effect_in_either_order() {
        let h = [
            op(1, 1, put("a"), (0, Some(10)), KvResult::Done),
            op(2, 1, put("b"), (1, Some(9)), KvResult::Done),
            op(3, 1, get(), (11, Some(12)), read(Some("a"))),
        ];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let h = [
            op(1, 1, put("a"), (0, Some(10)), KvResult::Done),
            op(2, 1, put("b"), (11, Some(20)), KvResult::Done),
            op(3, 1, get(), (21, Some(22)), read(Some("a"))),
        ];
        let err = check(&h).unwrap_err();
        assert!(err.detail.contains("no linearization of 3 operations"), "{err}");
    }

    #[test]
    fn an_unanswered_write_may_have_happened_or_not() {
        let took = [op(1, 1, put("a"), (0, None), KvResult::Done), op(3, 1, get(), (21, Some(22)), read(Some("a")))];
        assert!(check(&took).is_ok());
        let did_not = [op(1, 1, put("a"), (0, None), KvResult::Done), op(3, 1, get(), (21, Some(22)), read(None))];
        assert!(check(&did_not).is_ok());
    }

    /// The model search and the register checker agree on random histories.
    #[test]
    fn agrees_with_the_register_checker_on_random_histories() {
        use crate::lincheck::gen::{history, Fault, GenConfig};
        let mut disagreements = Vec::new();
        let (mut caught, mut passed) = (0, 0);
        for fault in [None, Some(Fault::StaleRead), Some(Fault::LostWrite), Some(Fault::ReorderedWrites)] {
            for seed in 0..1000 {
                let cfg = GenConfig { keys: 2, ops: 12, fault, ..GenConfig::default() };
                let h = history(seed, &cfg);
                let register = crate::lincheck::check(&h).is_ok();
                let model = check(&h);
                assert!(!model.as_ref().is_err_and(|e| e.detail.contains("gave up")), "seed {seed}");
                if register != model.is_ok() {
                    disagreements.push((fault, seed));
                }
                if model.is_ok() {
                    passed += 1
                } else {
                    caught += 1
                }
            }
        }
        assert!(disagreements.is_empty(), "histories where the two disagree: {disagreements:?}");
        assert!(caught > 500 && passed > 1000, "{caught} caught, {passed} passed: the sample tests both verdicts");
    }
}
