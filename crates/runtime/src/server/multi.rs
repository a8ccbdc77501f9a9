//! `MULTI` / `EXEC` / `DISCARD` and `WATCH` / `UNWATCH`: a transaction is
//! one log entry.
//!
//! `MULTI` starts queueing the connection's commands (`+QUEUED`; a command
//! that cannot run inside a transaction, or has the wrong number of
//! arguments, is refused and makes `EXEC` answer `-EXECABORT`). `EXEC`
//! reads every key the queued commands touch (each linearizably), runs them
//! in order on those values, and proposes one [`KvOp::Txn`]: its checks say
//! every key still holds what was read (and every watched key what it held
//! at `WATCH`), its writes are the keys the commands changed. If the checks
//! hold at the transaction's index, all of it takes effect there, as if the
//! commands ran alone at that index: atomic and linearizable. Deadlines go in
//! the same entry: `SET ... EX`, `SETEX`, `EXPIRE` and `PEXPIRE` set one, a
//! plain `SET`, `GETSET` or `MSET` clears it, `RENAME` carries it (`TTL` and
//! `PERSIST`, which answer from the deadline, are not queued). If another
//! client changed a key first, `EXEC` reads again and reruns (for up to
//! `retry_for`); if a watched key changed, `EXEC` answers a null and nothing
//! is written, as in Redis. A watched key written back to the value it held
//! counts as unchanged here (Redis would abort).

use super::{ops, parse_i64, Session, Step};
use crate::node::unix_millis;
use crate::reply::Reply;
use bytes::Bytes;
use quorum_core::{KvOp, Ttl};
use std::collections::{BTreeMap, BTreeSet};

/// The most commands one transaction may queue.
const MAX_QUEUED: usize = 10_000;
/// The most keys one connection may watch.
const MAX_WATCHED: usize = 10_000;

/// A connection's transaction being queued.
#[derive(Debug, Default)]
pub(super) struct Multi {
    queued: Vec<Vec<Bytes>>,
    /// The queued commands' argument bytes, held to one command's limit.
    queued_bytes: usize,
    keys: BTreeSet<Bytes>,
    /// A command was refused while queueing: `EXEC` discards the transaction.
    aborted: bool,
}

/// The keys a command touches, if it may run inside a transaction with
/// these arguments; else the error to answer.
fn keys_of(args: &[Bytes]) -> Result<Vec<Bytes>, Reply> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    let n = args.len();
    let ok = match name.as_str() {
        "GET" | "STRLEN" | "TYPE" | "GETDEL" | "INCR" | "DECR" => n == 2,
        "SETNX" | "GETSET" | "APPEND" | "INCRBY" | "DECRBY" | "INCRBYFLOAT" | "RENAME" => n == 3,
        "EXPIRE" | "PEXPIRE" => n == 3,
        "GETRANGE" | "SUBSTR" | "SETRANGE" | "SETEX" | "PSETEX" => n == 4,
        "SET" => n >= 3,
        "DEL" | "UNLINK" | "EXISTS" | "MGET" => n >= 2,
        "MSET" | "MSETNX" => n >= 3 && n % 2 == 1,
        "PING" => n <= 2,
        "ECHO" => n == 2,
        "UNWATCH" => n == 1,
        _ => {
            return Err(Reply::Error(format!(
                "ERR '{}' cannot run inside MULTI here (strings and keys only)",
                name.to_ascii_lowercase()
            )))
        }
    };
    if !ok {
        return Err(Reply::Error(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase())));
    }
    Ok(match name.as_str() {
        "PING" | "ECHO" | "UNWATCH" => Vec::new(),
        "DEL" | "UNLINK" | "EXISTS" | "MGET" => args[1..].to_vec(),
        "MSET" | "MSETNX" => args[1..].iter().step_by(2).cloned().collect(),
        "RENAME" => vec![args[1].clone(), args[2].clone()],
        _ => vec![args[1].clone()],
    })
}

/// The keys a transaction read, and what it has made of them so far.
type View = BTreeMap<Bytes, Option<Bytes>>;
/// The deadlines a transaction changes.
type Ttls = BTreeMap<Bytes, Ttl>;

/// Runs one queued command on `view` and `ttls`; answers as the command
/// alone would.
fn run(args: &[Bytes], view: &mut View, ttls: &mut Ttls) -> Reply {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    let value = |view: &View, key: &Bytes| view.get(key).cloned().flatten();
    // A read-modify-write of one key, as `Session::update` does alone.
    let step = |view: &mut View, key: &Bytes, step: &dyn Fn(Option<&Bytes>) -> Result<Step, Reply>| match step(
        value(view, key).as_ref(),
    ) {
        Ok(Step::Write(new, reply)) => {
            view.insert(key.clone(), Some(new));
            reply
        }
        Ok(Step::Answer(reply)) | Err(reply) => reply,
    };
    match name.as_str() {
        "PING" => args.get(1).map_or(Reply::Status("PONG"), |m| Reply::Bulk(m.clone())),
        "ECHO" => Reply::Bulk(args[1].clone()),
        "UNWATCH" => Reply::ok(),
        "GET" => value(view, &args[1]).map_or(Reply::Null, Reply::Bulk),
        "STRLEN" => Reply::Integer(value(view, &args[1]).map_or(0, |v| v.len() as i64)),
        "TYPE" => Reply::Status(if value(view, &args[1]).is_some() { "string" } else { "none" }),
        "MGET" => Reply::Array(args[1..].iter().map(|k| value(view, k).map_or(Reply::Null, Reply::Bulk)).collect()),
        "EXISTS" => Reply::Integer(args[1..].iter().filter(|k| value(view, k).is_some()).count() as i64),
        "DEL" | "UNLINK" => {
            let mut deleted = 0;
            for key in &args[1..] {
                ttls.insert(key.clone(), Ttl::Persist); // a key made again later has none
                if view.insert(key.clone(), None).flatten().is_some() {
                    deleted += 1;
                }
            }
            Reply::Integer(deleted)
        }
        "SET" | "SETEX" | "PSETEX" => {
            let options = match name.as_str() {
                "SET" => ops::set_options(args),
                _ => ops::setex_options(&name, &args[2]),
            };
            let new = if name == "SET" { &args[2] } else { &args[3] };
            match options {
                Ok(o) => match ops::set(value(view, &args[1]).as_ref(), new, o) {
                    Step::Write(new, reply) => {
                        view.insert(args[1].clone(), Some(new));
                        if let Some(ttl) = o.ttl() {
                            ttls.insert(args[1].clone(), ttl);
                        }
                        reply
                    }
                    Step::Answer(reply) => reply,
                },
                Err(error) => error,
            }
        }
        "EXPIRE" | "PEXPIRE" => {
            let Some(n) = parse_i64(&args[2]) else { return Reply::Error(super::NOT_AN_INTEGER.into()) };
            let Some(ttl) = ops::expire_ttl(name.as_bytes(), n) else {
                return Reply::Error(format!("ERR invalid expire time in '{}' command", name.to_ascii_lowercase()));
            };
            let key = &args[1];
            if value(view, key).is_none() {
                return Reply::Integer(0);
            }
            if let Ttl::In(_) = ttl {
                ttls.insert(key.clone(), ttl);
            } else {
                // A time of 0 or less: the key goes at once.
                view.insert(key.clone(), None);
                ttls.insert(key.clone(), Ttl::Persist);
            }
            Reply::Integer(1)
        }
        "SETNX" => match step(view, &args[1], &|c| {
            Ok(ops::set(c, &args[2], ops::SetOptions { nx: true, ..Default::default() }))
        }) {
            Reply::Null => Reply::Integer(0),
            _ => Reply::Integer(1),
        },
        "GETSET" => {
            ttls.insert(args[1].clone(), Ttl::Persist);
            step(view, &args[1], &|c| Ok(ops::getset(c, &args[2])))
        }
        "APPEND" => step(view, &args[1], &|c| Ok(ops::append(c, &args[2]))),
        "INCR" => step(view, &args[1], &|c| ops::incr(c, 1)),
        "DECR" => step(view, &args[1], &|c| ops::incr(c, -1)),
        "INCRBY" | "DECRBY" => match parse_i64(&args[2]) {
            Some(by) if name == "INCRBY" => step(view, &args[1], &|c| ops::incr(c, by)),
            Some(by) if by != i64::MIN => step(view, &args[1], &|c| ops::incr(c, -by)),
            _ => Reply::Error(super::NOT_AN_INTEGER.into()),
        },
        "INCRBYFLOAT" => step(view, &args[1], &|c| ops::incr_float(c, &args[2])),
        "GETRANGE" | "SUBSTR" => match (parse_i64(&args[2]), parse_i64(&args[3])) {
            (Some(start), Some(end)) => {
                Reply::Bulk(ops::substring(&value(view, &args[1]).unwrap_or_default(), start, end))
            }
            _ => Reply::Error(super::NOT_AN_INTEGER.into()),
        },
        "SETRANGE" => match ops::setrange_offset(&args[2], args[3].len(), super::strings::MAX_STRING_LEN) {
            Ok(offset) => step(view, &args[1], &|c| Ok(ops::setrange(c, offset, &args[3]))),
            Err(error) => error,
        },
        "GETDEL" => {
            ttls.insert(args[1].clone(), Ttl::Persist);
            view.insert(args[1].clone(), None).flatten().map_or(Reply::Null, Reply::Bulk)
        }
        "RENAME" => match value(view, &args[1]) {
            None => Reply::Error("ERR no such key".into()),
            Some(_) if args[1] == args[2] => Reply::ok(),
            Some(v) => {
                let (from, to) = (&args[1], &args[2]);
                let ttl = ttls.get(from).cloned().unwrap_or_else(|| Ttl::From(from.clone()));
                ttls.insert(to.clone(), ttl);
                ttls.insert(from.clone(), Ttl::Persist);
                view.insert(from.clone(), None);
                view.insert(to.clone(), Some(v));
                Reply::ok()
            }
        },
        "MSET" => {
            for pair in args[1..].chunks(2) {
                view.insert(pair[0].clone(), Some(pair[1].clone()));
                ttls.insert(pair[0].clone(), Ttl::Persist);
            }
            Reply::ok()
        }
        "MSETNX" => {
            if args[1..].iter().step_by(2).any(|k| value(view, k).is_some()) {
                return Reply::Integer(0);
            }
            for pair in args[1..].chunks(2) {
                view.insert(pair[0].clone(), Some(pair[1].clone()));
                ttls.insert(pair[0].clone(), Ttl::Persist);
            }
            Reply::Integer(1)
        }
        other => Reply::Error(format!("ERR '{}' cannot run inside MULTI here", other.to_ascii_lowercase())),
    }
}

impl Session {
    /// Whether this connection is queueing a transaction.
    pub(super) fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// `MULTI`.
    pub(super) fn multi(&mut self) -> Reply {
        if self.multi.is_some() {
            return Reply::Error("ERR MULTI calls can not be nested".into());
        }
        self.multi = Some(Multi::default());
        Reply::ok()
    }

    /// A command sent after `MULTI`: queued, or refused (and the
    /// transaction marked to be discarded).
    pub(super) fn queue(&mut self, args: Vec<Bytes>) -> Reply {
        let Some(multi) = self.multi.as_mut() else { return Reply::Error("ERR not in a transaction".into()) };
        let bytes: usize = args.iter().map(|a| a.len()).sum();
        let limit = self.config.limits.max_command_bytes;
        if multi.queued.len() >= MAX_QUEUED || multi.queued_bytes + bytes > limit {
            multi.aborted = true;
            return Reply::Error(format!(
                "ERR a transaction holds at most {MAX_QUEUED} commands and {limit} bytes of arguments"
            ));
        }
        multi.queued_bytes += bytes;
        match keys_of(&args) {
            Ok(keys) => {
                multi.keys.extend(keys);
                multi.queued.push(args);
                Reply::Status("QUEUED")
            }
            Err(error) => {
                multi.aborted = true;
                error
            }
        }
    }

    /// `DISCARD`.
    pub(super) fn discard(&mut self) -> Reply {
        self.watched.clear();
        match self.multi.take() {
            Some(_) => Reply::ok(),
            None => Reply::Error("ERR DISCARD without MULTI".into()),
        }
    }

    /// `WATCH key ...`: remember what each key holds now (read linearizably).
    pub(super) async fn watch(&mut self, keys: &[Bytes]) -> Reply {
        if self.multi.is_some() {
            return Reply::Error("ERR WATCH inside MULTI is not allowed".into());
        }
        if self.watched.len() + keys.len() > MAX_WATCHED {
            return Reply::Error(format!("ERR a connection watches at most {MAX_WATCHED} keys"));
        }
        for key in keys {
            match self.read(key).await {
                Ok(value) => self.watched.push((key.clone(), value)),
                Err(error) => return error,
            }
        }
        Reply::ok()
    }

    /// `EXEC`: the queued commands as one transaction (see the module doc).
    pub(super) async fn exec(&mut self) -> Reply {
        let Some(multi) = self.multi.take() else { return Reply::Error("ERR EXEC without MULTI".into()) };
        let watched = std::mem::take(&mut self.watched);
        if multi.aborted {
            return Reply::Error("EXECABORT Transaction discarded because of previous errors.".into());
        }
        let give_up = tokio::time::Instant::now() + self.config.retry_for;
        loop {
            let mut read = View::new();
            for key in multi.keys.iter().chain(watched.iter().map(|(k, _)| k)) {
                if !read.contains_key(key) {
                    match self.read(key).await {
                        Ok(value) => read.insert(key.clone(), value),
                        Err(error) => return error,
                    };
                }
            }
            if watched.iter().any(|(key, then)| read.get(key) != Some(then)) {
                return Reply::Null; // a watched key changed: nothing is written
            }
            let (mut view, mut ttls) = (read.clone(), Ttls::new());
            let replies: Vec<Reply> = multi.queued.iter().map(|args| run(args, &mut view, &mut ttls)).collect();
            let writes = view.iter().filter(|(k, v)| read.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone()));
            let checks = read.clone().into_iter().collect();
            let ttls = ttls.into_iter().collect();
            // `now` is this node's clock until the leader stamps its own.
            let op = KvOp::Txn { checks, writes: writes.collect(), ttls, now: unix_millis() };
            match self.checked(op, give_up).await {
                Ok(true) => return Reply::Array(replies),
                Ok(false) => {}
                Err(error) => return error,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn queued_commands_run_in_order_on_the_values_read() {
        let mut view = View::new();
        view.insert(Bytes::from("n"), Some(Bytes::from("5")));
        view.insert(Bytes::from("s"), None);
        let script = [
            (&["INCR", "n"][..], Reply::Integer(6)),
            (&["INCRBY", "n", "4"], Reply::Integer(10)),
            (&["APPEND", "s", "ab"], Reply::Integer(2)),
            (&["GET", "s"], Reply::Bulk(Bytes::from("ab"))),
            (&["SET", "s", "x", "NX"], Reply::Null),
            (&["RENAME", "s", "t"], Reply::ok()),
            (&["EXISTS", "s", "t"], Reply::Integer(1)),
            (&["DEL", "t", "n"], Reply::Integer(2)),
            (&["INCR", "t"], Reply::Integer(1)),
        ];
        let mut ttls = Ttls::new();
        for (cmd, expected) in script {
            let a = args(cmd);
            for key in keys_of(&a).unwrap() {
                view.entry(key).or_insert(None);
            }
            assert_eq!(run(&a, &mut view, &mut ttls), expected, "{cmd:?}");
        }
        assert_eq!(view.get(&Bytes::from("t")), Some(&Some(Bytes::from("1"))));
        assert_eq!(view.get(&Bytes::from("n")), Some(&None));
    }

    #[test]
    fn deadlines_set_inside_a_transaction_follow_the_keys() {
        let (mut view, mut ttls) = (View::new(), Ttls::new());
        let b = |s: &str| Bytes::from(s.to_string());
        view.insert(b("old"), Some(b("1")));
        let script = [
            (&["INCR", "hits"][..], Reply::Integer(1)),
            (&["EXPIRE", "hits", "60"], Reply::Integer(1)),
            (&["EXPIRE", "absent", "60"], Reply::Integer(0)),
            (&["SET", "lock", "me", "NX", "PX", "500"], Reply::ok()),
            (&["RENAME", "lock", "held"], Reply::ok()),
            (&["RENAME", "old", "new"], Reply::ok()),
            (&["SETEX", "s", "0", "v"], Reply::Error("ERR invalid expire time in 'setex' command".into())),
            (&["PSETEX", "p", "20", "v"], Reply::ok()),
            (&["PEXPIRE", "p", "-1"], Reply::Integer(1)),
        ];
        for (cmd, expected) in script {
            let a = args(cmd);
            for key in keys_of(&a).unwrap() {
                view.entry(key).or_insert(None);
            }
            assert_eq!(run(&a, &mut view, &mut ttls), expected, "{cmd:?}");
        }
        assert_eq!(ttls.get(&b("hits")), Some(&Ttl::In(60_000)));
        assert_eq!(ttls.get(&b("absent")), None);
        assert_eq!(ttls.get(&b("held")), Some(&Ttl::In(500)), "RENAME carries the deadline set before it");
        assert_eq!(ttls.get(&b("lock")), Some(&Ttl::Persist));
        assert_eq!(ttls.get(&b("new")), Some(&Ttl::From(b("old"))), "and one set before the transaction");
        assert_eq!(view.get(&b("p")), Some(&None), "a deadline already past deletes the key");
    }

    #[test]
    fn commands_that_cannot_be_queued_are_named() {
        assert!(matches!(keys_of(&args(&["INFO"])), Err(Reply::Error(e)) if e.contains("cannot run inside MULTI")));
        assert!(matches!(keys_of(&args(&["GET"])), Err(Reply::Error(e)) if e.contains("wrong number")));
        assert!(matches!(keys_of(&args(&["MSET", "a"])), Err(Reply::Error(e)) if e.contains("wrong number")));
        assert_eq!(keys_of(&args(&["MSET", "a", "1", "b", "2"])).unwrap(), args(&["a", "b"]));
    }
}
