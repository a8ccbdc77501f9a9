//! `cargo run --example lock_service`: embedding your own state machine in
//! quorum-raft, run as a real 3-node cluster over TCP with fsync'd logs.
//!
//! The state machine (`lock.rs`) is a lock service whose grants carry fencing
//! tokens; `cluster.rs` starts the nodes with `quorum_runtime`; `client.rs`
//! talks to them; `story.rs` tells what happens when a lease runs out while its
//! holder is paused and the leader crashes, and checks every claim it makes.
//! The example exits non-zero if one does not hold.

mod client;
mod cluster;
mod lock;
mod story;

fn main() {
    let story = story::run();
    print!("{}", story.narration());
    if !story.passed() {
        eprintln!("this run did not show what the example claims");
        std::process::exit(1);
    }
}
