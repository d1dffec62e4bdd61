# A simulated node and VPC fabric in network namespaces, shared by the VM tests and the demo.
#   node: the node's network namespace (trunk eth1, primary eth0, ipamd and aws-cni run here)
#   vpc:  the far end of the trunk; terminates each branch VLAN and answers as the subnet gateway;
#         also the router between the node's primary interface, the branches and "internet"
#   internet: a host outside the VPC CIDR (198.51.100.10, and 203.0.113.10 for an excluded CIDR)
# Source it after `cd` to the repository root; call fabric_up first. Needs 802.1Q (run in the VM).

BIN=${BIN:-.build/release}
WORK=${WORK:-$(mktemp -d /tmp/aws-cni.XXXX)}
TRUNK_MAC=0a:00:00:00:0f:01
GW=10.0.32.1
FABRIC_NS=(node vpc internet)
NODE_IP=10.0.0.10
INTERNET_IP=198.51.100.10
EXCLUDED_IP=203.0.113.10
IPAMD_PID=

node() { ip netns exec node "$@"; }
vpc() { ip netns exec vpc "$@"; }
internet() { ip netns exec internet "$@"; }

fabric_down() {
    stop_ipamd
    ((${#WHOAMI_PIDS[@]})) && kill "${WHOAMI_PIDS[@]}" 2>/dev/null
    declare -F cloud_down >/dev/null && cloud_down
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
    internet ip link set lo up
    # The trunk: eth1 in the node, its far end "trunk" in the vpc.
    ip link add eth1 netns node address $TRUNK_MAC mtu 9001 type veth peer name trunk netns vpc mtu 9001
    node ip link set eth1 up
    vpc ip link set trunk up
    # The node's primary interface in its subnet 10.0.0.0/20, default route via the VPC router.
    ip link add eth0 netns node type veth peer name primary netns vpc
    node ip addr add $NODE_IP/20 dev eth0
    node ip link set eth0 up
    node ip route add default via 10.0.0.1 dev eth0
    vpc ip addr add 10.0.0.1/20 dev primary
    vpc ip link set primary up
    # "internet": outside the VPC CIDR; it routes the VPC's private range back through the vpc
    # namespace (a real internet would not: there a NAT gateway stands in between).
    ip link add igw netns vpc type veth peer name eth0 netns internet
    vpc ip addr add 198.51.100.1/24 dev igw
    vpc ip addr add 203.0.113.1/24 dev igw
    vpc ip link set igw up
    internet ip addr add $INTERNET_IP/24 dev eth0
    internet ip addr add $EXCLUDED_IP/24 dev eth0
    internet ip link set eth0 up
    internet ip route add 10.0.0.0/16 via 198.51.100.1
    vpc sysctl -qw net.ipv4.ip_forward=1
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

# start_ipamd [VAR=value...]: ipamd in the node with the static source; extra settings override.
start_ipamd() {
    export IPAMD_SOCKET=$WORK/ipamd.sock IPAMD_DEBUG_SOCKET=$WORK/ipamd-debug.sock
    CONFLIST=$WORK/net.d/10-aws.conflist
    rm -f "$CONFLIST"
    # Not through the node() function: $! must be ipamd itself (ip netns exec execs it), not a subshell.
    env POD_ENI_SOURCE=file:$WORK/pods.json TRUNK_INTERFACE=$TRUNK_MAC VPC_CIDRS=10.0.0.0/16 ENABLE_POD_ENI=true \
        AWS_VPC_K8S_CNI_LOG_FILE=stderr CNI_BIN_DIR=$WORK/cni-bin CNI_CONF_DIR=$WORK/net.d CNI_PLUGIN_SOURCE=$(realpath "$BIN/aws-cni") \
        AWS_VPC_K8S_CNI_BACKING_STORE=$WORK/ipam.json \
        "$@" ip netns exec node "$BIN/ipamd" 2>> "$WORK/ipamd.log" &
    IPAMD_PID=$!
    # Ready is the conflist written: ipamd writes it last, after node setup and the sockets.
    local i
    for i in $(seq 1 600); do
        [[ -e $CONFLIST ]] && return 0
        kill -0 "$IPAMD_PID" 2>/dev/null || break
        sleep 0.1
    done
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

# host_veth_names PREFIX KEY...: the host veth the plugin names for each KEY, one per line:
# PREFIX + 11 hex digits of SHA-1(KEY), KEY being "namespace.name" (or the container id when
# the runtime passes no pod identity). The shell's one copy of Naming.hostVethName; one process
# for any number of names.
host_veth_names() {
    python3 -c 'import hashlib, sys; [print(sys.argv[1] + hashlib.sha1(k.encode()).hexdigest()[:11]) for k in sys.argv[2:]]' "$@"
}

host_veth() { # mode pod [namespace, default "default"]
    local prefix=eni
    [[ $1 == strict ]] && prefix=vlan
    host_veth_names "$prefix" "${3:-default}.$2"
}

# whoami NS PORT: a TCP server in NS that answers each connection with the peer's address, so a
# test sees the source address the far end saw. Returns once it listens.
whoami() {
    ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
while True:
    c, peer = s.accept(); c.sendall((peer[0] + "\n").encode()); c.close()
' "$2" &
    WHOAMI_PIDS+=($!)
    local i
    for i in $(seq 1 300); do
        ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q LISTEN && return 0
        sleep 0.05
    done
    echo "whoami server in $1 did not start" >&2
    return 1
}
WHOAMI_PIDS=()

# source_seen NS DEST PORT: from NS, connect to DEST:PORT and print what the server saw as source;
# nothing when no answer came within SOURCE_SEEN_TIMEOUT seconds (default 10).
source_seen() {
    ip netns exec "$1" timeout "${SOURCE_SEEN_TIMEOUT:-10}" bash -c 'exec 3<>/dev/tcp/$0/$1 && head -1 <&3' "$2" "$3" 2>/dev/null
}
