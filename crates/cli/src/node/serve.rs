//! `quorum node`: one node of protocol `P` on real TCP, a write-ahead log and
//! the Redis-protocol client port, until Ctrl-C or SIGTERM.

use super::settings::{NodeArgs, NodeSettings};
use crate::logs::init_tracing;
use quorum_core::settings::{apply_tunables, Tunables};
use quorum_core::{NodeId, Protocol};
use quorum_runtime::auth::Users;
use quorum_runtime::http::{serve_metrics, MetricsSources};
use quorum_runtime::server::{self, ServerConfig};
use quorum_runtime::tcp::PeerDirectory;
use quorum_runtime::tls::Tls;
use quorum_runtime::{Node, NodeConfig, TcpConfig, TcpTransport, Wal};
use std::sync::Arc;
use tracing::{error, info, warn};

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("Ctrl-C: shutting down"),
        _ = sigterm => info!("SIGTERM: shutting down"),
    }
}

/// Runs one node of protocol `P` until Ctrl-C or SIGTERM. Returns the exit code.
pub fn run_node<P: Protocol>(args: NodeArgs, mut protocol_config: P::Config) -> Result<i32, String>
where
    P::Config: Tunables,
{
    init_tracing(args.serving.log_format);
    let mut settings = args.resolve()?;
    let mut members: Vec<NodeId> = settings.peers.keys().copied().collect();
    if let Some(through) = settings.join.clone() {
        // The cluster's word on its members; this node's own address is its own.
        let cluster = super::join::members_of(&through)?;
        info!(through = %through, voters = ?cluster.voters, "joining a running cluster");
        let own = settings.peers.get(&NodeId(settings.id)).copied();
        settings.peers.extend(cluster.peers);
        settings.peers.extend(own.map(|a| (NodeId(settings.id), a)));
        members = cluster.voters;
    }
    apply_tunables(&mut protocol_config, &settings.sets, &settings.file_settings, |name| std::env::var(name).ok())
        .map_err(|e| format!("{} settings: {e}", P::NAME))?;
    // One thread runs the node task, the transport and the client sessions: no
    // cross-thread wake-ups on the request path (the storage thread is apart).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let tuned: Vec<(String, String)> = <P::Config as Tunables>::KEYS
        .iter()
        .map(|(key, _)| (key.to_string(), protocol_config.get(key).unwrap_or_default()))
        .collect();
    info!(protocol = P::NAME, settings = ?tuned, "protocol settings");
    runtime.block_on(serve_node::<P>(settings, members, protocol_config, tuned))?;
    Ok(0)
}

/// Serves node `s.id`; `members` are the voters it starts with (its peers,
/// or, when it joins, the running cluster's voters).
async fn serve_node<P: Protocol>(
    s: NodeSettings,
    members: Vec<NodeId>,
    protocol_config: P::Config,
    tuned: Vec<(String, String)>,
) -> Result<(), String> {
    let tuned = Arc::new(tuned);
    let id = NodeId(s.id);
    let peer_addr = *s.peers.get(&id).ok_or(format!("--peers has no address for this node's id {}", s.id))?;
    let peer_listener =
        tokio::net::TcpListener::bind(peer_addr).await.map_err(|e| format!("cannot listen on {peer_addr}: {e}"))?;
    let client_listener =
        tokio::net::TcpListener::bind(s.client).await.map_err(|e| format!("cannot listen on {}: {e}", s.client))?;
    let tls = match &s.tls {
        Some(files) => Some(Tls::from_files(&files.cert, &files.key, &files.ca)?),
        None => None,
    };
    let users = match &s.users {
        Some(path) => Some(Users::from_file(path)?),
        None => None,
    };
    tokio::spawn(reload_on_hangup(tls.clone()));
    let metrics_listener = match s.metrics {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?)
        }
        None => None,
    };
    let directory = PeerDirectory::default();
    let mut tcp = TcpConfig::new(id, &s.cluster_id, P::NAME, s.peers.clone());
    tcp.client_addr = s.client.to_string();
    tcp.max_frame_bytes = s.max_frame_bytes;
    tcp.tls = tls.clone();
    let transport = TcpTransport::start(peer_listener, tcp, directory.clone())
        .map_err(|e| format!("cannot start the peer transport: {e}"))?;
    let peer_counters = transport.counters();
    let mut wal = Wal::open(&s.data_dir).map_err(|e| format!("cannot open {}: {e}", s.data_dir.display()))?;
    if s.unsafe_no_fsync {
        warn!("--unsafe-no-fsync: the log is not synced; a machine crash may lose acknowledged writes");
        wal.set_unsafe_no_sync(true);
    }
    let mut config = NodeConfig::new(id, members);
    config.peer_addresses = s.peers.iter().map(|(node, addr)| (*node, addr.to_string())).collect();
    config.forward = !s.redirect;
    config.local_reads = s.local_reads;
    config.snapshot_every = s.snapshot_every;
    config.directory = directory;
    config.seed = seed(s.id);
    let (node, handle) = Node::<P, _>::new(config, protocol_config, transport, wal).map_err(|e| e.to_string())?;
    let server_config = ServerConfig {
        tls,
        users,
        clients: s.clients.clone(),
        peer_counters: Some(peer_counters.clone()),
        settings: tuned.clone(),
        ..ServerConfig::for_frame_limit(s.max_frame_bytes)
    };
    let metrics = match metrics_listener {
        Some(listener) => {
            let sources = MetricsSources {
                node: handle.clone(),
                clients: server_config.client_counters.clone(),
                peers: peer_counters,
                settings: tuned,
            };
            Some(tokio::spawn(serve_metrics(listener, sources)))
        }
        None => None,
    };
    let server = tokio::spawn(server::serve(client_listener, handle, server_config));
    info!(
        id = s.id, protocol = P::NAME, peer = %peer_addr, client = %s.client, data_dir = %s.data_dir.display(), tls = s.tls.is_some(),
        "node started"
    );
    let result = node.run(shutdown_signal()).await;
    server.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    result.map_err(|e| {
        error!(error = %e, "node failed");
        e.to_string()
    })
}

/// SIGHUP reloads the TLS certificates (new connections use them; a bad set
/// is refused and the old one stays). Without TLS it is logged and ignored,
/// rather than ending the process as it would by default.
async fn reload_on_hangup(tls: Option<Tls>) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
    while hangup.recv().await.is_some() {
        match tls.as_ref().map(Tls::reload) {
            Some(Ok(())) => info!("SIGHUP: TLS certificates reloaded"),
            Some(Err(e)) => warn!(error = %e, "SIGHUP: TLS certificates not reloaded; the ones in use stay"),
            None => info!("SIGHUP: no TLS certificates to reload"),
        }
    }
}

/// A different seed on every start: the protocol's random choices (election
/// timeouts) must differ between nodes and between runs.
fn seed(id: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    (nanos as u64) ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id())
}
