#!/usr/bin/env bash
# Parses every scenario's Mermaid diagram with the real Mermaid parser (npm).
# Usage: scripts/check-mermaid.sh   (needs node and npm; installs mermaid and jsdom into a temp dir)
# Covers every scenario `quorum trace --list` prints, whatever its protocol, and
# the lock_service example's diagram.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# QUORUM=path/to/quorum reuses a binary already built (any profile).
if [ -n "${QUORUM:-}" ]; then
  quorum="$QUORUM"
else
  cargo build --quiet --release -p quorum-cli --manifest-path "$root/Cargo.toml"
  quorum="$root/target/release/quorum"
fi
# --list prints every scenario: name, protocol, about.
"$quorum" trace --list | while read -r name protocol _; do
  "$quorum" trace --protocol "$protocol" --scenario "$name" --format mermaid > "$work/$name.mmd"
done
# The embedding example runs a real cluster, not a scenario: its diagram too.
cargo run --quiet --release --manifest-path "$root/Cargo.toml" --example lock_service -- --mermaid > "$work/lock_service.mmd"
cp "$root/scripts/check-mermaid.mjs" "$work/"
(cd "$work" && npm install --silent --no-audit --no-fund mermaid@11 jsdom >/dev/null && node check-mermaid.mjs ./*.mmd)
