//! What the runtime needs from a state machine to serve clients with it:
//! [`Service`], defined in quorum-core so that the simulator drives the same
//! trait. The node driver is generic over it, and [`quorum_core::KvStore`]
//! (the key-value store the RESP port serves) is the default.

pub use quorum_core::Service;

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::{Bytes, ClientId, Command, KvOp, KvResult, KvStore, StateMachine};

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
