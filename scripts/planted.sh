#!/usr/bin/env bash
# Every planted protocol bug against the sweep it belongs to: how many seeds
# of the sweep catch it, the first, the median number of seeds from a random
# starting seed to the next one caught, and which checks fired. Needs
# python3 (to read the JSON summaries) and builds `quorum` with
# `--features planted-bugs` into target/planted (never the shipping binary).
#
#   scripts/planted.sh [SEEDS]        (default 1000 per bug; 200 for high-load)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-1000}
source scripts/planted-build.sh
out=target/planted/results
mkdir -p "$out"
# protocol bug profile
runs="
paxos ignore-promised-values default
multipaxos ignore-promised-values default
multipaxos promise-omits-chosen-past-cap backlog
multipaxos accept-overwrites-chosen backlog
multipaxos learn-keeps-older-stamp backlog
multipaxos lease-ignores-acks lease-fifo
multipaxos no-check-quorum lease-fifo
multipaxos whole-snapshot tiny-caps
multipaxos non-voters-count churn
raft suspected-ack-without-lease lease-fifo
raft unbounded-reads high-load
raft trust-snapshot-meta hostile
raft vote-before-persisted crash-storm
raft trust-match-index churn
zab ack-before-durable crash-storm
zab commit-without-quorum default
zab sessions-from-zero crash-storm
zab ack-new-leader-before-durable crash-storm
zab skip-follower-ahead-check crash-storm
zab unbounded-proposal-queue high-load
zab sync-in-one-message tiny-caps
zab trust-proposals hostile
zab non-voters-count churn
"
printf '%-11s %-30s %-10s %6s %7s %6s %7s  %s\n' protocol bug profile seeds caught first median checks
while read -r protocol bug profile; do
    [[ -z $protocol ]] && continue
    n=$seeds
    [[ $profile == high-load ]] && n=$((seeds / 5))
    file="$out/$protocol-$bug.json"
    flags=(--profile "$profile")
    [[ $profile == churn ]] && flags=(--churn) # the operator's membership changes, on the default profile
    # stderr holds progress and the panic messages of bugs caught by a panic.
    "$bin" sim --protocol "$protocol" --planted "$bug" "${flags[@]}" --seeds "$n" --json > "$file" 2>/dev/null || true
    python3 - "$file" "$protocol" "$bug" "$profile" "$n" <<'PY'
import json, re, statistics, sys
path, protocol, bug, profile, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
s = json.load(open(path))
failing = sorted(f["seed"] for f in s["failures"])
checks = sorted({m.group(1) for f in s["failures"] for v in f["violations"] for m in [re.match(r"\[([^\]]+)\]", v)] if m})
# From each starting seed, how many seeds until the next one caught (itself
# included); a start with no catch after it in the window waits longer than
# the window holds, so the median is known (else n/a) only if fewer than
# half are such.
waits, nxt, caught = [], None, set(failing)
for start in range(n - 1, -1, -1):
    if start in caught:
        nxt = start
    waits.append(nxt - start + 1 if nxt is not None else float("inf"))
waits.sort()
middle = waits[(len(waits) - 1) // 2]
median = f"{middle:.0f}" if middle != float("inf") else "n/a"
first = str(failing[0]) if failing else "-"
print(f"{protocol:<11} {bug:<30} {profile:<10} {n:>6} {len(failing):>7} {first:>6} {median:>7}  {', '.join(checks) or 'not caught'}")
PY
done <<< "$runs"
