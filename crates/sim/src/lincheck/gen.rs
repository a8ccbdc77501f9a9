//! Random key-value histories with a known origin, for testing and
//! benchmarking the checkers: clients run one operation at a time, each
//! operation takes effect at a random instant inside its interval (an
//! unanswered one at any instant after its call, or never), and every result
//! is computed from that order. Without a [`Fault`] the history is
//! linearizable by construction; a fault plants a typical bug (which may, by
//! chance, still leave a linearizable history).

use crate::history::{Operation, Outcome};
use bytes::Bytes;
use quorum_core::{ClientId, Instant, KvOp, KvResult, Rng};

/// A bug to plant in a generated history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// One read returns an older value of its key than the one in effect.
    StaleRead,
    /// One acknowledged put never takes effect.
    LostWrite,
    /// Two puts on one key take effect in each other's place.
    ReorderedWrites,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Concurrent clients, each with one operation at a time.
    pub clients: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Operations in all (fewer if every client is left waiting).
    pub ops: usize,
    /// Fraction of reads.
    pub read_ratio: f64,
    /// Fraction of compare-and-sets (about half succeed).
    pub cas_ratio: f64,
    /// Fraction of deletes.
    pub delete_ratio: f64,
    /// Fraction of operations never answered (their client stops there).
    pub unknown_ratio: f64,
    /// Longest pause between a client's operations, in ticks (nanoseconds).
    pub max_gap: u64,
    /// Longest time from call to effect and from effect to answer, in ticks.
    pub max_latency: u64,
    /// A bug to plant.
    pub fault: Option<Fault>,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            clients: 3,
            keys: 1,
            ops: 8,
            read_ratio: 0.4,
            cas_ratio: 0.1,
            delete_ratio: 0.05,
            unknown_ratio: 0.05,
            max_gap: 3,
            max_latency: 3,
            fault: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Get,
    Put,
    Cas,
    Del,
}

struct Planned {
    client: usize,
    seq: u64,
    key: usize,
    kind: Kind,
    invoked: u64,
    /// When it takes effect (`None`: never).
    effect: Option<u64>,
    /// When it is answered (`None`: never).
    answered: Option<u64>,
    tie: u64,
}

/// A random history (see the module doc).
pub fn history(seed: u64, cfg: &GenConfig) -> Vec<Operation> {
    let mut rng = Rng::new(seed);
    let plan = plan(&mut rng, cfg);
    // Which put is lost, or which two trade places.
    let puts: Vec<usize> =
        (0..plan.len()).filter(|i| plan[*i].kind == Kind::Put && plan[*i].answered.is_some()).collect();
    let mut order: Vec<usize> = (0..plan.len()).filter(|i| plan[*i].effect.is_some()).collect();
    let mut effect: Vec<Option<u64>> = plan.iter().map(|p| p.effect).collect();
    let mut lost = None;
    match cfg.fault {
        Some(Fault::LostWrite) if !puts.is_empty() => lost = Some(puts[rng.index(puts.len())]),
        Some(Fault::ReorderedWrites) if puts.len() >= 2 => {
            let a = puts[rng.index(puts.len())];
            let same_key: Vec<usize> =
                puts.iter().copied().filter(|p| *p != a && plan[*p].key == plan[a].key).collect();
            if !same_key.is_empty() {
                let b = same_key[rng.index(same_key.len())];
                effect.swap(a, b);
            }
        }
        _ => {}
    }
    order.sort_by_key(|i| (effect[*i], plan[*i].tie));

    let key_name = |k: usize| Bytes::from(format!("k{k}"));
    let value_of = |p: &Planned| Bytes::from(format!("c{}.{}", p.client + 1, p.seq));
    let mut state: Vec<Option<Bytes>> = vec![None; cfg.keys.max(1)];
    let mut versions: Vec<Vec<Option<Bytes>>> = vec![vec![None]; cfg.keys.max(1)];
    let mut ops: Vec<Option<(KvOp, KvResult)>> = (0..plan.len()).map(|_| None).collect();
    // Reads that could be made stale: (op, how many versions its key had by then).
    let mut reads: Vec<(usize, usize)> = Vec::new();
    for &i in &order {
        let p = &plan[i];
        let key = key_name(p.key);
        let now = &mut state[p.key];
        let applied = lost != Some(i);
        let done = match p.kind {
            Kind::Get => {
                reads.push((i, versions[p.key].len()));
                (KvOp::Get { key }, KvResult::Value(now.clone()))
            }
            Kind::Put => {
                let value = value_of(p);
                if applied {
                    *now = Some(value.clone());
                }
                (KvOp::Put { key, value }, KvResult::Done)
            }
            Kind::Del => {
                let existed = now.is_some();
                *now = None;
                (KvOp::Del { key }, KvResult::Deleted(existed))
            }
            Kind::Cas => {
                let new = value_of(p);
                let expected = if rng.chance(0.5) {
                    now.clone()
                } else {
                    let old = &versions[p.key];
                    old[rng.index(old.len())].clone()
                };
                let swapped = expected == *now;
                if swapped {
                    *now = Some(new.clone());
                }
                (KvOp::Cas { key, expected, new }, KvResult::Swapped(swapped))
            }
        };
        if versions[p.key].last() != Some(&state[p.key]) {
            versions[p.key].push(state[p.key].clone());
        }
        ops[i] = Some(done);
    }
    if cfg.fault == Some(Fault::StaleRead) {
        let stale: Vec<(usize, usize)> = reads.into_iter().filter(|(_, n)| *n >= 2).collect();
        if !stale.is_empty() {
            let (i, n) = stale[rng.index(stale.len())];
            let p = &plan[i];
            let older = versions[p.key][rng.index(n - 1)].clone();
            ops[i] = Some((KvOp::Get { key: key_name(p.key) }, KvResult::Value(older)));
        }
    }

    plan.iter()
        .zip(ops)
        .map(|(p, done)| {
            let (op, result) = done.unwrap_or_else(|| {
                // Never took effect: what it asked does not matter to anyone.
                let key = key_name(p.key);
                let op = match p.kind {
                    Kind::Get => KvOp::Get { key },
                    Kind::Put => KvOp::Put { key, value: value_of(p) },
                    Kind::Del => KvOp::Del { key },
                    Kind::Cas => KvOp::Cas { key, expected: None, new: value_of(p) },
                };
                (op, KvResult::Done)
            });
            Operation {
                client: ClientId(p.client as u64 + 1),
                seq: p.seq,
                op,
                invoked: Instant::from_nanos(p.invoked),
                outcome: match p.answered {
                    Some(at) => Outcome::Ok { at: Instant::from_nanos(at), result },
                    None => Outcome::Unknown,
                },
                answered_by: None,
            }
        })
        .collect()
}

/// Who does what when.
fn plan(rng: &mut Rng, cfg: &GenConfig) -> Vec<Planned> {
    let clients = cfg.clients.max(1);
    let mut free_at = vec![0u64; clients];
    let mut seq = vec![0u64; clients];
    let mut active: Vec<usize> = (0..clients).collect();
    let mut plan = Vec::with_capacity(cfg.ops);
    while plan.len() < cfg.ops && !active.is_empty() {
        let slot = rng.index(active.len());
        let c = active[slot];
        let invoked = free_at[c] + rng.range(0, cfg.max_gap + 1);
        let roll = rng.unit();
        let kind = if roll < cfg.read_ratio {
            Kind::Get
        } else if roll < cfg.read_ratio + cfg.cas_ratio {
            Kind::Cas
        } else if roll < cfg.read_ratio + cfg.cas_ratio + cfg.delete_ratio {
            Kind::Del
        } else {
            Kind::Put
        };
        seq[c] += 1;
        let key = rng.index(cfg.keys.max(1));
        let (effect, answered) = if rng.chance(cfg.unknown_ratio) {
            active.swap_remove(slot);
            let effect = rng.chance(0.5).then(|| invoked + rng.range(0, 4 * cfg.max_latency + 1));
            (effect, None)
        } else {
            let effect = invoked + rng.range(0, cfg.max_latency + 1);
            let answered = effect + rng.range(0, cfg.max_latency + 1);
            free_at[c] = answered;
            (Some(effect), Some(answered))
        };
        plan.push(Planned { client: c, seq: seq[c], key, kind, invoked, effect, answered, tie: rng.next_u64() });
    }
    plan
}
