#!/bin/bash
# The demo (make demo), run inside the VM: a simulated node with a trunk interface, a "vpc"
# namespace terminating each branch VLAN, ipamd with a static pod-ENI file, and two pods added
# through the real aws-cni binary: one strict, one standard. Shows what each mode builds, that
# each pod reaches its subnet gateway over its own VLAN, and that DEL leaves nothing behind.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/fabric.sh

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { printf '  $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/    /'; }
ok=0; bad=0
verdict() { if "$@" >/dev/null 2>&1; then ok=$((ok + 1)); echo "  ✔ $DESC"; else bad=$((bad + 1)); echo "  ✘ $DESC"; fi; }

say "1. A node (netns 'node') with trunk eth1, and the VPC fabric (netns 'vpc') on its far end"
fabric_up pod-a pod-b
vpc_branch 7 0a:00:00:00:00:07 10.0.40.7
vpc_branch 8 0a:00:00:00:00:08 10.0.40.8
show node ip -br link
write_pods_file <<'JSON'
{"pods": {
  "shop/cart":    [{"eniId":"eni-0000000000000007","ifAddress":"0a:00:00:00:00:07","privateIp":"10.0.40.7","vlanId":7,"subnetCidr":"10.0.32.0/19"}],
  "shop/catalog": [{"eniId":"eni-0000000000000008","ifAddress":"0a:00:00:00:00:08","privateIp":"10.0.40.8","vlanId":8,"subnetCidr":"10.0.32.0/19"}]
}}
JSON
say "2. ipamd with the static pod-ENI source (what the VPC resource controller would annotate)"
show cat "$WORK/pods.json"
start_ipamd || exit 1
echo "  ipamd is ready: node setup done, serving on $IPAMD_SOCKET, conflist written"
echo "  node-wide: strict mode moved 'lookup local' to 20; marked (SNATed) connections use main at 1024:"
show node ip rule show
show node nft list table ip aws-cni
node_rules=$(node ip rule show)

cni_pod() { # command pod netns mode [prev]
    printf '%s' "$(conf "$4" "${5:-}")" | node env CNI_COMMAND="$1" CNI_CONTAINERID="cid-$2" CNI_NETNS="$3" CNI_IFNAME=eth0 \
        CNI_PATH=/opt/cni/bin CNI_ARGS="K8S_POD_NAMESPACE=shop;K8S_POD_NAME=$2;K8S_POD_UID=uid-$2" "$BIN/aws-cni"
}

say "3. kubelet adds pod shop/cart in STRICT mode (all its traffic goes through its branch ENI)"
t0=$EPOCHREALTIME
RA=$(cni_pod ADD cart /run/netns/pod-a strict)
echo "  aws-cni ADD took $(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )) ms; result:"
echo "$RA" | jq . | sed 's/^/    /'
say "4. kubelet adds pod shop/catalog in STANDARD mode (pod-to-pod traffic stays on the node)"
RB=$(cni_pod ADD catalog /run/netns/pod-b standard)
echo "$RB" | jq -c '.interfaces[]' | sed 's/^/    /'

say "5. What the node now has"
show node ip rule show
show node ip route show table 107
show node ip route show table 108
show node ip -d -br link show type vlan
show ip -n pod-a addr show dev eth0
show ip -n pod-a route
show ip -n pod-a neigh

say "6. Each pod reaches its subnet gateway over its own VLAN"
DESC="cart (strict, VLAN 7) pings 10.0.32.1"; verdict ip netns exec pod-a ping -c 1 -W 5 10.0.32.1
DESC="catalog (standard, VLAN 8) pings 10.0.32.1"; verdict ip netns exec pod-b ping -c 1 -W 5 10.0.32.1
DESC="the vpc received cart's packets on VLAN 7"; verdict test "$(vpc cat /sys/class/net/trunk.7/statistics/rx_packets)" -gt 0
show curl -s --unix-socket "$IPAMD_DEBUG_SOCKET" http://localhost/v1/pods

say "7. CHECK verifies the live datapath against the ADD result"
DESC="CHECK cart"; verdict cni_pod CHECK cart /run/netns/pod-a strict "$RA"
DESC="CHECK catalog"; verdict cni_pod CHECK catalog /run/netns/pod-b standard "$RB"

say "8. The pods go away: DEL, twice (idempotent), then nothing of them remains"
DESC="DEL cart"; verdict cni_pod DEL cart /run/netns/pod-a strict "$RA"
DESC="DEL catalog with ipamd stopped and no prevResult"; stop_ipamd; verdict cni_pod DEL catalog "" standard
DESC="DEL cart again"; verdict cni_pod DEL cart "" strict "$RA"
show node ip rule show
DESC="no vlan.eth.* links remain"; verdict test -z "$(node ip -o link show type vlan | grep vlan.eth)"
DESC="tables 107 and 108 are empty"; verdict test -z "$(node ip route show table 107; node ip route show table 108)"
DESC="only the node-wide rules remain (as before the pods)"; verdict test "$(node ip rule show)" == "$node_rules"

echo
if [[ $bad -eq 0 ]]; then echo "demo: all $ok checks matched"; else echo "demo: $bad of $((ok + bad)) checks did not match"; fi
[[ $bad -eq 0 ]]
