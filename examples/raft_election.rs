//! `cargo run --example raft_election` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("raft_election");
}
