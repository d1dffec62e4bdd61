# The simulated VPC of the demo, on top of scripts/lib/fabric.sh: its node, vpc and internet
# namespaces, plus a "database" namespace (an RDS stand-in, 10.0.64.10, inside the VPC CIDR), one
# branch interface per entry of the VPC file (a VLAN on the far end of the trunk), and the VPC
# file's security groups enforced with nftables in the vpc namespace (table ip vpc-sg), where
# every interface of the VPC ends. See scripts/vpc/vpc.py for the file and the rules' meaning.
# Source it after fabric.sh; call vpc_up instead of fabric_up. Needs 802.1Q (run in the VM).

VPC_FILE=${VPC_FILE:-scripts/vpc/demo-vpc.json}
DB_IP=10.0.64.10

vpcpy() { python3 scripts/vpc/vpc.py "$1" "$VPC_FILE" "${@:2}"; }
database() { ip netns exec database "$@"; }

# vpc_up [pod netns names...]
vpc_up() {
    FABRIC_NS+=(database)
    fabric_up "$@"
    ip link add database netns vpc type veth peer name eth0 netns database
    vpc ip addr add 10.0.64.1/24 dev database
    vpc ip link set database up
    database ip link set lo up
    database ip addr add $DB_IP/24 dev eth0
    database ip link set eth0 up
    database ip route add default via 10.0.64.1
    local vlan mac ip pod
    while read -r vlan mac ip pod; do vpc_branch "$vlan" "$mac" "$ip"; done < <(vpcpy branches)
    # What the VPC resource controller would write as each branch pod's annotation.
    vpcpy pods | write_pods_file
    vpcpy nft | vpc nft -f -
}

# vpc_regulars: the VPC delivers each regular pod's address (a secondary address of the node's
# primary ENI) to the node's eth0, as EC2 does, without ARP: it knows which ENI holds an address.
# Call it once eth0 has its final MAC (cloud_up sets the primary ENI's).
vpc_regulars() {
    local link ip pod mac
    mac=$(node cat /sys/class/net/eth0/address)
    while read -r link ip pod; do
        [[ $link == primary ]] || { echo "vpc_regulars: $pod: only the primary ENI (link primary) holds regular pods here, not $link" >&2; return 1; }
        vpc ip route replace "$ip/32" dev primary
        vpc ip neigh replace "$ip" lladdr "$mac" dev primary nud permanent
    done < <(vpcpy regulars)
}
