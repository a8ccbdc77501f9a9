//! What the simulator needs to drive and check a state machine: the
//! [`Workload`] trait, and its implementation for the key-value store.
//!
//! The simulator runs [`Sim<P, W>`](crate::Sim) with any `W: Workload`: every
//! node holds a `W`, clients send the operations `W::next_op` draws, and at the
//! end of a run `W::check_history` judges what the clients were told. The
//! checks that need no model run for every workload: nodes agree on what they
//! apply at each index, snapshots and final states equal the committed log
//! replayed into a fresh `W`, and a read served outside the log says what the
//! committed log's state answers at the index it was served at.

use crate::config::ClientConfig;
use crate::history::{Operation, Outcome};
use bytes::Bytes;
use quorum_core::{ClientId, Instant, KvOp, KvResult, KvStore, Rng, Service};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// A state machine the simulator can drive with clients and check.
///
/// `W` is both what every node replicates ([`Service`]: `apply`, `snapshot`,
/// `restore`, `query`, `cached_response`) and, through `check_history`, the
/// judge of what the clients saw. Two rules the simulator relies on:
/// `apply` is deterministic, and equal states have equal `snapshot` bytes (it
/// compares states by their snapshots: sort maps, use `BTreeMap`).
pub trait Workload: Service + Clone + Default + 'static {
    /// What a client asks.
    type Op: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send;
    /// What it is told.
    type Output: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send;

    /// A client's next operation. `ctx.key` is a key index already drawn by
    /// the simulator from the configured distribution over `clients.keys`.
    fn next_op(ctx: &mut OpContext<'_, Self::Op, Self::Output>) -> Self::Op;

    /// The bytes of the operation: a command for `apply`, or a query for `query`.
    fn encode(op: &Self::Op) -> Bytes;

    /// The answer in `apply`'s or `query`'s response bytes. Responses come
    /// from the machine itself, so a decoding failure is a bug to report in
    /// the output (the key-value store answers `Invalid`), not a panic.
    fn decode(response: &[u8]) -> Self::Output;

    /// True for an operation that changes nothing: it may take the protocol's
    /// read path (ReadIndex, `sync`) or be a local read, and is then answered
    /// by `query` outside the log.
    fn is_read(op: &Self::Op) -> bool;

    /// Judges the history the clients saw (local reads left out: they
    /// promise less, and are checked apart). Returns each broken rule as the
    /// check's name and what it saw; the key-value store checks
    /// linearizability against its register model ([`crate::lincheck`]).
    fn check_history(history: &[Operation<Self::Op, Self::Output>]) -> Vec<(String, String)>;

    /// A short human form of an operation, for traces and reports.
    fn show_op(op: &Self::Op) -> String {
        format!("{op:?}")
    }

    /// A short human form of an answer.
    fn show_output(output: &Self::Output) -> String {
        format!("{output:?}")
    }
}

/// What [`Workload::next_op`] may draw on.
pub struct OpContext<'a, O, R> {
    /// The run's random stream: draw only from it, so seeds replay.
    pub rng: &'a mut Rng,
    /// The client asking.
    pub client: ClientId,
    /// The sequence number this operation will have.
    pub seq: u64,
    /// The (true) virtual time of the call: what a client's clock would read,
    /// for machines whose commands carry time (leases).
    pub now: Instant,
    /// A key index in `0..config.keys`, drawn from the configured distribution.
    pub key: usize,
    /// The clients' settings (ratios, value size, ...).
    pub config: &'a ClientConfig,
    /// The client only reads ([`ClientConfig::readers`]).
    pub reader: bool,
    /// Every operation so far, answered or not.
    pub history: &'a [Operation<O, R>],
}

impl Workload for KvStore {
    type Op = KvOp;
    type Output = KvResult;

    fn next_op(ctx: &mut OpContext<'_, KvOp, KvResult>) -> KvOp {
        let key = Bytes::from(format!("k{}", ctx.key));
        if ctx.reader {
            return KvOp::Get { key };
        }
        let cfg = ctx.config;
        // Values are unique per write, so the checker can tell writes apart.
        let mut value = format!("c{}.{}", ctx.client.0, ctx.seq).into_bytes();
        let large = cfg.large_value_ratio > 0.0 && ctx.rng.chance(cfg.large_value_ratio);
        let size = if large { cfg.large_value_size } else { cfg.value_size };
        value.resize(size.max(value.len()), b'.');
        let value = Bytes::from(value);
        if cfg.incr_ratio > 0.0 && ctx.rng.chance(cfg.incr_ratio) {
            // Counters live apart from the registers: their values are not unique.
            let key = Bytes::from(format!("n{}", ctx.key));
            return if ctx.rng.chance(0.5) { KvOp::Incr { key, by: 1 } } else { KvOp::Get { key } };
        }
        let roll = ctx.rng.unit();
        let (read, cas, del) = (cfg.read_ratio, cfg.cas_ratio, cfg.delete_ratio);
        if roll < read {
            KvOp::Get { key }
        } else if roll < read + cas {
            // Expect the value most recently written by anyone we know of, or absence.
            let expected = last_written(ctx.history, &key);
            KvOp::Cas { key, expected, new: value }
        } else if roll < read + cas + del {
            KvOp::Del { key }
        } else {
            KvOp::Put { key, value }
        }
    }

    fn encode(op: &KvOp) -> Bytes {
        op.encode()
    }

    fn decode(response: &[u8]) -> KvResult {
        KvResult::decode(response).unwrap_or_else(|e| KvResult::Invalid(e.to_string()))
    }

    fn is_read(op: &KvOp) -> bool {
        op.is_read()
    }

    fn check_history(history: &[Operation]) -> Vec<(String, String)> {
        match crate::lincheck::check(history) {
            Ok(()) => Vec::new(),
            Err(e) => vec![("linearizability".to_string(), e.to_string())],
        }
    }

    fn show_op(op: &KvOp) -> String {
        crate::lincheck::show_op(op)
    }

    fn show_output(output: &KvResult) -> String {
        crate::lincheck::show_result(output)
    }
}

/// The value of the latest answered put of `key`.
fn last_written(history: &[Operation], key: &Bytes) -> Option<Bytes> {
    history.iter().rev().find_map(|o| match (&o.op, &o.outcome) {
        (KvOp::Put { key: k, value }, Outcome::Ok { .. }) if k == key => Some(value.clone()),
        _ => None,
    })
}
