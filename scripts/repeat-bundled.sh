#!/usr/bin/env bash
# Runs every bundled scenario (those with real servers included; or the NAMEs given) N times
# (default 3) and prints one line per run (one per combination for a comparison): exit code,
# expectations passed, and the numbers that tell the story. Needs root; uses the release build.
# Arguments after `--` go to every run, e.g. `-- --set family=ipv6` for the IPv6 sweep.
#   usage: scripts/repeat-bundled.sh [N [NAME...]] [-- RUN-ARG...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}
shift || true
names=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do names+=("$1"); shift; done
[ $# -gt 0 ] && shift
extra=("$@")
cargo build --release --quiet
bin=target/release/backlog-lab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-44s %3s %4s %6s %6s %7s %7s %7s %9s %8s %9s %9s\n' scenario run exit pass ok conn_to resp_to reset overflows embryon p50_ms p99_ms
[ ${#names[@]} -gt 0 ] || mapfile -t names < <("$bin" list | awk 'NF && $1 != "With" {print $1}')
for s in "${names[@]}"; do
  for i in $(seq 1 "$n"); do
    set +e; "$bin" run "$s" --quiet --out "$tmp/$s-$i" "${extra[@]}"; code=$?; set -e
    python3 - "$tmp/$s-$i" "$s" "$i" "$code" <<'PY'
import json, os, sys
out, name, run, code = sys.argv[1:]
runs = [(name, out)]
if os.path.exists(f"{out}/comparison.json"):
    c = json.load(open(f"{out}/comparison.json"))
    runs = [(f'{name} [{r["label"]}]', f'{out}/{r["dir"]}') for r in c["runs"]]
for label, d in runs:
    s = json.load(open(f"{d}/summary.json")); e = s["expectations"]; o = s["outcomes"]
    c = s["connect_latency_ms"]; srv = s["counters"]["server"]
    print(f'{label:<44} {run:>3} {code:>4} {sum(x["pass"] for x in e):>3}/{len(e):<2} '
          f'{o["ok"]:>6} {o["connect_timeout"]:>7} {o["response_timeout"]:>7} {o["reset_after_connect"]:>7} '
          f'{srv.get("TcpExt.ListenOverflows", 0):>9} {srv.get("TcpExt.EmbryonicRsts", 0):>8} '
          f'{c["p50"] or 0:>9.1f} {c["p99"] or 0:>9.1f}')
PY
  done
done
