#!/bin/bash
# The release ipamd against the test API server (scripts/tests/fake-apiserver.py: real HTTPS and
# wire format on loopback), driven through the release aws-cni: the kubeconfig and in-cluster
# configurations, the pod cache in /v1/pods, CNI codes for a pending branch pod (11, at the
# wait bound), a regular pod (103) and a UID mismatch (100), node signalling (CNINode features
# kept, trunk label), and configuration errors. ipamd runs in a throwaway network namespace.
set -uo pipefail
cd "$(dirname "$0")/../.."
SUITE=kubernetes-ipamd
source scripts/lib/assert.sh

BIN=${BIN:-.build/release}
WORK=$(mktemp -d /tmp/aws-cni-k8s.XXXX)
NS=awscni-k8s-$$
cleanup() {
    [[ -n ${IPAMD_PID:-} ]] && kill "$IPAMD_PID" 2>/dev/null && wait "$IPAMD_PID" 2>/dev/null
    [[ -n ${API_PID:-} ]] && kill "$API_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add eth1 address 0a:00:00:00:0f:01 type veth peer name eth1peer
ip -n "$NS" link add eth0 type veth peer name eth0peer   # the primary interface node setup needs
ip -n "$NS" addr add 10.0.0.10/20 dev eth0

source scripts/lib/k8s-api.sh
api_start "$NS" "$WORK/api" || exit 1
PORT=$API_PORT
ANN='[{"eniId":"eni-0a1b2c3d4e5f60718","ifAddress":"0a:1b:2c:3d:4e:5f","privateIp":"10.0.40.12","vlanId":7,"subnetCidr":"10.0.32.0/19"}]'
api "$(api_pod db u-db true "$ANN")" >/dev/null
api "$(api_pod late u-late true)" >/dev/null
api "$(api_pod web u-web false)" >/dev/null
api '{"op":"put_object","path":"/api/v1/nodes/node-1","object":{"kind":"Node","metadata":{"name":"node-1","labels":{"kubernetes.io/os":"linux"}}}}' >/dev/null
api '{"op":"put_object","path":"/apis/vpcresources.k8s.aws/v1alpha1/cninodes/node-1","object":{"kind":"CNINode","metadata":{"name":"node-1"},"spec":{"features":[{"name":"CustomNetworking","value":"x"}]}}}' >/dev/null
write_kubeconfig "$WORK/kubeconfig"

mkdir -p "$WORK/run"
BASE_ENV=(TRUNK_INTERFACE=0a:00:00:00:0f:01 VPC_CIDRS=10.0.0.0/16 IPAMD_SOCKET=$WORK/run/ipamd.sock IPAMD_DEBUG_SOCKET=$WORK/run/debug.sock
          MY_NODE_NAME=node-1 POD_ENI_WAIT_TIMEOUT=1s AWS_VPC_K8S_CNI_LOG_FILE=stderr
          CNI_BIN_DIR=$WORK/cni/bin CNI_CONF_DIR=$WORK/cni/net.d CNI_PLUGIN_SOURCE=$(realpath "$BIN/aws-cni"))

start_ipamd() { # env...
    env -i "${BASE_ENV[@]}" "$@" ip netns exec "$NS" "$BIN/ipamd" 2>>"$WORK/ipamd.log" &
    IPAMD_PID=$!
}
stop_ipamd() { kill -TERM "$IPAMD_PID"; wait "$IPAMD_PID"; local rc=$?; IPAMD_PID=; return $rc; }
pods_json() { curl -s --unix-socket "$WORK/run/debug.sock" http://localhost/v1/pods; }
wait_pods() { # count
    for _ in $(seq 1 100); do [[ $(pods_json | jq length 2>/dev/null) == "$1" ]] && return 0; sleep 0.1; done; return 1
}

echo "== configuration errors"
out=$(env -i "${BASE_ENV[@]}" MY_NODE_NAME= "$BIN/ipamd" 2>&1); rc=$?
assert_eq "no MY_NODE_NAME: exit 2" 2 "$rc"
assert_contains "names MY_NODE_NAME" "MY_NODE_NAME: not set" "$out"
out=$(env -i "${BASE_ENV[@]}" POD_ENI_WAIT_TIMEOUT=1h "$BIN/ipamd" 2>&1); rc=$?
assert_contains "bad POD_ENI_WAIT_TIMEOUT: exit 2, accepted values" "2 POD_ENI_WAIT_TIMEOUT: invalid value \"1h\"; accepted values: a duration from 0 to 25 seconds" "$rc $(tail -1 <<<"$out" | sed 's/^ipamd: invalid configuration: //')"
out=$(env -i "${BASE_ENV[@]}" KUBECONFIG=$WORK/missing ip netns exec "$NS" "$BIN/ipamd" 2>&1); rc=$?
assert_eq "unreadable kubeconfig: exit 2" 2 "$rc"
assert_contains "names KUBECONFIG and the file" "KUBECONFIG: kubernetes config: cannot read kubeconfig $WORK/missing" "$out"
out=$(env -i "${BASE_ENV[@]}" KUBERNETES_SERVICE_ACCOUNT_DIR=$WORK/nowhere ip netns exec "$NS" "$BIN/ipamd" 2>&1); rc=$?
assert_eq "in-cluster without KUBERNETES_SERVICE_HOST: exit 2" "2" "$rc"
assert_contains "says to set KUBECONFIG outside a pod" "set KUBECONFIG to run outside a cluster" "$out"

echo "== ipamd with a kubeconfig"
start_ipamd KUBECONFIG="$WORK/kubeconfig" ENABLE_POD_ENI=true ENABLE_TRUNK_LABEL=true
assert_ok "/v1/pods lists the node's three pods" wait_pods 3
pods=$(pods_json)
assert_eq "db: ready branch pod with its VLAN, ENI, IP" "ready true 7 eni-0a1b2c3d4e5f60718 10.0.40.12 u-db" \
    "$(jq -r '.[] | select(.name=="db") | "\(.state) \(.branch) \(.vlanID) \(.eniID) \(.ipv4) \(.podUID)"' <<<"$pods")"
assert_ok "db: annotation arrival time shown" jq -e '.[] | select(.name=="db") | .annotationArrivedAt | test("^20[0-9-]+T")' <<<"$pods"
assert_eq "late: pending; web: regular" "pending regular" "$(jq -r '[.[] | select(.name=="late" or .name=="web") | .state] | join(" ")' <<<"$pods")"

CONF='{"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni","ipamdSocket":"'$WORK'/run/ipamd.sock","pluginLogFile":"'$WORK'/plugin.log"}'
cni_add() { # name uid
    printf '%s' "$CONF" | env -i CNI_COMMAND=ADD CNI_CONTAINERID="c-$1" CNI_NETNS=/var/run/netns/none CNI_IFNAME=eth0 \
        CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=$1;K8S_POD_UID=$2" ip netns exec "$NS" "$BIN/aws-cni" 2>/dev/null
}
before=$(api '{"op":"stats"}' | jq .requests)
[[ $before =~ ^[0-9]+$ ]] || fail "the test API server answers stats"
out=$(cni_add late u-late)
assert_eq "annotation never arrives: CNI code 11 at the 1 s bound" 11 "$(jq .code <<<"$out")"
assert_contains "the message says why" "no vpc.amazonaws.com/pod-eni annotation yet" "$(jq -r .details <<<"$out")"
out=$(cni_add web u-web)
assert_eq "regular pod: CNI code 103" 103 "$(jq .code <<<"$out")"
out=$(cni_add db u-recreated)
assert_eq "UID mismatch: refused with CNI code 100" 100 "$(jq .code <<<"$out")"
assert_contains "the message names both UIDs" "has UID u-db in the API server, not u-recreated" "$(jq -r .details <<<"$out")"
assert_eq "the ADDs made no API request" "$before" "$(api '{"op":"stats"}' | jq .requests)"

cni=$(api '{"op":"get_object","path":"/apis/vpcresources.k8s.aws/v1alpha1/cninodes/node-1"}')
assert_eq "CNINode: SecurityGroupsForPods added, CustomNetworking kept" '[{"name":"CustomNetworking","value":"x"},{"name":"SecurityGroupsForPods"}]' \
    "$(jq -c .object.spec.features <<<"$cni")"
node=$(api '{"op":"get_object","path":"/api/v1/nodes/node-1"}')
assert_eq "node label has-trunk-attached=false, other labels kept" '{"kubernetes.io/os":"linux","vpc.amazonaws.com/has-trunk-attached":"false"}' \
    "$(jq -c .object.metadata.labels <<<"$node")"
stop_ipamd; rc=$?
assert_eq "SIGTERM: ipamd exits 0 (watch closed)" 0 "$rc"

echo "== ipamd in-cluster (service account directory, KUBERNETES_SERVICE_HOST/PORT)"
mkdir -p "$WORK/sa"
cp "$WORK/api/ca.crt" "$WORK/sa/ca.crt"; printf 'token-1' > "$WORK/sa/token"
start_ipamd KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$PORT" KUBERNETES_SERVICE_ACCOUNT_DIR="$WORK/sa"
assert_ok "/v1/pods lists the node's pods" wait_pods 3
api '{"op":"annotate","key":"default/late","name":"vpc.amazonaws.com/pod-eni","value":"[{\"eniId\":\"eni-9\",\"ifAddress\":\"0a:00:00:00:00:09\",\"privateIp\":\"10.0.40.9\",\"vlanId\":9,\"subnetCidr\":\"10.0.32.0/19\"}]"}' >/dev/null
late_ready() { [[ $(pods_json | jq -r '.[] | select(.name=="late") | "\(.state) \(.vlanID)"') == "ready 9" ]]; }
assert_ok "a late annotation arrives through the watch" bash -c "for _ in \$(seq 100); do $(declare -f pods_json late_ready); WORK=$WORK late_ready && exit 0; sleep 0.1; done; exit 1"
stop_ipamd
summary
