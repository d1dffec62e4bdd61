#!/bin/bash
# Latency from a pod-eni annotation's arrival (the test API server writing the MODIFIED event)
# to the reply of an AddNetwork that was waiting for it, median of 20 rounds; and how many API
# requests one ADD makes. Release ipamd, test API server on a namespace's loopback. Root.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x .build/release/ipamd ]] || make -s release
cd scripts/bench && exec python3 k8s_annotation_latency.py "${1:-20}"
