#!/usr/bin/env bash
# What recording drop reasons (tracefs) costs: the same storm with trace_drops on and off,
# alternated N times, machine CPU (all of /proc/stat, so the kernel's own tracepoint work is in)
# and the storm's achieved rate for each.
#   scripts/bench-tracing.sh [N] [SCENARIO] [--set ...]
#   e.g. a 10,000/s storm on a fast server (few drops, many RSTs and retransmissions):
#   scripts/bench-tracing.sh 3 envoy-somaxconn-128 --set client.rate=10000 \
#     --set client.connections=30000 --set client.duration=3s --set server.accept=fast \
#     --set server.accept_rate= --set expect=
# Needs root. Prints one line per run and the ratio on/off of the medians.
set -euo pipefail
n=${1:-3}; scenario=${2:-envoy-somaxconn-128}; shift $(( $# < 2 ? $# : 2 ))
cpus=$(nproc)
bin=${BIN:-target/release/backlog-lab}
[ -x "$bin" ] || cargo build --release -q
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
for i in $(seq "$n"); do
  for t in true false; do
    read -r b0 a0 < <(busy)
    "$bin" run "$scenario" --quiet --out "$tmp/$t-$i" --set trace_drops=$t "$@" || true
    [ -f "$tmp/$t-$i/summary.json" ] || { echo "the run failed (see above)" >&2; exit 1; }
    read -r b1 a1 < <(busy)
    python3 - "$tmp/$t-$i/summary.json" "$t" $((b1-b0)) $((a1-a0)) "$cpus" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); d = s["drops"]
busy, total = int(sys.argv[3]), int(sys.argv[4])
secs = total / 100 / int(sys.argv[5])   # USER_HZ ticks over all CPUs
print(f"trace_drops={sys.argv[2]:<5} rate {s['schedule']['achieved_rate']:8.1f}/s  machine CPU "
      f"{busy/100:6.2f} s in {secs:5.2f} s  events {d['events']:>7}  reader {d['cpu_ms']:6.0f} ms  "
      f"ok {s['outcomes']['ok']}")
PY
  done
done
