//! `cargo run --example paxos_dueling` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("paxos_dueling");
}
