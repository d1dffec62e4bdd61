#!/bin/bash
# End to end, inside the VM (needs 802.1Q): ipamd with the Kubernetes source (against the test API
# server over HTTPS in the node's namespace) and the real aws-cni building a branch pod whose
# vpc.amazonaws.com/pod-eni annotation arrives 2 s after kubelet's ADD started. The one ADD must
# succeed (no retry), the pod must reach its gateway over its VLAN, and DEL must leave nothing.
set -uo pipefail
cd "$(dirname "$0")/../.."
SUITE=vm-k8s-late-annotation
source scripts/lib/assert.sh
source scripts/lib/fabric.sh
fabric_up pod-late
vpc_branch 9 0a:00:00:00:00:09 10.0.40.9
source scripts/lib/k8s-api.sh
api_start node "$WORK/api" || exit 1
write_kubeconfig "$WORK/kubeconfig"
api "$(api_pod late uid-late true)" >/dev/null
api '{"op":"put_object","path":"/apis/vpcresources.k8s.aws/v1alpha1/cninodes/node-1","object":{"kind":"CNINode","metadata":{"name":"node-1"},"spec":{}}}' >/dev/null

start_ipamd POD_ENI_SOURCE=kubernetes MY_NODE_NAME=node-1 KUBECONFIG="$WORK/kubeconfig" POD_ENI_WAIT_TIMEOUT=10s
pending() { [[ $(curl -s --unix-socket "$IPAMD_DEBUG_SOCKET" http://localhost/v1/pods | jq -r '.[] | select(.name=="late") | .state') == pending ]]; }
for _ in $(seq 1 300); do pending && break; sleep 0.1; done
assert_ok "ipamd's cache has the pod, annotation pending" pending

echo "== ADD starts before the annotation exists"
requests_before=$(api '{"op":"stats"}' | jq .requests)
t0=$EPOCHREALTIME
cni ADD late /run/netns/pod-late strict > "$WORK/add.json" 2> "$WORK/add.err" &
add_pid=$!
# The scenario, not synchronisation: the resource controller writes the annotation 2 s later.
sleep 2
api '{"op":"annotate","key":"default/late","name":"vpc.amazonaws.com/pod-eni","value":"[{\"eniId\":\"eni-0000000000000009\",\"ifAddress\":\"0a:00:00:00:00:09\",\"privateIp\":\"10.0.40.9\",\"vlanId\":9,\"subnetCidr\":\"10.0.32.0/19\"}]"}' >/dev/null
wait "$add_pid"; rc=$?
t1=$EPOCHREALTIME
assert_eq "the one ADD succeeded (exit 0)" 0 "$rc"
assert_contains "its result has the branch IP" '"address":"10.0.40.9/32"' "$(cat "$WORK/add.json")"
(( (${t1/./} - ${t0/./}) >= 2000000 )) && pass "the ADD waited for the annotation ($(( (${t1/./} - ${t0/./}) / 1000 )) ms)" \
    || fail "the ADD returned before the annotation was written"
assert_eq "kubelet would have called ADD once: one ADD in the plugin log" 1 \
    "$(jq -s '[.[] | select(.["cni.command"] == "ADD" and .msg == "command start")] | length' "$WORK/plugin.log")"
assert_eq "the ADD made no API request" "$requests_before" "$(api '{"op":"stats"}' | jq .requests)"
assert_ok "the pod reaches its subnet gateway over VLAN 9" ip netns exec pod-late ping -c 1 -W 5 -q "$GW"
assert_eq "/v1/pods: served" served "$(curl -s --unix-socket "$IPAMD_DEBUG_SOCKET" http://localhost/v1/pods | jq -r '.[] | select(.name=="late") | .state')"

echo "== DEL"
baseline=$(node ip rule show | grep -v 'lookup 109')
assert_ok "DEL succeeds" cni DEL late /run/netns/pod-late strict
assert_empty "no vlan.eth.9 left" "$(node ip -o link show vlan.eth.9 2>/dev/null)"
assert_eq "no rule for table 109 left" "$baseline" "$(node ip rule show)"
((FAILED)) && { echo "ipamd's log:"; tail -40 "$WORK/ipamd.log"; }
summary
