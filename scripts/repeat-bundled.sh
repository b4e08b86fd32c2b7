#!/usr/bin/env bash
# Runs every bundled scenario N times (default 3) and prints one line per run: exit code,
# expectations passed, and the numbers that tell the story. Needs root; uses the release build.
#   usage: scripts/repeat-bundled.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}
cargo build --release --quiet
bin=target/release/backlog-lab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-20s %3s %4s %6s %8s %8s %8s %9s %9s %9s\n' scenario run exit pass ok conn_to resp_to overflows p50_ms p99_ms
for s in envoy-somaxconn-128 netty-backlog-50 netty-backlog-1024 node-backlog-511; do
  for i in $(seq 1 "$n"); do
    set +e; "$bin" run "$s" --quiet --out "$tmp/$s-$i"; code=$?; set -e
    python3 - "$tmp/$s-$i/summary.json" "$s" "$i" "$code" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); e = s["expectations"]; o = s["outcomes"]; c = s["connect_latency_ms"]
print(f'{sys.argv[2]:<20} {sys.argv[3]:>3} {sys.argv[4]:>4} {sum(x["pass"] for x in e):>3}/{len(e):<2} '
      f'{o["ok"]:>8} {o["connect_timeout"]:>8} {o["response_timeout"]:>8} '
      f'{s["counters"]["server"].get("TcpExt.ListenOverflows", 0):>9} {c["p50"]:>9.1f} {c["p99"]:>9.1f}')
PY
  done
done
