//! Keys with `INCR`s: a counter's values are not unique (two histories of
//! increments write the same numbers), so the register check cannot tell its
//! writes apart. These keys are judged by the general search
//! ([`super::model::check_model`]) against this specification of one key:
//! a value or nothing, as get, put, delete, compare-and-set and increment see
//! it. Each answered `INCR` names the count it made, which pins it to one
//! place in any order, so the search rarely branches.

use super::model::Model;
use bytes::Bytes;
use quorum_core::{KvOp, KvResult};

/// One key's value, as the operations on it see it.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub(super) struct Cell(Option<Bytes>);

impl Model for Cell {
    type Op = KvOp;
    type Output = KvResult;

    fn step(&mut self, op: &KvOp) -> KvResult {
        match op {
            KvOp::Get { .. } => KvResult::Value(self.0.clone()),
            KvOp::Put { value, .. } => {
                self.0 = Some(value.clone());
                KvResult::Done
            }
            KvOp::Del { .. } => KvResult::Deleted(self.0.take().is_some()),
            KvOp::Cas { expected, new, .. } => {
                let swap = self.0 == *expected;
                if swap {
                    self.0 = Some(new.clone());
                }
                KvResult::Swapped(swap)
            }
            KvOp::Incr { by, .. } => {
                let old = match &self.0 {
                    None => Some(0),
                    // Redis's integers: no sign but '-', no leading zeros, no spaces.
                    Some(v) => std::str::from_utf8(v)
                        .ok()
                        .and_then(|t| t.parse::<i64>().ok())
                        .filter(|n| n.to_string().as_bytes() == &v[..]),
                };
                match old.map(|old| old.checked_add(*by)) {
                    Some(Some(new)) => {
                        self.0 = Some(Bytes::from(new.to_string()));
                        KvResult::Integer(new)
                    }
                    Some(None) => KvResult::Invalid("increment or decrement would overflow".into()),
                    None => KvResult::Invalid("value is not an integer or out of range".into()),
                }
            }
            other => KvResult::Invalid(format!("the counter model has no {}", super::show_op(other))),
        }
    }

    fn is_read(op: &KvOp) -> bool {
        op.is_read()
    }

    fn show_op(op: &KvOp) -> String {
        super::show_op(op)
    }

    fn show_output(output: &KvResult) -> String {
        super::show_result(output)
    }
}
