//! `cargo run --example majority_overlap` (add `-- --mermaid` for the sequence diagram).
fn main() {
    quorum::scenarios::example_main("majority_overlap");
}
