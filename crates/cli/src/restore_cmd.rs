//! `quorum restore`: start a cluster from a backup. Either load it into a
//! running cluster through a node's client port, key by key (any protocol),
//! or seed the data directories of a new cluster with it as a snapshot, as
//! `etcdctl snapshot restore` does (Raft, Multi-Paxos, Zab).

use crate::admin_cmd::Conn;
use crate::protocols::{dispatch, WithProtocol};
use quorum_core::{Bytes, KvStore, NodeId, Snapshot, StateMachine, Storage, WriteBatch};
use std::path::{Path, PathBuf};

/// Keys written per round trip.
const PIPELINE: usize = 256;

/// `quorum restore`: a backup into a running cluster (`--node`) or into the
/// data directories of a new one (`--data-dir`).
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["node", "data_dir"])))]
pub struct RestoreArgs {
    /// The backup file (`quorum admin backup FILE`).
    pub file: PathBuf,
    /// A node of the running cluster to load it into (followers forward to the leader).
    #[arg(long)]
    pub node: Option<String>,
    /// Sign in as this user (password from QUORUM_PASSWORD); with --node.
    #[arg(long, requires = "node")]
    pub user: Option<String>,
    /// A new node data directory to seed with the backup as a snapshot (give
    /// one per node, or copy one to every node); it must not hold a log yet.
    #[arg(long, requires_all = ["protocol", "members"])]
    pub data_dir: Vec<PathBuf>,
    /// The protocol the new cluster runs; with --data-dir.
    #[arg(long, value_parser = crate::protocols::real_protocol())]
    pub protocol: Option<String>,
    /// The ids of the new cluster's members, e.g. 1,2,3 (the ids its nodes'
    /// --peers give); with --data-dir.
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<u64>,
}

/// Reads and checks the backup, then restores it where the arguments say.
pub fn run(args: RestoreArgs) -> Result<i32, String> {
    let bytes = std::fs::read(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let (index, image) = quorum_runtime::backup::decode(&bytes).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let mut store = KvStore::new();
    store.restore(image).map_err(|e| format!("{}: not a key-value image: {e}", args.file.display()))?;
    match &args.node {
        Some(node) => load_through(node, args.user.as_deref(), &store, index),
        None => seed(&args, index, image),
    }
}

/// The commands that write every key of `store`, with its deadline: `SET`
/// for a string, `HSET` (at most `HASH_FIELDS_PER_COMMAND` fields each) for a
/// hash.
fn commands_for(store: &KvStore) -> Vec<Vec<Bytes>> {
    let word = |w: &'static [u8]| Bytes::from_static(w);
    let pxat = |key: &Bytes| store.deadline(key).map(|at| Bytes::from(at.to_string()));
    let mut commands = Vec::with_capacity(store.len());
    for (key, value) in store.iter() {
        let mut set = vec![word(b"SET"), key.clone(), value.clone()];
        if let Some(at) = pxat(key) {
            set.extend([word(b"PXAT"), at]);
        }
        commands.push(set);
    }
    for (key, fields) in store.hashes() {
        let fields: Vec<_> = fields.iter().collect();
        for chunk in fields.chunks(HASH_FIELDS_PER_COMMAND) {
            let mut hset = vec![word(b"HSET"), key.clone()];
            hset.extend(chunk.iter().flat_map(|(f, v)| [(*f).clone(), (*v).clone()]));
            commands.push(hset);
        }
        if let Some(at) = pxat(key) {
            commands.push(vec![word(b"PEXPIREAT"), key.clone(), at]);
        }
    }
    commands
}

/// Fields of a hash written by one `HSET` while restoring.
const HASH_FIELDS_PER_COMMAND: usize = 1000;

/// Writes every key of `store` through the client port of `node`.
fn load_through(node: &str, user: Option<&str>, store: &KvStore, index: u64) -> Result<i32, String> {
    let mut conn = Conn::open(node, user)?;
    let commands = commands_for(store);
    let mut written = 0;
    for chunk in commands.chunks(PIPELINE) {
        for command in chunk {
            let words: Vec<&[u8]> = command.iter().map(|w| &w[..]).collect();
            conn.send(&words)?;
        }
        for command in chunk {
            if let Err(why) = conn.reply()? {
                let (name, key) = (String::from_utf8_lossy(&command[0]), String::from_utf8_lossy(&command[1]));
                return Err(format!("{name} {key} refused after {written} commands: {why}"));
            }
            written += 1;
        }
        if commands.len() >= 10 * PIPELINE {
            eprint!("\rrestored {written} of {} commands", commands.len());
        }
    }
    if commands.len() >= 10 * PIPELINE {
        eprintln!();
    }
    println!("restored {} keys ({written} commands) from the backup at index {index}", store.len());
    Ok(0)
}

/// Writes the protocol's seed snapshot of `image` into each new data directory.
fn seed(args: &RestoreArgs, index: u64, image: &[u8]) -> Result<i32, String> {
    let protocol = args.protocol.as_deref().ok_or("--data-dir needs --protocol")?;
    let members: Vec<NodeId> = args.members.iter().map(|&id| NodeId(id)).collect();
    if members.is_empty() {
        return Err("--members names no node".into());
    }
    if let Some(twice) = members.iter().enumerate().find(|(i, m)| members[..*i].contains(m)) {
        return Err(format!("--members names node {} twice", twice.1 .0));
    }
    if index == 0 {
        return Err("the backup is of an empty cluster (index 0): start the new cluster without it".into());
    }
    let data = Bytes::copy_from_slice(image);
    let snapshot = dispatch(protocol, SeedSnapshot { members: &members, index, data })?
        .ok_or_else(|| format!("{protocol} keeps no snapshots: load the backup through a running node with --node"))?;
    for dir in &args.data_dir {
        write_seed(dir, &snapshot)?;
        println!("seeded {} with the backup at index {index} ({protocol}, members {:?})", dir.display(), args.members);
    }
    Ok(0)
}

/// Creates `dir` (or takes an empty one) and makes `snapshot` durable in it.
fn write_seed(dir: &Path, snapshot: &Snapshot) -> Result<(), String> {
    let holds_files = std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()).unwrap_or(false);
    if holds_files {
        return Err(format!("{} is not empty: restore only into a new data directory", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut wal = quorum_runtime::Wal::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let batch = WriteBatch { tag: 1, snapshot: Some(snapshot.clone()), ..Default::default() };
    wal.write(&[batch]).map_err(|e| format!("cannot write {}: {e}", dir.display()))
}

struct SeedSnapshot<'a> {
    members: &'a [NodeId],
    index: u64,
    data: Bytes,
}

impl WithProtocol for SeedSnapshot<'_> {
    type Output = Option<Snapshot>;
    fn run<P: quorum_check::Checkable>(self, _config: P::Config) -> Self::Output
    where
        P::Config: Sync + quorum_core::settings::Tunables,
    {
        P::seed_snapshot(self.members, self.index, self.data)
    }
}
