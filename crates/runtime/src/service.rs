//! What the runtime needs from a state machine to serve clients with it.
//!
//! A [`StateMachine`] is fed committed commands in order; a [`Service`] also
//! answers read-only queries and recognises retries. The node driver is
//! generic over it, and [`KvStore`] (the key-value store the RESP port
//! serves) is the default.

use quorum_core::{Bytes, ClientId, KvOp, KvResult, KvStore, StateMachine};

/// A state machine a node can serve to clients.
///
/// - A **command** (bytes) goes through the log; its answer is what
///   [`StateMachine::apply`] returns on the node the client talks to.
/// - A **query** (bytes) is answered by [`Service::query`] from the state once
///   it has applied the index the protocol confirmed as current (ReadIndex,
///   `sync`): linearizable, without a log entry. A protocol with no such read
///   path (Paxos, Multi-Paxos, Zab's log reads) orders the query through the
///   log instead: the query bytes then reach `apply` as a command, which must
///   answer them as `query` would and change nothing else than the session.
/// - A **retry** of a command already applied, same `(client, seq)`, is
///   answered with [`Service::cached_response`] and not proposed again.
///
/// `apply` must stay deterministic: every node applies the same commands in the
/// same order and must reach the same state, so it never reads a clock, a
/// random source or the environment. Time, when the machine needs it (leases),
/// travels inside the commands.
pub trait Service: StateMachine {
    /// Answers a read-only query from the state as it is now.
    fn query(&self, query: &[u8]) -> Bytes;

    /// The answer already given to `(client, seq)` if that command was applied.
    fn cached_response(&self, client: ClientId, seq: u64) -> Option<Bytes>;

    /// How many items (keys, locks...) the state holds, for status reports.
    fn item_count(&self) -> usize {
        0
    }
}

impl Service for KvStore {
    /// A query is an encoded [`KvOp::Get`], answered with an encoded [`KvResult`].
    fn query(&self, query: &[u8]) -> Bytes {
        let result = match KvOp::decode(query) {
            Ok(KvOp::Get { key }) => KvResult::Value(self.get(&key).cloned()),
            Ok(op) => KvResult::Invalid(format!("not a read: {op:?}")),
            Err(e) => KvResult::Invalid(format!("undecodable query: {e}")),
        };
        result.encode()
    }

    fn cached_response(&self, client: ClientId, seq: u64) -> Option<Bytes> {
        KvStore::cached_response(self, client, seq)
    }

    fn item_count(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::Command;

    #[test]
    fn a_kv_query_reads_what_a_get_through_the_log_would() {
        let mut kv = KvStore::new();
        let put = KvOp::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v") };
        kv.apply(1, &Command::new(ClientId(1), 1, put.encode()));
        let get = KvOp::Get { key: Bytes::from_static(b"k") }.encode();
        let through_log = kv.apply(2, &Command::new(ClientId(1), 2, get.clone()));
        assert_eq!(kv.query(&get), through_log);
        assert_eq!(KvResult::decode(&kv.query(&get)).unwrap(), KvResult::Value(Some(Bytes::from_static(b"v"))));
        assert!(matches!(KvResult::decode(&kv.query(&put.encode())).unwrap(), KvResult::Invalid(_)));
        assert_eq!(Service::item_count(&kv), 1);
    }
}
