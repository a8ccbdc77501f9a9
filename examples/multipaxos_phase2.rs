//! `cargo run --example multipaxos_phase2` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("multipaxos_phase2");
}
