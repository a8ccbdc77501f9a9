//! The register check: linearizability of one key whose written values are
//! unique, decided from zones without search (see the module doc of
//! [`super`] for the criterion and why it is right).

use super::describe_ops;
use crate::history::{Operation, Outcome};
use bytes::Bytes;
use quorum_core::{KvOp, KvResult};
use std::collections::HashMap;

/// What the register check concluded about one key.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Linearizable (the key holds only what the criterion decides).
    Linearizable,
    /// Not linearizable, and why.
    Violation(String),
    /// Passed the conditions over unique values, but the key has deletes,
    /// failed compare-and-sets, repeated values or answers without a result:
    /// the search must decide.
    Undecided,
}

/// "Before everything": the initial value's write. Real times are shifted up by one.
const MINUS_INFINITY: u64 = 0;
/// The return of an operation that never got an answer.
const NEVER: u64 = u64::MAX;

/// A written value with the operations that must see it.
struct Cluster {
    /// The value (`None`: the initial absence).
    value: Option<Bytes>,
    /// The operation that wrote it (`None` for the initial value).
    writer: Option<usize>,
    /// Earliest return among its operations, and whose.
    f: (u64, Option<usize>),
    /// Latest invocation among its operations, and whose.
    s: (u64, Option<usize>),
    /// Operations other than the writer.
    members: usize,
    /// The cluster a compare-and-set replaced this value with.
    next: Option<usize>,
    /// The cluster this one's compare-and-set replaced.
    prev: Option<usize>,
}

impl Cluster {
    fn add(&mut self, op: usize, inv: u64, ret: u64) {
        if ret < self.f.0 {
            self.f = (ret, Some(op));
        }
        if inv > self.s.0 {
            self.s = (inv, Some(op));
        }
    }
}

/// A zone: a chain of glued clusters with its earliest return and latest invocation.
#[derive(Clone, Copy)]
struct Zone {
    chain: usize,
    f: (u64, Option<usize>),
    s: (u64, Option<usize>),
}

struct Key<'a> {
    ops: &'a [&'a Operation],
    clusters: Vec<Cluster>,
}

impl Key<'_> {
    fn inv(&self, i: usize) -> u64 {
        self.ops[i].invoked.as_nanos() + 1
    }

    fn ret(&self, i: usize) -> u64 {
        self.ops[i].completed_at().map_or(NEVER, |t| t.as_nanos() + 1)
    }

    fn violation(&self, reason: String, involved: &[Option<usize>]) -> Verdict {
        let mut s =
            format!("no linearization of {} operations exists: {reason}; the operations that show it:", self.ops.len());
        let mut seen: Vec<usize> = involved.iter().flatten().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        let ops: Vec<&Operation> = seen.iter().map(|i| self.ops[*i]).collect();
        describe_ops(&mut s, &ops);
        Verdict::Violation(s)
    }

    fn name(&self, c: usize) -> String {
        match &self.clusters[c].value {
            Some(v) => format!("'{}'", String::from_utf8_lossy(v)),
            None => "the initial absence".to_string(),
        }
    }
}

/// Decides one key (see [`Verdict`]).
pub(super) fn decide(ops: &[&Operation]) -> Verdict {
    // Which operation writes each value; a repeated value leaves it to the search.
    let mut writer_of: HashMap<&Bytes, usize> = HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        if let KvOp::Put { value: v, .. } | KvOp::Cas { new: v, .. } = &o.op {
            if writer_of.insert(v, i).is_some() {
                return Verdict::Undecided;
            }
        }
    }
    // Which values must have been written: read, or replaced by a compare-and-set
    // that took effect (an unanswered one took effect if its own value was seen).
    let mut observed: HashMap<&Bytes, bool> = HashMap::new();
    let mut stack: Vec<&Bytes> = Vec::new();
    for o in ops {
        match (&o.op, &o.outcome) {
            (KvOp::Get { .. }, Outcome::Ok { result: KvResult::Value(Some(v)), .. }) => stack.push(v),
            (KvOp::Cas { expected: Some(v), .. }, Outcome::Ok { result: KvResult::Swapped(true), .. }) => stack.push(v),
            _ => {}
        }
    }
    while let Some(v) = stack.pop() {
        if observed.insert(v, true).is_some() {
            continue;
        }
        if let Some(&w) = writer_of.get(v) {
            if let (KvOp::Cas { expected: Some(e), .. }, false) = (&ops[w].op, swapped(ops[w]) == Some(false)) {
                stack.push(e);
            }
        }
    }
    let took_effect = |i: usize| -> bool {
        let o = ops[i];
        match (&o.op, &o.outcome) {
            (KvOp::Put { .. }, Outcome::Ok { .. }) => true,
            (KvOp::Cas { .. }, Outcome::Ok { result: KvResult::Swapped(s), .. }) => *s,
            (KvOp::Put { value: v, .. } | KvOp::Cas { new: v, .. }, _) => observed.contains_key(v),
            _ => false,
        }
    };

    // Absence is a unique value only if nothing deletes.
    let absence_unique = !ops.iter().any(|o| matches!(o.op, KvOp::Del { .. }));
    // Whether the register criterion decides this key, or only its unique-value part.
    let mut decides = absence_unique;
    let mut key = Key { ops, clusters: Vec::new() };
    key.clusters.push(Cluster {
        value: None,
        writer: None,
        f: (MINUS_INFINITY, None),
        s: (MINUS_INFINITY, None),
        members: 0,
        next: None,
        prev: None,
    });
    let mut cluster_of: HashMap<&Bytes, usize> = HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        let value = match &o.op {
            KvOp::Put { value, .. } => value,
            KvOp::Cas { new, .. } => new,
            _ => continue,
        };
        let clean = matches!(&o.outcome, Outcome::Unknown | Outcome::Ok { result: KvResult::Done, .. })
            || matches!(&o.outcome, Outcome::Ok { result: KvResult::Swapped(_), .. });
        decides &= clean;
        if !took_effect(i) {
            continue;
        }
        let (inv, ret) = (key.inv(i), key.ret(i));
        cluster_of.insert(value, key.clusters.len());
        key.clusters.push(Cluster {
            value: Some(value.clone()),
            writer: Some(i),
            f: (ret, Some(i)),
            s: (inv, Some(i)),
            members: 0,
            next: None,
            prev: None,
        });
    }

    // Members: reads, and the compare-and-set that replaced each value.
    for (i, o) in ops.iter().enumerate() {
        let (inv, ret) = (key.inv(i), key.ret(i));
        let member_of = match (&o.op, &o.outcome) {
            (KvOp::Get { .. }, Outcome::Ok { result: KvResult::Value(v), .. }) => match v {
                None => absence_unique.then_some(0),
                Some(v) => match cluster_of.get(v) {
                    Some(&c) => Some(c),
                    None => {
                        let reason =
                            format!("a read returned '{}', which no operation wrote", String::from_utf8_lossy(v));
                        return key.violation(reason, &[Some(i)]);
                    }
                },
            },
            (KvOp::Get { .. }, _) => None,
            (KvOp::Del { .. }, _) => None,
            (KvOp::Cas { expected, new, .. }, _) => {
                if swapped(o) == Some(false) {
                    decides = false; // it saw "not `expected`": a choice
                    continue;
                }
                if !took_effect(i) {
                    continue;
                }
                let this = cluster_of[new];
                let prev = match expected {
                    // Which absence it replaced is a choice: it starts a chain of its own.
                    None if !absence_unique => continue,
                    None => 0,
                    Some(e) => match cluster_of.get(e) {
                        Some(&c) => c,
                        None => {
                            let reason = format!(
                                "a compare-and-set replaced '{}', which no operation wrote",
                                String::from_utf8_lossy(e)
                            );
                            return key.violation(reason, &[Some(i)]);
                        }
                    },
                };
                if let Some(other) = key.clusters[prev].next {
                    let reason = format!("two compare-and-sets both replaced {}", key.name(prev));
                    return key.violation(reason, &[Some(i), key.clusters[other].writer]);
                }
                key.clusters[prev].next = Some(this);
                key.clusters[this].prev = Some(prev);
                Some(prev)
            }
            (KvOp::Put { .. }, _) => None,
            _ => {
                unreachable!("check_with refuses every operation but get, put, del and cas before deciding any key")
            }
        };
        if let Some(c) = member_of {
            key.clusters[c].add(i, inv, ret);
            key.clusters[c].members += 1;
        }
    }
    let zones = match chains(&key) {
        Ok(zones) => zones,
        Err(v) => return v,
    };
    if let Err(v) = zones_disjoint(&key, zones) {
        return v;
    }
    if decides {
        Verdict::Linearizable
    } else {
        Verdict::Undecided
    }
}

/// The result of a compare-and-set, if it was answered with one.
fn swapped(o: &Operation) -> Option<bool> {
    match &o.outcome {
        Outcome::Ok { result: KvResult::Swapped(s), .. } => Some(*s),
        _ => None,
    }
}

/// Follows compare-and-set chains from their first write, checks each chain's
/// internal order, and returns one zone per chain.
fn chains(key: &Key<'_>) -> Result<Vec<Zone>, Verdict> {
    let mut zones = Vec::new();
    let mut visited = vec![false; key.clusters.len()];
    for root in 0..key.clusters.len() {
        let c = &key.clusters[root];
        if c.prev.is_some() || (root == 0 && c.members == 0) {
            continue;
        }
        let mut zone = Zone { chain: root, f: c.f, s: c.s };
        let mut at = root;
        visited[root] = true;
        while let Some(next) = key.clusters[at].next {
            let n = &key.clusters[next];
            // Everything of the earlier values must be able to precede the later one.
            if n.f.0 < zone.s.0 {
                let reason = format!(
                    "{} replaced {} by compare-and-set, yet an operation that must see {} returned before one that must see the earlier value was invoked",
                    key.name(next),
                    key.name(at),
                    key.name(next)
                );
                return Err(key.violation(reason, &[n.f.1, zone.s.1, n.writer]));
            }
            zone.f = zone.f.min(n.f);
            zone.s = zone.s.max(n.s);
            visited[next] = true;
            at = next;
        }
        if let Some(w) = c.writer {
            // No operation of the chain may return before its first write was invoked.
            if zone.f.0 < key.inv(w) {
                let reason = format!("an operation that must see {} returned before it was written", key.name(root));
                return Err(key.violation(reason, &[zone.f.1, Some(w)]));
            }
        }
        zones.push(zone);
    }
    if let Some(c) = (1..key.clusters.len()).find(|c| !visited[*c]) {
        let reason = format!("compare-and-sets form a cycle through {}: none can be first", key.name(c));
        return Err(key.violation(reason, &[key.clusters[c].writer]));
    }
    Ok(zones)
}

/// Forward zones pairwise disjoint, and no backward zone inside a forward one.
fn zones_disjoint(key: &Key<'_>, zones: Vec<Zone>) -> Result<(), Verdict> {
    let (mut forward, backward): (Vec<Zone>, Vec<Zone>) = zones.into_iter().partition(|z| z.f.0 < z.s.0);
    forward.sort_unstable_by_key(|z| z.f.0);
    let held = |z: &Zone| {
        let from = match z.f.1 {
            Some(op) => format!("from before {}#{} returned", key.ops[op].client, key.ops[op].seq),
            None => "from the start".to_string(),
        };
        let until = match z.s.1 {
            Some(op) => format!("until after {}#{} was invoked", key.ops[op].client, key.ops[op].seq),
            None => String::new(),
        };
        format!("{} must hold {from} {until}", key.name(z.chain))
    };
    for pair in forward.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.f.0 < a.s.0 {
            let reason = format!("{}, and {}: the two overlap", held(a), held(b));
            return Err(key.violation(reason, &[a.f.1, a.s.1, b.f.1, b.s.1]));
        }
    }
    for b in &backward {
        let before = forward.partition_point(|a| a.f.0 < b.s.0);
        if let Some(a) = before.checked_sub(1).map(|k| &forward[k]) {
            if b.f.0 < a.s.0 {
                let reason = format!(
                    "{}, but every operation that must see {} ran inside that stretch",
                    held(a),
                    key.name(b.chain)
                );
                return Err(key.violation(reason, &[a.f.1, a.s.1, b.f.1, b.s.1]));
            }
        }
    }
    Ok(())
}
