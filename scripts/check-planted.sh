#!/usr/bin/env bash
# Every planted protocol bug against the model checker: for each, the bounds
# tried in order (breadth first, depth first or random walks, each with a time limit) and
# the first that finds it, with the property that broke, the counterexample's
# length, the states visited and the wall time. The table in
# docs/model-checking.md comes from this. Builds `quorum` with
# `--features planted-bugs` into target/planted (never the shipping binary).
#
#   scripts/check-planted.sh [SECONDS]     (time limit per bound; default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-50}
source scripts/planted-build.sh
out=target/planted/check-results
mkdir -p "$out"
dfs1="--search dfs --commands 1 --crashes 1 --timers 3 --max-term 2 --depth 40"
dfs2="--search dfs --commands 2 --crashes 1 --timers 4 --max-term 3 --depth 50"
walk="--search random --seed 0 --commands 3 --crashes 3 --timers 12 --max-term 6 --depth 150"
# Walks with an operator: one spare node outside the configuration, and four
# membership changes or disk replacements (Raft, Multi-Paxos, Zab).
churn="--search random --seed 0 --spares 1 --changes 4 --commands 3 --crashes 2 --timers 12 --max-term 6 --depth 150"
# Walks with Multi-Paxos's caps at their smallest, so that four commands
# cross every cap boundary.
caps="--search random --seed 0 --set catch_up_batch=1 --set max_batch=1 --set window=2 --commands 4 --crashes 2 --timers 12 --max-term 6 --depth 150"
# protocol bug profile | bounds to try, in order, separated by ';'
runs="
paxos ignore-promised-values default|--commands 2 --crashes 0 --timers 0 --depth 40
multipaxos ignore-promised-values default|$dfs1;$dfs2
multipaxos accept-overwrites-chosen default|$dfs1;$dfs2;$walk;$caps
multipaxos learn-keeps-older-stamp default|$dfs1;$dfs2;$walk;$caps
multipaxos promise-omits-chosen-past-cap tiny-caps|$dfs1;$dfs2;$walk;$caps
raft vote-before-persisted default|--commands 0 --crashes 1 --timers 2 --max-term 1 --depth 40;$dfs1
raft trust-match-index default|$dfs1;$dfs2;$walk;$churn
multipaxos non-voters-count default|$churn
zab non-voters-count default|$churn
zab ack-before-durable default|--commands 1 --crashes 0 --timers 2 --max-term 2 --depth 60
zab ack-new-leader-before-durable default|$dfs1;$dfs2;$walk
zab skip-follower-ahead-check default|$dfs1;$dfs2;$walk
"
printf '| protocol | bug | bound | result | states | wall |\n|---|---|---|---|---|---|\n'
while IFS='|' read -r head bounds; do
    [ -z "$head" ] && continue
    read -r protocol bug profile <<< "$head"
    IFS=';' read -ra tries <<< "$bounds"
    for try in "${tries[@]}"; do
        file="$out/$protocol.$bug.txt"
        # shellcheck disable=SC2086 # the bound is a list of flags
        timeout $((seconds + 60)) "$bin" check -p "$protocol" --planted "$bug" --profile "$profile" \
            --max-seconds "$seconds" --max-states 100000000 $try > "$file" 2> /dev/null || true
        result=$(grep -E '^(VIOLATION|result)' "$file" | sed -E 's/^[A-Za-z]+ +//' || echo "no result (killed?)")
        states=$(grep -E '^states ' "$file" | awk '{print $2}' || true)
        wall=$(grep -E '^wall time' "$file" | awk '{print $3 " s"}' || true)
        printf '| %s | `%s` | `%s` | %s | %s | %s |\n' "$protocol" "$bug" "$try" "$result" "$states" "$wall"
        grep -q '^VIOLATION' "$file" && break
    done
done <<< "$runs"
