//! `quorum node` settings, from flags and an optional TOML file.

use quorum_core::NodeId;
use quorum_runtime::limits::ClientLimits;
use quorum_runtime::request::REPLICATION_OVERHEAD;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `quorum node`: run one node of a cluster.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NodeArgs {
    /// The protocol to run.
    #[arg(long, value_parser = crate::protocols::real_protocol())]
    pub protocol: Option<String>,
    /// This node's id (a member of --peers).
    #[arg(long)]
    pub id: Option<u64>,
    /// Every member's peer address: `1=127.0.0.1:7001,2=127.0.0.1:7002,...`
    /// (with --join, this node's own entry is enough).
    #[arg(long)]
    pub peers: Option<String>,
    /// Join a running Raft cluster: ask the member whose client port is
    /// HOST:PORT for the members and their peer addresses, and start as a
    /// node that does not vote until `quorum admin add` and `promote` make
    /// it a learner, then a voter.
    #[arg(long, value_name = "HOST:PORT")]
    pub join: Option<String>,
    /// The address of the Redis-protocol client port.
    #[arg(long)]
    pub client: Option<SocketAddr>,
    /// Serve /metrics (Prometheus), /health and /ready over HTTP on this address.
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
    /// Where the write-ahead log and snapshots live.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A TOML file with any of these settings (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Peers with another cluster id are refused.
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// This node's certificate (PEM, naming `node-<id>`): with --tls-key and
    /// --tls-ca, peers use mutual TLS and the client port serves TLS.
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<PathBuf>,
    /// The cluster CA's certificate (PEM): peers must present a certificate it signed.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// Print the protocol's settings (key, default, meaning) and exit.
    #[arg(long)]
    pub list_settings: bool,
    /// How the node serves (`quorum cluster` takes the same flags).
    #[command(flatten)]
    pub serving: ServingFlags,
}

/// How a node serves: flags `quorum node` and `quorum cluster` share (the
/// cluster passes them on to each node).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServingFlags {
    /// Followers answer `-MOVED 0 host:port` instead of forwarding to the leader.
    #[arg(long)]
    pub redirect: bool,
    /// Serve GET from the local store (fast, not linearizable).
    #[arg(long)]
    pub local_reads: bool,
    /// Snapshot the state machine every N applied entries (0: never).
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// The largest peer frame accepted, in bytes.
    #[arg(long)]
    pub max_frame_bytes: Option<usize>,
    /// A TOML file of users (name, Argon2 password hash from `quorum passwd`,
    /// role read | write | admin): clients must then AUTH.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Client connections served at once (default 10000); one more is refused.
    #[arg(long)]
    pub max_clients: Option<usize>,
    /// Seconds a client request may take from its first byte to its last (default 30).
    #[arg(long)]
    pub request_timeout: Option<u64>,
    /// Seconds a client connection may sit idle before it is closed (default 0: never).
    #[arg(long)]
    pub idle_timeout: Option<u64>,
    /// A protocol setting, KEY=VALUE (repeat the flag; `quorum node --protocol P
    /// --list-settings` names them): wins over `[settings]` in --config and
    /// over QUORUM_<KEY> in the environment.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Logs on stderr as text, or as one JSON object per line (filtered by RUST_LOG).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Do not fsync the log: a machine crash may lose acknowledged writes.
    /// For benchmarks of everything but the disk only.
    #[arg(long)]
    pub unsafe_no_fsync: bool,
}

impl ServingFlags {
    /// The same flags on a `quorum node` command line.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let switches = [
            (self.redirect, "--redirect"),
            (self.local_reads, "--local-reads"),
            (self.unsafe_no_fsync, "--unsafe-no-fsync"),
        ];
        args.extend(switches.iter().filter(|(on, _)| *on).map(|(_, flag)| flag.to_string()));
        if let Some(n) = self.snapshot_every {
            args.extend(["--snapshot-every".to_string(), n.to_string()]);
        }
        if let Some(n) = self.max_frame_bytes {
            args.extend(["--max-frame-bytes".to_string(), n.to_string()]);
        }
        if let Some(path) = &self.users {
            args.extend(["--users".to_string(), path.display().to_string()]);
        }
        let numbers = [
            ("--max-clients", self.max_clients.map(|n| n as u64)),
            ("--request-timeout", self.request_timeout),
            ("--idle-timeout", self.idle_timeout),
        ];
        for (flag, value) in numbers {
            if let Some(n) = value {
                args.extend([flag.to_string(), n.to_string()]);
            }
        }
        for set in &self.set {
            args.extend(["--set".to_string(), set.clone()]);
        }
        if self.log_format == LogFormat::Json {
            args.extend(["--log-format".to_string(), "json".to_string()]);
        }
        args
    }
}

/// The same settings, as a TOML file holds them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    protocol: Option<String>,
    id: Option<u64>,
    peers: Option<String>,
    join: Option<String>,
    client: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    cluster_id: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    redirect: Option<bool>,
    local_reads: Option<bool>,
    snapshot_every: Option<u64>,
    max_frame_bytes: Option<usize>,
    users: Option<PathBuf>,
    max_clients: Option<usize>,
    request_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    unsafe_no_fsync: Option<bool>,
    /// Protocol settings by key (`quorum node --list-settings`).
    settings: Option<toml::Table>,
}

/// Settings with every value decided.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// The protocol's name.
    pub protocol: String,
    /// This node.
    pub id: u64,
    /// Every member's peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The client address of a member to join through (`--join`).
    pub join: Option<String>,
    /// The client port.
    pub client: SocketAddr,
    /// The metrics port, if any.
    pub metrics: Option<SocketAddr>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The cluster id.
    pub cluster_id: String,
    /// Certificate, key and CA files, when TLS is on.
    pub tls: Option<TlsFiles>,
    /// Redirect instead of forwarding.
    pub redirect: bool,
    /// Local (non-linearizable) reads.
    pub local_reads: bool,
    /// Snapshot interval in applied entries.
    pub snapshot_every: u64,
    /// Peer frame size limit.
    pub max_frame_bytes: usize,
    /// The users file, if clients must authenticate.
    pub users: Option<PathBuf>,
    /// Client connection limits.
    pub clients: ClientLimits,
    /// Protocol settings from `--set`, as `KEY=VALUE`.
    pub sets: Vec<String>,
    /// Protocol settings from the file's `[settings]` table, as text.
    pub file_settings: Vec<(String, String)>,
    /// Skip fsync (benchmarks only).
    pub unsafe_no_fsync: bool,
}

/// The smallest peer frame limit: room for the headers around a command, and as much again for the command.
const MIN_FRAME_BYTES: usize = 2 * REPLICATION_OVERHEAD;
/// The largest peer frame limit (frame lengths are 32-bit; beyond this a single message is unreasonable).
const MAX_FRAME_BYTES: usize = 1 << 30;

/// How logs are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A path from an environment variable, if it is set and not empty.
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The PEM files of a node's TLS settings.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// This node's certificate chain.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
    /// The cluster CA.
    pub ca: PathBuf,
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut peers: BTreeMap<NodeId, SocketAddr> = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item.split_once('=').ok_or(format!("peer '{item}' is not of the form ID=HOST:PORT"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("peer id '{id}' is not a number"))?;
        let addr: SocketAddr = addr.trim().parse().map_err(|e| format!("peer address '{addr}': {e}"))?;
        if let Some((other, _)) = peers.iter().find(|(_, a)| **a == addr) {
            return Err(format!("peers {} and {id} share the address {addr}", other.0));
        }
        if id == 0 || peers.insert(NodeId(id), addr).is_some() {
            return Err(format!("peer id {id} is zero or given twice"));
        }
    }
    if peers.is_empty() {
        return Err("--peers lists no member".into());
    }
    Ok(peers)
}

impl NodeArgs {
    /// Merges the flags over the config file and checks the result.
    pub fn resolve(self) -> Result<NodeSettings, String> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str::<NodeFile>(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => NodeFile::default(),
        };
        let missing = |what: &str| format!("missing --{what} (or `{what}` in --config)");
        let id = self.id.or(file.id).ok_or_else(|| missing("id"))?;
        let peers = parse_peers(&self.peers.or(file.peers).ok_or_else(|| missing("peers"))?)?;
        if !peers.contains_key(&NodeId(id)) {
            return Err(format!("node id {id} is not in --peers"));
        }
        let flags = &self.serving;
        let max_frame_bytes = flags.max_frame_bytes.or(file.max_frame_bytes).unwrap_or(16 << 20);
        if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&max_frame_bytes) {
            return Err(format!(
                "--max-frame-bytes {max_frame_bytes} is outside {MIN_FRAME_BYTES}..={MAX_FRAME_BYTES} \
                 (a peer frame wraps a client command in up to {REPLICATION_OVERHEAD} bytes of headers)"
            ));
        }
        // Secrets' paths may also come from the environment, below the flags and the file.
        let tls = match (
            self.tls_cert.or(file.tls_cert).or_else(|| env_path("QUORUM_TLS_CERT")),
            self.tls_key.or(file.tls_key).or_else(|| env_path("QUORUM_TLS_KEY")),
            self.tls_ca.or(file.tls_ca).or_else(|| env_path("QUORUM_TLS_CA")),
        ) {
            (Some(cert), Some(key), Some(ca)) => Some(TlsFiles { cert, key, ca }),
            (None, None, None) => None,
            _ => {
                return Err(
                    "TLS needs all three of --tls-cert, --tls-key and --tls-ca (or tls_cert, tls_key, tls_ca in \
                            --config, or QUORUM_TLS_CERT, QUORUM_TLS_KEY, QUORUM_TLS_CA), or none"
                        .into(),
                )
            }
        };
        let defaults = ClientLimits::default();
        let clients = ClientLimits {
            max_clients: flags.max_clients.or(file.max_clients).unwrap_or(defaults.max_clients),
            request_timeout: flags
                .request_timeout
                .or(file.request_timeout)
                .map_or(defaults.request_timeout, Duration::from_secs),
            idle_timeout: match flags.idle_timeout.or(file.idle_timeout) {
                Some(0) | None => None,
                Some(secs) => Some(Duration::from_secs(secs)),
            },
        };
        let file_settings = file
            .settings
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| match value {
                toml::Value::String(text) => (key, text),
                other => (key, other.to_string()),
            })
            .collect();
        if clients.max_clients == 0 || clients.request_timeout.is_zero() {
            return Err("--max-clients and --request-timeout must be at least 1".into());
        }
        let protocol = self.protocol.or(file.protocol).ok_or_else(|| missing("protocol"))?;
        let join = self.join.or(file.join);
        if join.is_some() && !crate::protocols::RECONFIGURABLE.contains(&protocol.as_str()) {
            return Err(format!(
                "--join: {protocol} has no membership changes (only {} have them so far); start every member with --peers",
                crate::protocols::RECONFIGURABLE.join(", ")
            ));
        }
        Ok(NodeSettings {
            tls,
            protocol,
            id,
            peers,
            join,
            client: self.client.or(file.client).ok_or_else(|| missing("client"))?,
            metrics: self.metrics.or(file.metrics),
            data_dir: self.data_dir.or(file.data_dir).ok_or_else(|| missing("data-dir"))?,
            cluster_id: self.cluster_id.or(file.cluster_id).unwrap_or_else(|| "quorum".into()),
            redirect: flags.redirect || file.redirect.unwrap_or(false),
            local_reads: flags.local_reads || file.local_reads.unwrap_or(false),
            snapshot_every: flags.snapshot_every.or(file.snapshot_every).unwrap_or(10_000),
            max_frame_bytes,
            users: flags.users.clone().or(file.users).or_else(|| env_path("QUORUM_USERS")),
            clients,
            sets: flags.set.clone(),
            file_settings,
            unsafe_no_fsync: flags.unsafe_no_fsync || file.unsafe_no_fsync.unwrap_or(false),
        })
    }

    /// The protocol name, from the flag or the config file.
    pub fn protocol_name(&self) -> Result<String, String> {
        if let Some(name) = &self.protocol {
            return Ok(name.clone());
        }
        let settings = self.clone().resolve()?;
        Ok(settings.protocol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An embedder can keep a protocol's settings in its own file: every
    /// config deserializes from the keys `--set` takes, checked the same way,
    /// and serializes back to them.
    #[test]
    fn protocol_configs_deserialize_from_their_setting_keys() {
        use quorum_core::Duration;
        let raft: quorum_raft::RaftConfig = toml::from_str(
            "election_timeout_min_ms = 300\nelection_timeout_max_ms = 600\nread_mode = \"lease\"\npre_vote = false\n",
        )
        .unwrap();
        assert_eq!(raft.election_timeout_min, Duration::from_millis(300));
        assert_eq!(raft.read_mode, quorum_raft::ReadMode::Lease);
        assert!(!raft.pre_vote);
        assert_eq!(raft.max_inflight, quorum_raft::RaftConfig::default().max_inflight, "unset keys keep defaults");
        let again: quorum_raft::RaftConfig = toml::from_str(&toml::to_string(&raft).unwrap()).unwrap();
        assert_eq!(again, raft);
        let zab: quorum_zab::ZabConfig = toml::from_str("tick_ms = 20").unwrap();
        assert_eq!(zab.tick, Duration::from_millis(20));
        let mp: quorum_multipaxos::MultiPaxosConfig = toml::from_str("window = 4\nread_lease = true").unwrap();
        assert_eq!((mp.window, mp.read_lease), (4, true));
        let paxos: quorum_paxos::PaxosConfig = serde_json::from_str(r#"{"max_in_flight": 3}"#).unwrap();
        assert_eq!(paxos.max_in_flight, 3);

        let bad = toml::from_str::<quorum_raft::RaftConfig>("election_timeout_min_ms = 900").unwrap_err();
        assert!(bad.to_string().contains("election_timeout_min_ms must be below election_timeout_max_ms"), "{bad}");
        let unknown = toml::from_str::<quorum_zab::ZabConfig>("tick = 20").unwrap_err();
        assert!(unknown.to_string().contains("unknown setting 'tick'"), "{unknown}");
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = std::env::temp_dir().join(format!("quorum-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.toml");
        std::fs::write(
            &path,
            "protocol = \"raft\"\nid = 2\npeers = \"1=127.0.0.1:7001,2=127.0.0.1:7002\"\n\
             client = \"127.0.0.1:6380\"\ndata_dir = \"/tmp/n2\"\nsnapshot_every = 5\n",
        )
        .unwrap();
        let serving = ServingFlags { snapshot_every: Some(9), ..Default::default() };
        let args = NodeArgs { config: Some(path), serving, ..Default::default() };
        let s = args.resolve().unwrap();
        assert_eq!((s.protocol.as_str(), s.id, s.snapshot_every), ("raft", 2, 9));
        assert_eq!(s.peers.len(), 2);
        assert_eq!(s.cluster_id, "quorum");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_peer_lists_are_explained() {
        assert!(parse_peers("1=127.0.0.1:1,1=127.0.0.1:2").unwrap_err().contains("twice"));
        assert!(parse_peers("x=127.0.0.1:1").unwrap_err().contains("not a number"));
        assert!(parse_peers("1:127.0.0.1").unwrap_err().contains("ID=HOST:PORT"));
        assert!(parse_peers("1=127.0.0.1:1,2=127.0.0.1:1").unwrap_err().contains("peers 1 and 2 share the address"));
        let err = NodeArgs { id: Some(3), peers: Some("1=127.0.0.1:1".into()), ..Default::default() }.resolve();
        assert!(err.unwrap_err().contains("node id 3 is not in --peers"));
    }

    #[test]
    fn a_frame_limit_too_small_for_a_command_is_refused() {
        let args = |bytes| NodeArgs {
            id: Some(1),
            peers: Some("1=127.0.0.1:1".into()),
            serving: ServingFlags { max_frame_bytes: Some(bytes), ..Default::default() },
            ..Default::default()
        };
        for bytes in [0, 4096, MAX_FRAME_BYTES + 1] {
            assert!(args(bytes).resolve().unwrap_err().contains("--max-frame-bytes"), "{bytes}");
        }
        // Past the frame check, the next complaint is a missing flag.
        assert!(args(MIN_FRAME_BYTES).resolve().unwrap_err().contains("missing --protocol"));
    }

    /// Damaged config files are refused with a message, never a panic
    /// (seeded mutations of a valid file: flipped bytes, cut and repeated pieces).
    #[test]
    fn damaged_config_files_are_refused_not_panicked_on() {
        let valid = "protocol = \"raft\"\nid = 2\npeers = \"1=127.0.0.1:7001,2=127.0.0.1:7002\"\n\
                     client = \"127.0.0.1:6380\"\ndata_dir = \"/tmp/n2\"\nsnapshot_every = 5\n\
                     max_frame_bytes = 1048576\ntls_cert = \"a\"\ntls_key = \"b\"\ntls_ca = \"c\"\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let z = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (z ^ (z >> 27)) as usize
        };
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..500 {
            let mut text = valid.as_bytes().to_vec();
            for _ in 0..1 + next() % 3 {
                if text.is_empty() {
                    break;
                }
                let at = next() % text.len();
                match next() % 3 {
                    0 => text[at] = b"=\"'[]\n0-#x"[next() % 10],
                    1 => drop(text.drain(at..(at + next() % 12).min(text.len()))),
                    _ => {
                        let piece = text[at..(at + next() % 20).min(text.len())].to_vec();
                        text.splice(at..at, piece);
                    }
                }
            }
            std::fs::write(&path, &text).unwrap();
            match (NodeArgs { config: Some(path.clone()), ..Default::default() }).resolve() {
                Ok(_) => ok += 1,
                Err(message) => {
                    assert!(!message.is_empty());
                    refused += 1;
                }
            }
        }
        assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused");
    }

    /// What `quorum cluster` passes on parses back to the same flags.
    #[test]
    fn serving_flags_pass_on_unchanged() {
        #[derive(clap::Parser)]
        struct Node {
            #[command(flatten)]
            serving: ServingFlags,
        }
        let flags = ServingFlags {
            redirect: true,
            local_reads: false,
            snapshot_every: Some(7),
            max_frame_bytes: Some(4096),
            users: Some(PathBuf::from("/etc/quorum/users.toml")),
            max_clients: Some(5),
            request_timeout: Some(7),
            idle_timeout: Some(0),
            set: vec!["election_timeout_min_ms=200".into()],
            log_format: LogFormat::Json,
            unsafe_no_fsync: true,
        };
        let args = flags.to_args();
        let parsed = <Node as clap::Parser>::try_parse_from(std::iter::once("node".to_string()).chain(args.clone()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .serving;
        assert_eq!(format!("{parsed:?}"), format!("{flags:?}"));
        assert!(ServingFlags::default().to_args().is_empty());
    }
}
