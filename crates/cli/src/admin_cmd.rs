//! `quorum admin`: operator commands to one running node, over its client
//! port as the Redis-protocol `QUORUM` command family (so `redis-cli QUORUM
//! TRANSFER 2` does the same, TLS included).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
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
    /// Snapshot the state machine now and compact the log.
    Snapshot,
}

/// Sends the command and prints the answer; an error answer is exit code 1.
pub fn run(args: AdminArgs) -> Result<i32, String> {
    let mut stream = TcpStream::connect(&args.node).map_err(|e| format!("cannot reach {}: {e}", args.node))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    if let Some(user) = &args.user {
        let password =
            std::env::var("QUORUM_PASSWORD").map_err(|_| "--user needs QUORUM_PASSWORD in the environment")?;
        send(&mut stream, &["AUTH", user, &password])?;
        if let Err(why) = reply(&mut reader)? {
            return Err(format!("AUTH refused: {why}"));
        }
    }
    let id;
    let words: Vec<&str> = match &args.action {
        Action::Status => vec!["QUORUM", "STATUS"],
        Action::Snapshot => vec!["QUORUM", "SNAPSHOT"],
        Action::TransferLeader { id: target } => {
            id = target.to_string();
            vec!["QUORUM", "TRANSFER", &id]
        }
    };
    send(&mut stream, &words)?;
    match reply(&mut reader)? {
        Ok(text) => {
            println!("{}", text.replace("\r\n", "\n").trim_end());
            Ok(0)
        }
        Err(why) => {
            eprintln!("{}: {why}", args.node);
            Ok(1)
        }
    }
}

fn send(stream: &mut TcpStream, words: &[&str]) -> Result<(), String> {
    let mut request = format!("*{}\r\n", words.len());
    for word in words {
        request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
    }
    stream.write_all(request.as_bytes()).map_err(|e| format!("cannot send: {e}"))
}

/// One RESP2 reply: `Ok(text)`, or `Err(message)` for an error reply.
fn reply(reader: &mut impl BufRead) -> Result<Result<String, String>, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| format!("no answer: {e}"))?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(Ok(rest.to_string())),
        "-" => Ok(Err(rest.to_string())),
        "$" => {
            let len: usize = rest.parse().map_err(|_| format!("unexpected answer '{line}'"))?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body).map_err(|e| format!("answer cut short: {e}"))?;
            body.truncate(len);
            Ok(Ok(String::from_utf8_lossy(&body).into_owned()))
        }
        _ => Err(format!("unexpected answer '{line}'")),
    }
}
