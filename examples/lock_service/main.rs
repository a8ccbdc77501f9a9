//! `cargo run --example lock_service`: embedding your own state machine in
//! quorum-raft, run as a real 3-node cluster over TCP with fsync'd logs.
//!
//! The state machine (`lock.rs`) is a lock service whose grants carry fencing
//! tokens; `cluster.rs` starts the nodes with `quorum_runtime`; `client.rs`
//! talks to them; `story.rs` tells what happens when a lease runs out while its
//! holder is paused and the leader crashes, and checks every claim it makes.
//! The example exits non-zero if one does not hold. `-- --mermaid` prints the
//! run as a Mermaid sequence diagram instead of the narration.
//!
//! `-- --sim [SEEDS]` runs the same state machine under the deterministic
//! simulator instead (`sim.rs`): Raft with crashes, partitions, pauses and
//! drifting clocks, every run checked for linearizability, growing fencing
//! tokens and one holder per lock (200 seeds unless told).

mod client;
mod cluster;
mod diagram;
mod lock;
mod sim;
mod story;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--sim") {
        let seeds = match args.get(at + 1).map(|n| n.parse::<u64>()) {
            None => 200,
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                eprintln!("--sim takes a number of seeds: {e}");
                std::process::exit(2);
            }
        };
        let summary = sim::sweep(0..seeds);
        println!("lock service on raft, simulated: {summary}");
        std::process::exit(if summary.failures.is_empty() { 0 } else { 1 });
    }
    let (story, diagram) = story::run();
    if std::env::args().any(|a| a == "--mermaid") {
        print!("{}", diagram.render());
    } else {
        print!("{}", story.narration());
    }
    if !story.passed() {
        eprintln!("this run did not show what the example claims");
        std::process::exit(1);
    }
}
