//! What the store's tests share.

use super::{KvOp, KvResult, KvStore, StateMachine};
use crate::{ClientId, Command};
use bytes::Bytes;

pub(super) fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// Applies `op` as the next command of one client, at the next index.
pub(super) fn apply(store: &mut KvStore, op: KvOp) -> KvResult {
    let seq = store.applied_index() + 1;
    KvResult::decode(&store.apply(seq, &Command::new(ClientId(1), seq, op.encode()))).unwrap()
}
