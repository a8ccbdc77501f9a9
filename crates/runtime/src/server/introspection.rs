//! What a client may ask about the server rather than the data: `COMMAND`
//! (`COUNT`, `LIST`, `INFO`, `DOCS`) from one table of the commands served,
//! and `CONFIG GET` for the few settings tools ask about on connect
//! (`redis-benchmark` asks `save` and `appendonly`). `CONFIG SET` is refused:
//! a node's settings are its flags, `--config` and `QUORUM_*`.
//!
//! `COMMAND DOCS` gives each command's summary, group and arguments; the
//! arguments are display tokens (`key`, `[NX | XX]`), which is what
//! `redis-cli` shows as hints, not Redis's nested argument specifications.

use crate::reply::Reply;
use bytes::Bytes;
use quorum_core::glob_match;

/// One served command: name, arity (Redis's: exact if positive, at least
/// `-arity` if negative, the name included), whether it writes, the first
/// and last key position and step, group, summary, and its arguments.
struct Spec(&'static str, i64, bool, (i64, i64, i64), &'static str, &'static str, &'static str);

#[rustfmt::skip]
const COMMANDS: &[Spec] = &[
    Spec("get", 2, false, (1, 1, 1), "string", "Returns the string value of a key.", "key"),
    Spec("set", -3, true, (1, 1, 1), "string", "Sets the string value of a key, with an optional condition and expiry.", "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]"),
    Spec("setnx", 3, true, (1, 1, 1), "string", "Sets a key only if it does not exist.", "key value"),
    Spec("setex", 4, true, (1, 1, 1), "string", "Sets a key and its expiry in seconds.", "key seconds value"),
    Spec("psetex", 4, true, (1, 1, 1), "string", "Sets a key and its expiry in milliseconds.", "key milliseconds value"),
    Spec("getset", 3, true, (1, 1, 1), "string", "Sets a key and returns its old value.", "key value"),
    Spec("getdel", 2, true, (1, 1, 1), "string", "Returns a key's value and deletes it.", "key"),
    Spec("mget", -2, false, (1, -1, 1), "string", "Returns the values of keys.", "key [key ...]"),
    Spec("mset", -3, true, (1, -1, 2), "string", "Sets keys, all at one log index.", "key value [key value ...]"),
    Spec("msetnx", -3, true, (1, -1, 2), "string", "Sets keys only if none exists, all at one log index.", "key value [key value ...]"),
    Spec("append", 3, true, (1, 1, 1), "string", "Appends to a key's value.", "key value"),
    Spec("strlen", 2, false, (1, 1, 1), "string", "Returns the length of a key's value.", "key"),
    Spec("getrange", 4, false, (1, 1, 1), "string", "Returns a substring of a key's value.", "key start end"),
    Spec("substr", 4, false, (1, 1, 1), "string", "Returns a substring of a key's value.", "key start end"),
    Spec("setrange", 4, true, (1, 1, 1), "string", "Overwrites part of a key's value from an offset.", "key offset value"),
    Spec("incr", 2, true, (1, 1, 1), "string", "Adds one to a key's integer value.", "key"),
    Spec("decr", 2, true, (1, 1, 1), "string", "Subtracts one from a key's integer value.", "key"),
    Spec("incrby", 3, true, (1, 1, 1), "string", "Adds a number to a key's integer value.", "key increment"),
    Spec("decrby", 3, true, (1, 1, 1), "string", "Subtracts a number from a key's integer value.", "key decrement"),
    Spec("incrbyfloat", 3, true, (1, 1, 1), "string", "Adds a float to a key's numeric value.", "key increment"),
    Spec("del", -2, true, (1, -1, 1), "generic", "Deletes keys.", "key [key ...]"),
    Spec("unlink", -2, true, (1, -1, 1), "generic", "Deletes keys.", "key [key ...]"),
    Spec("exists", -2, false, (1, -1, 1), "generic", "Counts the keys that exist.", "key [key ...]"),
    Spec("type", 2, false, (1, 1, 1), "generic", "Returns the kind of value a key holds.", "key"),
    Spec("rename", 3, true, (1, 2, 1), "generic", "Renames a key, with its deadline.", "key newkey"),
    Spec("renamenx", 3, true, (1, 2, 1), "generic", "Renames a key only if the new name is free.", "key newkey"),
    Spec("getex", -2, true, (1, 1, 1), "string", "Returns a key's value and changes its deadline.", "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]"),
    Spec("expire", -3, true, (1, 1, 1), "generic", "Sets a key's time to live in seconds.", "key seconds [NX | XX | GT | LT]"),
    Spec("pexpire", -3, true, (1, 1, 1), "generic", "Sets a key's time to live in milliseconds.", "key milliseconds [NX | XX | GT | LT]"),
    Spec("expireat", -3, true, (1, 1, 1), "generic", "Sets a key's deadline as a Unix time in seconds.", "key unix-time-seconds [NX | XX | GT | LT]"),
    Spec("pexpireat", -3, true, (1, 1, 1), "generic", "Sets a key's deadline as a Unix time in milliseconds.", "key unix-time-milliseconds [NX | XX | GT | LT]"),
    Spec("persist", 2, true, (1, 1, 1), "generic", "Removes a key's deadline.", "key"),
    Spec("ttl", 2, false, (1, 1, 1), "generic", "Returns a key's time to live in seconds.", "key"),
    Spec("pttl", 2, false, (1, 1, 1), "generic", "Returns a key's time to live in milliseconds.", "key"),
    Spec("expiretime", 2, false, (1, 1, 1), "generic", "Returns a key's deadline as a Unix time in seconds.", "key"),
    Spec("pexpiretime", 2, false, (1, 1, 1), "generic", "Returns a key's deadline as a Unix time in milliseconds.", "key"),
    Spec("scan", -2, false, (0, 0, 0), "generic", "Returns a page of keys.", "cursor [MATCH pattern] [COUNT count] [TYPE type]"),
    Spec("keys", 2, false, (0, 0, 0), "generic", "Returns every key matching a pattern.", "pattern"),
    Spec("dbsize", 1, false, (0, 0, 0), "server", "Returns the number of keys this node has applied.", ""),
    Spec("flushdb", -1, true, (0, 0, 0), "server", "Deletes every key, at one log index.", "[ASYNC | SYNC]"),
    Spec("flushall", -1, true, (0, 0, 0), "server", "Deletes every key, at one log index.", "[ASYNC | SYNC]"),
    Spec("hset", -4, true, (1, 1, 1), "hash", "Sets fields of a hash.", "key field value [field value ...]"),
    Spec("hmset", -4, true, (1, 1, 1), "hash", "Sets fields of a hash.", "key field value [field value ...]"),
    Spec("hsetnx", 4, true, (1, 1, 1), "hash", "Sets a field of a hash only if it does not exist.", "key field value"),
    Spec("hdel", -3, true, (1, 1, 1), "hash", "Deletes fields of a hash.", "key field [field ...]"),
    Spec("hincrby", 4, true, (1, 1, 1), "hash", "Adds a number to a field's integer value.", "key field increment"),
    Spec("hget", 3, false, (1, 1, 1), "hash", "Returns a field's value.", "key field"),
    Spec("hmget", -3, false, (1, 1, 1), "hash", "Returns fields' values.", "key field [field ...]"),
    Spec("hexists", 3, false, (1, 1, 1), "hash", "Whether a field exists.", "key field"),
    Spec("hstrlen", 3, false, (1, 1, 1), "hash", "Returns the length of a field's value.", "key field"),
    Spec("hlen", 2, false, (1, 1, 1), "hash", "Returns the number of fields of a hash.", "key"),
    Spec("hkeys", 2, false, (1, 1, 1), "hash", "Returns the fields of a hash.", "key"),
    Spec("hvals", 2, false, (1, 1, 1), "hash", "Returns the values of a hash.", "key"),
    Spec("hgetall", 2, false, (1, 1, 1), "hash", "Returns the fields and values of a hash.", "key"),
    Spec("multi", 1, false, (0, 0, 0), "transactions", "Starts a transaction.", ""),
    Spec("exec", 1, true, (0, 0, 0), "transactions", "Runs the queued commands as one log entry.", ""),
    Spec("discard", 1, false, (0, 0, 0), "transactions", "Drops the queued commands.", ""),
    Spec("watch", -2, false, (1, -1, 1), "transactions", "Makes EXEC depend on keys keeping their values.", "key [key ...]"),
    Spec("unwatch", 1, false, (0, 0, 0), "transactions", "Forgets the watched keys.", ""),
    Spec("ping", -1, false, (0, 0, 0), "connection", "Answers PONG, or the message.", "[message]"),
    Spec("echo", 2, false, (0, 0, 0), "connection", "Answers the message.", "message"),
    Spec("hello", -1, false, (0, 0, 0), "connection", "Chooses RESP2 or RESP3, signs in, names the connection.", "[protover [AUTH username password] [SETNAME clientname]]"),
    Spec("auth", -2, false, (0, 0, 0), "connection", "Signs the connection in.", "[username] password"),
    Spec("client", -2, false, (0, 0, 0), "connection", "SETNAME, GETNAME, ID, INFO or SETINFO of this connection.", "subcommand [argument ...]"),
    Spec("select", 2, false, (0, 0, 0), "connection", "Database 0, the only one.", "index"),
    Spec("reset", 1, false, (0, 0, 0), "connection", "Resets the connection.", ""),
    Spec("quit", -1, false, (0, 0, 0), "connection", "Closes the connection.", ""),
    Spec("info", -1, false, (0, 0, 0), "server", "Role, term, leader, indexes and counters of this node.", "[section]"),
    Spec("role", 1, false, (0, 0, 0), "server", "This node's role, term, leader and commit index.", ""),
    Spec("command", -1, false, (0, 0, 0), "server", "Describes the commands served.", "[COUNT | LIST | INFO command [command ...] | DOCS [command ...]]"),
    Spec("config", -2, false, (0, 0, 0), "server", "Reads a few settings.", "GET parameter [parameter ...]"),
    Spec("quorum", -2, true, (0, 0, 0), "server", "Operator commands: STATUS, MEMBERS, SNAPSHOT, BACKUP, TRANSFER, ADD, PROMOTE, REMOVE.", "subcommand [argument ...]"),
];

/// `COMMAND [COUNT | LIST | INFO name ... | DOCS [name ...]]`.
pub(super) fn command(args: &[Bytes]) -> Reply {
    let sub = args.get(1).map(|s| s.to_ascii_uppercase());
    let named = |names: &[Bytes]| -> Vec<Option<&'static Spec>> {
        names.iter().map(|n| COMMANDS.iter().find(|c| c.0.as_bytes().eq_ignore_ascii_case(n))).collect()
    };
    match sub.as_deref() {
        None => Reply::Array(COMMANDS.iter().map(info).collect()),
        Some(b"COUNT") if args.len() == 2 => Reply::Integer(COMMANDS.len() as i64),
        Some(b"LIST") if args.len() == 2 => Reply::Array(COMMANDS.iter().map(|c| Reply::text(c.0)).collect()),
        Some(b"INFO") => {
            let specs = if args.len() == 2 { COMMANDS.iter().map(Some).collect() } else { named(&args[2..]) };
            Reply::Array(specs.into_iter().map(|c| c.map_or(Reply::Null, info)).collect())
        }
        Some(b"DOCS") => {
            let specs = if args.len() == 2 { COMMANDS.iter().map(Some).collect() } else { named(&args[2..]) };
            Reply::Map(specs.into_iter().flatten().map(|c| (Reply::text(c.0), docs(c))).collect())
        }
        Some(_) => Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for 'command|{}': COUNT, LIST, INFO and DOCS are served",
            String::from_utf8_lossy(&args[1][..args[1].len().min(64)]).to_ascii_lowercase()
        )),
    }
}

/// `COMMAND INFO`'s entry: name, arity, flags, first key, last key, step,
/// ACL categories, tips, key specifications, subcommands.
fn info(c: &Spec) -> Reply {
    let flags = if c.2 { vec!["write"] } else { vec!["readonly"] };
    let (first, last, step) = c.3;
    Reply::Array(vec![
        Reply::text(c.0),
        Reply::Integer(c.1),
        Reply::Array(flags.into_iter().map(Reply::Status).collect()),
        Reply::Integer(first),
        Reply::Integer(last),
        Reply::Integer(step),
        Reply::Array(vec![Reply::Status(if c.2 { "@write" } else { "@read" })]),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

/// `COMMAND DOCS`'s entry for one command.
fn docs(c: &Spec) -> Reply {
    let arguments = tokens(c.6)
        .into_iter()
        .map(|t| Reply::Map(vec![(Reply::text("name"), Reply::text(t)), (Reply::text("type"), Reply::text("string"))]))
        .collect();
    Reply::Map(vec![
        (Reply::text("summary"), Reply::text(c.5)),
        (Reply::text("since"), Reply::text("1.0.0")),
        (Reply::text("group"), Reply::text(c.4)),
        (Reply::text("arguments"), Reply::Array(arguments)),
    ])
}

/// The top-level tokens of an argument line: words, and bracketed groups whole.
fn tokens(line: &str) -> Vec<String> {
    let (mut out, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for ch in line.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ' ' if depth == 0 => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The settings `CONFIG GET` answers: what they mean for a quorum node.
const SETTINGS: &[(&str, &str)] = &[
    // Every write is in a write-ahead log, fsync'd before it is acknowledged.
    ("appendonly", "yes"),
    ("appendfsync", "always"),
    ("save", ""),
    ("databases", "1"),
    ("maxmemory", "0"),
];

/// `CONFIG GET parameter ...` (globs allowed); `CONFIG SET` and the rest are refused.
pub(super) fn config(args: &[Bytes]) -> Reply {
    match args.get(1).map(|s| s.to_ascii_uppercase()).as_deref() {
        Some(b"GET") if args.len() >= 3 => {
            let matched = SETTINGS
                .iter()
                .filter(|(name, _)| args[2..].iter().any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes())));
            Reply::Map(matched.map(|(name, value)| (Reply::text(*name), Reply::text(*value))).collect())
        }
        _ => Reply::Error(
            "ERR CONFIG GET is served; a node's settings are changed by its flags, --config and QUORUM_* \
             (docs/operations.md), not by CONFIG SET"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_lines_split_into_display_tokens() {
        assert_eq!(tokens("key value [NX | XX] [GET]"), ["key", "value", "[NX | XX]", "[GET]"]);
        assert_eq!(tokens("[protover [AUTH username password]]"), ["[protover [AUTH username password]]"]);
        assert!(tokens("").is_empty());
    }

    #[test]
    fn every_command_is_described_once_with_a_sane_arity() {
        let mut names: Vec<_> = COMMANDS.iter().map(|c| c.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len(), "a command is described twice");
        for c in COMMANDS {
            assert!(c.1 != 0 && c.0.chars().all(|ch| ch.is_ascii_lowercase()), "{}", c.0);
        }
    }
}
