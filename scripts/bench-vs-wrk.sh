#!/usr/bin/env bash
# Benchmark: backlog-lab's storm generator against wrk -H 'Connection: close' (a closed-loop
# peer), both against the lab's fast server in the same two namespaces, measured in the same run.
# Reports new connections per second for each and the ratio. Needs root; installs wrk if missing.
#   usage: scripts/bench-vs-wrk.sh [SECONDS]      (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet
bin=target/release/backlog-lab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fast=(--set server.accept=fast --set server.accept_rate= --set server.backlog=4096
      --set server.sysctl.net.core.somaxconn=4096 --set expect=)

# 1. wrk: every request on a new connection, 2 threads x 64 connections (closed loop).
"$bin" serve "${fast[@]}" --for "$((secs + 10))s" > "$tmp/serve.txt" &
serve=$!
for _ in $(seq 100); do grep -q '^client namespace:' "$tmp/serve.txt" 2>/dev/null && break; sleep 0.1; done
ns=$(awk '/^client namespace:/ {print $3}' "$tmp/serve.txt")
addr=$(awk '/^serving / {print $2}' "$tmp/serve.txt")   # 198.18.N.1:8080, the lab's own subnet
nsenter --net="$ns" wrk -t2 -c64 -d"${secs}s" -H 'Connection: close' "http://$addr/" > "$tmp/wrk.txt"
kill -INT "$serve"; wait "$serve" || true
wrk_rate=$(awk '/^Requests\/sec/ {print $2}' "$tmp/wrk.txt")
wrk_errors=$(awk '/Socket errors|Non-2xx/ {print}' "$tmp/wrk.txt")

# 2. backlog-lab: an open-loop schedule above what this machine can do (RATE, default 25,000/s); what it
#    achieves, with every connection accounted for, is its capacity.
rate=${RATE:-25000}
"$bin" run envoy-somaxconn-128 "${fast[@]}" --quiet --out "$tmp/run" --set client.rate=$rate \
  --set "client.connections=$((rate * secs))" --set "client.duration=${secs}s" \
  --set client.connect_timeout=5s --set client.response_timeout=5s
python3 - "$tmp/run/summary.json" "$wrk_rate" "$rate" "$wrk_errors" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); sc = s["schedule"]; wrk = float(sys.argv[2])
ours = sc["achieved_rate"]; ok = s["outcomes"]["ok"]
print(f"wrk -t2 -c64 -H 'Connection: close': {wrk:,.0f} connections/s {sys.argv[4] or '(no errors)'}")
print(f"backlog-lab storm (schedule {int(sys.argv[3]):,}/s): started {ours:,.0f}/s, "
      f"{ok:,}/{s['connections']:,} ok, start lag p50 {sc['lag_ms']['p50']} ms, "
      f"connect p50 {s['connect_latency_ms']['p50']} ms, max in flight {sc['max_in_flight']}")
print(f"ratio backlog-lab / wrk: {ours / wrk:.2f}")
PY
