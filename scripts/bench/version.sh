#!/bin/bash
# Benchmark, not a test: wall time of `aws-cni` VERSION (process start to exit), median of N runs.
# Uses bash's $EPOCHREALTIME (no extra fork per sample). --json: one JSON object instead of the
# sentence (scripts/bench/run.sh uses it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
BIN=${BIN:-.build/release}
N=${N:-20}
samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
for _ in $(seq 1 "$N"); do
    t0=$EPOCHREALTIME
    CNI_COMMAND=VERSION "$BIN/aws-cni" </dev/null >/dev/null
    t1=$EPOCHREALTIME
    echo $((10#${t1/[.,]/} - 10#${t0/[.,]/})) >>"$samples"
done
if [[ ${1:-} == --json ]]; then
    stats_json "$samples"
else
    stats_json "$samples" | jq -r '"aws-cni VERSION wall time: median \(.median_ms) ms, min \(.min_ms) ms, max \(.max_ms) ms (n=\(.n))"'
fi
