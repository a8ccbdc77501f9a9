#!/usr/bin/env bash
# Reruns the whole protocol comparison and writes docs/RESULTS.md with its charts.
# Usage: scripts/compare.sh            (about 12 minutes: sim runs, then real processes)
#        REAL=0 scripts/compare.sh     (simulator only)
# The real runs measure etcd, ZooKeeper and one durable redis beside the
# protocols when their Debian packages are installed (apt-get install
# etcd-server zookeeper redis-server); `quorum bench` names any it leaves out.
# Needs python3 for the summary table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/docs/results"
cd "$root"
cargo build --quiet --release -p quorum-cli
q="$root/target/release/quorum"
mkdir -p "$out"
md="$root/docs/RESULTS.md"
sections=$(mktemp)
trap 'rm -f "$sections"' EXIT

run() { # title, directory, then the bench arguments
  local title=$1 dir=$2; shift 2
  echo "running: quorum bench $*" >&2
  "$q" bench "$@" --report "$out/$dir" > "$out/$dir.txt"
  {
    echo "## $title"
    echo
    echo "Command: \`quorum bench $*\`"
    echo
    echo '```'
    cat "$out/$dir.txt"
    echo '```'
    echo
    echo "Charts: [latency CDF](results/$dir/latency_cdf.svg), [throughput over time](results/$dir/throughput.svg), [recovery](results/$dir/recovery.svg)"
    echo
    echo "![throughput over time](results/$dir/throughput.svg)"
    echo
  } >> "$sections"
}

run "Simulator: leader crash (5 nodes, 1 ms links)" sim-crash --repeat 5
run "Simulator: leader frozen (connections stay open)" sim-freeze --repeat 5 --fault leader-freeze
run "Simulator: leader partitioned away" sim-partition --repeat 5 --fault leader-partition
run "Simulator: light open-loop load, no fault (latency at the message-delay bound)" sim-light --rate 200 --fault none --repeat 3
summary=""
if [ "${REAL:-1}" != 0 ]; then
  protocols=(-p paxos -p multipaxos -p raft -p zab)
  refs=(--reference etcd,zookeeper,redis)
  real=(--mode real "${protocols[@]}" "${refs[@]}" --nodes 3 --clients 4 --duration 4 --fault-at 1.5 --fault-until 3 --repeat 3)
  run "Real processes: leader killed with kill -9 (3 nodes, loopback, fsync)" real-kill "${real[@]}"
  run "Real processes: leader frozen with SIGSTOP" real-freeze "${real[@]}" --fault leader-freeze
  for c in 1 32 128; do
    run "Real processes: $c closed-loop clients, no fault" "real-c$c" --mode real "${protocols[@]}" "${refs[@]}" \
      --nodes 3 --clients "$c" --duration 4 --fault none --repeat 2
  done
  run "Real processes: 128 clients, the same build without fsync (what the disk costs)" real-c128-nofsync \
    --mode real -p multipaxos -p raft -p zab --nodes 3 --clients 128 --duration 4 --fault none --repeat 2 --unsafe-no-fsync
  summary=$(python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def rows(name):
    return {r["protocol"]: r for r in json.load(open(f"{out}/{name}/results.json"))["results"]}
c1, c32, c128, nofsync = rows("real-c1"), rows("real-c32"), rows("real-c128"), rows("real-c128-nofsync")
kill, freeze = rows("real-kill"), rows("real-freeze")
def num(v, fmt):
    return "–" if v is None else format(v, fmt)
print("| system | C=1 ops/s | C=1 p50 ms | C=32 ops/s | C=32 p50 ms | C=128 ops/s | C=128 p50 ms "
      "| C=128 fsync / no fsync | kill -9 → first write ms | SIGSTOP → first write ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name in c1:
    cells = [name]
    for t in (c1, c32, c128):
        r = t.get(name, {})
        cells += [num(r.get("throughput_ops"), ",.0f"), num(r.get("latency_ms", {}).get("p50"), ".2f")]
    ratio = None
    if name in nofsync and name in c128:
        ratio = c128[name]["throughput_ops"] / nofsync[name]["throughput_ops"]
    cells.append(num(ratio, ".2f"))
    cells += [num(kill.get(name, {}).get("recovery_ms"), ".0f"), num(freeze.get(name, {}).get("recovery_ms"), ".0f")]
    print("| " + " | ".join(cells) + " |")
PY
)
fi

{
  echo "# Measured comparison"
  echo
  echo "Written by \`scripts/compare.sh\` on $(date -u +%Y-%m-%d). Rerun it to refresh every number and chart here."
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(rustc --version)."
  echo "The machine is shared: real-mode figures move from run to run; sim-mode figures are virtual time and exact."
  echo
  if [ -n "$summary" ]; then
    echo "## Real processes at a glance (3 nodes on loopback, fsync on)"
    echo
    echo "From the real-process sections below, all measured in this run with the same client loop (one"
    echo "closed-loop client thread each, 128-byte values over 1,000 keys, spread over the members from the leader"
    echo "on, so one client talks to the leader; a member that is not the leader forwards, as etcd and ZooKeeper"
    echo "do too); medians of the repeats. *fsync / no fsync*"
    echo "divides the C=128 throughput by the same build's with \`--unsafe-no-fsync\`. etcd, ZooKeeper and redis"
    echo "are the Debian packages, configured as the lines under each real table say; redis is one server"
    echo "(durable, not replicated), so it has no leader to lose."
    echo
    echo "$summary"
    echo
  fi
  echo "Columns: *recover ms* is fault → first commit under the new leader (sim: first log index applied after"
  echo "the fault; real: first write sent after the fault that succeeded); *client ms* is fault → first write a"
  echo "client saw answered by another node (client timeouts of 100 ms included); *to 90% ms* is fault → first"
  echo "100 ms bucket back at 90% of the throughput before it. Medians over the seeds (\`--repeat\`)."
  echo "Basic Paxos has no leader: its fault hits the node that proposed most recently (sim), or node 1 (real)."
  echo "*elect* in real mode is the rise of the highest term, epoch or ballot round seen; Basic Paxos raises"
  echo "its ballot round for contested slots, so its figure there counts ballots, not elections."
  echo "*msgs/cmt* and *bytes/cmt* in real mode are what the quorum nodes wrote to their peers (each node's"
  echo "\`quorum_peer_sent_*\` counters on its metrics port) over the commits; the reference systems show -."
  echo
  cat "$sections"
} > "$md"
echo "wrote $md" >&2
