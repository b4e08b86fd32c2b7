#!/usr/bin/env bash
# Runs each bundled plan N times (default 3) and prints, per plan run, the model's backlog, the
# one the runs found, whether they agree (within 10 %, or 2 below 20: issue #8), how many runs it
# took and how long. Needs root; uses the release build; one plan at a time.
#   usage: scripts/plan-agreement.sh [N] [PLAN...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}
shift || true
plans=("$@")
[ ${#plans[@]} -gt 0 ] || plans=(node-burst gc-pause netty-50)
cargo build --release --quiet
bin=target/release/backlog-lab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-12s %3s %4s %6s %6s %6s %5s %7s\n' plan run exit model runs agree made secs
for p in "${plans[@]}"; do
  for i in $(seq 1 "$n"); do
    set +e; "$bin" plan "$p" --json --out "$tmp/$p-$i" >"$tmp/$p-$i.json" 2>/dev/null; code=$?; set -e
    python3 - "$tmp/$p-$i.json" "$p" "$i" "$code" <<'PY'
import json, sys
path, name, run, code = sys.argv[1:]
r = json.load(open(path))
m, b = r["model_backlog"], r["recommended_backlog"]
agree = "-"
if m is not None and b is not None:
    d = abs(m - b)
    agree = "yes" if (d <= 2 if b < 20 else d <= 0.1 * b) else "NO"
print(f'{name:<12} {run:>3} {code:>4} {m!s:>6} {b!s:>6} {agree:>6} {len(r["points"]):>5} {r["elapsed_s"]:>7.0f}')
PY
  done
done
