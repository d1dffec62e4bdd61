#!/bin/bash
# Benchmark, not a test: wall time of `aws-cni` VERSION (process start to exit), median of N runs.
# Uses bash's $EPOCHREALTIME (no extra fork per sample).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release}
N=${N:-20}
samples=()
for _ in $(seq 1 "$N"); do
    t0=$EPOCHREALTIME
    CNI_COMMAND=VERSION "$BIN/aws-cni" </dev/null >/dev/null
    t1=$EPOCHREALTIME
    samples+=($(( ${t1/./} - ${t0/./} )))
done
sorted=($(printf '%s\n' "${samples[@]}" | sort -n))
median=${sorted[$((N / 2))]}
printf 'aws-cni VERSION wall time: median %d.%03d ms, min %d.%03d ms, max %d.%03d ms (n=%d)\n' \
    $((median / 1000)) $((median % 1000)) $((sorted[0] / 1000)) $((sorted[0] % 1000)) \
    $((sorted[N - 1] / 1000)) $((sorted[N - 1] % 1000)) "$N"
