#!/usr/bin/env bash
# The long simulator sweeps: every protocol under every `quorum sim
# --profile` that applies to it, all faults on, each run checked (safety
# invariants, linearizability, convergence; under `hostile`, that no node
# panics on corrupted messages). docs/simulator.md quotes the
# last results.
#
#   scripts/sweep.sh [SEEDS] [HIGH_LOAD_SEEDS] [PROFILES] [FIRST_SEED]
#
# SEEDS (default 10000) per protocol and profile; HIGH_LOAD_SEEDS (default
# SEEDS) for the 200-client profile, whose seeds cost 10 to 100 times more;
# PROFILES (default all of them) a space-separated list, e.g. "crash-storm backlog";
# `churn` stands for `--churn` (Raft, Multi-Paxos and Zab: the operator changes
# membership, moves leadership and replaces learners' disks, on the default
# profile), and `churn-high-load` for `--churn` on `high-load` (its seed count
# is HIGH_LOAD_SEEDS); `crash-storm-1-node` is `crash-storm` on one node and
# `churn-2-nodes` is `--churn` on two (the smallest clusters, where a lone
# voter's own vote and a pending removal decide everything).
# FIRST_SEED (default 0) starts every run there, so a long sweep can be run
# in chunks (seeds 0-999, then 1000-1999, ...). QUORUM_BIN names a binary to
# use instead of building one (a copy, so that rebuilding cannot change it mid-sweep).
# Writes one JSON summary per run to target/sweep/<protocol>-<profile>-<first>.json
# and prints a table; exits 1 if any run found a violation.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-10000}
high_load_seeds=${2:-$seeds}
profiles=${3:-default tiny-caps high-load lease-fifo drift slow-disk hostile crash-storm backlog churn churn-high-load crash-storm-1-node churn-2-nodes}
first=${4:-0}
out=target/sweep
mkdir -p "$out"
bin=${QUORUM_BIN:-target/release/quorum}
[[ -n ${QUORUM_BIN:-} ]] || cargo build --release -q -p quorum-cli
status=0
# A top-level field of the summary: the last match (failures, listed first, may hold the same names).
field() { grep -o "\"$1\":[^,}]*" "$2" | tail -1 | cut -d: -f2 | tr -d '"'; }
printf '%-11s %-18s %7s %11s %11s %5s %9s\n' protocol profile seeds ops unanswered viol wall_s
for profile in $profiles; do
    for protocol in paxos multipaxos raft zab; do
        case "$profile/$protocol" in lease-fifo/paxos | lease-fifo/zab | churn*/paxos) continue ;; esac
        flags=(--profile "$profile")
        [[ $profile == churn ]] && flags=(--churn)
        [[ $profile == churn-high-load ]] && flags=(--profile high-load --churn)
        [[ $profile == crash-storm-1-node ]] && flags=(--profile crash-storm --nodes 1)
        [[ $profile == churn-2-nodes ]] && flags=(--churn --nodes 2)
        n=$seeds
        [[ $profile == *high-load ]] && n=$high_load_seeds
        file="$out/$protocol-$profile-$first.json"
        if ! "$bin" sim --protocol "$protocol" "${flags[@]}" --seeds "$n" --seed-start "$first" --json > "$file"; then
            status=1
        fi
        printf '%-11s %-18s %7s %11s %11s %5s %9.0f\n' "$protocol" "$profile" "$(field seeds "$file")" \
            "$(field ops_ok "$file")" "$(field ops_unanswered "$file")" "$(field violations "$file")" \
            "$(field wall_s "$file")"
    done
done
exit $status
