#!/bin/bash
# Benchmark, not a test: ipamd's time from exec to ready (the conflist written, which it does
# last: after node setup and the sockets), median of N starts, in a throwaway network namespace.
# Each start is a full node setup (sysctls, nft table transaction, rules) and plugin install
# check. Polls for the file every millisecond, so figures are +-1 ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release}
N=${N:-10}
WORK=$(mktemp -d /tmp/aws-cni-bench.XXXX)
NS=awscni-bench-$$
trap 'ip netns del $NS 2>/dev/null; rm -rf "$WORK"' EXIT
ip netns add "$NS"
ip -n "$NS" link add eth0 type veth peer name p0
ip -n "$NS" link add eth1 type veth peer name p1
ip -n "$NS" addr add 10.0.0.10/20 dev eth0
ip -n "$NS" link set eth0 up
printf '{"pods":{}}' > "$WORK/pods.json"
CONFLIST=$WORK/net.d/10-aws.conflist
samples=()
for i in $(seq 1 "$N"); do
    rm -f "$CONFLIST"
    t0=$EPOCHREALTIME
    env -i POD_ENI_SOURCE=file:$WORK/pods.json TRUNK_INTERFACE=eth1 VPC_CIDRS=10.0.0.0/16 ENABLE_POD_ENI=true \
        IPAMD_SOCKET=$WORK/ipamd.sock IPAMD_DEBUG_SOCKET=$WORK/debug.sock AWS_VPC_K8S_CNI_LOG_FILE=$WORK/ipamd.log \
        CNI_BIN_DIR=$WORK/bin CNI_CONF_DIR=$WORK/net.d CNI_PLUGIN_SOURCE="$(realpath "$BIN/aws-cni")" AWS_VPC_K8S_CNI_BACKING_STORE=$WORK/ipam.json \
        ip netns exec "$NS" "$BIN/ipamd" &
    pid=$!
    while [[ ! -e $CONFLIST ]]; do sleep 0.001; done
    t1=$EPOCHREALTIME
    kill -TERM $pid; wait $pid
    samples+=($(( ${t1/./} - ${t0/./} )))
done
sorted=($(printf '%s\n' "${samples[@]}" | sort -n))
median=${sorted[$((N / 2))]}
ms() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }
echo "ipamd exec to ready: median $(ms "$median") ms, min $(ms "${sorted[0]}") ms, max $(ms "${sorted[N - 1]}") ms (n=$N; first start copies the plugin)"
echo "ipamd's own view (log 'ipamd ready' startup_ms): $(grep -o 'startup_ms=[0-9]*' "$WORK/ipamd.log" | cut -d= -f2 | sort -n | tr '\n' ' ')"
