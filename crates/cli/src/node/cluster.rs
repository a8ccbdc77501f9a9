//! `quorum cluster`: a local cluster of `quorum node` child processes.

use super::serve::shutdown_signal;
use super::settings::ServingFlags;
use crate::logs::init_tracing;
use quorum_runtime::tls::{dev_paths, DevCerts};
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::{Child, Command};
use tracing::{info, warn};

/// `quorum cluster`: start a local cluster as child processes; Ctrl-C stops it.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// The protocol every node runs.
    #[arg(long, value_parser = crate::protocols::real_protocol())]
    pub protocol: String,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Where each node's data directory goes (default: a fresh temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Node i listens for peers on this port + i - 1.
    #[arg(long, default_value_t = 7001)]
    pub peer_port: u16,
    /// Node i serves clients on this port + i - 1.
    #[arg(long, default_value_t = 6379)]
    pub client_port: u16,
    /// Node i serves /metrics, /health and /ready on this port + i - 1 (default: no metrics port).
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Passed on to every node.
    #[arg(long, default_value = "quorum")]
    pub cluster_id: String,
    /// Mutual TLS between the nodes and TLS on the client ports, with the
    /// certificates in DIR/certs (written by `quorum certs` if not there yet).
    #[arg(long)]
    pub tls: bool,
    /// How every node serves (passed on to each).
    #[command(flatten)]
    pub serving: ServingFlags,
}

/// Starts the cluster, prints its client endpoints and waits for Ctrl-C or
/// SIGTERM (or a node dying), then stops every node. Returns the exit code.
pub fn run_cluster(args: ClusterArgs) -> Result<i32, String> {
    init_tracing(args.serving.log_format);
    if args.nodes == 0 || args.nodes > 99 {
        return Err("--nodes must be between 1 and 99".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(cluster(args))
}

async fn cluster(args: ClusterArgs) -> Result<i32, String> {
    let dir =
        args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("quorum-cluster-{}", std::process::id())));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let port = |base: u16, i: u64| base.checked_add(i as u16 - 1).ok_or("port out of range".to_string());
    let mut peers = Vec::new();
    for i in 1..=args.nodes {
        peers.push(format!("{i}=127.0.0.1:{}", port(args.peer_port, i)?));
    }
    let peers = peers.join(",");
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let certs = dir.join("certs");
    if args.tls && !certs.join("ca.pem").exists() {
        DevCerts::generate(1..=args.nodes, &[])?.write(&certs)?;
    }
    let redis_cli = match args.tls {
        true => format!("redis-cli --tls --cacert {}", certs.join("ca.pem").display()),
        false => "redis-cli".to_string(),
    };
    let mut children: Vec<Child> = Vec::new();
    println!("quorum cluster: {} {} nodes, data in {}", args.nodes, args.protocol, dir.display());
    for i in 1..=args.nodes {
        let client = format!("127.0.0.1:{}", port(args.client_port, i)?);
        let mut cmd = Command::new(&exe);
        cmd.arg("node")
            .args(["--protocol", &args.protocol, "--id", &i.to_string(), "--peers", &peers, "--client", &client])
            .arg("--data-dir")
            .arg(dir.join(format!("n{i}")))
            .args(["--cluster-id", &args.cluster_id])
            .kill_on_drop(true);
        // SAFETY: prctl(2) only sets a flag of the new process between fork and exec.
        // If `quorum cluster` itself dies (even by SIGKILL), its nodes get SIGTERM.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        cmd.args(args.serving.to_args());
        if let Some(base) = args.metrics_port {
            cmd.args(["--metrics", &format!("127.0.0.1:{}", port(base, i)?)]);
        }
        if args.tls {
            let (cert, key, ca) = dev_paths(&certs, i);
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key).arg("--tls-ca").arg(ca);
        }
        children.push(cmd.spawn().map_err(|e| format!("cannot start node {i}: {e}"))?);
        println!("  node {i}: client {client}  ({redis_cli} -h 127.0.0.1 -p {})", port(args.client_port, i)?);
    }
    println!("Ctrl-C stops the cluster.");
    let died = async {
        loop {
            for (i, child) in children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    return (i + 1, status);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let code = tokio::select! {
        _ = shutdown_signal() => 0,
        (i, status) = died => {
            warn!(node = i, %status, "a node exited; stopping the cluster");
            1
        }
    };
    stop_all(&mut children).await;
    Ok(code)
}

/// SIGTERM to every node, then SIGKILL to any still running after 5 s.
async fn stop_all(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) on the pid of our own child process, which we have not reaped.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
            warn!("a node did not stop within 5 s; killing it");
            let _ = child.kill().await;
        }
    }
    info!("cluster stopped");
}
