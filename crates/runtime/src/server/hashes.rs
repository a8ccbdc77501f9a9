//! Hashes: `HSET`, `HMSET`, `HSETNX`, `HGET`, `HMGET`, `HGETALL`, `HKEYS`,
//! `HVALS`, `HLEN`, `HEXISTS`, `HSTRLEN`, `HDEL`, `HINCRBY`. Each write is
//! one log entry computed by the store at its index (no read first), each
//! read a linearizable read like `GET`. A hash command on a key holding a
//! string, or a string command on a hash, is answered `-WRONGTYPE`.

use super::{parse_i64, Session, NOT_AN_INTEGER};
use crate::reply::Reply;
use bytes::Bytes;
use quorum_core::{KvOp, KvResult};

impl Session {
    /// The hash commands; `None` if `name` is none of them or has the wrong
    /// number of arguments (the caller answers that).
    pub(super) async fn hash_command(&mut self, name: &str, args: &[Bytes]) -> Option<Reply> {
        let n = args.len();
        let key = args.get(1).cloned().unwrap_or_default();
        let pairs = || args[2..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
        Some(match name {
            "HSET" | "HMSET" if n >= 4 && n % 2 == 0 => {
                let reply = self.run_op(KvOp::HSet { key, pairs: pairs(), if_new: false }).await;
                match reply {
                    Reply::Integer(_) if name == "HMSET" => Reply::ok(),
                    other => other,
                }
            }
            "HSETNX" if n == 4 => self.run_op(KvOp::HSet { key, pairs: pairs(), if_new: true }).await,
            "HDEL" if n >= 3 => self.run_op(KvOp::HDel { key, fields: args[2..].to_vec() }).await,
            "HINCRBY" if n == 4 => match parse_i64(&args[3]) {
                Some(by) => self.run_op(KvOp::HIncr { key, field: args[2].clone(), by }).await,
                None => Reply::Error(NOT_AN_INTEGER.into()),
            },
            "HGET" | "HEXISTS" | "HSTRLEN" if n == 3 => match self.fields(key, Some(vec![args[2].clone()])).await {
                Ok(mut fields) => {
                    let value = fields.pop().and_then(|(_, v)| v);
                    match name {
                        "HGET" => value.map_or(Reply::Null, Reply::Bulk),
                        "HEXISTS" => Reply::Integer(i64::from(value.is_some())),
                        _ => Reply::Integer(value.map_or(0, |v| v.len() as i64)),
                    }
                }
                Err(error) => error,
            },
            "HMGET" if n >= 3 => match self.fields(key, Some(args[2..].to_vec())).await {
                Ok(fields) => {
                    Reply::Array(fields.into_iter().map(|(_, v)| v.map_or(Reply::Null, Reply::Bulk)).collect())
                }
                Err(error) => error,
            },
            "HGETALL" | "HKEYS" | "HVALS" | "HLEN" if n == 2 => match self.fields(key, None).await {
                Ok(fields) => {
                    let all = fields.into_iter().map(|(f, v)| (f, v.unwrap_or_default()));
                    match name {
                        "HGETALL" => Reply::Map(all.map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v))).collect()),
                        "HKEYS" => Reply::Array(all.map(|(f, _)| Reply::Bulk(f)).collect()),
                        "HVALS" => Reply::Array(all.map(|(_, v)| Reply::Bulk(v)).collect()),
                        _ => Reply::Integer(all.count() as i64),
                    }
                }
                Err(error) => error,
            },
            _ => return None,
        })
    }

    /// Reads fields of the hash at `key` (`None`: all of them).
    async fn fields(&mut self, key: Bytes, fields: Option<Vec<Bytes>>) -> Result<Vec<(Bytes, Option<Bytes>)>, Reply> {
        match self.run_kv(KvOp::HGet { key, fields }).await? {
            KvResult::Fields(fields) => Ok(fields),
            other => Err(super::kv_reply(other)),
        }
    }
}

/// The hash commands, for the wrong-number-of-arguments answer.
pub(super) const HASH_COMMANDS: [&str; 13] = [
    "HSET", "HMSET", "HSETNX", "HDEL", "HINCRBY", "HGET", "HEXISTS", "HSTRLEN", "HMGET", "HGETALL", "HKEYS", "HVALS",
    "HLEN",
];
