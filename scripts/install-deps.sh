#!/bin/bash
# Installs what building and testing need on a fresh Debian 12 / Ubuntu machine (as root).
# Idempotent: only calls apt when something is missing.
set -euo pipefail

PACKAGES=(
    libnl-3-dev                                  # NetlinkShim (linked statically)
    libnftables-dev nftables                     # NFTablesShim (ipamd SNAT table); nft for tests and users
    iproute2 iputils-ping procps curl jq kmod   # tests and the demo
    python3 openssl                              # test servers (whoami, the Kubernetes API server with a generated CA)
    qemu-system-x86 linux-image-amd64 busybox-static xz-utils  # the VLAN VM (scripts/vm/run.sh)
    containerd runc containernetworking-plugins  # a real CNI client (ctr run --cni), portmap; Debian vlan/host-local for make bench
    gcc libnl-route-3-dev                        # the benchmark's libnl floor (scripts/bench/floor.c)
    prometheus                                   # a real scraper of ipamd's /metrics, and promtool (PrometheusTests)
    umoci skopeo                                 # make image (an OCI layout without a daemon), its inspection
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the prometheus service on install; the tests run their own, in a namespace.
if command -v systemctl >/dev/null && systemctl is-active -q prometheus 2>/dev/null; then systemctl stop prometheus; fi
command -v swift >/dev/null || { echo "swift not found on PATH (expected Swift 6.x, e.g. /opt/swift/usr/bin)" >&2; exit 1; }
# The cloud test harness (scripts/tests/cloud-sim.py): moto as the EC2/STS API, botocore's
# SigV4Auth as the reference signer. Preinstalled on the build machines; pinned when missing.
python3 -c 'import moto, boto3, botocore' 2>/dev/null || python3 -m pip install -q 'moto[server]==5.2.1' 'boto3==1.43.11'
# deploy/'s manifests against the Kubernetes schemas, offline.
command -v kubernetes-validate >/dev/null || python3 -m pip install -q kubernetes-validate
