//! `cargo run --example flp` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("flp");
}
