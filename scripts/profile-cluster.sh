#!/usr/bin/env bash
# Cost per request of a local 3-node cluster under redis-benchmark, from
# counters that do not depend on how busy the machine is: CPU time, syscalls,
# fdatasyncs (1 / fsync batch size) and context switches, per node, divided by
# the number of requests.
#
#   scripts/profile-cluster.sh [PROTOCOL] [CLIENTS]     (default: raft 32)
#
# Env: REQUESTS (default 100000), TEST (set or get, default set), BIN (another
# quorum binary to measure, e.g. an older build; default: build this tree), FSYNC=0 for
# --unsafe-no-fsync, RECORD=1 to also `perf record -g` the leader and one
# follower (reports land in $OUT, default /tmp/quorum-profile).
# Needs perf (Debian: linux-perf) and redis-benchmark (redis-tools).
set -euo pipefail

protocol="${1:-raft}"
clients="${2:-32}"
requests="${REQUESTS:-100000}"
test="${TEST:-set}"
out="${OUT:-/tmp/quorum-profile}"
sync_flag=""
if [ "${FSYNC:-1}" = "0" ]; then sync_flag="--unsafe-no-fsync"; fi
peer_port=27101
client_port=26479
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"

bin="${BIN:-}"
if [ -z "$bin" ]; then
    cargo build --release -q -p quorum-cli --manifest-path "$root/Cargo.toml"
    bin="$root/target/release/quorum"
fi
# shellcheck source=scripts/local-cluster.sh
source "$root/scripts/local-cluster.sh"
start_local_cluster "$bin" "$protocol" 3 "$peer_port" "$client_port" $sync_flag
pid_of() { pgrep -P "$cluster_pid" -f -- "--id $1 " ; }
pids=()
for i in 1 2 3; do pids+=("$(pid_of "$i")"); done
follower=$(( leader % 3 + 1 ))

events=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_fdatasync
events+=,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_pwrite64,syscalls:sys_enter_sendto
events+=,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex
stats=()
for i in 1 2 3; do
    perf stat -x, -e "$events" -p "${pids[$((i - 1))]}" -o "$out/stat-n$i.csv" &
    stats+=($!)
done
records=()
if [ "${RECORD:-0}" = "1" ]; then
    perf record -F 999 -g -o "$out/leader.data" -p "${pids[$((leader - 1))]}" 2>/dev/null &
    records+=($!)
    perf record -F 999 -g -o "$out/follower.data" -p "${pids[$((follower - 1))]}" 2>/dev/null &
    records+=($!)
fi
sleep 0.5
start=$(date +%s.%N)
redis-benchmark -p $((client_port + leader - 1)) -t "$test" -n "$requests" -r 1000 -d 128 -c "$clients" --csv 2>/dev/null \
    | awk -F',' 'NR > 1 { gsub(/"/, ""); printf "%s %s ops/s, p50 %s ms, p99 %s ms\n", $1, $2, $5, $7 }'
end=$(date +%s.%N)
for p in "${stats[@]}" "${records[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${stats[@]}" "${records[@]}"; do wait "$p" 2>/dev/null || true; done

echo "protocol=$protocol clients=$clients requests=$requests test=$test leader=n$leader ${sync_flag:-fsync on}" \
    "wall=$(echo "$end - $start" | bc) s"
printf '%-10s %10s %8s %8s %8s %8s %8s %8s %8s %8s\n' node "cpu us/op" "sys/op" "fsync/op" "ctxsw/op" \
    "wr/op" "send/op" "rd/op" "epoll/op" "futex/op"
for i in 1 2 3; do
    role=follower
    if [ "$i" = "$leader" ]; then role=leader; fi
    awk -F',' -v n="n$i($role)" -v r="$requests" '
        { v[$3] = $1 }
        END {
            printf "%-10s %10.1f %8.2f %8.3f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", n,
                v["task-clock"] * 1000 / r, v["raw_syscalls:sys_enter"] / r,
                v["syscalls:sys_enter_fdatasync"] / r, v["context-switches"] / r,
                (v["syscalls:sys_enter_write"] + v["syscalls:sys_enter_writev"] + v["syscalls:sys_enter_pwrite64"]) / r,
                v["syscalls:sys_enter_sendto"] / r,
                (v["syscalls:sys_enter_read"] + v["syscalls:sys_enter_recvfrom"]) / r,
                v["syscalls:sys_enter_epoll_wait"] / r, v["syscalls:sys_enter_futex"] / r
        }' "$out/stat-n$i.csv"
done
