//! `quorum restore`: load a backup into a running cluster through a node's
//! client port, key by key (any protocol; the cluster may be new).

use crate::admin_cmd::Conn;
use quorum_core::{KvStore, StateMachine};
use std::path::PathBuf;

/// Keys written per round trip.
const PIPELINE: usize = 256;

/// `quorum restore`: write every key of a backup into a cluster.
#[derive(clap::Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The backup file (`quorum admin backup FILE`).
    pub file: PathBuf,
    /// A node of the cluster to load it into (followers forward to the leader).
    #[arg(long)]
    pub node: String,
    /// Sign in as this user (password from QUORUM_PASSWORD).
    #[arg(long)]
    pub user: Option<String>,
}

/// Reads, checks and loads the backup; prints what it wrote.
pub fn run(args: RestoreArgs) -> Result<i32, String> {
    let bytes = std::fs::read(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let (index, image) = quorum_runtime::backup::decode(&bytes).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let mut store = KvStore::new();
    store.restore(image).map_err(|e| format!("{}: not a key-value image: {e}", args.file.display()))?;
    let mut conn = Conn::open(&args.node, args.user.as_deref())?;
    let pairs: Vec<_> = store.iter().collect();
    let mut written = 0;
    for chunk in pairs.chunks(PIPELINE) {
        for (key, value) in chunk {
            conn.send(&[b"SET", key, value])?;
        }
        for (key, _) in chunk {
            if let Err(why) = conn.reply()? {
                return Err(format!("SET {} refused after {written} keys: {why}", String::from_utf8_lossy(key)));
            }
            written += 1;
        }
        if pairs.len() >= 10 * PIPELINE {
            eprint!("\rrestored {written} of {} keys", pairs.len());
        }
    }
    if pairs.len() >= 10 * PIPELINE {
        eprintln!();
    }
    println!("restored {written} keys from the backup at index {index}");
    Ok(0)
}
