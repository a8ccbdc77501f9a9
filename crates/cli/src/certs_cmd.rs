//! `quorum certs`: a development CA and a certificate per node, for TLS.

use quorum_runtime::tls::DevCerts;
use std::path::PathBuf;

/// `quorum certs`: write a development CA and per-node certificates.
#[derive(clap::Args, Debug, Clone)]
pub struct CertsArgs {
    /// The directory to write into (created if missing; existing files are never overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Certificates for nodes 1..=N.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// More names or IP addresses the nodes are reached by (each node's
    /// certificate always names `node-<id>`, localhost, 127.0.0.1 and ::1).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
}

/// Writes the files and says how to use them.
pub fn run(args: CertsArgs) -> Result<i32, String> {
    if args.nodes == 0 || args.nodes > 999 {
        return Err("--nodes must be between 1 and 999".into());
    }
    let certs = DevCerts::generate(1..=args.nodes, &args.hosts)?;
    for path in certs.write(&args.out)? {
        println!("wrote {}", path.display());
    }
    let dir = args.out.display();
    println!(
        "node 1: quorum node --tls-cert {dir}/node-1.pem --tls-key {dir}/node-1-key.pem --tls-ca {dir}/ca.pem ...\n\
         client: redis-cli --tls --cacert {dir}/ca.pem -p 6379\n\
         ca-key.pem signs certificates: keep it off the nodes in production."
    );
    Ok(0)
}
