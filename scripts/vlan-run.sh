#!/bin/bash
# Runs CMD where 802.1Q VLANs work: directly when this kernel can create a VLAN link (tried in a
# throwaway namespace), otherwise inside the VM (scripts/vm/run.sh, which passes VM_PASS_ENV).
# Set VLAN_RUN=vm or VLAN_RUN=host to choose.
# Usage: scripts/vlan-run.sh CMD [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
host_has_vlan() {
    local ns=vlan-probe-$$ rc=0
    ip netns add "$ns" || return 1
    { ip -n "$ns" link add probe0 type dummy && ip -n "$ns" link add link probe0 name probe0.5 type vlan id 5; } >/dev/null 2>&1 || rc=1
    ip netns del "$ns"
    return $rc
}
case ${VLAN_RUN:-auto} in
    host) exec "$@" ;;
    vm) exec scripts/vm/run.sh "$@" ;;
    auto) if host_has_vlan; then exec "$@"; else exec scripts/vm/run.sh "$@"; fi ;;
    *) echo "VLAN_RUN must be auto, host or vm, not '$VLAN_RUN'" >&2; exit 2 ;;
esac
