#!/bin/bash
# The simulated VPC's security-group model (scripts/vpc/vpc.py), on the host: invalid files are
# refused naming the field, the verdicts follow EC2's rules, and the rendered nft table loads in
# a throwaway namespace and replaces itself (a reload never duplicates a rule). The enforcement
# end to end, over VLANs, is the demo's (vm-demo).
set -uo pipefail
cd "$(dirname "$0")/../.."
SUITE=host-vpc-model
source scripts/lib/assert.sh
WORK=$(mktemp -d /tmp/aws-cni-vpc.XXXX)
NS=awscni-vpc-$$
trap 'ip netns del $NS 2>/dev/null; rm -rf "$WORK"' EXIT
FILE=scripts/vpc/demo-vpc.json
vpcpy() { python3 scripts/vpc/vpc.py "$@"; }

echo "== invalid files are refused, naming the field"
# mutate JQ-EXPRESSION: the demo file changed by the expression, as a file path.
mutate() { jq "$1" "$FILE" > "$WORK/bad.json"; echo "$WORK/bad.json"; }
refused() { # name jq-expression expected-text
    local out rc=0
    out=$(vpcpy nft "$(mutate "$2")" 2>&1) || rc=$?
    [[ $rc -ne 0 && $out == *"$3"* ]] && pass "$1" || fail "$1 (exit $rc): $out"
}
refused "unknown peer group" '.securityGroups["sg-database"].ingress[0].group = "sg-nope"' 'securityGroups.sg-database.ingress[0].group'
refused "cidr and group together" '.securityGroups["sg-node"].egress[0].group = "sg-node"' 'exactly one of cidr or group'
refused "port out of range" '.securityGroups["sg-database"].ingress[0].ports = "5432-70000"' 'ports'
refused "ports with protocol all" '.securityGroups["sg-node"].egress[0].ports = "80"' 'not allowed with protocol all'
refused "unknown protocol" '.securityGroups["sg-node"].egress[0].protocol = "sctp"' 'protocol'
refused "unknown group on an interface" '.interfaces["eni-database"].groups = ["sg-x"]' 'interfaces.eni-database.groups'
refused "branch VLAN out of range" '.interfaces["eni-0a7c000000000007"].branch.vlanId = 4095' 'interfaces.eni-0a7c000000000007.branch.vlanId'
refused "branch address outside its subnet" '.interfaces["eni-0a7c000000000007"].ip = "10.0.64.7"' 'does not contain'
refused "bad secondary address" '.interfaces["eni-node-primary"].secondaryIps = ["10.0.0.300"]' 'interfaces.eni-node-primary.secondaryIps[0]'
refused "a regular pod's bad address" '.interfaces["eni-node-primary"].regularPods["shop/web"] = "10.0.0"' 'interfaces.eni-node-primary.regularPods.shop/web'
refused "a regular pod without a namespace" '.interfaces["eni-node-primary"].regularPods = {"web": "10.0.0.20"}' "'web' is not namespace/name"
refused "bad CIDR" '.securityGroups["sg-node"].ingress[0].cidr = "10.0.0.0/33"' 'cidr'

echo "== verdicts"
verdict() { vpcpy check "$FILE" "$@"; }
assert_eq "a member of the peer group reaches the database port" allowed "$(verdict 10.0.40.7 10.0.64.10 tcp 5432)"
assert_eq "a non-member is stopped by the database's ingress" \
    "blocked ingress_eni_database: sg-database ingress has no rule for tcp/5432 from 10.0.40.9" "$(verdict 10.0.40.9 10.0.64.10 tcp 5432)"
assert_eq "another port of the database is stopped" \
    "blocked egress_eni_0a7c000000000007: sg-db-client egress has no rule for tcp/5433 to 10.0.64.10" "$(verdict 10.0.40.7 10.0.64.10 tcp 5433)"
assert_eq "egress without an internet rule is stopped" \
    "blocked egress_eni_0a7c000000000007: sg-db-client egress has no rule for tcp/80 to 198.51.100.10" "$(verdict 10.0.40.7 198.51.100.10 tcp 80)"
assert_eq "egress to 0.0.0.0/0 reaches the internet (no groups there)" allowed "$(verdict 10.0.40.9 198.51.100.10 tcp 80)"
assert_eq "udp is not tcp" "blocked egress_eni_0a7c000000000007: sg-db-client egress has no rule for udp/5432 to 10.0.64.10" \
    "$(verdict 10.0.40.7 10.0.64.10 udp 5432)"
assert_eq "the node's group reaches a pod's probe port" allowed "$(verdict 10.0.0.10 10.0.40.9 tcp 8080)"
# A regular pod's address is a secondary address of a node ENI: it carries that ENI's groups.
REGULAR=$WORK/regular.json
jq '.interfaces["eni-node-primary"].secondaryIps = ["10.0.0.21"]' "$FILE" > "$REGULAR"
assert_eq "a secondary address carries its interface's groups (sg-node reaches a probe port)" allowed "$(vpcpy check "$REGULAR" 10.0.0.21 10.0.40.9 tcp 8080)"
assert_eq "a secondary address is held to its interface's ingress" \
    "blocked ingress_eni_node_primary: sg-node ingress has no rule for tcp/22 from 198.51.100.10" "$(vpcpy check "$REGULAR" 198.51.100.10 10.0.0.21 tcp 22)"
assert_eq "a regular pod's address carries its interface's groups (sg-database refuses sg-node)" \
    "blocked ingress_eni_database: sg-database ingress has no rule for tcp/5432 from 10.0.0.20" "$(verdict 10.0.0.20 10.0.64.10 tcp 5432)"
assert_eq "the regular pods, with the link of the ENI that holds each" "primary 10.0.0.20 shop/web" "$(vpcpy regulars "$FILE")"
assert_eq "a port range includes its ends" allowed "$(vpcpy check "$(mutate '.securityGroups["sg-database"].ingress[0].ports = "5000-5432"')" 10.0.40.7 10.0.64.10 tcp 5432)"

echo "== the rendered table in a namespace"
ip netns add "$NS"
rules() { ip netns exec "$NS" nft -j list table ip vpc-sg | jq '[.nftables[] | select(.rule)] | length'; }
vpcpy nft "$FILE" | ip netns exec "$NS" nft -f - && pass "the table loads" || fail "the table does not load"
first=$(rules)
vpcpy nft "$FILE" | ip netns exec "$NS" nft -f - && pass "it loads again" || fail "a reload failed"
assert_eq "a reload replaces the table (same rule count)" "$first" "$(rules)"
assert_eq "group sets hold the members' addresses" '["10.0.40.7","10.0.40.8"]' \
    "$(ip netns exec "$NS" nft -j list set ip vpc-sg sg_db_client | jq -c '[.nftables[] | select(.set) | .set.elem[]]')"
vpcpy nft "$REGULAR" | ip netns exec "$NS" nft -f -
assert_eq "a group's set holds its interfaces' secondary addresses and regular pods' addresses" '["10.0.0.10","10.0.0.20","10.0.0.21"]' \
    "$(ip netns exec "$NS" nft -j list set ip vpc-sg sg_node | jq -c '[.nftables[] | select(.set) | .set.elem[]]')"
vpcpy nft "$FILE" | ip netns exec "$NS" nft -f -
assert_eq "every interface has an egress and an ingress chain ending in a counted drop" 10 \
    "$(ip netns exec "$NS" nft -j list table ip vpc-sg | jq '[.nftables[] | select(.rule) | .rule | select(.chain != "forward") | select(any(.expr[]; has("drop")) and any(.expr[]; has("counter")))] | length')"
summary
