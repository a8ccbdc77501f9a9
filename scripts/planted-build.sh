# Sourced by the planted-bug scripts: builds `quorum` with `--features
# planted-bugs` into target/planted (never the shipping binary) and sets
# $bin to it. Run from the repository's root.
export CARGO_TARGET_DIR=target/planted
cargo build --release -q -p quorum-cli --features planted-bugs
bin=target/planted/release/quorum
