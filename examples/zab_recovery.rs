//! `cargo run --example zab_recovery` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("zab_recovery");
}
