#!/bin/bash
# Benchmark, not a test: ipamd AddNetwork latency, 10,000 requests from 16 concurrent clients,
# one connection per request; one JSON line (nearest-rank percentiles, milliseconds).
set -euo pipefail
# BIN (if given) is relative to where we were called from.
[[ -n ${BIN:-} ]] && BIN=$(realpath "$BIN") && export BIN
cd "$(dirname "$0")"
exec python3 ipamd_bench.py rpc "${REQUESTS:-10000}" "${CLIENTS:-16}"
