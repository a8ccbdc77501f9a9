//! Hashes: a key holding fields and their values (`HSET`, `HGET`...).
//! A key holds a string or a hash, never both; a string command on a hash
//! (or the reverse) is answered [`KvResult::WrongType`], except the writes
//! that replace a key whatever it holds (`SET`, `MSET`, a delete).

use super::{key_hash, KvResult, KvStore};
use bytes::Bytes;

impl KvStore {
    /// The fields of the hash at `key`, if it holds one.
    pub fn hash(&self, key: &[u8]) -> Option<&std::collections::BTreeMap<Bytes, Bytes>> {
        self.hashes.get(key)
    }

    /// Every hash and its fields, in key order.
    pub fn hashes(&self) -> impl Iterator<Item = (&Bytes, &std::collections::BTreeMap<Bytes, Bytes>)> {
        self.hashes.iter()
    }

    /// `HSET` (`if_new`: `HSETNX`): the number of fields added.
    pub(super) fn hset(&mut self, key: Bytes, pairs: Vec<(Bytes, Bytes)>, if_new: bool) -> KvResult {
        if self.data.contains_key(&key) {
            return KvResult::WrongType;
        }
        if !self.hashes.contains_key(&key) {
            if pairs.is_empty() {
                return KvResult::Count(0); // no empty hash is ever stored
            }
            self.by_hash.insert((key_hash(&key), key.clone()));
        }
        let hash = self.hashes.entry(key).or_default();
        let mut added = 0;
        for (field, value) in pairs {
            if if_new && hash.contains_key(&field) {
                continue;
            }
            if hash.insert(field, value).is_none() {
                added += 1;
            }
        }
        KvResult::Count(added)
    }

    /// `HDEL`: the number of fields deleted; a hash left empty goes.
    pub(super) fn hdel(&mut self, key: Bytes, fields: Vec<Bytes>) -> KvResult {
        if self.data.contains_key(&key) {
            return KvResult::WrongType;
        }
        let Some(hash) = self.hashes.get_mut(&key) else { return KvResult::Count(0) };
        let deleted = fields.iter().filter(|f| hash.remove(*f).is_some()).count() as u64;
        if hash.is_empty() {
            self.remove(&key);
        }
        KvResult::Count(deleted)
    }

    /// `HINCRBY`: the field's new value.
    pub(super) fn hincr(&mut self, key: Bytes, field: Bytes, by: i64) -> KvResult {
        if self.data.contains_key(&key) {
            return KvResult::WrongType;
        }
        let old = match self.hashes.get(&key).and_then(|h| h.get(&field)) {
            None => 0,
            Some(v) => match super::parse_integer(v) {
                Some(n) => n,
                None => return KvResult::Invalid("hash value is not an integer".into()),
            },
        };
        let Some(new) = old.checked_add(by) else {
            return KvResult::Invalid("increment or decrement would overflow".into());
        };
        self.hset(key, vec![(field, Bytes::from(new.to_string()))], false);
        KvResult::Integer(new)
    }

    /// `HGET`, `HMGET`, `HGETALL` (`fields` `None`) and the other reads:
    /// each field asked for and its value, or every field of the hash.
    pub(super) fn hget(&self, key: &[u8], fields: Option<&[Bytes]>) -> KvResult {
        if self.data.contains_key(key) {
            return KvResult::WrongType;
        }
        let hash = self.hashes.get(key);
        KvResult::Fields(match fields {
            Some(fields) => fields.iter().map(|f| (f.clone(), hash.and_then(|h| h.get(f)).cloned())).collect(),
            None => hash.into_iter().flatten().map(|(f, v)| (f.clone(), Some(v.clone()))).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{apply, b};
    use crate::{KvOp, KvResult, KvStore, StateMachine};

    fn hset(key: &str, pairs: &[(&str, &str)]) -> KvOp {
        KvOp::HSet { key: b(key), pairs: pairs.iter().map(|(f, v)| (b(f), b(v))).collect(), if_new: false }
    }

    #[test]
    fn a_hash_holds_fields_and_goes_when_its_last_field_does() {
        let mut store = KvStore::new();
        assert_eq!(apply(&mut store, hset("h", &[("a", "1"), ("b", "2")])), KvResult::Count(2));
        assert_eq!(apply(&mut store, hset("h", &[("a", "3"), ("c", "4")])), KvResult::Count(1));
        let ifnew = KvOp::HSet { key: b("h"), pairs: vec![(b("a"), b("9"))], if_new: true };
        assert_eq!(apply(&mut store, ifnew), KvResult::Count(0));
        let get = |fields: Option<Vec<&str>>| KvOp::HGet {
            key: b("h"),
            fields: fields.map(|f| f.into_iter().map(b).collect()),
        };
        assert_eq!(
            apply(&mut store, get(Some(vec!["a", "zz"]))),
            KvResult::Fields(vec![(b("a"), Some(b("3"))), (b("zz"), None)])
        );
        let all = KvResult::Fields(vec![(b("a"), Some(b("3"))), (b("b"), Some(b("2"))), (b("c"), Some(b("4")))]);
        assert_eq!(apply(&mut store, get(None)), all);
        assert_eq!(apply(&mut store, KvOp::HIncr { key: b("h"), field: b("b"), by: 40 }), KvResult::Integer(42));
        assert_eq!(apply(&mut store, KvOp::HIncr { key: b("h"), field: b("new"), by: -1 }), KvResult::Integer(-1));
        let bad = apply(&mut store, KvOp::HIncr { key: b("h"), field: b("b"), by: i64::MAX });
        assert!(matches!(bad, KvResult::Invalid(ref e) if e.contains("overflow")), "{bad:?}");
        assert_eq!(store.len(), 1);
        let fields = vec![b("a"), b("b"), b("c"), b("new"), b("zz")];
        assert_eq!(apply(&mut store, KvOp::HDel { key: b("h"), fields }), KvResult::Count(4));
        assert_eq!((store.len(), store.hash(b"h")), (0, None), "an empty hash is no key");
        assert_eq!(apply(&mut store, get(None)), KvResult::Fields(vec![]));
    }

    #[test]
    fn a_key_holds_a_string_or_a_hash_and_a_command_for_the_other_is_refused() {
        let mut store = KvStore::new();
        apply(&mut store, hset("h", &[("f", "v")]));
        apply(&mut store, KvOp::Put { key: b("s"), value: b("x") });
        assert_eq!(apply(&mut store, KvOp::Get { key: b("h") }), KvResult::WrongType);
        assert_eq!(apply(&mut store, hset("s", &[("f", "v")])), KvResult::WrongType);
        assert_eq!(apply(&mut store, KvOp::HGet { key: b("s"), fields: None }), KvResult::WrongType);
        // A compare-and-set from absence must not slip a string in beside the hash.
        let cas = KvOp::Cas { key: b("h"), expected: None, new: b("1") };
        assert_eq!(apply(&mut store, cas), KvResult::Swapped(false));
        assert!(store.hash(b"h").is_some() && store.get(b"h").is_none());
        // SET replaces whatever the key held; a deadline and a delete work on both.
        let expire = KvOp::Expire { key: b("h"), at: crate::Ttl::At(50), now: 10, when: Default::default() };
        assert_eq!(apply(&mut store, expire), KvResult::Swapped(true));
        let mut copy = KvStore::new();
        copy.restore(&store.snapshot()).unwrap();
        assert_eq!(copy, store, "hashes and their deadlines survive a snapshot");
        apply(&mut store, KvOp::Sweep { now: 60 });
        assert_eq!(store.hash(b"h"), None);
        apply(&mut copy, KvOp::Put { key: b("h"), value: b("now a string") });
        assert_eq!((copy.hash(b"h"), copy.get(b"h")), (None, Some(&b("now a string"))));
        assert_eq!(copy.len(), 2);
        assert_eq!(apply(&mut copy, KvOp::Del { key: b("h") }), KvResult::Deleted(true));
        assert_eq!(copy.len(), 1);
    }
}
