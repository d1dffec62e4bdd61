#!/bin/bash
# Binary-level checks on the host (no VLAN needed): the release aws-cni answers bad input with
# CNI error JSON and never a crash; it carries no Swift runtime dependency; ipamd validates its
# environment, serves root-only sockets, replaces a stale one and shuts down cleanly. ipamd runs
# in a throwaway network namespace, never the host's.
set -uo pipefail
cd "$(dirname "$0")/../.."
SUITE=host-binaries
source scripts/lib/assert.sh

BIN=${BIN:-.build/release}
WORK=$(mktemp -d /tmp/aws-cni-host.XXXX)
NS=awscni-host-$$
cleanup() {
    [[ -n ${IPAMD_PID:-} ]] && kill "$IPAMD_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== aws-cni binary"
# Fully static: no dynamic loader at all, which under emulation was most of an exec's cost.
assert_empty "aws-cni is a static executable (no program interpreter)" "$(readelf -lW "$BIN/aws-cni" | grep -i 'interp')"
assert_empty "aws-cni needs no shared library" "$(readelf -dW "$BIN/aws-cni" 2>/dev/null | grep NEEDED)"

GOOD='{"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"strict","ipamdSocket":"'$WORK'/none.sock","pluginLogFile":"'$WORK'/plugin.log"}'
ENV=(CNI_COMMAND=ADD CNI_CONTAINERID=c1 CNI_NETNS=/var/run/netns/x CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin)

# expect_error NAME CODE NEEDLE STDIN ENV...
expect_error() {
    local name=$1 code=$2 needle=$3 input=$4; shift 4
    local out err rc
    out=$(printf '%s' "$input" | env -i "$@" "$BIN/aws-cni" 2>"$WORK/stderr"); rc=$?
    err=$(cat "$WORK/stderr")
    [[ $rc -ne 0 ]] && pass "$name: exit $rc" || fail "$name: exit 0"
    assert_eq "$name: error code" "$code" "$(jq -r .code <<<"$out" 2>/dev/null)"
    assert_contains "$name: message names the problem" "$needle" "$(jq -r '.msg + " " + (.details // "")' <<<"$out" 2>/dev/null)"
    assert_empty "$name: no crash or backtrace on stderr" "$(grep -Ei 'fatal|backtrace|crash|panic' <<<"$err")"
}

expect_error "malformed stdin" 6 "decode" '{"cniVersion":' "${ENV[@]}"
expect_error "empty stdin" 6 "stdin" '' "${ENV[@]}"
expect_error "missing CNI_NETNS" 4 "CNI_NETNS" "$GOOD" CNI_COMMAND=ADD CNI_CONTAINERID=c1 CNI_IFNAME=eth0
expect_error "missing CNI_COMMAND" 4 "CNI_COMMAND" "$GOOD"
expect_error "unknown command" 4 "FROB" "$GOOD" CNI_COMMAND=FROB
expect_error "unsupported cniVersion" 1 "0.2.0" '{"cniVersion":"0.2.0","name":"x","type":"aws-cni"}' "${ENV[@]}"
expect_error "invalid mtu" 7 "mtu" '{"cniVersion":"1.0.0","name":"x","type":"aws-cni","mtu":"99999"}' "${ENV[@]}"
expect_error "invalid mode" 7 "podSGEnforcingMode" '{"cniVersion":"1.0.0","name":"x","type":"aws-cni","podSGEnforcingMode":"loose"}' "${ENV[@]}"
expect_error "ipamd down on ADD" 11 "ipamd" "$GOOD" "${ENV[@]}"
expect_error "ipamd down on STATUS" 50 "ipamd" "$GOOD" CNI_COMMAND=STATUS

echo "== plugin log"
: > "$WORK/plugin.log"
out=$(printf '%s' "$GOOD" | env -i "${ENV[@]}" CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=team;K8S_POD_NAME=web-1" "$BIN/aws-cni" 2>"$WORK/stderr")
assert_eq "stdout carries only the CNI result" 11 "$(jq -r .code <<<"$out")"
assert_empty "nothing logged to stderr when pluginLogFile is a file" "$(cat "$WORK/stderr")"
assert_ok "pluginLogFile: every line is one JSON object" jq -e -s 'length > 0 and all(type == "object")' "$WORK/plugin.log"
assert_ok "pluginLogFile: every event names the container and the pod" \
    jq -e -s 'all(.["cni.container_id"] == "c1" and .pod == "team/web-1")' "$WORK/plugin.log"
printf '%s' "${GOOD/$WORK\/plugin.log/stderr}" | env -i "${ENV[@]}" "$BIN/aws-cni" >/dev/null 2>"$WORK/stderr"
assert_ok "pluginLogFile \"stderr\": JSON lines on stderr" jq -e -s 'length > 0 and all(.["cni.container_id"] == "c1")' "$WORK/stderr"

out=$(printf '%s' '{"cniVersion":"0.4.0"}' | env -i CNI_COMMAND=VERSION "$BIN/aws-cni")
assert_eq "VERSION answers in the asked version" '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}' "$out"
echo "== ipamd binary"
ip netns add "$NS"
# DEL looks at rules and links: only ever inside the throwaway namespace.
out=$(printf '%s' "$GOOD" | env -i CNI_COMMAND=DEL CNI_CONTAINERID=c1 CNI_IFNAME=eth0 CNI_NETNS= ip netns exec "$NS" "$BIN/aws-cni"); rc=$?
assert_eq "DEL of an unknown pod with ipamd down succeeds" "0:" "$rc:$out"
assert_empty "nothing on stdout for DEL" "$out"
ip -n "$NS" link add eth1 address 0a:00:00:00:0f:01 type veth peer name eth1peer
ip -n "$NS" link add eth0 type veth peer name eth0peer
ip -n "$NS" addr add 10.0.0.10/16 dev eth0
printf '{"pods":{}}' > "$WORK/pods.json"
# Every path ipamd writes is under $WORK: never the host's /opt/cni/bin, /etc/cni or /var/log.
IPAMD_ENV=(POD_ENI_SOURCE=file:$WORK/pods.json TRUNK_INTERFACE=0a:00:00:00:0f:01 VPC_CIDRS=10.0.0.0/16
           IPAMD_SOCKET=$WORK/run/ipamd.sock IPAMD_DEBUG_SOCKET=$WORK/run/debug.sock AWS_VPC_K8S_CNI_LOG_FILE=stderr
           CNI_BIN_DIR=$WORK/cni/bin CNI_CONF_DIR=$WORK/cni/net.d CNI_PLUGIN_SOURCE=$PWD/$BIN/aws-cni)

out=$(env -i "${IPAMD_ENV[@]}" POD_SECURITY_GROUP_ENFORCING_MODE=loose ip netns exec "$NS" "$BIN/ipamd" 2>&1); rc=$?
assert_eq "invalid environment stops ipamd (exit 2)" 2 "$rc"
assert_contains "the message names the variable and accepted values" "POD_SECURITY_GROUP_ENFORCING_MODE: invalid value \"loose\"; accepted values: strict, standard" "$out"

# A stale socket file from a crashed ipamd must not stop the next one.
mkdir -p "$WORK/run"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$WORK/run/ipamd.sock"
assert_ok "stale socket file exists before start" test -S "$WORK/run/ipamd.sock"
env -i "${IPAMD_ENV[@]}" ip netns exec "$NS" "$BIN/ipamd" 2>"$WORK/ipamd.log" &
IPAMD_PID=$!
for _ in $(seq 1 100); do
    curl -s --unix-socket "$WORK/run/debug.sock" http://localhost/healthz >/dev/null 2>&1 && break
    sleep 0.1
done
assert_eq "debug socket answers health" '{"status":"ok"}' "$(curl -s --unix-socket "$WORK/run/debug.sock" http://localhost/healthz)"
assert_eq "RPC socket is 0600" 600 "$(stat -c %a "$WORK/run/ipamd.sock")"
assert_eq "debug socket is 0600" 600 "$(stat -c %a "$WORK/run/debug.sock")"
assert_eq "/v1/pods is empty before any ADD" "[]" "$(curl -s --unix-socket "$WORK/run/debug.sock" http://localhost/v1/pods | jq -c .)"
out=$(printf '%s' '{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","ipamdSocket":"'$WORK'/run/ipamd.sock","pluginLogFile":"stderr"}' \
    | env -i CNI_COMMAND=STATUS "$BIN/aws-cni" 2>/dev/null); rc=$?
assert_eq "STATUS is ready while ipamd serves" "0:" "$rc:$out"
kill -TERM "$IPAMD_PID"; wait "$IPAMD_PID"; rc=$?; IPAMD_PID=
assert_eq "SIGTERM: ipamd exits 0" 0 "$rc"
assert_empty "SIGTERM: sockets removed" "$(ls "$WORK/run")"
summary
