//! The `quorum` command line.

mod admin_cmd;
mod bench_cmd;
mod certs_cmd;
mod check_cmd;
mod churn;
mod logs;
mod node;
mod passwd_cmd;
mod planted;
mod protocols;
mod restore_cmd;
mod sim_cmd;
mod trace_cmd;
mod viz;

use clap::{Parser, Subcommand};

/// quorum: Basic Paxos, Multi-Paxos, Raft and Zab, simulated, run and measured side by side.
#[derive(Parser, Debug)]
#[command(name = "quorum", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compare the protocols under one workload and one fault plan.
    Bench(bench_cmd::BenchArgs),
    /// Run a protocol in the deterministic simulator over many seeds, checking every run.
    Sim(sim_cmd::SimArgs),
    /// Run one node of a cluster (Redis protocol on --client).
    Node(Box<node::NodeArgs>),
    /// Start a local cluster of nodes as child processes.
    Cluster(node::ClusterArgs),
    /// Write a development CA and per-node certificates for TLS.
    Certs(certs_cmd::CertsArgs),
    /// Hash a password (read from standard input) for a users file.
    Passwd(passwd_cmd::PasswdArgs),
    /// Ask a running node to do something: status, transfer-leader N, snapshot, backup FILE.
    Admin(admin_cmd::AdminArgs),
    /// Load a backup into a running cluster, key by key.
    Restore(restore_cmd::RestoreArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Model-check a protocol: every state of a small cluster within bounds.
    Check(check_cmd::CheckArgs),
    /// Print a narrated scenario's run as a Mermaid diagram, JSON or text.
    Trace(trace_cmd::TraceArgs),
    /// Watch and poke the protocols in a browser: a simulated cluster per tab.
    Viz(viz::VizArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench_cmd::run(args),
        Command::Sim(args) => sim_cmd::run(args),
        Command::Node(args) => node::node(*args),
        Command::Cluster(args) => node::cluster(args),
        Command::Certs(args) => certs_cmd::run(args),
        Command::Passwd(args) => passwd_cmd::run(args),
        Command::Admin(args) => admin_cmd::run(args),
        Command::Restore(args) => restore_cmd::run(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "quorum", &mut std::io::stdout());
            Ok(0)
        }
        Command::Trace(args) => trace_cmd::run(args),
        Command::Check(args) => check_cmd::run(args),
        Command::Viz(args) => viz::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    }
}
