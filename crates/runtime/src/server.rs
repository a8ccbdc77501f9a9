//! The client port: the Redis protocol (RESP2), decoded and encoded with the
//! `redis-protocol` crate.
//!
//! Commands: `SET key value`, `GET key`, `DEL key [key ...]`, `PING [msg]`,
//! `INFO [section]` (role, term, leader, commit and applied index), `ROLE`
//! (`[role, term, leader id, commit index]`), plus `QUIT`, and the handshake
//! commands tools send (`COMMAND`, `CONFIG GET`, `CLIENT`, `SELECT 0`) answered
//! harmlessly. Unknown commands and bad arguments get Redis-style `-ERR`
//! replies and the connection carries on; bytes that are not RESP get
//! `-ERR Protocol error` and the connection is closed, as Redis does.
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

use crate::node::{NodeHandle, NodeStatus};
use crate::request::{Request, RequestLimits, RequestParser};
use crate::wire::Outcome;
use bytes::{Bytes, BytesMut};
use quorum_core::{ClientId, KvOp, KvResult};
use redis_protocol::resp2::encode::extend_encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, BytesFrame};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

/// Settings of the client port.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Keep retrying a request this long while no leader is known.
    pub retry_for: Duration,
    /// Limits on one request (array length, bulk length, command size).
    pub limits: RequestLimits,
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
        ServerConfig { retry_for: Duration::from_secs(5), limits: RequestLimits::default() }
    }
}

/// Accepts client connections until the task is dropped.
pub async fn serve(listener: TcpListener, node: NodeHandle, config: ServerConfig) {
    let sessions = Arc::new(AtomicU64::new(1));
    info!(addr = ?listener.local_addr().ok(), "client port (RESP2) listening");
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
        let counter = sessions.fetch_add(1, Ordering::Relaxed);
        let client = ClientId((node.id().0 << 48) | (counter & ((1 << 48) - 1)));
        let session = Session { node: node.clone(), client, seq: first_seq(), config: config.clone() };
        tokio::spawn(async move {
            if let Err(e) = session.run(stream).await {
                debug!(%remote, error = %e, "client connection ended");
            }
        });
    }
}

fn first_seq() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_micros() as u64
}

/// A reply in the making.
enum Reply {
    Frame(BytesFrame),
    Error(String),
}

impl Reply {
    fn ok() -> Reply {
        Reply::Frame(BytesFrame::SimpleString(Bytes::from_static(b"OK")))
    }
}

struct Session {
    node: NodeHandle,
    client: ClientId,
    seq: u64,
    config: ServerConfig,
}

impl Session {
    async fn run(mut self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut input = BytesMut::with_capacity(16 * 1024);
        let mut output = BytesMut::with_capacity(16 * 1024);
        let mut parser = RequestParser::new(self.config.limits.clone());
        loop {
            if stream.read_buf(&mut input).await? == 0 {
                return Ok(());
            }
            loop {
                match parser.next(&mut input) {
                    Ok(Some(Request::Command(args))) => {
                        let (reply, quit) = self.handle(args).await;
                        encode(&mut output, &reply);
                        if quit {
                            stream.write_all(&output).await?;
                            return Ok(());
                        }
                    }
                    Ok(Some(Request::Refused(why))) => encode(&mut output, &Reply::Error(why)),
                    Ok(None) => break,
                    Err(e) => {
                        let reply = Reply::Error(format!("ERR Protocol error: {e}"));
                        encode(&mut output, &reply);
                        stream.write_all(&output).await?;
                        return Err(std::io::Error::other(format!("protocol error: {e}")));
                    }
                }
            }
            if !output.is_empty() {
                stream.write_all(&output).await?;
                output.clear();
            }
        }
    }

    /// Answers one command; the flag says to close the connection after it.
    async fn handle(&mut self, args: Vec<Bytes>) -> (Reply, bool) {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let reply = match (name.as_str(), args.len()) {
            ("PING", 1) => Reply::Frame(BytesFrame::SimpleString(Bytes::from_static(b"PONG"))),
            ("PING", 2) => Reply::Frame(BytesFrame::BulkString(args[1].clone())),
            ("SET", 3) => {
                let op = KvOp::Put { key: args[1].clone(), value: args[2].clone() };
                self.run_op(op).await
            }
            ("SET", n) if n > 3 => Reply::Error("ERR syntax error (SET options are not supported)".into()),
            ("GET", 2) => self.run_op(KvOp::Get { key: args[1].clone() }).await,
            ("DEL", n) if n >= 2 => self.delete(&args[1..]).await,
            ("INFO", 1 | 2) => self.info().await,
            ("ROLE", 1) => self.role().await,
            ("QUIT", _) => return (Reply::ok(), true),
            ("SELECT", 2) if &args[1][..] == b"0" => Reply::ok(),
            ("SELECT", 2) => Reply::Error("ERR DB index is out of range".into()),
            ("COMMAND" | "CONFIG", _) => Reply::Frame(BytesFrame::Array(Vec::new())),
            ("CLIENT", _) => Reply::ok(),
            ("PING" | "SET" | "GET" | "DEL" | "INFO" | "ROLE", _) => {
                Reply::Error(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()))
            }
            _ => Reply::Error(unknown_command(&args)),
        };
        (reply, false)
    }

    async fn delete(&mut self, keys: &[Bytes]) -> Reply {
        let mut deleted = 0;
        for key in keys {
            match self.run_op(KvOp::Del { key: key.clone() }).await {
                Reply::Frame(BytesFrame::Integer(n)) => deleted += n,
                other => return other,
            }
        }
        Reply::Frame(BytesFrame::Integer(deleted))
    }

    /// Runs an operation under a fresh sequence number, retrying it (same
    /// number) while the cluster has no leader or the outcome is unknown.
    async fn run_op(&mut self, op: KvOp) -> Reply {
        self.seq += 1;
        let give_up = tokio::time::Instant::now() + self.config.retry_for;
        let mut pause = Duration::from_millis(5);
        loop {
            let outcome = self.node.execute(self.client, self.seq, op.clone()).await;
            let why = match outcome {
                Outcome::Done(result) => return kv_reply(result),
                Outcome::NotLeader(Some(leader)) => match self.node.status().await {
                    Some(NodeStatus { leader_client_addr: Some(addr), .. }) => {
                        return Reply::Error(format!("MOVED 0 {addr}"));
                    }
                    _ => format!("the leader {leader} has not announced its client address yet"),
                },
                Outcome::NotLeader(None) => "no leader is known yet".to_string(),
                Outcome::Retry(why) => why,
            };
            if tokio::time::Instant::now() + pause > give_up {
                return Reply::Error(format!("TRYAGAIN {why}"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    async fn info(&self) -> Reply {
        let Some(s) = self.node.status().await else { return Reply::Error("ERR node is shutting down".into()) };
        let leader = s.status.leader.map_or("none".to_string(), |l| l.0.to_string());
        let text = format!(
            "# Replication\r\nrole:{}\r\nnode_id:{}\r\nprotocol:{}\r\nterm:{}\r\nleader:{}\r\nleader_client_addr:{}\r\n\
             commit_index:{}\r\nlast_index:{}\r\napplied_index:{}\r\n# Keyspace\r\nkeys:{}\r\n",
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
        );
        Reply::Frame(BytesFrame::BulkString(Bytes::from(text)))
    }

    async fn role(&self) -> Reply {
        let Some(s) = self.node.status().await else { return Reply::Error("ERR node is shutting down".into()) };
        let leader = s.status.leader.map_or(-1, |l| l.0 as i64);
        Reply::Frame(BytesFrame::Array(vec![
            BytesFrame::BulkString(Bytes::from(s.status.role.to_string())),
            BytesFrame::Integer(s.status.term as i64),
            BytesFrame::Integer(leader),
            BytesFrame::Integer(s.status.commit_index as i64),
        ]))
    }
}

fn unknown_command(args: &[Bytes]) -> String {
    let name = String::from_utf8_lossy(&args[0]);
    let rest: Vec<String> =
        args[1..].iter().take(4).map(|a| format!("'{}'", String::from_utf8_lossy(&a[..a.len().min(64)]))).collect();
    format!("ERR unknown command '{}', with args beginning with: {}", &name[..name.len().min(64)], rest.join(" "))
}

fn kv_reply(result: KvResult) -> Reply {
    match result {
        KvResult::Value(Some(v)) => Reply::Frame(BytesFrame::BulkString(v)),
        KvResult::Value(None) => Reply::Frame(BytesFrame::Null),
        KvResult::Done => Reply::ok(),
        KvResult::Deleted(existed) => Reply::Frame(BytesFrame::Integer(i64::from(existed))),
        KvResult::Swapped(swapped) => Reply::Frame(BytesFrame::Integer(i64::from(swapped))),
        KvResult::Invalid(why) => Reply::Error(format!("ERR {why}")),
        KvResult::Stale => Reply::Error("ERR stale request: this session already moved past it".into()),
    }
}

fn encode(out: &mut BytesMut, reply: &Reply) {
    let result = match reply {
        Reply::Frame(frame) => redis_protocol::resp2::encode::extend_encode(out, frame, false),
        Reply::Error(message) => {
            // RESP errors are one line.
            let line = message.replace(['\r', '\n'], " ");
            extend_encode_borrowed(out, &BorrowedFrame::Error(&line), false)
        }
    };
    result.expect("encoding into a growable buffer cannot fail");
}
