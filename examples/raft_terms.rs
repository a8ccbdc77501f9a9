//! `cargo run --example raft_terms` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("raft_terms");
}
