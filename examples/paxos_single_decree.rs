//! `cargo run --example paxos_single_decree` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("paxos_single_decree");
}
