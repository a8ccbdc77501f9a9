//! `cargo run --example raft_partition` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("raft_partition");
}
