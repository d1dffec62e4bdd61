#!/bin/bash
# Node setup owned by ipamd, on the real binary, in a throwaway network namespace (never the
# host's): the nftables SNAT table for several configurations (compared structurally with
# scripts/tests/expected/), node rules, sysctls, restarts that never duplicate a rule, the ready
# order, the plugin install (conflist content, exec during reinstall), and invalid settings.
set -uo pipefail
cd "$(dirname "$0")/../.."
SUITE=host-node-setup
source scripts/lib/assert.sh

BIN=${BIN:-.build/release}
EXPECTED=scripts/tests/expected
WORK=$(mktemp -d /tmp/aws-cni-node.XXXX)
NS=awscni-node-$$
IPAMD_PID=
cleanup() {
    [[ -n $IPAMD_PID ]] && kill "$IPAMD_PID" 2>/dev/null && wait "$IPAMD_PID" 2>/dev/null
    [[ -n ${LOOP_PID:-} ]] && kill "$LOOP_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
for l in eth0 ens5 eth1; do in_ns ip link add "$l" type veth peer name "p-$l"; in_ns ip link set "$l" up; done
in_ns ip addr add 10.0.0.10/16 dev eth0
in_ns ip addr add 10.0.0.20/16 dev ens5

printf '{"pods":{}}' > "$WORK/pods.json"
cp "$BIN/aws-cni" "$WORK/aws-cni.a"
BASE=(POD_ENI_SOURCE=file:$WORK/pods.json TRUNK_INTERFACE=eth1 VPC_CIDRS=10.0.0.0/16
      IPAMD_SOCKET=$WORK/run/ipamd.sock IPAMD_DEBUG_SOCKET=$WORK/run/debug.sock AWS_VPC_K8S_CNI_LOG_FILE=stderr
      CNI_BIN_DIR=$WORK/bin CNI_CONF_DIR=$WORK/net.d CNI_PLUGIN_SOURCE=$WORK/aws-cni.a)
CONFLIST=$WORK/net.d/10-aws.conflist

# start ENV...: starts ipamd with BASE plus ENV (later values win) and waits until it is ready,
# which is the conflist existing (written last). Returns 1 if ipamd exits instead.
start() {
    rm -f "$CONFLIST"
    env -i "${BASE[@]}" "$@" ip netns exec "$NS" "$BIN/ipamd" 2>>"$WORK/ipamd.log" &
    IPAMD_PID=$!
    while [[ ! -e $CONFLIST ]]; do
        kill -0 "$IPAMD_PID" 2>/dev/null || { wait "$IPAMD_PID"; IPAMD_PID=; return 1; }
        sleep 0.02
    done
}
stop() {
    [[ -n $IPAMD_PID ]] || return 0
    kill -TERM "$IPAMD_PID"; wait "$IPAMD_PID"; local rc=$?; IPAMD_PID=
    return $rc
}

# The table as JSON without what varies between runs (handles, nft's version), keys sorted.
nft_table() {
    in_ns nft -j list table ip aws-cni 2>/dev/null \
        | jq -S '[.nftables[] | select(has("metainfo") | not) | walk(if type == "object" then del(.handle) else . end)]'
}
rules() { in_ns ip -4 rule show; }

check_ruleset() { # name expected-file
    assert_eq "$1: nft table matches $2" "$(jq -S . "$EXPECTED/$2")" "$(nft_table)"
}

echo "== SNAT table per configuration"
start ENABLE_POD_ENI=true
check_ruleset "defaults" nft-default.json
assert_contains "defaults: fwmark rule routes marked connections via main" "1024:	from all fwmark 0x80/0x80 lookup main" "$(rules)"
stop

start ENABLE_POD_ENI=true POD_SECURITY_GROUP_ENFORCING_MODE=standard AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=192.168.0.0/16,10.0.5.0/24,172.16.0.0/12 \
    AWS_VPC_K8S_CNI_RANDOMIZESNAT=hashrandom AWS_VPC_K8S_CNI_CONNMARK=0x40000 AWS_VPC_K8S_CNI_VETHPREFIX=pod \
    NODE_PRIMARY_INTERFACE=ens5 NODE_PRIMARY_IP=10.0.0.99
check_ruleset "exclusions, hashrandom, mark 0x40000, prefix pod, ens5" nft-custom.json
r=$(rules)
assert_contains "custom mark: fwmark rule uses it" "1024:	from all fwmark 0x40000/0x40000 lookup main" "$r"
assert_empty "custom mark: the old 0x80 rule is gone" "$(grep 'fwmark 0x80/' <<<"$r")"
stop

start VPC_CIDRS= AWS_VPC_K8S_CNI_RANDOMIZESNAT=none
check_ruleset "no VPC CIDRs, no port randomization" nft-none.json
stop

start AWS_VPC_K8S_CNI_EXTERNALSNAT=true
assert_empty "EXTERNALSNAT=true: table removed" "$(in_ns nft list table ip aws-cni 2>/dev/null)"
assert_empty "EXTERNALSNAT=true: fwmark rule removed" "$(rules | grep fwmark)"
stop
start
assert_ok "EXTERNALSNAT back to false: table restored" in_ns nft list table ip aws-cni
stop

echo "== node rules and sysctls"
start ENABLE_POD_ENI=true POD_SECURITY_GROUP_ENFORCING_MODE=strict DISABLE_TCP_EARLY_DEMUX=true
r=$(rules)
assert_contains "strict: lookup local moved to 20" "20:	from all lookup local" "$r"
assert_empty "strict: no lookup local at 0" "$(grep '^0:' <<<"$r")"
assert_eq "DISABLE_TCP_EARLY_DEMUX=true: tcp_early_demux=0" 0 "$(in_ns sysctl -n net.ipv4.tcp_early_demux)"
assert_eq "ip_forward=1" 1 "$(in_ns sysctl -n net.ipv4.ip_forward)"
assert_eq "rp_filter=2 on the primary interface" 2 "$(in_ns sysctl -n net.ipv4.conf.eth0.rp_filter)"
stop
start ENABLE_POD_ENI=true POD_SECURITY_GROUP_ENFORCING_MODE=strict DISABLE_TCP_EARLY_DEMUX=true
assert_eq "strict again: rules unchanged (idempotent)" "$r" "$(rules)"
stop
start ENABLE_POD_ENI=true POD_SECURITY_GROUP_ENFORCING_MODE=standard
r=$(rules)
assert_contains "standard: lookup local back at 0" "0:	from all lookup local" "$r"
assert_empty "standard: no lookup local at 20" "$(grep '^20:' <<<"$r")"
assert_eq "DISABLE_TCP_EARLY_DEMUX=false: tcp_early_demux restored to 1" 1 "$(in_ns sysctl -n net.ipv4.tcp_early_demux)"
stop

echo "== restarts never duplicate"
start ENABLE_POD_ENI=true; stop
before_nft=$(in_ns nft -j list ruleset | jq -c '[.nftables[] | select(.rule) | .rule | del(.handle)]')
before_rules=$(rules)
for i in 1 2 3; do start ENABLE_POD_ENI=true; stop; done
assert_eq "3 restarts: nft rules identical, one copy each" "$before_nft" "$(in_ns nft -j list ruleset | jq -c '[.nftables[] | select(.rule) | .rule | del(.handle)]')"
assert_eq "3 restarts: 4 nft rules in total" 4 "$(in_ns nft -j list ruleset | jq '[.nftables[] | select(.rule)] | length')"
assert_eq "3 restarts: ip rules identical" "$before_rules" "$(rules)"
assert_eq "3 restarts: one table in the ruleset" 1 "$(in_ns nft -j list tables | jq '[.nftables[] | select(.table)] | length')"

echo "== drift is repaired (NODE_RECONCILE_INTERVAL=1)"
# eventually NAME CMD...: the command succeeds within 20 s (checked every 0.2 s).
eventually() {
    local name=$1; shift
    for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && { pass "$name"; return; }; sleep 0.2; done
    fail "$name: not within 20 s"
}
same_table() { [[ "$(nft_table)" == "$(jq -S . "$EXPECTED/nft-default.json")" ]]; }
has_rule() { rules | grep -qF "$1"; }
demux_is() { [[ $(in_ns sysctl -n net.ipv4.tcp_early_demux) == "$1" ]]; }
: > "$WORK/ipamd.log"
start ENABLE_POD_ENI=true NODE_RECONCILE_INTERVAL=1
in_ns nft flush ruleset   # what a host firewall reload does
eventually "nft flush ruleset: the table comes back, identical" same_table
in_ns ip rule del fwmark 0x80/0x80 lookup main prio 1024
eventually "deleted fwmark rule comes back" has_rule "1024:	from all fwmark 0x80/0x80 lookup main"
in_ns sysctl -qw net.ipv4.tcp_early_demux=0
eventually "reset tcp_early_demux is set again" demux_is 1
assert_contains "the log says what drifted" "node setup drifted" "$(cat "$WORK/ipamd.log")"
assert_eq "repairs left one copy of every rule" 4 "$(in_ns nft -j list ruleset | jq '[.nftables[] | select(.rule)] | length')"
stop

echo "== ready order and failures"
: > "$WORK/ipamd.log"
start NODE_PRIMARY_INTERFACE=missing0; rc=$?
assert_eq "node setup failure: ipamd exits non-zero" 1 "$rc"
assert_ok "node setup failure: no conflist written" test ! -e "$CONFLIST"
assert_ok "node setup failure: no socket served" test ! -S "$WORK/run/ipamd.sock"
assert_contains "node setup failure: the log names the interface" "primary interface missing0 (NODE_PRIMARY_INTERFACE) does not exist" "$(cat "$WORK/ipamd.log")"

for bad in "AWS_VPC_K8S_CNI_RANDOMIZESNAT=always|prng, hashrandom, none" \
           "AWS_VPC_K8S_CNI_CONNMARK=0|non-zero 32-bit mark" \
           "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=10.0.0.0/33|comma-separated list" \
           "AWS_VPC_K8S_CNI_EXTERNALSNAT=maybe|true, false" \
           "DISABLE_TCP_EARLY_DEMUX=yesplease|true, false" \
           "ENABLE_POD_ENI=2|true, false" \
           "AWS_VPC_K8S_CNI_VETHPREFIX=toolong|1 to 4 ASCII letters or digits" \
           "POD_MTU=100|576...9001" \
           "AWS_VPC_ENI_MTU=abc|576...9001" \
           "AWS_VPC_K8S_PLUGIN_LOG_LEVEL=chatty|Debug, Info, Warn, Error" \
           "AWS_VPC_K8S_PLUGIN_LOG_FILE=stdout|absolute path or stderr" \
           "NODE_PRIMARY_IP=10.0.0|IPv4 address" \
           "CNI_BIN_DIR=relative|absolute path" \
           "ENABLE_IPv6=true|IPv4 clusters only" \
           "NODE_RECONCILE_INTERVAL=soon|whole seconds from 0"; do
    var=${bad%%=*}; needle=${bad#*|}; setting=${bad%%|*}
    out=$(env -i "${BASE[@]}" "$setting" ip netns exec "$NS" "$BIN/ipamd" 2>&1); rc=$?
    assert_eq "$setting: ipamd stops at start (exit 2)" 2 "$rc"
    assert_contains "$setting: message names $var and the accepted values" "$var: " "$out"
    assert_contains "$setting: accepted values given" "$needle" "$out"
done

echo "== plugin install"
start ENABLE_POD_ENI=true POD_SECURITY_GROUP_ENFORCING_MODE=standard AWS_VPC_K8S_CNI_VETHPREFIX=pod POD_MTU=1500 \
    AWS_VPC_K8S_PLUGIN_LOG_FILE=/var/log/sg/plugin.log AWS_VPC_K8S_PLUGIN_LOG_LEVEL=Info
assert_eq "conflist for non-default settings" "$(jq -S . "$EXPECTED/conflist-custom.json" | sed "s|@WORK@|$WORK|g")" "$(jq -S . "$CONFLIST")"
assert_eq "conflist mode 0644" 644 "$(stat -c %a "$CONFLIST")"
assert_eq "installed binary mode 0755" 755 "$(stat -c %a "$WORK/bin/aws-cni")"
assert_ok "installed binary is the source" cmp "$WORK/aws-cni.a" "$WORK/bin/aws-cni"
assert_empty "no temporary files left" "$(ls -A "$WORK/bin" "$WORK/net.d" | grep '\.tmp$')"
stop

# A second, different build of the plugin (a trailing byte does not change what it runs), so
# every restart below really replaces the installed file.
cp "$WORK/aws-cni.a" "$WORK/aws-cni.b"; printf '\0' >> "$WORK/aws-cni.b"
: > "$WORK/exec-failures"
( n=0
  while [[ ! -e $WORK/stop-loop ]]; do
      out=$(CNI_COMMAND=VERSION "$WORK/bin/aws-cni" 2>&1 </dev/null) || echo "exit $?: $out" >> "$WORK/exec-failures"
      n=$((n + 1))
  done
  echo "$n" > "$WORK/exec-count" ) &
LOOP_PID=$!
for i in 1 2 3 4 5 6; do
    src=$WORK/aws-cni.a; (( i % 2 )) && src=$WORK/aws-cni.b
    start CNI_PLUGIN_SOURCE="$src"; stop
done
touch "$WORK/stop-loop"; wait "$LOOP_PID"; LOOP_PID=
assert_empty "exec of the plugin during 6 reinstalls never failed ($(cat "$WORK/exec-count") execs)" "$(cat "$WORK/exec-failures")"
assert_ok "after reinstalls the installed binary is the last source" cmp "$WORK/aws-cni.a" "$WORK/bin/aws-cni"

summary
