//! `cargo run --example compare` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("compare");
}
