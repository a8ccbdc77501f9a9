//! `quorum admin`: operator commands to one running node, over its client
//! port as the Redis-protocol `QUORUM` command family (so `redis-cli QUORUM
//! TRANSFER 2` does the same, TLS included).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `quorum admin`: ask a running node to do something.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// The node's client address (plain TCP; for TLS use `redis-cli --tls ... QUORUM ...`).
    #[arg(long)]
    pub node: String,
    /// Sign in as this user (its password from QUORUM_PASSWORD, never a flag).
    #[arg(long)]
    pub user: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// What `quorum admin` asks.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Action {
    /// Role, term, leader, indexes, counts and settings (the node's INFO).
    Status,
    /// The leader passes leadership to node N (Raft).
    TransferLeader {
        /// The node to lead next.
        id: u64,
    },
    /// The members: id, voter or learner, peer address (one per line).
    Members,
    /// Add node ID, listening for peers at ADDRESS, as a learner (Raft): it
    /// receives the log but does not vote. Start it first with
    /// `quorum node --join`. Answered once the change commits.
    Add {
        /// The new node's id (not in use).
        id: u64,
        /// Where it listens for peers (ip:port).
        address: String,
    },
    /// Make learner ID a voter, once it has caught up (Raft).
    Promote {
        /// The learner.
        id: u64,
    },
    /// Remove member ID (the leader too: it hands over first) (Raft).
    Remove {
        /// The member.
        id: u64,
    },
    /// Snapshot the state machine now and compact the log.
    Snapshot,
    /// Write a backup of the state machine, holding every write acknowledged
    /// before it was asked for, to FILE (ask the leader, or any Basic Paxos peer).
    Backup {
        /// Where the backup goes (never overwritten).
        file: PathBuf,
    },
}

/// Sends the command and prints the answer; an error answer is exit code 1.
/// A membership change sent to a follower is sent again to the leader the
/// follower names.
pub fn run(args: AdminArgs) -> Result<i32, String> {
    let words: Vec<String> = match &args.action {
        Action::Status => vec!["STATUS".into()],
        Action::Members => vec!["MEMBERS".into()],
        Action::Snapshot => vec!["SNAPSHOT".into()],
        Action::Backup { .. } => vec!["BACKUP".into()],
        Action::TransferLeader { id } => vec!["TRANSFER".into(), id.to_string()],
        Action::Add { id, address } => vec!["ADD".into(), id.to_string(), address.clone()],
        Action::Promote { id } => vec!["PROMOTE".into(), id.to_string()],
        Action::Remove { id } => vec!["REMOVE".into(), id.to_string()],
    };
    let mut words: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    words.insert(0, b"QUORUM");
    let mut node = args.node.clone();
    let mut conn = Conn::open(&node, args.user.as_deref())?;
    conn.send(&words)?;
    let mut answer = conn.reply()?;
    if let Err(why) = &answer {
        if let Some(leader) =
            why.strip_prefix("ERR not the leader: the leader is ").and_then(|l| l.split(" at ").nth(1))
        {
            eprintln!("{node} is not the leader; asking {leader}");
            node = leader.to_string();
            conn = Conn::open(&node, args.user.as_deref())?;
            conn.send(&words)?;
            answer = conn.reply()?;
        }
    }
    match answer {
        Ok(bytes) => {
            if let Action::Backup { file } = &args.action {
                let (index, image) = quorum_runtime::backup::decode(&bytes)?;
                write_new(file, &bytes)?;
                println!("backup of {} bytes at index {index} written to {}", image.len(), file.display());
            } else {
                println!("{}", String::from_utf8_lossy(&bytes).replace("\r\n", "\n").trim_end());
            }
            Ok(0)
        }
        Err(why) => {
            eprintln!("{node}: {why}");
            Ok(1)
        }
    }
}

/// Writes a file that must not exist yet, and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e} (backups are never overwritten)", path.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A plain RESP2 connection to a node's client port.
pub struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `node`, signed in as `user` if given (password from QUORUM_PASSWORD).
    pub fn open(node: &str, user: Option<&str>) -> Result<Conn, String> {
        let stream = TcpStream::connect(node).map_err(|e| format!("cannot reach {node}: {e}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut conn = Conn { stream, reader };
        if let Some(user) = user {
            let password =
                std::env::var("QUORUM_PASSWORD").map_err(|_| "--user needs QUORUM_PASSWORD in the environment")?;
            conn.send(&[b"AUTH", user.as_bytes(), password.as_bytes()])?;
            if let Err(why) = conn.reply()? {
                return Err(format!("AUTH refused: {why}"));
            }
        }
        Ok(conn)
    }

    /// Sends one command.
    pub fn send(&mut self, words: &[&[u8]]) -> Result<(), String> {
        let mut out = format!("*{}\r\n", words.len()).into_bytes();
        for word in words {
            out.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            out.extend_from_slice(word);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).map_err(|e| format!("cannot send: {e}"))
    }

    /// One RESP2 reply: `Ok(bytes)`, or `Err(message)` for an error reply.
    pub fn reply(&mut self) -> Result<Result<Vec<u8>, String>, String> {
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(|e| format!("no answer: {e}"))?;
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
        match kind {
            "+" | ":" => Ok(Ok(rest.as_bytes().to_vec())),
            "-" => Ok(Err(rest.to_string())),
            "$" => {
                let len: usize = rest.parse().map_err(|_| format!("unexpected answer '{line}'"))?;
                let with_crlf = len.checked_add(2).ok_or_else(|| format!("unexpected answer '{line}'"))?;
                let mut body = vec![0; with_crlf];
                self.reader.read_exact(&mut body).map_err(|e| format!("answer cut short: {e}"))?;
                body.truncate(len);
                Ok(Ok(body))
            }
            _ => Err(format!("unexpected answer '{line}'")),
        }
    }
}
