//! The search: Wing and Gong's algorithm with Lowe's memoisation (the one
//! Knossos and Porcupine use), for one key.
//!
//! Walk the history in real-time order, tentatively linearize any operation
//! whose call has been seen, and backtrack when an operation's return is
//! reached before it could be placed. A cache of (set of linearized
//! operations, model state) prunes states already explored.
//!
//! [`plain`] is that algorithm as published: the reference. [`reduced`] adds
//! reductions that keep it exact and make it fast on histories with
//! unique written values:
//! - an operation that never changes the state (a read, a failed
//!   compare-and-set, a delete that found nothing) and fits the current state
//!   is placed at once, and is not branched on: any linearization that places
//!   it later can place it now instead, since nothing that must precede it is
//!   left (its call comes before every pending return) and moving it changes
//!   no other result;
//! - while the register holds a value written once that some unplaced
//!   operation must see (a read of it, the compare-and-set that replaces it),
//!   the only write that may be placed is that compare-and-set: any other
//!   would make the value unreachable for good;
//! - a state from which "absent" cannot come back in time for the operations
//!   that must see it is a dead end at once, whether or not they have been
//!   called yet: each unplaced compare-and-set from absent needs a stretch of
//!   absence of its own (the current one, or one begun by an unplaced delete
//!   called before it returns), and while the key holds a value, every
//!   unplaced operation that must see it absent needs an unplaced delete
//!   called before it returns;
//! - values that nobody read and no compare-and-set expected are one value
//!   to the model (which of them the key holds changes no result), and
//!   unanswered operations that do the same thing are interchangeable once
//!   called, so only the first of them is tried;
//! - an unanswered compare-and-set whose new value someone saw took effect
//!   and succeeded, and is searched as a success (its expected value is
//!   needed, as above);
//! - an unanswered operation that would leave the state as it is is never
//!   placed: it can come after everything instead, where it changes nothing
//!   either, and once every answered operation is placed the rest fit in any
//!   order;
//! - for the cache, a value that no unplaced operation compares the state
//!   with is the same state as any other such value.
//!
//! Its candidates are tried earliest deadline first (a write's deadline is the
//! earliest return among it and its readers), which is the real order in a
//! correct history, so a correct history is mostly decided without
//! backtracking. Its cache keys the linearized set by a 128-bit Zobrist hash
//! instead of the set itself (a false hit would need a hash collision).

use super::describe_ops;
use crate::history::{Operation, Outcome};
use bytes::Bytes;
use quorum_core::{KvOp, KvResult};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Give up (and say so) after this many search steps on one key (at least).
const STEP_BUDGET: u64 = 20_000_000;

/// Decides one key, with the reductions or without.
pub(super) fn check_key(ops: &[&Operation], reduced: bool) -> Result<(), String> {
    if reduced {
        self::reduced(ops)
    } else {
        plain(ops)
    }
}

/// Model operations over small value ids (0 means absent).
#[derive(Clone, Copy, Debug, PartialEq)]
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
        _ => {
            unreachable!("check_with refuses every operation but get, put, del and cas before searching any key")
        }
    };
    let res = match &op.outcome {
        Outcome::Unknown => ModelResult::Any,
        Outcome::Ok { result, .. } => match result {
            KvResult::Value(v) => ModelResult::Value(values.id(v)),
            KvResult::Done => ModelResult::Done,
            KvResult::Deleted(b) => ModelResult::Deleted(*b),
            KvResult::Swapped(b) => ModelResult::Swapped(*b),
            _ => ModelResult::Any,
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

/// Model operations and the event list of one key.
fn prepare(ops: &[&Operation]) -> (Vec<(ModelOp, ModelResult)>, Events) {
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
    (models, ev)
}

/// Gives every value that no operation compares the state with (nobody read
/// it, no compare-and-set expected it) one id: which of them the key holds
/// changes no result, so states that differ only there are one state, and
/// writes of them are interchangeable.
fn merge_unseen_values(models: &mut [(ModelOp, ModelResult)]) {
    let mut seen = HashSet::new();
    for (op, res) in models.iter() {
        if let ModelOp::Cas { expected, .. } = op {
            seen.insert(*expected);
        }
        if let ModelResult::Value(v) = res {
            seen.insert(*v);
        }
    }
    let unseen = models
        .iter()
        .filter_map(|(op, _)| match op {
            ModelOp::Put(v) | ModelOp::Cas { new: v, .. } => Some(*v),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        + 1;
    for (op, _) in models.iter_mut() {
        if let ModelOp::Put(v) | ModelOp::Cas { new: v, .. } = op {
            if !seen.contains(v) {
                *v = unseen;
            }
        }
    }
}

/// An unanswered compare-and-set whose new value (written by it alone) some
/// answer shows, a read of it or a compare-and-set that found it, did take
/// effect, and succeeded: its result is settled as a success, so that the
/// value it expects is needed like any other success's (while the key holds
/// it, nothing else may replace it). Otherwise the search learns it only when
/// the read that shows the value is due, after trying every order of what
/// came in between.
fn settle_unanswered_swaps(models: &mut [(ModelOp, ModelResult)]) {
    let mut writes: HashMap<u32, u32> = HashMap::new();
    for (op, _) in models.iter() {
        if let ModelOp::Put(v) | ModelOp::Cas { new: v, .. } = op {
            *writes.entry(*v).or_default() += 1;
        }
    }
    let mut shown: HashSet<u32> = models
        .iter()
        .filter_map(|m| match m {
            (ModelOp::Get, ModelResult::Value(v)) | (ModelOp::Cas { expected: v, .. }, ModelResult::Swapped(true)) => {
                Some(*v)
            }
            _ => None,
        })
        .collect();
    // A settled one shows the value it expected in turn: repeat until none settles.
    let mut settled = true;
    while settled {
        settled = false;
        for (op, res) in models.iter_mut() {
            if let (ModelOp::Cas { expected, new }, ModelResult::Any) = (op, &res) {
                if writes.get(new) == Some(&1) && shown.contains(new) {
                    *res = ModelResult::Swapped(true);
                    shown.insert(*expected);
                    settled = true;
                }
            }
        }
    }
}

/// The published algorithm.
fn plain(ops: &[&Operation]) -> Result<(), String> {
    let (models, mut ev) = prepare(ops);

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

/// What the reduced search knows about each operation.
struct Facts {
    /// Never changes the state: placed greedily when it fits.
    observer: Vec<bool>,
    /// The value (written once) the operation can only be placed at, or 0.
    requires: Vec<u32>,
    /// Earliest-deadline-first order of candidates.
    deadline: Vec<(u64, u64)>,
    /// Zobrist keys of the operations.
    zobrist: Vec<u128>,
    /// The operations that must see the key absent (return time,
    /// operation), by return time.
    see_absent: Vec<(u64, usize)>,
    /// The deletes that may empty the key (call time, operation), by call
    /// time: the only way back to absent once something is written.
    deletes: Vec<(u64, usize)>,
    /// The successful compare-and-sets from absent (return time, operation),
    /// by return time: each ends a stretch of absence, so each needs one of
    /// its own.
    from_absent: Vec<(u64, usize)>,
}

impl Facts {
    /// Whether the unplaced operations that need the key absent can no
    /// longer all be placed: each compare-and-set from absent needs a
    /// stretch of absence of its own, begun (by the current state or an
    /// unplaced delete called in time) before it returns; and while the key
    /// holds a value, every operation that must see it absent needs an
    /// unplaced delete called before it returns.
    fn absence_runs_out(&self, placed: &[bool], state: u32) -> bool {
        let mut stretches = usize::from(state == 0);
        let mut deletes = self.deletes.iter().filter(|(_, d)| !placed[*d]).peekable();
        let first_delete = deletes.peek().map(|(call, _)| *call);
        for (ret, _) in self.from_absent.iter().filter(|(_, c)| !placed[*c]) {
            while deletes.next_if(|(call, _)| call <= ret).is_some() {
                stretches += 1;
            }
            if stretches == 0 {
                return true;
            }
            stretches -= 1;
        }
        let first_due = self.see_absent.iter().find(|(_, o)| !placed[*o]).map(|(ret, _)| *ret);
        state != 0 && first_due.is_some_and(|due| first_delete.is_none_or(|call| call > due))
    }
}

impl Facts {
    fn new(ops: &[&Operation], models: &[(ModelOp, ModelResult)]) -> Facts {
        let n = ops.len();
        let ret = |i: usize| ops[i].completed_at().map_or(u64::MAX, |t| t.as_nanos());
        let values = models
            .iter()
            .map(|(op, res)| match (op, res) {
                (ModelOp::Put(v) | ModelOp::Cas { new: v, .. }, _) | (_, ModelResult::Value(v)) => *v,
                _ => 0,
            })
            .max()
            .unwrap_or(0) as usize
            + 1;
        let mut writes = vec![0u32; values];
        let mut first_read = vec![u64::MAX; values];
        for (i, (op, res)) in models.iter().enumerate() {
            match (op, res) {
                (ModelOp::Put(v) | ModelOp::Cas { new: v, .. }, _) => writes[*v as usize] += 1,
                (ModelOp::Get, ModelResult::Value(v)) => {
                    first_read[*v as usize] = first_read[*v as usize].min(ret(i));
                }
                _ => {}
            }
        }
        let unique = |v: u32| v != 0 && writes[v as usize] == 1;
        let needs_absent = |m: &(ModelOp, ModelResult)| {
            matches!(
                m,
                (ModelOp::Get, ModelResult::Value(0))
                    | (ModelOp::Del, ModelResult::Deleted(false))
                    | (ModelOp::Cas { expected: 0, .. }, ModelResult::Swapped(true))
            )
        };
        let mut facts = Facts {
            observer: Vec::with_capacity(n),
            requires: Vec::with_capacity(n),
            deadline: Vec::with_capacity(n),
            zobrist: Vec::with_capacity(n),
            see_absent: models.iter().enumerate().filter(|(_, m)| needs_absent(m)).map(|(i, _)| (ret(i), i)).collect(),
            deletes: models
                .iter()
                .enumerate()
                .filter(|(_, m)| matches!(m, (ModelOp::Del, ModelResult::Deleted(true) | ModelResult::Any)))
                .map(|(i, _)| (ops[i].invoked.as_nanos(), i))
                .collect(),
            from_absent: models
                .iter()
                .enumerate()
                .filter(|(_, m)| matches!(m, (ModelOp::Cas { expected: 0, .. }, ModelResult::Swapped(true))))
                .map(|(i, _)| (ret(i), i))
                .collect(),
        };
        facts.deletes.sort_unstable();
        facts.see_absent.sort_unstable();
        facts.from_absent.sort_unstable();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
        let mut next = || {
            // splitmix64
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for (i, (op, res)) in models.iter().enumerate() {
            facts.observer.push(matches!(
                (op, res),
                (ModelOp::Get, _)
                    | (ModelOp::Cas { .. }, ModelResult::Swapped(false))
                    | (ModelOp::Del, ModelResult::Deleted(false))
            ));
            facts.requires.push(match (op, res) {
                (ModelOp::Get, ModelResult::Value(v)) if unique(*v) => *v,
                (ModelOp::Cas { expected, .. }, ModelResult::Swapped(true)) if unique(*expected) => *expected,
                _ => 0,
            });
            let written = match op {
                ModelOp::Put(v) | ModelOp::Cas { new: v, .. } => first_read[*v as usize],
                _ => u64::MAX,
            };
            facts.deadline.push((written.min(ret(i)), ret(i)));
            facts.zobrist.push(((next() as u128) << 64) | next() as u128);
        }
        facts
    }
}

/// The cache's keys are random already (Zobrist hashes): fold them instead of hashing them again.
#[derive(Default)]
struct BuildMix;

#[derive(Default)]
struct Mix(u64);

impl std::hash::BuildHasher for BuildMix {
    type Hasher = Mix;
    fn build_hasher(&self) -> Mix {
        Mix(0)
    }
}

impl std::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64 ^ (v >> 64) as u64;
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A placed operation: its call event, the state before it, and (for a
/// choice) the other candidates still to try, `untried[from..to]`.
struct Frame {
    call: usize,
    prev_state: u32,
    forced: bool,
    from: usize,
    to: usize,
}

/// The search with both reductions (see the module doc).
fn reduced(ops: &[&Operation]) -> Result<(), String> {
    let (mut models, mut ev) = prepare(ops);
    merge_unseen_values(&mut models);
    settle_unanswered_swaps(&mut models);
    let facts = Facts::new(ops, &models);
    let mut need = vec![0u32; facts.requires.iter().max().map_or(1, |m| *m as usize + 1)];
    for r in &facts.requires {
        need[*r as usize] += 1;
    }
    // The value each operation compares the state with (0 if none or
    // absent), and how many unplaced operations compare it with each value.
    let watches: Vec<u32> = models
        .iter()
        .map(|m| match m {
            (ModelOp::Get, ModelResult::Value(v)) | (ModelOp::Cas { expected: v, .. }, _) => *v,
            _ => 0,
        })
        .collect();
    let mut watched = vec![0u32; watches.iter().max().map_or(1, |m| *m as usize + 1)];
    for w in &watches {
        watched[*w as usize] += 1;
    }
    // A value no unplaced operation compares the state with is one state
    // with any other such value for the cache: which of them the key holds
    // changes no result to come (orders that differ only in which finished
    // value was written last meet again).
    const FORGOTTEN: u32 = u32::MAX;
    let forgotten = |v: u32, watched: &[u32]| v != 0 && watched.get(v as usize).is_none_or(|n| *n == 0);
    let budget = STEP_BUDGET.max(200 * ops.len() as u64);
    let mut cache: HashSet<(u128, u32), BuildMix> = HashSet::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut untried: Vec<usize> = Vec::new();
    let mut window: Vec<usize> = Vec::new();
    let mut twins: Vec<(u128, u64, usize, usize)> = Vec::new();
    let (mut state, mut hash) = (0u32, 0u128);
    let (mut deepest, mut deepest_window) = (0usize, Vec::new());
    let mut steps = 0u64;
    let mut placed = vec![false; ops.len()];
    // Once every answered operation is placed, the unanswered rest fit after
    // them in any order: each takes any state, and none has a return to keep.
    let answered = |op: usize| ops[op].completed_at().is_some();
    let mut answered_left = (0..ops.len()).filter(|op| answered(*op)).count();

    // Places the operation of `call`; false if that state was explored already.
    macro_rules! place {
        ($call:expr, $new_state:expr, $forced:expr, $from:expr, $to:expr) => {{
            let op = ev.op[$call];
            watched[watches[op] as usize] -= 1;
            let key = if forgotten($new_state, &watched) { FORGOTTEN } else { $new_state };
            if cache.insert((hash ^ facts.zobrist[op], key)) {
                stack.push(Frame { call: $call, prev_state: state, forced: $forced, from: $from, to: $to });
                hash ^= facts.zobrist[op];
                need[facts.requires[op] as usize] -= 1;
                placed[op] = true;
                answered_left -= usize::from(answered(op));
                state = $new_state;
                ev.lift($call);
                true
            } else {
                watched[watches[op] as usize] += 1;
                false
            }
        }};
    }

    'search: while answered_left > 0 {
        steps += 1;
        if steps > budget {
            let furthest = explain_window(ops, deepest, &deepest_window);
            return Err(format!(
                "search gave up after {budget} steps over {} operations; so far, {furthest}",
                ops.len()
            ));
        }
        // The operations that may come next: every call before the first pending return.
        window.clear();
        let mut e = ev.next[0];
        while e != NIL && ev.is_call[e] {
            window.push(e);
            e = ev.next[e];
        }
        // Operations that must see the key absent which "absent" can no
        // longer come back in time for: a dead end now rather than after
        // trying every order of the rest.
        let doomed = facts.absence_runs_out(&placed, state);
        let observer =
            window.iter().copied().find(|c| facts.observer[ev.op[*c]] && fits_at(&models, &ev, *c, state).is_some());
        if doomed {
            // Straight to the dead end below.
        } else if let Some(call) = observer {
            let len = untried.len();
            if place!(call, state, true, len, len) {
                continue 'search;
            }
        } else {
            // While the value is needed, only the compare-and-set that replaces
            // it may leave it, and only as the last operation that needs it.
            let needed = if state == 0 { 0 } else { need.get(state as usize).copied().unwrap_or(0) };
            let from = untried.len();
            // Operations that do the same thing with the same result are
            // interchangeable once called: of such twins only the one that
            // returns first is tried (swapping it with a twin placed before
            // it in any linearization leaves every state, and every
            // real-time order, as it was). Unanswered ones return never.
            twins.clear();
            for (i, &c) in window.iter().enumerate() {
                let allowed = needed == 0 || (needed == 1 && facts.requires[ev.op[c]] == state);
                // An unanswered operation that would leave the state as it
                // is may as well come last, where it changes nothing either
                // (it fits anywhere and nothing waits for its return): so it
                // is never a choice.
                let idle = |new_state| new_state == state && !answered(ev.op[c]);
                if allowed && fits_at(&models, &ev, c, state).is_some_and(|s| !idle(s)) {
                    let op = ev.op[c];
                    twins.push((model_key(&models[op]), facts.deadline[op].1, i, c));
                }
            }
            twins.sort_unstable();
            twins.dedup_by_key(|t| t.0);
            untried.extend(twins.iter().map(|t| t.3));
            untried[from..].sort_unstable_by_key(|c| std::cmp::Reverse(facts.deadline[ev.op[*c]]));
            while untried.len() > from {
                let c = untried.pop().expect("not empty");
                let new_state = fits_at(&models, &ev, c, state).expect("filtered above");
                if place!(c, new_state, false, from, untried.len()) {
                    continue 'search;
                }
            }
        }
        // A dead end: undo forced placements and the choices with nothing left to try.
        if stack.len() >= deepest {
            deepest = stack.len();
            deepest_window = window.iter().map(|c| ev.op[*c]).collect();
        }
        while let Some(frame) = stack.pop() {
            let op = ev.op[frame.call];
            ev.unlift(frame.call);
            state = frame.prev_state;
            hash ^= facts.zobrist[op];
            need[facts.requires[op] as usize] += 1;
            watched[watches[op] as usize] += 1;
            placed[op] = false;
            answered_left += usize::from(answered(op));
            untried.truncate(frame.to);
            if frame.forced {
                continue;
            }
            while untried.len() > frame.from {
                let c = untried.pop().expect("not empty");
                let new_state = fits_at(&models, &ev, c, state).expect("fitted before");
                if place!(c, new_state, false, frame.from, untried.len()) {
                    continue 'search;
                }
            }
        }
        return Err(explain_window(ops, deepest, &deepest_window));
    }
    Ok(())
}

/// One number per distinct (operation, result), for grouping twins.
fn model_key(model: &(ModelOp, ModelResult)) -> u128 {
    let op = match model.0 {
        ModelOp::Get => 0,
        ModelOp::Put(v) => 1 | u64::from(v) << 8,
        ModelOp::Del => 2,
        ModelOp::Cas { expected, new } => 3 | u64::from(expected) << 8 | u64::from(new) << 36,
    };
    let result = match model.1 {
        ModelResult::Value(v) => u64::from(v) << 8,
        ModelResult::Done => 1,
        ModelResult::Deleted(d) => 2 | u64::from(d) << 8,
        ModelResult::Swapped(s) => 3 | u64::from(s) << 8,
        ModelResult::Any => 4,
    };
    u128::from(op) << 64 | u128::from(result)
}

fn fits_at(models: &[(ModelOp, ModelResult)], ev: &Events, call: usize, state: u32) -> Option<u32> {
    step(state, models[ev.op[call]].0, models[ev.op[call]].1)
}

fn explain(ops: &[&Operation], deepest: usize) -> String {
    let mut s = format!(
        "no linearization of {} operations exists (at most {deepest} could be ordered); operations on the key:",
        ops.len()
    );
    let mut sorted: Vec<&Operation> = ops.to_vec();
    sorted.sort_by_key(|o| o.invoked);
    describe_ops(&mut s, &sorted[..sorted.len().min(40)]);
    if sorted.len() > 40 {
        let _ = write!(s, "\n  ... and {} more", sorted.len() - 40);
    }
    s
}

/// Like [`explain`] for a large key: the operations that could come next where the search got furthest.
fn explain_window(ops: &[&Operation], deepest: usize, window: &[usize]) -> String {
    if ops.len() <= 40 {
        return explain(ops, deepest);
    }
    let mut s = format!(
        "no linearization of {} operations exists (at most {deepest} could be ordered); where it got furthest, the operations that could come next were:",
        ops.len()
    );
    let next: Vec<&Operation> = window.iter().take(40).map(|i| ops[*i]).collect();
    describe_ops(&mut s, &next);
    s
}
