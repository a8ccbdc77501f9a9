//! The client port: the Redis protocol, RESP2 by default and RESP3 after
//! `HELLO 3` (replies in `reply.rs`, encoded with the `redis-protocol`
//! crate).
//!
//! Commands: `SET key value [NX | XX] [GET] [EX | PX | EXAT | PXAT | KEEPTTL]`, `SETNX`, `GETSET`, `APPEND`,
//! `STRLEN`, `GET key`, `MGET`, `EXISTS`, `TYPE` (the read-modify-writes: a
//! read, then a compare-and-set), `INCR`, `DECR`, `INCRBY`, `DECRBY` (one
//! entry each, summed by the store),
//! `DBSIZE` (this node's applied state, not a linearizable read),
//! `DEL`/`UNLINK key [key ...]` (the multi-key ones act on each key in turn,
//! each linearizable, not at one instant), `PING [msg]`,
//! `ECHO msg`, `INFO [section]` (role, term, leader, commit and applied
//! index), `ROLE` (`[role, term, leader id, commit index]`), `QUIT`, and the
//! connection commands clients open with (`HELLO`, `CLIENT SETNAME | GETNAME
//! | ID | INFO | SETINFO`, `RESET`, `SELECT 0`: `handshake.rs`);
//! `COMMAND` and `CONFIG GET` describe the server (`server/introspection.rs`). Deadlines
//! (`EXPIRE`, `TTL`, `SET ... EX`: `server/expiry.rs`), the multi-key
//! strings (`server/strings.rs`), the keyspace (`server/keyspace.rs`) and
//! transactions (`server/multi.rs`) have modules of their own;
//! docs/redis.md lists every command and how it is served. Unknown commands
//! and bad arguments get Redis-style `-ERR` replies and the connection carries
//! on; bytes that are not RESP get `-ERR Protocol error` and the connection is
//! closed, as Redis does.
//!
//! **Requests** are read by [`crate::request::RequestParser`]: a command is
//! one flat array of bulk strings, never a nested one (no recursion, so no
//! request can exhaust the stack), with its array length and bulk lengths
//! checked against [`RequestLimits`] before anything is reserved. A command
//! whose arguments add up to more than a peer frame can carry
//! ([`RequestLimits::for_frame_limit`]) is read past and answered
//! `-ERR value too large: N bytes, the limit is M`, and nothing is proposed.
//!
//! **Sessions.** Each connection is a client session: a [`ClientId`] with this
//! node's id in the high 16 bits and a per-node counter below, and sequence
//! numbers that start at the connection's opening time in microseconds (so a
//! session id reused after a restart still moves forward) and increase by one
//! per command. Commands on one connection run one at a time, so a retry of an
//! unanswered command reuses its `(client, seq)` and the store applies it once.
//!
//! **Followers.** By default a follower forwards requests to its leader; with
//! `forward: false` it answers `-MOVED 0 host:port` naming the leader's client
//! address. While no leader is known, or the outcome of a command is unknown
//! (leadership changed), the request is retried for up to `retry_for`.

mod expiry;
mod hashes;
mod introspection;
mod keyspace;
mod multi;
mod ops;
mod strings;

use crate::auth::{required_access, Access, Users};
use crate::handshake::Connection;
use crate::limits::{ClientCounters, ClientLimits, PeerCounters, Slot, OUTPUT_FLUSH_BYTES};
use crate::node::{unix_millis, AdminAction, NodeHandle, NodeStatus};
use crate::reply::Reply;
use crate::request::{Request, RequestLimits, RequestParser};
use crate::tls::Tls;
use crate::wire::Outcome;
use bytes::{Bytes, BytesMut};
use quorum_core::{ClientId, KvOp, KvResult, Role, Ttl};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// Settings of the client port.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Keep retrying a request this long while no leader is known.
    pub retry_for: Duration,
    /// Limits on one request (array length, bulk length, command size).
    pub limits: RequestLimits,
    /// Serve TLS (see the `tls` module); `None`: plain TCP.
    pub tls: Option<Tls>,
    /// Who may do what (see the `auth` module); `None`: anyone, anything.
    pub users: Option<Users>,
    /// Connection count and timeouts (see the `limits` module).
    pub clients: ClientLimits,
    /// The peer transport's counts, shown by `INFO` when given.
    pub peer_counters: Option<Arc<PeerCounters>>,
    /// Where the client port counts (share it to read the counts elsewhere: `/metrics`).
    pub client_counters: Arc<ClientCounters>,
    /// The protocol's settings by name, shown by `INFO` (`# Settings`).
    pub settings: Arc<Vec<(String, String)>>,
}

impl ServerConfig {
    /// Defaults, with the command size bounded by what peers accept in one
    /// frame (`max_frame_bytes` of the peer transport).
    pub fn for_frame_limit(max_frame_bytes: usize) -> Self {
        ServerConfig { limits: RequestLimits::for_frame_limit(max_frame_bytes), ..ServerConfig::default() }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            retry_for: Duration::from_secs(5),
            limits: RequestLimits::default(),
            tls: None,
            users: None,
            clients: ClientLimits::default(),
            peer_counters: None,
            client_counters: Arc::default(),
            settings: Arc::default(),
        }
    }
}

/// The `# Settings` section of `INFO` (empty without settings).
fn settings_info(settings: &[(String, String)]) -> String {
    if settings.is_empty() {
        return String::new();
    }
    let lines: String = settings.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect();
    format!("# Settings\r\n{lines}")
}

/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts client connections until the task is dropped.
pub async fn serve(listener: TcpListener, node: NodeHandle, config: ServerConfig) {
    let sessions = Arc::new(AtomicU64::new(1));
    let counters = config.client_counters.clone();
    let tls = config.tls.clone();
    info!(addr = ?listener.local_addr().ok(), tls = tls.is_some(), "client port (RESP2 and RESP3) listening");
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "accepting a client failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = counters.admit(&config.clients) else {
            warn!(%remote, max_clients = config.clients.max_clients, "refused a client: max number of clients reached");
            if tls.is_none() {
                let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
            }
            continue;
        };
        let counter = sessions.fetch_add(1, Ordering::Relaxed);
        let client = ClientId((node.id().0 << 48) | (counter & ((1 << 48) - 1)));
        let conn = Connection::new(client.0, Some(remote));
        let access = config.users.is_none().then_some(Access::Admin);
        let session = Session {
            node: node.clone(),
            client,
            seq: first_seq(),
            config: config.clone(),
            conn,
            access,
            counters: counters.clone(),
            _slot: slot,
            multi: None,
            watched: Vec::new(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let ended = match tls {
                None => session.run(stream).await,
                Some(tls) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.client_acceptor().accept(stream)).await {
                        Ok(Ok(stream)) => session.run(stream).await,
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                    }
                }
            };
            if let Err(e) = ended {
                debug!(%remote, error = %e, "client connection ended");
            }
        });
    }
}

fn first_seq() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_micros() as u64
}

struct Session {
    node: NodeHandle,
    client: ClientId,
    seq: u64,
    config: ServerConfig,
    conn: Connection,
    /// What this connection may do: `None` until it authenticates.
    access: Option<Access>,
    counters: Arc<ClientCounters>,
    /// This connection's place under `max_clients`, given back on drop.
    _slot: Slot,
    /// The transaction being queued after `MULTI`.
    multi: Option<multi::Multi>,
    /// Keys under `WATCH` and the values they held then.
    watched: Vec<(Bytes, Option<Bytes>)>,
}

impl Session {
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut stream: S) -> std::io::Result<()> {
        let mut input = BytesMut::with_capacity(16 * 1024);
        let mut output = BytesMut::with_capacity(16 * 1024);
        let mut parser = RequestParser::new(self.config.limits.clone());
        // When the request being read began: it must be whole by `request_timeout`.
        let mut request_began: Option<tokio::time::Instant> = None;
        loop {
            let mid_request = !input.is_empty() || !parser.is_idle();
            let wait = match mid_request {
                true => {
                    let began = *request_began.get_or_insert_with(tokio::time::Instant::now);
                    Some(self.config.clients.request_timeout.saturating_sub(began.elapsed()))
                }
                false => self.config.clients.idle_timeout,
            };
            let read = match wait {
                Some(wait) => match tokio::time::timeout(wait, stream.read_buf(&mut input)).await {
                    Ok(read) => read?,
                    Err(_) => {
                        ClientCounters::bump(&self.counters.timed_out);
                        let why = if mid_request { "a request not complete within" } else { "idle for" };
                        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{why} {wait:?}")));
                    }
                },
                None => stream.read_buf(&mut input).await?,
            };
            if read == 0 {
                return Ok(());
            }
            loop {
                let next = parser.next(&mut input);
                if matches!(next, Ok(Some(_))) {
                    // Whatever is left began after this request: its time starts later.
                    request_began = None;
                }
                match next {
                    Ok(Some(Request::Command(args))) => {
                        let (reply, quit) = self.handle(args).await;
                        reply.encode(&mut output, self.conn.proto);
                        if quit {
                            stream.write_all(&output).await?;
                            stream.flush().await?;
                            return Ok(());
                        }
                        if output.len() >= OUTPUT_FLUSH_BYTES {
                            // A long pipeline's replies go out as they come, not gathered whole.
                            stream.write_all(&output).await?;
                            output.clear();
                        }
                    }
                    Ok(Some(Request::Refused(why))) => {
                        ClientCounters::bump(&self.counters.too_large);
                        Reply::Error(why).encode(&mut output, self.conn.proto)
                    }
                    Ok(None) => break,
                    Err(e) => {
                        Reply::Error(format!("ERR Protocol error: {e}")).encode(&mut output, self.conn.proto);
                        stream.write_all(&output).await?;
                        stream.flush().await?;
                        return Err(std::io::Error::other(format!("protocol error: {e}")));
                    }
                }
            }
            if !output.is_empty() {
                stream.write_all(&output).await?;
                stream.flush().await?; // TLS may hold a record back until flushed
                output.clear();
            }
        }
    }

    /// `QUORUM STATUS | MEMBERS | SNAPSHOT | BACKUP | TRANSFER <node id> |
    /// ADD <node id> <peer address> | PROMOTE <node id> | REMOVE <node id>`:
    /// what an operator asks of this node (`quorum admin` sends these).
    /// `BACKUP` first reads linearizably, so the backup holds every write
    /// acknowledged before it was asked for. A membership change goes to the
    /// leader (elsewhere the error names it) and is answered once it commits.
    async fn admin(&mut self, args: &[Bytes]) -> Reply {
        let sub = args.get(1).map(|s| s.to_ascii_uppercase());
        let action = match (sub.as_deref(), args.len()) {
            (Some(b"STATUS"), 2) => return self.info().await,
            (Some(b"SNAPSHOT"), 2) => AdminAction::Snapshot,
            (Some(b"BACKUP"), 2) => {
                // A follower's reads are served by its leader, which proves
                // nothing about what this node has applied: back up where
                // reads are served, the leader (or any Basic Paxos peer).
                let Some(s) = self.node.status().await else { return Reply::Error("ERR node is shutting down".into()) };
                if !matches!(s.status.role, Role::Leader | Role::Peer) {
                    let leader = s.status.leader.map_or("unknown".to_string(), |l| l.to_string());
                    let at = s.leader_client_addr.unwrap_or_default();
                    return Reply::Error(format!("ERR take backups on the leader ({leader} {at})"));
                }
                if let Err(error) = self.read(&Bytes::from_static(b"quorum:backup-barrier")).await {
                    return error;
                }
                // Still serving reads in the same term: the read was served here.
                let after = self.node.status().await.map(|a| (a.status.role, a.status.term));
                if after != Some((s.status.role, s.status.term)) {
                    return Reply::Error("TRYAGAIN leadership changed during the backup".into());
                }
                AdminAction::Backup
            }
            (Some(b"TRANSFER"), 3) => match parse_i64(&args[2]) {
                Some(id) if id > 0 => AdminAction::TransferLeader(quorum_core::NodeId(id as u64)),
                _ => return Reply::Error("ERR QUORUM TRANSFER takes a node id".into()),
            },
            (Some(b"MEMBERS"), 2) => AdminAction::Members,
            (Some(sub @ (b"ADD" | b"PROMOTE" | b"REMOVE")), n) => {
                let usage = "ERR QUORUM ADD <node id> <peer host:port> | PROMOTE <node id> | REMOVE <node id>";
                let node = match args.get(2).and_then(|a| parse_i64(a)) {
                    Some(id) if id > 0 => quorum_core::NodeId(id as u64),
                    _ => return Reply::Error(usage.into()),
                };
                let change = match (sub, n) {
                    (b"ADD", 4) => {
                        let address = String::from_utf8_lossy(&args[3]).into_owned();
                        if address.parse::<std::net::SocketAddr>().is_err() {
                            return Reply::Error(format!(
                                "ERR the peer address of {node} must be ip:port (as in --peers), not '{address}'"
                            ));
                        }
                        quorum_core::MembershipChange::AddLearner { node, address: Some(address) }
                    }
                    (b"PROMOTE", 3) => quorum_core::MembershipChange::Promote(node),
                    (b"REMOVE", 3) => quorum_core::MembershipChange::Remove(node),
                    _ => return Reply::Error(usage.into()),
                };
                if let Some(elsewhere) = self.not_the_leader().await {
                    return elsewhere;
                }
                AdminAction::Change(change)
            }
            _ => {
                return Reply::Error(
                    "ERR QUORUM takes STATUS, MEMBERS, SNAPSHOT, BACKUP, TRANSFER <node id>, ADD <node id> <peer address>, PROMOTE <node id> or REMOVE <node id>"
                        .into(),
                )
            }
        };
        match self.node.admin(action).await {
            Ok(done) => Reply::Bulk(done),
            Err(why) => Reply::Error(format!("ERR {why}")),
        }
    }

    /// `None` on the leader; elsewhere the error that names the leader and
    /// its client address (`quorum admin` follows it).
    async fn not_the_leader(&self) -> Option<Reply> {
        let Some(s) = self.node.status().await else { return Some(Reply::Error("ERR node is shutting down".into())) };
        if s.status.role == Role::Leader {
            return None;
        }
        Some(Reply::Error(match (s.status.leader, s.leader_client_addr) {
            (Some(leader), Some(at)) => format!("ERR not the leader: the leader is {leader} at {at}"),
            (Some(leader), None) => format!("ERR not the leader: the leader is {leader}"),
            (None, _) => "TRYAGAIN no leader known: retry shortly".into(),
        }))
    }

    /// `AUTH`: on success the connection may do what the user's role allows.
    async fn auth(&mut self, user: Bytes, password: Bytes) -> Reply {
        let Some(users) = &self.config.users else {
            return Reply::Error("ERR AUTH called without any users configured (start the node with --users)".into());
        };
        let name = String::from_utf8_lossy(&user).into_owned();
        match users.check(name.clone(), password).await {
            Some(access) => {
                self.access = Some(access);
                Reply::ok()
            }
            None => {
                ClientCounters::bump(&self.counters.auth_failures);
                let shown: String = name.chars().take(64).collect();
                warn!(user = %shown, client = ?self.conn.peer, "authentication failed");
                Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
            }
        }
    }

    /// `HELLO [protover [AUTH user password] [SETNAME name]]`: with users
    /// configured, `AUTH` is checked first and a connection that is not
    /// authenticated by then is refused, as Redis does.
    async fn hello(&mut self, mut args: Vec<Bytes>) -> Reply {
        if self.config.users.is_some() {
            let at = (2..args.len()).find(|&i| args[i].eq_ignore_ascii_case(b"AUTH") && i + 2 < args.len());
            if let Some(at) = at {
                let credentials: Vec<Bytes> = args.drain(at..at + 3).collect();
                let reply = self.auth(credentials[1].clone(), credentials[2].clone()).await;
                if matches!(reply, Reply::Error(_)) {
                    return reply;
                }
            }
            if self.access.is_none() {
                return Reply::Error(
                    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO \
                     <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP \
                     protocol version at the same time"
                        .into(),
                );
            }
        }
        let role = self.redis_role().await;
        self.conn.hello(&args, role)
    }

    /// Answers one command; the flag says to close the connection after it.
    async fn handle(&mut self, args: Vec<Bytes>) -> (Reply, bool) {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        if let Some(needed) = required_access(&name) {
            match self.access {
                None => return (Reply::Error("NOAUTH Authentication required.".into()), false),
                Some(access) if access < needed => {
                    let command = String::from_utf8_lossy(&args[0][..args[0].len().min(64)]).to_ascii_lowercase();
                    let message =
                        format!("NOPERM a {access} user may not run the '{command}' command (it needs {needed})");
                    return (Reply::Error(message), false);
                }
                Some(_) => {}
            }
        }
        if self.in_multi() && !matches!(name.as_str(), "EXEC" | "DISCARD" | "MULTI" | "WATCH" | "QUIT" | "RESET") {
            return (self.queue(args), false);
        }
        let reply = match (name.as_str(), args.len()) {
            ("PING", 1) => Reply::Status("PONG"),
            ("PING", 2) | ("ECHO", 2) => Reply::Bulk(args[1].clone()),
            ("SET", 3) => {
                let op = KvOp::Put { key: args[1].clone(), value: args[2].clone() };
                self.run_op(op).await
            }
            ("SET", n) if n > 3 => self.set_with_options(&args).await,
            ("SETNX", 3) => match self.set_if_absent(&args[1], &args[2]).await {
                Reply::Null => Reply::Integer(0),
                Reply::Status(_) => Reply::Integer(1),
                error => error,
            },
            ("SETEX" | "PSETEX", 4) => self.setex(&name, &args).await,
            ("GETSET", 3) => {
                let persist = Some(Ttl::Persist); // as in Redis, the new value has no deadline
                self.update_with(&args[1], persist, |current| Ok(ops::getset(current, &args[2]))).await
            }
            ("APPEND", 3) => self.append(&args[1], &args[2]).await,
            ("STRLEN", 2) => match self.read(&args[1]).await {
                Ok(v) => Reply::Integer(v.map_or(0, |v| v.len() as i64)),
                Err(error) => error,
            },
            ("TYPE", 2) => match self.run_kv(KvOp::Get { key: args[1].clone() }).await {
                Ok(KvResult::Value(v)) => Reply::Status(if v.is_some() { "string" } else { "none" }),
                Ok(KvResult::WrongType) => Reply::Status("hash"), // the one other kind
                Ok(other) => kv_reply(other),
                Err(error) => error,
            },
            ("DBSIZE", 1) => match self.node.status().await {
                Some(s) => Reply::Integer(s.items as i64),
                None => Reply::Error("ERR node is shutting down".into()),
            },
            ("AUTH", 2) => self.auth(Bytes::from_static(b"default"), args[1].clone()).await,
            ("AUTH", 3) => self.auth(args[1].clone(), args[2].clone()).await,
            ("INCR", 2) => self.incr_by(&args[1], 1).await,
            ("DECR", 2) => self.incr_by(&args[1], -1).await,
            ("INCRBY" | "DECRBY", 3) => match parse_i64(&args[2]) {
                Some(by) if name == "INCRBY" => self.incr_by(&args[1], by).await,
                Some(by) if by != i64::MIN => self.incr_by(&args[1], -by).await,
                _ => Reply::Error(NOT_AN_INTEGER.into()),
            },
            ("GET", 2) => self.run_op(KvOp::Get { key: args[1].clone() }).await,
            // A key holding a hash reads as a null here, as in Redis.
            ("MGET", n) if n >= 2 => match self.read_each(&args[1..]).await {
                Ok(values) => {
                    Reply::Array(values.into_iter().map(|v| v.flatten().map_or(Reply::Null, Reply::Bulk)).collect())
                }
                Err(error) => error,
            },
            // A key named twice counts twice, as in Redis; a hash counts.
            ("EXISTS", n) if n >= 2 => match self.read_each(&args[1..]).await {
                Ok(values) => Reply::Integer(values.iter().filter(|v| *v != &Some(None)).count() as i64),
                Err(error) => error,
            },
            ("DEL" | "UNLINK", n) if n >= 2 => self.delete(&args[1..]).await,
            ("SCAN", n) if n >= 2 => self.scan(&args).await,
            ("KEYS", 2) => self.keys(&args[1]).await,
            ("FLUSHDB" | "FLUSHALL", 1 | 2) => self.flush(&args).await,
            ("MULTI", 1) => self.multi(),
            ("EXEC", 1) => self.exec().await,
            ("DISCARD", 1) => self.discard(),
            ("WATCH", n) if n >= 2 => self.watch(&args[1..]).await,
            ("UNWATCH", 1) => {
                self.watched.clear();
                Reply::ok()
            }
            ("MSET", _) => self.mset(&name, &args[1..], false).await,
            ("MSETNX", _) => self.mset(&name, &args[1..], true).await,
            ("GETDEL", 2) => self.getdel(&args[1]).await,
            ("RENAME", 3) => self.rename(&args[1], &args[2], false).await,
            ("RENAMENX", 3) => self.rename(&args[1], &args[2], true).await,
            ("GETEX", 2..=4) => self.getex(&args).await,
            ("GETRANGE" | "SUBSTR", 4) => self.getrange(&args[1], &args[2], &args[3]).await,
            ("SETRANGE", 4) => self.setrange(&args[1], &args[2], &args[3]).await,
            ("INCRBYFLOAT", 3) => self.incr_by_float(&args[1], &args[2]).await,
            ("EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT", 3 | 4) => self.expire(&name, &args).await,
            ("PERSIST", 2) => self.persist(&args[1]).await,
            ("TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME", 2) => self.ttl(&name, &args[1]).await,
            (hash, _) if hash.starts_with('H') && hashes::HASH_COMMANDS.contains(&hash) => {
                match self.hash_command(hash, &args).await {
                    Some(reply) => reply,
                    None => Reply::Error(format!(
                        "ERR wrong number of arguments for '{}' command",
                        name.to_ascii_lowercase()
                    )),
                }
            }
            ("INFO", 1 | 2) => self.info().await,
            ("ROLE", 1) => self.role().await,
            ("QUIT", _) => return (Reply::ok(), true),
            ("HELLO", _) => self.hello(args).await,
            ("CLIENT", _) => self.conn.client(&args),
            ("QUORUM", _) => self.admin(&args).await,
            ("RESET", 1) => {
                self.multi = None;
                self.watched.clear();
                if self.config.users.is_some() {
                    self.access = None; // as in Redis: RESET signs the client out
                }
                self.conn.reset()
            }
            ("SELECT", 2) if &args[1][..] == b"0" => Reply::ok(),
            ("SELECT", 2) => Reply::Error("ERR DB index is out of range: quorum has one database, 0".into()),
            ("COMMAND", _) => introspection::command(&args),
            ("CONFIG", _) => introspection::config(&args),
            (
                "PING" | "ECHO" | "SET" | "SETNX" | "GETSET" | "APPEND" | "STRLEN" | "GET" | "MGET" | "EXISTS" | "DEL"
                | "UNLINK" | "INCR" | "DECR" | "INCRBY" | "DECRBY" | "TYPE" | "DBSIZE" | "AUTH" | "INFO" | "ROLE"
                | "RESET" | "SELECT" | "SCAN" | "KEYS" | "FLUSHDB" | "FLUSHALL" | "MULTI" | "EXEC" | "DISCARD"
                | "WATCH" | "UNWATCH" | "GETDEL" | "RENAME" | "GETRANGE" | "SUBSTR" | "SETRANGE" | "INCRBYFLOAT"
                | "SETEX" | "PSETEX" | "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" | "PERSIST" | "TTL" | "PTTL"
                | "EXPIRETIME" | "PEXPIRETIME" | "RENAMENX" | "GETEX",
                _,
            ) => Reply::Error(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase())),
            _ => Reply::Error(unknown_command(&args)),
        };
        (reply, false)
    }

    /// `SET key value [NX | XX] [GET] [EX | PX | EXAT | PXAT | KEEPTTL]`:
    /// `NX` alone is one compare-and-set from absence; the others read, then
    /// write checked against the value read (`update_with`), with the
    /// deadline in the same log entry.
    async fn set_with_options(&mut self, args: &[Bytes]) -> Reply {
        match ops::set_options(args) {
            Ok(options) => self.set_with(&args[1], &args[2], options).await,
            Err(error) => error,
        }
    }

    /// `SET key value` with options already parsed (`SET`, `SETEX`, `PSETEX`).
    async fn set_with(&mut self, key: &Bytes, value: &Bytes, options: ops::SetOptions) -> Reply {
        if options.nx && !options.get && options.ttl() == Some(Ttl::Persist) {
            return self.set_if_absent(key, value).await;
        }
        self.update_with(key, options.ttl(), |current| Ok(ops::set(current, value, options))).await
    }

    /// Sets `key` only if it holds no value: `+OK`, or a null if it did.
    async fn set_if_absent(&mut self, key: &Bytes, value: &Bytes) -> Reply {
        match self.run_op(KvOp::Cas { key: key.clone(), expected: None, new: value.clone() }).await {
            Reply::Integer(1) => Reply::ok(),
            Reply::Integer(_) => Reply::Null,
            error => error,
        }
    }

    /// A read-modify-write of one key: read its value (linearizably), let
    /// `step` decide, and if it writes, compare-and-set from the value read,
    /// again while another client changes the key first. The
    /// compare-and-set is the moment the command takes effect (or the read,
    /// if it writes nothing), so it is linearizable, and a retried one (same
    /// session and sequence number) is applied once: no increment is lost or
    /// doubled.
    async fn update(&mut self, key: &Bytes, step: impl FnMut(Option<&Bytes>) -> Result<Step, Reply>) -> Reply {
        self.update_with(key, None, step).await
    }

    /// `update`, and if it writes, the key's deadline becomes `ttl` in the
    /// same log entry (`None`: the key keeps the one it has).
    async fn update_with(
        &mut self,
        key: &Bytes,
        ttl: Option<Ttl>,
        mut step: impl FnMut(Option<&Bytes>) -> Result<Step, Reply>,
    ) -> Reply {
        let give_up = tokio::time::Instant::now() + self.config.retry_for;
        loop {
            let current = match self.read(key).await {
                Ok(current) => current,
                Err(error) => return error,
            };
            let (new, reply) = match step(current.as_ref()) {
                Ok(Step::Write(new, reply)) => (new, reply),
                Ok(Step::Answer(reply)) | Err(reply) => return reply,
            };
            let op = match &ttl {
                None => KvOp::Cas { key: key.clone(), expected: current, new },
                Some(ttl) => KvOp::Txn {
                    checks: vec![(key.clone(), current)],
                    writes: vec![(key.clone(), Some(new))],
                    ttls: vec![(key.clone(), ttl.clone())],
                    now: unix_millis(), // until the leader stamps its own
                },
            };
            match self.run_op(op).await {
                Reply::Integer(1) => return reply,
                Reply::Integer(_) if tokio::time::Instant::now() < give_up => {}
                Reply::Integer(_) => return Reply::Error("TRYAGAIN the key kept changing under this command".into()),
                error => return error,
            }
        }
    }

    /// `INCR` and its kin: one log entry, the sum computed by the store at
    /// its index (no read first, so concurrent increments of one key never
    /// retry each other), applied once however often it is retried.
    async fn incr_by(&mut self, key: &Bytes, by: i64) -> Reply {
        self.run_op(KvOp::Incr { key: key.clone(), by }).await
    }

    /// `APPEND key suffix`: the new length (`update` with the joined value).
    async fn append(&mut self, key: &Bytes, suffix: &Bytes) -> Reply {
        self.update(key, |current| Ok(ops::append(current, suffix))).await
    }

    /// Reads `key` as `GET` does: its value, or the error to answer.
    async fn read(&mut self, key: &Bytes) -> Result<Option<Bytes>, Reply> {
        match self.run_op(KvOp::Get { key: key.clone() }).await {
            Reply::Bulk(v) => Ok(Some(v)),
            Reply::Null => Ok(None),
            error => Err(error),
        }
    }

    /// Reads each key in turn (linearizable one by one; the keys are not
    /// read at one instant): `MGET` and `EXISTS`. Per key: `None` if it
    /// holds a hash, `Some(None)` if nothing, `Some(Some(v))` the string `v`.
    async fn read_each(&mut self, keys: &[Bytes]) -> Result<Vec<Option<Option<Bytes>>>, Reply> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(match self.run_kv(KvOp::Get { key: key.clone() }).await? {
                KvResult::Value(v) => Some(v),
                KvResult::WrongType => None,
                other => return Err(kv_reply(other)),
            });
        }
        Ok(values)
    }

    async fn delete(&mut self, keys: &[Bytes]) -> Reply {
        let mut deleted = 0;
        for key in keys {
            match self.run_op(KvOp::Del { key: key.clone() }).await {
                Reply::Integer(n) => deleted += n,
                other => return other,
            }
        }
        Reply::Integer(deleted)
    }

    /// Runs an operation (`run_kv`) and answers as Redis would.
    async fn run_op(&mut self, op: KvOp) -> Reply {
        match self.run_kv(op).await {
            Ok(result) => kv_reply(result),
            Err(error) => error,
        }
    }

    /// Runs an operation under a fresh sequence number, retrying it (same
    /// number) while the cluster has no leader or the outcome is unknown:
    /// its result, or the error to answer.
    async fn run_kv(&mut self, op: KvOp) -> Result<KvResult, Reply> {
        // A compare-and-set or a transaction carries values read from the
        // store (APPEND's old and new value, a renamed value), which no
        // request limit has bounded: one too large to replicate is refused
        // here, as a large SET is by the parser, and never proposed.
        if matches!(op, KvOp::Cas { .. } | KvOp::Txn { .. }) {
            // Counted without encoding: this runs for every INCR and APPEND.
            let (size, limit) = (op.data_len(), self.config.limits.max_command_bytes);
            if size > limit {
                return Err(Reply::Error(format!("ERR value too large: {size} bytes, the limit is {limit}")));
            }
        }
        self.seq += 1;
        let give_up = tokio::time::Instant::now() + self.config.retry_for;
        let mut pause = Duration::from_millis(5);
        let mut view = self.node.watch();
        loop {
            let outcome = self.node.execute(self.client, self.seq, op.clone()).await;
            let why = match outcome {
                Outcome::Done(result) => return Ok(result),
                Outcome::NotLeader(Some(leader)) => match self.node.status().await {
                    Some(NodeStatus { leader_client_addr: Some(addr), .. }) => {
                        return Err(Reply::Error(format!("MOVED 0 {addr}")));
                    }
                    _ => format!("the leader {leader} has not announced its client address yet"),
                },
                Outcome::NotLeader(None) => "no leader is known yet".to_string(),
                Outcome::Retry(why) => why,
            };
            if tokio::time::Instant::now() + pause > give_up {
                return Err(Reply::Error(format!("TRYAGAIN {why}")));
            }
            // Again after the pause, or as soon as this node sees a leader
            // other than the one it saw now (an election ended): the retry
            // should not sleep through the first moments a new leader serves.
            let seen = view.borrow_and_update().leader;
            let elected = view.wait_for(|v| v.leader.is_some() && v.leader != seen);
            let stopped = matches!(tokio::time::timeout(pause, elected).await, Ok(Err(_)));
            if stopped {
                // The node stopped (no more views): its next answer says so.
                tokio::time::sleep(pause).await;
            }
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    async fn info(&self) -> Reply {
        let Some(s) = self.node.status().await else { return Reply::Error("ERR node is shutting down".into()) };
        let leader = s.status.leader.map_or("none".to_string(), |l| l.0.to_string());
        let text = format!(
            "# Replication\r\nrole:{}\r\nnode_id:{}\r\nprotocol:{}\r\nterm:{}\r\nleader:{}\r\nleader_client_addr:{}\r\n\
             commit_index:{}\r\nlast_index:{}\r\napplied_index:{}\r\n# Keyspace\r\nkeys:{}\r\n{}{}{}",
            s.status.role,
            s.status.id.0,
            s.protocol,
            s.status.term,
            leader,
            s.leader_client_addr.unwrap_or_default(),
            s.status.commit_index,
            s.status.last_index,
            s.applied_index,
            s.items,
            self.counters.info(),
            self.config.peer_counters.as_ref().map(|c| c.info()).unwrap_or_default(),
            settings_info(&self.config.settings),
        );
        Reply::Bulk(Bytes::from(text))
    }

    /// The node's role in Redis's words, for `HELLO`: `master` while it
    /// leads (or is a Basic Paxos peer, which takes writes itself), else
    /// `replica`.
    async fn redis_role(&self) -> &'static str {
        match self.node.status().await {
            Some(s) if matches!(s.status.role, Role::Leader | Role::Peer) => "master",
            _ => "replica",
        }
    }

    async fn role(&self) -> Reply {
        let Some(s) = self.node.status().await else { return Reply::Error("ERR node is shutting down".into()) };
        let leader = s.status.leader.map_or(-1, |l| l.0 as i64);
        Reply::Array(vec![
            Reply::text(s.status.role.to_string()),
            Reply::Integer(s.status.term as i64),
            Reply::Integer(leader),
            Reply::Integer(s.status.commit_index as i64),
        ])
    }
}

/// What a read-modify-write does with the value it read.
enum Step {
    /// Compare-and-set the key to this value; answer this once it took.
    Write(Bytes, Reply),
    /// Write nothing: answer this (the read was the moment it took effect).
    Answer(Reply),
}

/// With `get`, the value read (a null if none), else a null: what `SET`
/// answers when it does not set.
fn old_or_null(get: bool, current: Option<&Bytes>) -> Reply {
    match current {
        Some(v) if get => Reply::Bulk(v.clone()),
        _ => Reply::Null,
    }
}

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// A decimal integer as Redis writes it: no spaces, no plus sign, no leading
/// zeros, within 64 bits.
fn parse_i64(b: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(b).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == b).then_some(n)
}

fn unknown_command(args: &[Bytes]) -> String {
    // Cut the bytes, not the text: 64 bytes may end inside a character.
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(64)]);
    let rest: Vec<String> =
        args[1..].iter().take(4).map(|a| format!("'{}'", String::from_utf8_lossy(&a[..a.len().min(64)]))).collect();
    let why = match collection_of(&name.to_ascii_uppercase()) {
        Some(kind) => format!(" ({kind} command: quorum stores strings and hashes only, see docs/redis.md)"),
        None => String::new(),
    };
    format!("ERR unknown command '{name}', with args beginning with: {}{why}", rest.join(" "))
}

/// The kind of value a Redis command quorum does not serve works on, for
/// the error that refuses it.
fn collection_of(name: &str) -> Option<&'static str> {
    const LISTS: &[&str] = &[
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "LSET",
        "LREM",
        "LTRIM",
        "LINSERT",
        "LPOS",
        "LMOVE",
        "BLPOP",
        "BRPOP",
        "BLMOVE",
        "RPOPLPUSH",
        "LPUSHX",
        "RPUSHX",
        "LMPOP",
        "BLMPOP",
    ];
    const SETS: &[&str] = &[
        "SADD",
        "SREM",
        "SPOP",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "SRANDMEMBER",
        "SMOVE",
        "SINTER",
        "SUNION",
        "SDIFF",
        "SINTERSTORE",
        "SUNIONSTORE",
        "SDIFFSTORE",
        "SINTERCARD",
        "SSCAN",
    ];
    if LISTS.contains(&name) {
        Some("a list")
    } else if SETS.contains(&name) {
        Some("a set")
    } else if name.starts_with('Z') {
        Some("a sorted-set")
    } else if name.starts_with('X') {
        Some("a stream")
    } else if name.starts_with("PF") {
        Some("a HyperLogLog")
    } else if name.starts_with("GEO") {
        Some("a geo")
    } else {
        None
    }
}

fn kv_reply(result: KvResult) -> Reply {
    match result {
        KvResult::Value(Some(v)) => Reply::Bulk(v),
        KvResult::Value(None) => Reply::Null,
        KvResult::Done => Reply::ok(),
        KvResult::Deleted(existed) => Reply::Integer(i64::from(existed)),
        KvResult::Swapped(swapped) => Reply::Integer(i64::from(swapped)),
        KvResult::Invalid(why) => Reply::Error(format!("ERR {why}")),
        KvResult::Stale => Reply::Error("ERR stale request: this session already moved past it".into()),
        KvResult::Keys { cursor, keys } => Reply::Array(vec![
            Reply::Bulk(Bytes::from(cursor.to_string())),
            Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
        ]),
        KvResult::WrongType => Reply::Error(WRONG_TYPE.into()),
        KvResult::Count(n) => Reply::Integer(n.min(i64::MAX as u64) as i64),
        KvResult::Integer(n) => Reply::Integer(n),
        KvResult::Fields(fields) => {
            Reply::Array(fields.into_iter().map(|(_, v)| v.map_or(Reply::Null, Reply::Bulk)).collect())
        }
        // `TTL` reads it through `run_kv`; no command answers it bare.
        KvResult::Deadline { exists, at } => Reply::Error(format!("ERR unexpected deadline {exists} {at:?}")),
    }
}
