#!/bin/bash
# VLAN-level test, run inside the VM (scripts/vm/run.sh): a "node" netns with a trunk veth whose
# peer sits in a "vpc" netns that terminates each branch VLAN with the subnet gateway IP.
# ipamd (static pod-ENI source) runs in the node; aws-cni does ADD -> CHECK -> DEL -> DEL for
# a strict and a standard pod. Asserts exact rules, routes, links and that the pod reaches the
# gateway over its VLAN; after DEL nothing of the pod remains.
set -uo pipefail
cd "$(dirname "$0")/../.."
SUITE=vm-branch-pods
source scripts/lib/assert.sh
source scripts/lib/fabric.sh
fabric_up pod-strict pod-standard
vpc_branch 7 0a:00:00:00:00:07 10.0.40.7
vpc_branch 8 0a:00:00:00:00:08 10.0.40.8
write_pods_file <<'EOF'
{"pods": {
  "default/strict-pod":   [{"eniId":"eni-0000000000000007","ifAddress":"0a:00:00:00:00:07","privateIp":"10.0.40.7","vlanId":7,"subnetCidr":"10.0.32.0/19","associationID":"trunk-assoc-7"}],
  "default/standard-pod": [{"eniId":"eni-0000000000000008","ifAddress":"0a:00:00:00:00:08","privateIp":"10.0.40.8","vlanID":8,"subnetCidr":"10.0.32.0/19","associationID":"trunk-assoc-8"}]
}}
EOF
start_ipamd
assert_ok "ipamd serves its socket" test -S "$IPAMD_SOCKET"
assert_eq "ipamd socket is root-only" "600" "$(stat -c %a "$IPAMD_SOCKET")"

baseline_rules=$(node ip rule show)

# --- one pod through its whole life -------------------------------------------------------
life() { # mode pod vlan ip veth expected_rules expected_table
    local mode=$1 pod=$2 vlan=$3 ip=$4 veth=$5 want_rules=$6 want_table=$7
    local ns=/run/netns/pod-$mode
    echo "== $mode pod $pod (VLAN $vlan, $ip)"
    local result
    result=$(cni ADD "$pod" "$ns" "$mode"); local rc=$?
    assert_eq "$mode: ADD exits 0" 0 "$rc"
    assert_contains "$mode: result records VLAN $vlan in the dummy interface" "\"mac\":\"$vlan\",\"name\":\"dummy" "$result"
    assert_contains "$mode: result carries the pod IP and subnet gateway" "{\"address\":\"$ip/32\",\"gateway\":\"$GW\",\"interface\":1}" "$result"

    assert_eq "$mode: ip rule" "$(printf '%s\n%s' "$baseline_rules" "$want_rules" | sort -n)" "$(node ip rule show | sort -n)"
    assert_eq "$mode: ip route show table $((vlan + 100))" "$want_table" "$(node ip route show table $((vlan + 100)))"
    local vl
    vl=$(node ip -d -o link show "vlan.eth.$vlan")
    assert_contains "$mode: vlan.eth.$vlan carries the branch MAC" "link/ether 0a:00:00:00:00:0$vlan" "$vl"
    assert_contains "$mode: vlan.eth.$vlan is 802.1Q id $vlan on the trunk" "vlan protocol 802.1Q id $vlan" "$vl"
    assert_contains "$mode: vlan.eth.$vlan is on eth1" "vlan.eth.$vlan@eth1" "$vl"
    assert_contains "$mode: vlan.eth.$vlan is up" ",UP," "$vl"
    assert_contains "$mode: vlan.eth.$vlan inherits the trunk MTU" "mtu 9001" "$vl"
    assert_contains "$mode: vlan.eth.$vlan is tagged with its container" "alias cid-$pod" "$vl"
    assert_eq "$mode: vlan.eth.$vlan has no IP address" "" "$(node ip -o addr show dev "vlan.eth.$vlan" | grep -w inet)"
    assert_contains "$mode: host veth $veth is up" ",UP," "$(node ip -o link show "$veth")"
    assert_eq "$mode: pod addresses" "$ip/32" "$(ip -n "pod-$mode" -o -4 addr show dev eth0 | awk '{print $4}')"
    assert_eq "$mode: pod routes" "$(printf 'default via 169.254.1.1 dev eth0 \n169.254.1.1 dev eth0 scope link ')" "$(ip -n "pod-$mode" route show)"
    local hostmac
    hostmac=$(node cat "/sys/class/net/$veth/address")
    assert_eq "$mode: pod neighbour 169.254.1.1 is the host veth, permanent" "169.254.1.1 dev eth0 lladdr $hostmac PERMANENT" \
        "$(ip -n "pod-$mode" neigh show 169.254.1.1 | sed 's/ *$//')"
    if [[ $mode == standard ]]; then
        assert_eq "$mode: main route to the pod" "$ip dev $veth scope link " "$(node ip route show "$ip/32")"
    else
        assert_eq "$mode: no main route to the pod" "" "$(node ip route show "$ip/32")"
    fi

    assert_ok "$mode: pod pings the subnet gateway over VLAN $vlan" ip netns exec "pod-$mode" ping -c 2 -W 5 -q "$GW"
    local vlan_rx
    vlan_rx=$(vpc cat "/sys/class/net/trunk.$vlan/statistics/rx_packets")
    [[ $vlan_rx -gt 0 ]] && pass "$mode: the vpc saw the traffic on trunk.$vlan ($vlan_rx packets)" || fail "$mode: no packets on trunk.$vlan"

    local check
    check=$(cni CHECK "$pod" "$ns" "$mode" "$result"); rc=$?
    assert_eq "$mode: CHECK passes ($check)" 0 "$rc"
    assert_eq "$mode: ipamd /v1/pods lists the pod as served" served \
        "$(curl -s --unix-socket "$IPAMD_DEBUG_SOCKET" http://localhost/v1/pods | jq -r --arg p "$pod" '.[] | select(.name == $p) | .state')"

    # Break one rule: CHECK must notice.
    local broken_rule
    broken_rule=$(node ip rule show | grep -m1 -E "lookup $((vlan + 100))" | sed 's/^[0-9]*:\s*//')
    local prio
    prio=$(node ip rule show | grep -m1 -E "lookup $((vlan + 100))" | cut -d: -f1)
    node ip rule del prio "$prio" $(echo "$broken_rule" | sed 's/from all//')
    check=$(cni CHECK "$pod" "$ns" "$mode" "$result"); rc=$?
    assert_eq "$mode: CHECK fails when a rule is missing" 1 "$rc"
    assert_contains "$mode: CHECK names the missing rule" "missing" "$check"

    assert_ok "$mode: DEL" cni DEL "$pod" "$ns" "$mode" "$result"
    assert_ok "$mode: DEL again (idempotent, empty netns)" cni DEL "$pod" "" "$mode" "$result"
    assert_eq "$mode: ip rule back to baseline" "$baseline_rules" "$(node ip rule show)"
    assert_empty "$mode: table $((vlan + 100)) empty" "$(node ip route show table $((vlan + 100)))"
    assert_empty "$mode: no vlan.eth.$vlan" "$(node ip -o link show "vlan.eth.$vlan" 2>/dev/null)"
    assert_empty "$mode: no host veth" "$(node ip -o link show "$veth" 2>/dev/null)"
    assert_empty "$mode: no main route to the pod" "$(node ip route show "$ip/32")"
    assert_empty "$mode: no eth0 left in the pod netns" "$(ip -n "pod-$mode" -o link show eth0 2>/dev/null)"
}

STRICT_VETH=$(host_veth strict strict-pod)
STANDARD_VETH=$(host_veth standard standard-pod)

life strict strict-pod 7 10.0.40.7 "$STRICT_VETH" \
"10:	from all iif vlan.eth.7 lookup 107
10:	from all iif $STRICT_VETH lookup 107" \
"default via $GW dev vlan.eth.7 
$GW dev vlan.eth.7 scope link 
10.0.40.7 dev $STRICT_VETH scope link "

life standard standard-pod 8 10.0.40.8 "$STANDARD_VETH" \
"512:	from all to 10.0.40.8 lookup main
1536:	from 10.0.40.8 lookup 108" \
"default via $GW dev vlan.eth.8 
$GW dev vlan.eth.8 scope link "

# --- a failing ADD leaves nothing ----------------------------------------------------------
echo "== failed ADD rolls back"
# Occupy the pod's VLAN id on the trunk with a foreign link name, so creating vlan.eth.7 fails
# (the kernel refuses a second link for the same VLAN id) after the veth and pod side exist.
node ip link add link eth1 name squat7 type vlan id 7
before_links=$(node ip -o link show | awk -F': ' '{print $2}' | sort)
out=$(cni ADD strict-pod /run/netns/pod-strict strict); rc=$?
assert_eq "failed ADD exits non-zero" 1 "$rc"
assert_contains "failed ADD explains the failure" "vlan.eth.7" "$out"
assert_eq "failed ADD leaves no link" "$before_links" "$(node ip -o link show | awk -F': ' '{print $2}' | sort)"
assert_eq "failed ADD leaves no rule" "$baseline_rules" "$(node ip rule show)"
assert_empty "failed ADD leaves no pod interface" "$(ip -n pod-strict -o link show eth0 2>/dev/null)"
node ip link del squat7

# --- a late DEL of an old sandbox leaves the pod's new sandbox alone ------------------------
echo "== late DEL of a replaced sandbox"
old=$(CID=sandbox-1 cni ADD strict-pod /run/netns/pod-strict strict)
ip netns del pod-strict; ip netns add pod-strict    # the old sandbox's netns is gone
new=$(CID=sandbox-2 cni ADD strict-pod /run/netns/pod-strict strict); rc=$?
assert_eq "the new sandbox's ADD replaces the old one's leftovers" 0 "$rc"
rules_new=$(node ip rule show)
CID=sandbox-1 cni DEL strict-pod "" strict "$old" >/dev/null
assert_eq "late DEL of the old sandbox (prevResult) succeeds" 0 $?
CID=sandbox-1 cni DEL strict-pod "" strict >/dev/null
assert_eq "late DEL of the old sandbox (no prevResult) succeeds" 0 $?
assert_eq "the new sandbox keeps its rules" "$rules_new" "$(node ip rule show)"
assert_contains "the new sandbox keeps its VLAN" "alias sandbox-2" "$(node ip -d -o link show vlan.eth.7)"
assert_ok "the new sandbox still reaches its gateway" ip netns exec pod-strict ping -c 1 -W 5 -q "$GW"
CID=sandbox-2 cni CHECK strict-pod /run/netns/pod-strict strict "$new"
assert_eq "CHECK of the new sandbox passes" 0 $?
CID=sandbox-2 cni DEL strict-pod /run/netns/pod-strict strict "$new"
assert_eq "DEL of the new sandbox" 0 $?
assert_eq "ip rule back to baseline" "$baseline_rules" "$(node ip rule show)"

# --- concurrent ADDs and DELs for different pods do not interfere --------------------------
echo "== 4 pods added and deleted concurrently"
for i in 1 2 3 4; do
    ip netns add "par-$i"
    FABRIC_NS+=("par-$i")
    vpc_branch $((20 + i)) "0a:00:00:00:01:0$i" "10.0.41.$i"
done
node_pods=$(cat "$WORK/pods.json")
jq '.pods += {"default/par-1":[{"ifAddress":"0a:00:00:00:01:01","privateIp":"10.0.41.1","vlanId":21,"subnetCidr":"10.0.32.0/19"}],
              "default/par-2":[{"ifAddress":"0a:00:00:00:01:02","privateIp":"10.0.41.2","vlanId":22,"subnetCidr":"10.0.32.0/19"}],
              "default/par-3":[{"ifAddress":"0a:00:00:00:01:03","privateIp":"10.0.41.3","vlanId":23,"subnetCidr":"10.0.32.0/19"}],
              "default/par-4":[{"ifAddress":"0a:00:00:00:01:04","privateIp":"10.0.41.4","vlanId":24,"subnetCidr":"10.0.32.0/19"}]}' \
    <<<"$node_pods" > "$WORK/pods.json.new" && mv "$WORK/pods.json.new" "$WORK/pods.json"
# (wait on these pids only: a bare `wait` would also wait for ipamd)
pids=()
for i in 1 2 3 4; do
    mode=strict; [[ $((i % 2)) == 0 ]] && mode=standard
    cni ADD "par-$i" "/run/netns/par-$i" "$mode" > "$WORK/par-$i.json" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4; do
    assert_contains "concurrent ADD par-$i succeeded" "\"address\":\"10.0.41.$i/32\"" "$(cat "$WORK/par-$i.json")"
    assert_ok "par-$i reaches its gateway over VLAN $((20 + i))" ip netns exec "par-$i" ping -c 1 -W 5 -q "$GW"
done
# Strict pods: two `iif` rules each into their table; standard pods: `from` into their table and `to` into main.
assert_eq "the concurrent pods' table rules (2 per strict, 1 per standard pod)" 6 "$(node ip rule show | grep -cE 'lookup 12[1-4]$')"
assert_eq "the standard concurrent pods' to-pod rules" 2 "$(node ip rule show | grep -cE '^512:.*to 10\.0\.41\.[24] lookup main')"
pids=()
for i in 1 2 3 4; do
    mode=strict; [[ $((i % 2)) == 0 ]] && mode=standard
    cni DEL "par-$i" "/run/netns/par-$i" "$mode" "$(cat "$WORK/par-$i.json")" &
    pids+=($!)
done
wait "${pids[@]}"
assert_eq "concurrent DELs leave the baseline rules" "$baseline_rules" "$(node ip rule show)"
assert_empty "concurrent DELs leave no VLAN links" "$(node ip -o link show type vlan | grep vlan.eth)"

# --- GC removes what belongs to no valid attachment ---------------------------------------
echo "== GC"
gc_conf() { # valid container ids...
    local list="" id
    for id in "$@"; do list+="${list:+,}{\"containerID\":\"$id\",\"ifname\":\"eth0\"}"; done
    printf '{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","pluginLogFile":"%s","cni.dev/valid-attachments":[%s]}' "$WORK/plugin.log" "$list"
}
CID=gc-a cni ADD strict-pod /run/netns/pod-strict strict >/dev/null
CID=gc-b cni ADD standard-pod /run/netns/pod-standard standard >/dev/null
gc_conf gc-b | node env CNI_COMMAND=GC CNI_PATH=/opt/cni/bin "$BIN/aws-cni"
assert_eq "GC with gc-b valid exits 0" 0 $?
assert_empty "GC removed the stale strict pod's VLAN" "$(node ip -o link show vlan.eth.7 2>/dev/null)"
assert_empty "GC removed the stale strict pod's table" "$(node ip route show table 107)"
assert_empty "GC removed the stale strict pod's rules" "$(node ip rule show | grep -E 'lookup 107')"
assert_ok "GC kept the valid standard pod: it still reaches its gateway" ip netns exec pod-standard ping -c 1 -W 5 -q "$GW"
assert_contains "GC kept the valid standard pod's rules" "1536:	from 10.0.40.8 lookup 108" "$(node ip rule show)"
gc_conf | node env CNI_COMMAND=GC CNI_PATH=/opt/cni/bin "$BIN/aws-cni"
assert_eq "GC with nothing valid exits 0" 0 $?
assert_eq "GC with nothing valid: rules back to baseline" "$baseline_rules" "$(node ip rule show)"
assert_empty "GC with nothing valid: no vlan.eth links" "$(node ip -o link show type vlan | grep vlan.eth)"

# --- DEL while ipamd is down, without prevResult -------------------------------------------
echo "== DEL with ipamd down, no prevResult and the pod netns gone"
assert_ok "ADD standard pod" cni ADD standard-pod /run/netns/pod-standard standard
stop_ipamd; rc=$?
assert_eq "ipamd exits 0 on SIGTERM" 0 "$rc"
assert_empty "ipamd removed its sockets on SIGTERM" "$(ls "$IPAMD_SOCKET" "$IPAMD_DEBUG_SOCKET" 2>/dev/null)"
ip netns del pod-standard    # the pod's netns (and with it the host veth and main route) is gone too
assert_ok "DEL succeeds with ipamd down" cni DEL standard-pod "" standard
assert_eq "nothing left: rules" "$baseline_rules" "$(node ip rule show)"
assert_empty "nothing left: vlan.eth.8" "$(node ip -o link show vlan.eth.8 2>/dev/null)"
assert_empty "nothing left: main route" "$(node ip route show 10.0.40.8/32)"

echo "== plugin log"
assert_ok "plugin log is JSON lines" jq -e . "$WORK/plugin.log"
assert_contains "plugin log names the pod" '"pod":"default/strict-pod"' "$(cat "$WORK/plugin.log")"
summary
