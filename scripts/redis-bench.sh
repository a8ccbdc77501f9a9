#!/usr/bin/env bash
# Measures a local 3-node cluster with redis-benchmark: SET and GET, 200,000
# requests over 1,000 random keys with 128-byte values, at 1 and at 32 clients.
#
#   scripts/redis-bench.sh [PROTOCOL]        (default: primary-backup)
#
# Installs redis-tools through apt if redis-benchmark is missing, builds the
# release binary, starts `quorum cluster` on ports 27001.. (peers) and 26379..
# (clients), sends the requests to the leader's client port, and
# stops the cluster at the end. Env: REQUESTS (default 200000), NODES (3),
# CLIENTS (default "1 32"), TESTS (default set,get),
# FSYNC=0 to run the nodes with --unsafe-no-fsync (measures the runtime alone,
# without the disk; never for real data).
set -euo pipefail

protocol="${1:-primary-backup}"
requests="${REQUESTS:-200000}"
nodes="${NODES:-3}"
sync_flag=""
sync_note="fsync on every group commit"
if [ "${FSYNC:-1}" = "0" ]; then sync_flag="--unsafe-no-fsync"; sync_note="NO fsync (--unsafe-no-fsync)"; fi
peer_port=27001
client_port=26379
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v redis-benchmark >/dev/null; then
    echo "redis-benchmark not found: installing redis-tools" >&2
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-tools >/dev/null
fi

cargo build --release -q -p quorum-cli --manifest-path "$root/Cargo.toml"
bin="$root/target/release/quorum"
# shellcheck source=scripts/local-cluster.sh
source "$root/scripts/local-cluster.sh"
start_local_cluster "$bin" "$protocol" "$nodes" "$peer_port" "$client_port" $sync_flag
# Send to the leader (a follower would forward every request: one more hop).
port=$((client_port + leader - 1))

echo "protocol=$protocol nodes=$nodes requests=$requests leader port=$port ($sync_note)"
printf '%-8s %-4s %12s %10s %10s %10s\n' clients test "ops/s" "p50 ms" "p99 ms" "max ms"
for clients in ${CLIENTS:-1 32}; do
    redis-benchmark -p "$port" -t "${TESTS:-set,get}" -n "$requests" -r 1000 -d 128 -c "$clients" --csv 2>/dev/null \
        | awk -F',' -v c="$clients" 'NR > 1 { gsub(/"/, ""); printf "%-8s %-4s %12s %10s %10s %10s\n", c, $1, $2, $5, $7, $8 }'
done
