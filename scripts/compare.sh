#!/usr/bin/env bash
# Reruns the whole protocol comparison and writes docs/RESULTS.md with its charts.
# Usage: scripts/compare.sh            (about 2 minutes: sim runs, then real processes)
#        REAL=0 scripts/compare.sh     (simulator only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/docs/results"
cd "$root"
cargo build --quiet --release -p quorum-cli
q="$root/target/release/quorum"
mkdir -p "$out"
md="$root/docs/RESULTS.md"

run() { # title, directory, then the bench arguments
  local title=$1 dir=$2; shift 2
  echo "running: quorum bench $*" >&2
  "$q" bench "$@" --report "$out/$dir" > "$out/$dir.txt" 2>/dev/null
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
  } >> "$md"
}

{
  echo "# Measured comparison"
  echo
  echo "Written by \`scripts/compare.sh\` on $(date -u +%Y-%m-%d). Rerun it to refresh every number and chart here."
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(rustc --version)."
  echo "The machine is shared: real-mode figures move from run to run; sim-mode figures are virtual time and exact."
  echo
  echo "Columns: *recover ms* is fault → first commit under the new leader (sim: first log index applied after"
  echo "the fault; real: first write sent after the fault that succeeded); *client ms* is fault → first write a"
  echo "client saw answered by another node (client timeouts of 100 ms included); *to 90% ms* is fault → first"
  echo "100 ms bucket back at 90% of the throughput before it. Medians over the seeds (\`--repeat\`)."
  echo "Basic Paxos has no leader: its fault hits the node that proposed most recently (sim), or node 1 (real)."
  echo "*elect* in real mode is the rise of the highest term, epoch or ballot round seen; Basic Paxos raises"
  echo "its ballot round for contested slots, so its figure there counts ballots, not elections."
  echo "Real mode counts no peer traffic (msgs/cmt, bytes/cmt: -)."
  echo
} > "$md"

run "Simulator: leader crash (5 nodes, 1 ms links)" sim-crash --repeat 5
run "Simulator: leader frozen (connections stay open)" sim-freeze --repeat 5 --fault leader-freeze
run "Simulator: leader partitioned away" sim-partition --repeat 5 --fault leader-partition
run "Simulator: light open-loop load, no fault (latency at the message-delay bound)" sim-light --rate 200 --fault none --repeat 3
if [ "${REAL:-1}" != 0 ]; then
  real=(--mode real -p paxos -p multipaxos -p raft -p zab --nodes 3 --clients 4 --duration 4 --fault-at 1.5 --fault-until 3 --repeat 3)
  run "Real processes: leader killed with kill -9 (3 nodes, loopback, fsync)" real-kill "${real[@]}"
  run "Real processes: leader frozen with SIGSTOP" real-freeze "${real[@]}" --fault leader-freeze
fi
echo "wrote $md" >&2
