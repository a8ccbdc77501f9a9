//! The `quorum` command line.

mod protocols;
mod sim_cmd;

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
    /// Run a protocol in the deterministic simulator over many seeds, checking every run.
    Sim(sim_cmd::SimArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => sim_cmd::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    }
}
