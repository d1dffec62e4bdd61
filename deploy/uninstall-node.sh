#!/bin/bash
# Removes what the aws-node agent (this project's ipamd) left on a node, once its DaemonSet is
# deleted and the node's pods that used it are gone (drain the node first). Run as root on the
# node (or in a privileged pod with the host's network and root filesystem):
#   deploy/uninstall-node.sh [--force]
# It removes: the plugin /opt/cni/bin/aws-cni and /etc/cni/net.d/10-aws.conflist; the nftables
# table `ip aws-cni` (SNAT, connection marks); the node rules ipamd owns (the SNAT fwmark rule at
# 1024, the rules at 32765 and the route tables of the pool's secondary ENIs, and the strict mode's
# `lookup local` move from priority 0 to 20); /var/run/aws-node (sockets, checkpoint) and
# /var/log/aws-routed-eni. It leaves the node's sysctls as they are (their earlier values are not
# known) and the ENIs attached (they are EC2's: the instance's termination deletes them).
# Refuses, unless --force, while a pod datapath of ours is still there (a vlan.eth.N link or a
# host veth with ipamd's prefixes), because removing the node rules would cut those pods off.
set -euo pipefail
force=${1:-}
[[ -z $force || $force == --force ]] || { echo "usage: $0 [--force]" >&2; exit 2; }
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
CNI_CONF_DIR=${CNI_CONF_DIR:-/etc/cni/net.d}
VETH_PREFIX=${AWS_VPC_K8S_CNI_VETHPREFIX:-eni}

pods=$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -E "^(vlan\.eth\.[0-9]+|vlan[0-9a-f]{11}|${VETH_PREFIX}[0-9a-f]{11})$" || true)
if [[ -n $pods && $force != --force ]]; then
    echo "uninstall-node: pods still use these links (delete the pods first, or --force):" $pods >&2
    exit 1
fi

rm -f "$CNI_BIN_DIR/aws-cni" "$CNI_CONF_DIR/10-aws.conflist"
nft delete table ip aws-cni 2>/dev/null || true

# ip rule del PRIORITY-and-selector, repeated while such a rule exists.
del_rules() { while ip rule del "$@" 2>/dev/null; do :; done; }
# The SNAT mark rule (priority 1024, `fwmark M/M lookup main`, whatever the mark; ip omits a full mask).
ip -j rule show | jq -r '.[] | select(.priority == 1024 and .table == "main" and .fwmark) | "\(.fwmark)/\(.fwmask // "0xffffffff")"' |
    while read -r mark; do del_rules priority 1024 fwmark "$mark" lookup main; done
# The pool's secondary ENIs: `from <ENI address>/32 lookup <device number + 1>` at 32765 (tables
# 2 to 64: an instance has fewer interfaces), and their tables; nothing else at that priority.
ip -j rule show | jq -r '.[] | select(.priority == 32765 and .src != "all" and (.srclen // 32) == 32
        and (.table | test("^[0-9]+$")) and (.table | tonumber) >= 2 and (.table | tonumber) <= 64) | "\(.src) \(.table)"' |
    while read -r src table; do
        del_rules priority 32765 from "$src" lookup "$table"
        ip route flush table "$table" 2>/dev/null || true
    done
# Strict mode moved `lookup local` from 0 to 20: put it back.
if ip -j rule show | jq -e '.[] | select(.priority == 20 and .table == "local")' >/dev/null; then
    ip -j rule show | jq -e '.[] | select(.priority == 0 and .table == "local")' >/dev/null || ip rule add priority 0 lookup local
    del_rules priority 20 lookup local
fi

rm -rf /var/run/aws-node /var/log/aws-routed-eni
echo "uninstall-node: done"
