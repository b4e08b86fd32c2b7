#!/usr/bin/env bash
# Regenerates docs/gallery/: one real run of every bundled scenario, its charts (PNG, exactly as
# `backlog-lab run` draws them) and the "What happened" list of its report. For a comparison, the
# two comparison charts and each run's queue chart and story. Needs root; uses the release build.
#   usage: scripts/gallery.sh [SCENARIO...]     (default: every bundled scenario)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/backlog-lab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || mapfile -t scenarios < <("$bin" list | awk '{print $1}')

# The "What happened" bullets of a report.md.
story() { awk '/^## What happened/{on=1; next} /^## /{on=0} on && /^- /' "$1"; }

for s in "${scenarios[@]}"; do
  out="$tmp/$s"
  set +e; "$bin" run "$s" --quiet --out "$out"; code=$?; set -e
  dest="docs/gallery/$s"
  rm -rf "$dest"; mkdir -p "$dest"
  {
    echo "## $s"
    echo
    "$bin" list | awk -v s="$s" '$1 == s { $1 = ""; sub(/^ +/, ""); print }'
    echo
    echo "Exit code $code; run of $(date -u +%Y-%m-%dT%H:%M:%SZ)."
    echo
    if [ -f "$out/comparison.json" ]; then
      for f in "$out"/plots/comparison-*.png; do
        cp "$f" "$dest/"
        echo "![$s: $(basename "$f" .png)]($s/$(basename "$f"))"
        echo
      done
      for run in "$out"/[0-9][0-9]-*/; do
        name=$(basename "$run")
        echo "### $name"
        echo
        story "$run/report.md"
        echo
        cp "$run/plots/queue-occupancy.png" "$dest/$name-queue-occupancy.png"
        echo "![$s $name: accept queue and SYN_RECV]($s/$name-queue-occupancy.png)"
        echo
      done
    else
      story "$out/report.md"
      echo
      for f in connect-latency-cdf outcomes-over-time queue-occupancy counter-rates; do
        cp "$out/plots/$f.png" "$dest/"
        echo "![$s: $f]($s/$f.png)"
        echo
      done
    fi
  } > "$tmp/$s.md"
  echo "$s: exit $code" >&2
done

{
  cat <<'EOF'
# Gallery: one run of every bundled scenario

The charts `backlog-lab run` draws into `plots/` of every result folder, for one real run of
each bundled scenario on this project's 2-core VM (Linux 6.18), with the "What happened" list its
`report.md` generated from the data. The PNGs are exactly what the tool writes (1000 x 600); each
has an SVG twin in the result folder. For a comparison: its two charts, then each run's story
and queue chart. Regenerate with `scripts/gallery.sh`. To make your own:

```sh
backlog-lab run envoy-somaxconn-128 --out /tmp/envoy   # then open /tmp/envoy/report.html
backlog-lab plot /tmp/envoy                             # redraw from the files, no rerun
```

EOF
  for s in "${scenarios[@]}"; do cat "$tmp/$s.md"; done
} > docs/gallery/README.md
du -sh docs/gallery >&2
