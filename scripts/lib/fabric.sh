# A simulated node and VPC fabric in network namespaces, shared by the VM tests and the demo.
#   node: the node's network namespace (trunk eth1, primary eth0, ipamd and aws-cni run here)
#   vpc:  the far end of the trunk; terminates each branch VLAN and answers as the subnet gateway
# Source it after `cd` to the repository root; call fabric_up first. Needs 802.1Q (run in the VM).

BIN=${BIN:-.build/release}
WORK=${WORK:-$(mktemp -d /tmp/aws-cni.XXXX)}
TRUNK_MAC=0a:00:00:00:0f:01
GW=10.0.32.1
FABRIC_NS=(node vpc)
IPAMD_PID=

node() { ip netns exec node "$@"; }
vpc() { ip netns exec vpc "$@"; }

fabric_down() {
    stop_ipamd
    for ns in "${FABRIC_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    return 0
}

# fabric_up [pod netns names...]
fabric_up() {
    FABRIC_NS+=("$@")
    trap fabric_down EXIT
    for ns in "${FABRIC_NS[@]}"; do ip netns add "$ns"; done
    node ip link set lo up
    vpc ip link set lo up
    # The trunk: eth1 in the node, its far end "trunk" in the vpc.
    ip link add eth1 netns node address $TRUNK_MAC mtu 9001 type veth peer name trunk netns vpc mtu 9001
    node ip link set eth1 up
    vpc ip link set trunk up
    # A primary interface so the node has an address to source ARP from, as a real node does.
    node ip link add eth0 type dummy
    node ip addr add 10.0.0.10/16 dev eth0
    node ip link set eth0 up
    # Pods are routed through the node (ipamd will own this sysctl in a later version).
    node sysctl -qw net.ipv4.ip_forward=1
    vpc sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

# vpc side of one branch ENI: VLAN N answering for the subnet gateway, and the VPC's knowledge
# of the branch (the fabric never ARPs for an ENI: it knows where each ENI's IP and MAC live).
# The gateway is a /32 per VLAN link, so every VLAN can own the same gateway IP as in a VPC.
vpc_branch() { # vlan mac ip
    vpc ip link add link trunk name "trunk.$1" type vlan id "$1"
    vpc ip addr add "$GW/32" dev "trunk.$1"
    vpc ip link set "trunk.$1" up
    vpc ip route replace "$3/32" dev "trunk.$1"
    vpc ip neigh replace "$3" lladdr "$2" dev "trunk.$1" nud permanent
}

# The static pod-ENI source, from stdin.
write_pods_file() { cat > "$WORK/pods.json"; }

start_ipamd() {
    export IPAMD_SOCKET=$WORK/ipamd.sock IPAMD_DEBUG_SOCKET=$WORK/ipamd-debug.sock
    # Not through the node() function: $! must be ipamd itself (ip netns exec execs it), not a subshell.
    POD_ENI_SOURCE=file:$WORK/pods.json TRUNK_INTERFACE=$TRUNK_MAC VPC_CIDRS=10.0.0.0/16 \
        ip netns exec node "$BIN/ipamd" 2> "$WORK/ipamd.log" &
    IPAMD_PID=$!
    # Readiness is the socket existing: ipamd creates it only when it serves.
    local i
    for i in $(seq 1 600); do [[ -S $IPAMD_SOCKET ]] && return 0; sleep 0.1; done
    echo "ipamd did not start; its log:" >&2
    cat "$WORK/ipamd.log" >&2
    return 1
}

# stop_ipamd: SIGTERM, then wait; returns ipamd's exit status.
stop_ipamd() {
    [[ -n $IPAMD_PID ]] || return 0
    kill -TERM "$IPAMD_PID" 2>/dev/null
    local rc=0
    wait "$IPAMD_PID" 2>/dev/null || rc=$?
    IPAMD_PID=
    return $rc
}

conf() { # mode [prevResult]
    local prev=""
    [[ -n ${2:-} ]] && prev=",\"prevResult\":$2"
    printf '{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","vethPrefix":"eni","mtu":"9001","podSGEnforcingMode":"%s","pluginLogFile":"%s","pluginLogLevel":"Debug","ipamdSocket":"%s"%s}' \
        "$1" "$WORK/plugin.log" "$IPAMD_SOCKET" "$prev"
}

# cni COMMAND POD NETNS MODE [prevResult]: runs aws-cni in the node as kubelet would.
# The container id is cid-POD unless CID is set.
cni() {
    printf '%s' "$(conf "$4" "${5:-}")" | node env CNI_COMMAND="$1" CNI_CONTAINERID="${CID:-cid-$2}" CNI_NETNS="$3" CNI_IFNAME=eth0 \
        CNI_PATH=/opt/cni/bin CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$2;K8S_POD_UID=uid-$2" "$BIN/aws-cni"
}

host_veth() { # mode pod
    local prefix=eni
    [[ $1 == strict ]] && prefix=vlan
    echo "$prefix$(printf '%s' "default.$2" | sha1sum | cut -c1-11)"
}
