#!/bin/bash
# containerd as the real CNI client, inside the VM (needs 802.1Q): `ctr run --cni --rm` execs the
# aws-cni + portmap chain from the conflist ipamd writes, for a busybox container whose branch ENI
# comes from the static source keyed by the container id ctr passes (`default-<id>`: ctr sends no
# pod identity in CNI_ARGS). The container shows its eth0, routes and neighbour, pings the subnet
# gateway over its VLAN and opens a TCP connection to the vpc; while it waits, the node's VLAN link,
# host veth, rules and routes are checked; after it exits (ctr's DEL has an empty CNI_NETNS)
# nothing of it may remain. Once in strict mode (the default; DEL gets ctr's cached ADD result as
# prevResult), once in standard mode with that cache removed (DEL has only the container id).
set -uo pipefail
cd "$(dirname "$0")/../.."
SUITE=vm-containerd
source scripts/lib/assert.sh
# This suite replaces /opt/cni/bin and /etc/cni/net.d (where ctr looks): only in the VM, whose
# root is a throw-away overlay.
[[ -d /run/vm/share ]] || { echo "$SUITE: run it in the VM: scripts/vm/run.sh $0" >&2; exit 2; }
source scripts/lib/fabric.sh
source scripts/containerd/containerd.sh

IMAGE=localhost/aws-cni/busybox:test
CTL=$WORK/ctl          # bind-mounted into the container as /ctl: the "go" FIFO
export CNI_RECORD_LOG=$WORK/cni-calls.jsonl
CTR_PIDS=()
elapsed() { printf '%.1f s' "$(bc <<<"$EPOCHREALTIME - $1")"; }

# stop_ctr_run PID: ends a `ctr run` whose container still runs. SIGKILL through containerd (the
# container's PID 1 ignores SIGTERM); ctr then runs the CNI DEL and removes the container.
stop_ctr_run() {
    local i id
    kill -0 "$1" 2>/dev/null || return 0
    for id in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
    for i in $(seq 1 300); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

cleanup() {
    local p
    for p in "${CTR_PIDS[@]}"; do stop_ctr_run "$p"; done
    ctrd_stop
    fabric_down
    # The links point into this run's $WORK: leave /opt/cni and /etc/cni as they were.
    [[ -L /opt/cni/bin ]] && rm -f /opt/cni/bin
    [[ -L /etc/cni/net.d ]] && rm -f /etc/cni/net.d
    return 0
}

t_suite=$EPOCHREALTIME
fabric_up
trap cleanup EXIT
# The image build (umoci) overlaps the fabric and ipamd start.
scripts/containerd/build-image.sh "$WORK/busybox.tar" "$IMAGE" >"$WORK/build-image.log" 2>&1 &
build_pid=$!

# ctr has no flags for CNI directories: it reads /etc/cni/net.d and execs from CNI_PATH
# /opt/cni/bin:/usr/lib/cni (Debian adds the second). Point both at ipamd's usual test directories,
# so start_ipamd's readiness check (the conflist in $WORK/net.d) stays valid.
mkdir -p "$WORK/cni-bin" "$WORK/net.d" "$CTL" /opt/cni /etc/cni
rm -rf /opt/cni/bin /etc/cni/net.d
ln -s "$WORK/cni-bin" /opt/cni/bin
ln -s "$WORK/net.d" /etc/cni/net.d
mkfifo "$CTL/go"

# record_calls PLUGIN: the real plugin becomes NAME.real behind scripts/containerd/cni-recorder.sh,
# which logs each call ctr makes to $CNI_RECORD_LOG.
record_calls() {
    mv "$WORK/cni-bin/$1" "$WORK/cni-bin/$1.real"
    install -m 0755 scripts/containerd/cni-recorder.sh "$WORK/cni-bin/$1"
}
# Debian's portmap, copied in front of /usr/lib/cni so its calls are recorded too.
cp /usr/lib/cni/portmap "$WORK/cni-bin/portmap"
record_calls portmap

vpc_branch 9 0a:00:00:00:00:09 10.0.40.9
vpc_branch 10 0a:00:00:00:00:0a 10.0.40.10
write_pods_file <<'JSON'
{"pods": {
  "default-busybox-strict":   [{"eniId":"eni-0000000000000009","ifAddress":"0a:00:00:00:00:09","privateIp":"10.0.40.9","vlanId":9,"subnetCidr":"10.0.32.0/19"}],
  "default-busybox-standard": [{"eniId":"eni-000000000000000a","ifAddress":"0a:00:00:00:00:0a","privateIp":"10.0.40.10","vlanId":10,"subnetCidr":"10.0.32.0/19"}]
}}
JSON
whoami vpc 8080
PLUGIN_LOG=$WORK/plugin.log
t=$EPOCHREALTIME
start_ipamd AWS_VPC_K8S_PLUGIN_LOG_FILE="$PLUGIN_LOG" || exit 1
echo "timing: ipamd ready in $(elapsed "$t")"
baseline_rules=$(node ip rule show)

t=$EPOCHREALTIME
ctrd_start "$WORK/containerd" || exit 1
echo "timing: containerd ready in $(elapsed "$t") ($(containerd --version | awk '{print $3}'), ctr $(ctr --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'))"
wait "$build_pid" || { cat "$WORK/build-image.log"; exit 1; }
t=$EPOCHREALTIME
assert_ok "ctr imports the offline busybox OCI image" ctrd_import "$WORK/busybox.tar"
assert_contains "image is named from the index annotation" "$IMAGE" "$(ctr images ls -q)"
echo "timing: image import $(elapsed "$t")"

# What the container runs: its own view of the network, a ping to the subnet gateway and a TCP
# connection to the vpc (whoami answers with the source address it saw), then READY; it exits
# when the test writes to /ctl/go (bounded by timeout, should the test die).
POD_SCRIPT='
echo "addr: $(ip -o -4 addr show dev eth0)"
echo "link: $(ip -o link show dev eth0)"
ip route show | sed "s/^/route: /"
ip neigh show 169.254.1.1 | sed "s/^/neigh: /"
ping -c 1 -W 5 10.0.32.1 >/dev/null 2>&1 && echo "ping: ok" || echo "ping: failed"
echo "whoami: $(nc -w 5 10.0.0.1 8080 </dev/null)"
echo READY
timeout 120 sh -c "read x < /ctl/go" && echo "released"
'

# run_container MODE ID VLAN IP VETH [lose-cache]: one container through its whole life under ctr.
# lose-cache: remove ctr's cached ADD result while the container runs (as a wiped /var/lib/cni
# would), so its DEL comes without prevResult as well as without netns and pod identity.
run_container() {
    local mode=$1 id=$2 vlan=$3 ip=$4 veth=$5 table=$(($3 + 100)) lose_cache=${6:-}
    local cid=default-$id out=$WORK/ctr-$id.out err=$WORK/ctr-$id.err
    echo "== $mode: ctr run --cni --rm $IMAGE $id (VLAN $vlan, $ip, host veth $veth)"
    local t0=$EPOCHREALTIME
    # In the node netns: ctr itself execs the CNI plugins, which build the datapath in their netns.
    ip netns exec node ctr run --cni --rm --snapshotter native \
        --mount "type=bind,src=$CTL,dst=/ctl,options=rbind:rw" "$IMAGE" "$id" sh -c "$POD_SCRIPT" \
        >"$out" 2>"$err" </dev/null &
    local ctr_pid=$!
    CTR_PIDS+=("$ctr_pid")
    local i
    for i in $(seq 1 1200); do
        grep -q '^READY' "$out" && break
        kill -0 "$ctr_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^READY' "$out"; then
        fail "$mode: container did not get ready; ctr stdout/stderr:"
        sed 's/^/         | /' "$out" "$err"
        stop_ctr_run "$ctr_pid"
        return 1
    fi
    pass "$mode: container ran with CNI networking ($(elapsed "$t0") from ctr run to READY)"
    local o
    o=$(<"$out")
    assert_contains "$mode: pod eth0 has the branch IP /32" "inet $ip/32 " "$o"
    assert_contains "$mode: pod eth0 MTU is the pod MTU" "mtu 9001 " "$o"
    assert_contains "$mode: pod default route via 169.254.1.1" "route: default via 169.254.1.1 dev eth0" "$o"
    assert_contains "$mode: pod route to 169.254.1.1 on eth0" "route: 169.254.1.1 dev eth0 scope link" "$o"
    local hostmac
    hostmac=$(node cat "/sys/class/net/$veth/address" 2>/dev/null)
    # busybox prints "... lladdr MAC used 0/0/0 probes 0 PERMANENT".
    local neigh
    neigh=$(grep '^neigh:' <<<"$o")
    [[ -n $hostmac && $neigh == "neigh: 169.254.1.1 dev eth0 lladdr $hostmac "*" PERMANENT" ]] \
        && pass "$mode: pod neighbour 169.254.1.1 is the host veth ($hostmac), permanent" \
        || fail "$mode: pod neighbour 169.254.1.1: \"$neigh\", host veth MAC \"$hostmac\""
    assert_contains "$mode: pod pings the subnet gateway over VLAN $vlan" "ping: ok" "$o"
    assert_eq "$mode: pod's TCP connection reaches the vpc from the pod IP" "whoami: $ip" "$(grep '^whoami:' <<<"$o")"

    # The node while the container runs.
    local vl
    vl=$(node ip -d -o link show "vlan.eth.$vlan")
    assert_contains "$mode: vlan.eth.$vlan is 802.1Q id $vlan on the trunk" "vlan.eth.$vlan@eth1" "$vl"
    assert_contains "$mode: vlan.eth.$vlan carries the branch MAC" "link/ether 0a:00:00:00:00:$(printf %02x "$vlan")" "$vl"
    assert_contains "$mode: vlan.eth.$vlan is tagged with ctr's container id" "alias $cid" "$vl"
    assert_contains "$mode: host veth $veth (hash of the container id) is up" ",UP," "$(node ip -o link show "$veth")"
    local rx
    rx=$(vpc cat "/sys/class/net/trunk.$vlan/statistics/rx_packets")
    [[ $rx -gt 0 ]] && pass "$mode: the vpc saw the pod's traffic on trunk.$vlan ($rx packets)" || fail "$mode: no packets on trunk.$vlan"
    local want_rules want_table
    if [[ $mode == strict ]]; then
        want_rules=$(printf '10:\tfrom all iif vlan.eth.%s lookup %s\n10:\tfrom all iif %s lookup %s' "$vlan" $table "$veth" $table)
        want_table=$(printf '%s dev %s scope link \n10.0.32.1 dev vlan.eth.%s scope link \ndefault via 10.0.32.1 dev vlan.eth.%s ' "$ip" "$veth" "$vlan" "$vlan")
        assert_eq "$mode: no main route to the pod" "" "$(node ip route show "$ip/32")"
    else
        want_rules=$(printf '512:\tfrom all to %s lookup main\n1536:\tfrom %s lookup %s' "$ip" "$ip" $table)
        want_table=$(printf '10.0.32.1 dev vlan.eth.%s scope link \ndefault via 10.0.32.1 dev vlan.eth.%s ' "$vlan" "$vlan")
        assert_eq "$mode: main route to the pod" "$ip dev $veth scope link " "$(node ip route show "$ip/32")"
    fi
    assert_eq "$mode: ip rule" "$(printf '%s\n%s' "$baseline_rules" "$want_rules" | sort -n)" "$(node ip rule show | sort -n)"
    assert_eq "$mode: ip route show table $table" "$(sort <<<"$want_table")" "$(node ip route show table $table | sort)"
    assert_eq "$mode: ipamd serves the container" "served $vlan" \
        "$(curl -s --unix-socket "$IPAMD_DEBUG_SOCKET" http://localhost/v1/pods | jq -r --arg c "$cid" '.. | objects | select(.containerID? == $c) | "\(.state) \(.vlanID)"')"

    # libcni keeps the ADD result as NETWORK-CONTAINERID-IFNAME and sends it as DEL's prevResult.
    local cache=/var/lib/cni/results/aws-cni-$cid-eth0
    assert_eq "$mode: ctr cached the ADD result (VLAN $vlan in the dummy)" "$vlan" "$(jq -r '.result.interfaces[-1].mac' "$cache")"
    [[ -n $lose_cache ]] && rm -f "$cache"

    # Release the container; ctr then runs DEL and removes it.
    local t1=$EPOCHREALTIME
    timeout 30 bash -c 'echo go >"$1"' _ "$CTL/go" || fail "$mode: container did not read /ctl/go"
    local rc=timeout
    for i in $(seq 1 1200); do
        kill -0 "$ctr_pid" 2>/dev/null || { wait "$ctr_pid"; rc=$?; break; }
        sleep 0.1
    done
    [[ $rc == timeout ]] && stop_ctr_run "$ctr_pid"
    assert_eq "$mode: ctr run exits 0 after the container ends" 0 "$rc"
    echo "timing: $mode: container exit + CNI DEL + removal $(elapsed "$t1"); whole ctr run $(elapsed "$t0")"
    assert_contains "$mode: container saw the release" "released" "$(<"$out")"
    # ctr only logs a failed CNI DEL ("network review") and still exits with the task's code.
    assert_empty "$mode: ctr reports no CNI error" "$(grep -iE 'network review|cni|error' "$err")"

    # Nothing of the container may remain.
    assert_empty "$mode: no vlan.eth.$vlan" "$(node ip -o link show "vlan.eth.$vlan" 2>/dev/null)"
    assert_empty "$mode: no host veth $veth" "$(node ip -o link show "$veth" 2>/dev/null)"
    assert_empty "$mode: no links left besides lo, eth0, eth1" "$(node ip -o link show | awk -F': ' '{print $2}' | grep -vxE 'lo|eth0@.*|eth1@.*')"
    assert_eq "$mode: ip rule back to the baseline" "$baseline_rules" "$(node ip rule show)"
    assert_empty "$mode: no rules for table $table" "$(node ip rule show | grep -w "lookup $table")"
    assert_empty "$mode: table $table is empty" "$(node ip route show table $table)"
    assert_empty "$mode: no route to the pod in main" "$(node ip route show "$ip/32")"
    assert_empty "$mode: ipamd no longer serves the container" \
        "$(curl -s --unix-socket "$IPAMD_DEBUG_SOCKET" http://localhost/v1/pods | jq -c --arg c "$cid" '.. | objects | select(.containerID? == $c)')"
    assert_empty "$mode: no container left in containerd" "$(ctr containers ls -q; ctr tasks ls -q)"
    assert_empty "$mode: ctr's CNI result cache has no entry for $cid" "$(ls /var/lib/cni/results 2>/dev/null | grep -F -- "$cid")"

    # The plugin's own log: one ADD and one DEL for this container id, no warning or error.
    assert_eq "$mode: plugin log has ADD and DEL for $cid" "$(printf 'ADD\nDEL')" \
        "$(jq -r --arg c "$cid" 'select(.["cni.container_id"] == $c) | .["cni.command"]' "$PLUGIN_LOG" | uniq)"
    assert_empty "$mode: plugin log has no warning or error for $cid" \
        "$(jq -c --arg c "$cid" 'select(.["cni.container_id"] == $c and (.level | IN("warning", "error", "critical")))' "$PLUGIN_LOG")"
    assert_contains "$mode: plugin log: branch pod added on VLAN $vlan in $mode mode" "\"host_veth\":\"$veth\"" \
        "$(jq -c --arg c "$cid" 'select(.["cni.container_id"] == $c and .msg == "branch pod added")' "$PLUGIN_LOG")"
    local del_from
    # The DEL's closing log line says where the pod's identity came from.
    del_from=$(jq -r --arg c "$cid" 'select(.["cni.container_id"] == $c and .msg == "branch pod deleted") | "\(.from) \(.vlan)"' "$PLUGIN_LOG")
    if [[ -n $lose_cache ]]; then
        assert_eq "$mode: DEL without prevResult (asked ipamd by container id)" "ipamd $vlan" "$del_from"
    else
        assert_eq "$mode: DEL tore down from prevResult (VLAN $vlan)" "prevResult $vlan" "$del_from"
    fi

    # portmap ran in the chain for both commands, got aws-cni's result, succeeded.
    local calls
    calls=$(jq -r --arg c "$cid" 'select(.containerid == $c and .plugin == "portmap") | "\(.command) rc=\(.rc)"' "$CNI_RECORD_LOG")
    assert_eq "$mode: portmap ran in the chain for ADD and DEL, exit 0" "$(printf 'ADD rc=0\nDEL rc=0')" "$calls"
    assert_eq "$mode: portmap's ADD got aws-cni's result (pod IP) as prevResult" "$ip/32" \
        "$(jq -r --arg c "$cid" 'select(.containerid == $c and .plugin == "portmap" and .command == "ADD") | .conf.prevResult.ips[0].address' "$CNI_RECORD_LOG")"
}

strict_veth=$(host_veth_names vlan default-busybox-strict)
standard_veth=$(host_veth_names eni default-busybox-standard)

# --- strict (the default), with aws-cni behind the recorder: what exactly ctr passes -----------
record_calls aws-cni
assert_eq "conflist: strict mode" strict "$(jq -r '.plugins[0].podSGEnforcingMode' "$CONFLIST")"
assert_eq "conflist: aws-cni chained with portmap" "aws-cni portmap" "$(jq -r '[.plugins[].type] | join(" ")' "$CONFLIST")"
assert_eq "strict: lookup local moved to priority 20" "20:	from all lookup local" "$(node ip rule show | grep -w 'lookup local')"
run_container strict busybox-strict 9 10.0.40.9 "$strict_veth"

q() { jq -r --arg c default-busybox-strict "select(.containerid == \$c and .plugin == \"aws-cni\") | $1" "$CNI_RECORD_LOG"; }
echo "== what ctr passed to aws-cni"
q '"\(.command): CNI_CONTAINERID=\(.containerid) CNI_NETNS=\(.netns) CNI_IFNAME=\(.ifname) CNI_ARGS=\(.args) CNI_PATH=\(.path) prevResult=\(.conf.prevResult != null) rc=\(.rc)"' | sed 's/^/   /'
assert_eq "ctr calls aws-cni for ADD then DEL" "$(printf 'ADD\nDEL')" "$(q .command)"
assert_eq "chain order: aws-cni then portmap on ADD, the reverse on DEL" "aws-cni ADD,portmap ADD,portmap DEL,aws-cni DEL" \
    "$(jq -r 'select(.containerid == "default-busybox-strict") | "\(.plugin) \(.command)"' "$CNI_RECORD_LOG" | paste -sd,)"
assert_eq "CNI_CONTAINERID is default-<id> on both" "$(printf 'default-busybox-strict\ndefault-busybox-strict')" "$(q .containerid)"
[[ $(q 'select(.command == "ADD") | .netns') =~ ^/proc/[0-9]+/ns/net$ ]] \
    && pass "ADD: CNI_NETNS is /proc/<pid>/ns/net" || fail "ADD: CNI_NETNS is $(q 'select(.command == "ADD") | .netns')"
assert_eq "DEL: CNI_NETNS is empty" "" "$(q 'select(.command == "DEL") | .netns')"
assert_eq "CNI_ARGS is set and empty on both (no pod identity)" "$(printf 'CNI_ARGS=[]\nCNI_ARGS=[]')" "$(q '"CNI_ARGS=[\(.args)]" + (if .args_set then "" else " unset" end)')"
assert_eq "CNI_IFNAME is eth0" "$(printf 'eth0\neth0')" "$(q .ifname)"
assert_eq "DEL carries the cached ADD result as prevResult (VLAN 9 in the dummy)" 9 \
    "$(q 'select(.command == "DEL") | .conf.prevResult.interfaces[-1].mac')"
assert_eq "aws-cni exits 0 on both" "$(printf '0\n0')" "$(q .rc)"

# --- standard mode: ipamd rewrites the conflist and reinstalls the plain binary; this time ctr's
# DEL finds no cached result, so the plugin tears down with nothing but the container id ----------
echo "== restart ipamd in standard mode"
stop_ipamd
t=$EPOCHREALTIME
start_ipamd AWS_VPC_K8S_PLUGIN_LOG_FILE="$PLUGIN_LOG" POD_SECURITY_GROUP_ENFORCING_MODE=standard || exit 1
echo "timing: ipamd ready in $(elapsed "$t")"
assert_eq "conflist: standard mode" standard "$(jq -r '.plugins[0].podSGEnforcingMode' "$CONFLIST")"
assert_ok "ipamd reinstalled the real aws-cni (no recorder in front)" cmp "$BIN/aws-cni" /opt/cni/bin/aws-cni
assert_eq "standard: lookup local back at priority 0" "0:	from all lookup local" "$(node ip rule show | grep -w 'lookup local')"
baseline_rules=$(node ip rule show)
run_container standard busybox-standard 10 10.0.40.10 "$standard_veth" lose-cache

echo "timing: suite $(elapsed "$t_suite")"
summary
