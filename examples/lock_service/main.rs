//! `cargo run --example lock_service`: embedding your own state machine in
//! quorum-raft, run as a real 3-node cluster over TCP with fsync'd logs.
//!
//! The state machine (`lock.rs`) is a lock service whose grants carry fencing
//! tokens; `cluster.rs` starts the nodes with `quorum_runtime`; `client.rs`
//! talks to them; `story.rs` tells what happens when a lease runs out while its
//! holder is paused and the leader crashes, and checks every claim it makes.
//! The example exits non-zero if one does not hold. `-- --mermaid` prints the
//! run as a Mermaid sequence diagram instead of the narration.

mod client;
mod cluster;
mod diagram;
mod lock;
mod story;

fn main() {
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
