//! `cargo run --example raft_replication` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("raft_replication");
}
