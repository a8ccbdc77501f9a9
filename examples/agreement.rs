//! `cargo run --example agreement` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("agreement");
}
