#!/bin/bash
# Benchmark, not a test: ipamd resident memory with 100 branch pods known and served, one JSON
# line (KiB). SOURCE=file (default) or SOURCE=kubernetes (the pod watch against the test API server).
set -euo pipefail
# BIN (if given) is relative to where we were called from.
[[ -n ${BIN:-} ]] && BIN=$(realpath "$BIN") && export BIN
cd "$(dirname "$0")"
exec python3 ipamd_bench.py rss "${SOURCE:-file}" "${PODS:-100}"
