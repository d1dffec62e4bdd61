#!/bin/bash
# SNAT end to end, inside the VM (needs 802.1Q): which source address a far end sees for pod
# connections. A standard-mode pod reaching "internet" (outside the VPC CIDRs) arrives from the
# node's primary IP; reaching a VPC address or an excluded CIDR, from its own IP. A strict-mode
# pod is never SNATed. AWS_VPC_K8S_CNI_EXTERNALSNAT=true leaves SNAT to the VPC (no table).
set -uo pipefail
cd "$(dirname "$0")/../.."
SUITE=vm-snat
source scripts/lib/assert.sh
source scripts/lib/fabric.sh
fabric_up pod-strict pod-standard
vpc_branch 7 0a:00:00:00:00:07 10.0.40.7
vpc_branch 8 0a:00:00:00:00:08 10.0.40.8
write_pods_file <<'JSON'
{"pods": {
  "default/strict-pod":   [{"eniId":"eni-0000000000000007","ifAddress":"0a:00:00:00:00:07","privateIp":"10.0.40.7","vlanId":7,"subnetCidr":"10.0.32.0/19"}],
  "default/standard-pod": [{"eniId":"eni-0000000000000008","ifAddress":"0a:00:00:00:00:08","privateIp":"10.0.40.8","vlanId":8,"subnetCidr":"10.0.32.0/19"}]
}}
JSON
EXCLUDE=AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=203.0.113.0/24
start_ipamd "$EXCLUDE"
assert_ok "ADD strict pod" cni ADD strict-pod /run/netns/pod-strict strict
assert_ok "ADD standard pod" cni ADD standard-pod /run/netns/pod-standard standard
whoami internet 8080
whoami vpc 8080

echo "== SNAT on (node SNAT, 203.0.113.0/24 excluded)"
assert_eq "standard pod -> internet: arrives from the node's primary IP" "$NODE_IP" "$(source_seen pod-standard $INTERNET_IP 8080)"
assert_eq "standard pod -> VPC address: arrives from the pod IP" 10.0.40.8 "$(source_seen pod-standard 10.0.0.1 8080)"
assert_eq "standard pod -> excluded CIDR: arrives from the pod IP" 10.0.40.8 "$(source_seen pod-standard $EXCLUDED_IP 8080)"
assert_eq "strict pod -> internet: never SNATed" 10.0.40.7 "$(source_seen pod-strict $INTERNET_IP 8080)"
assert_eq "strict pod -> VPC address: its own IP" 10.0.40.7 "$(source_seen pod-strict 10.0.0.1 8080)"
# The SNATed connection left through the primary interface, the others through the branch VLAN.
# Counted by nft in the vpc for exactly these TCP flows (an interface packet counter also sees
# late packets of earlier connections and neighbour traffic).
vpc nft -f - <<NFT
table ip probe {
    counter internet-via-branch {}
    counter excluded-via-branch {}
    chain in {
        type filter hook prerouting priority -300; policy accept;
        iifname "trunk.8" ip daddr $INTERNET_IP tcp dport 8080 counter name internet-via-branch
        iifname "trunk.8" ip daddr $EXCLUDED_IP tcp dport 8080 counter name excluded-via-branch
    }
}
NFT
probe_packets() { vpc nft -j list counter ip probe "$1" | jq '.nftables[] | select(.counter) | .counter.packets'; }
source_seen pod-standard $INTERNET_IP 8080 >/dev/null
assert_eq "standard pod -> internet does not use the branch VLAN" 0 "$(probe_packets internet-via-branch)"
source_seen pod-standard $EXCLUDED_IP 8080 >/dev/null
[[ $(probe_packets excluded-via-branch) -gt 0 ]] \
    && pass "standard pod -> excluded CIDR goes out its branch VLAN" || fail "standard pod -> excluded CIDR did not use trunk.8"
vpc nft delete table ip probe

echo "== EXTERNALSNAT=true"
stop_ipamd
start_ipamd "$EXCLUDE" AWS_VPC_K8S_CNI_EXTERNALSNAT=true
assert_empty "no aws-cni table" "$(node nft list table ip aws-cni 2>/dev/null)"
assert_empty "no fwmark rule" "$(node ip rule show | grep fwmark)"
assert_eq "standard pod -> internet: its own IP (the VPC's NAT does SNAT)" 10.0.40.8 "$(source_seen pod-standard $INTERNET_IP 8080)"

echo "== back to node SNAT"
stop_ipamd
start_ipamd "$EXCLUDE"
assert_eq "standard pod -> internet: the node's primary IP again" "$NODE_IP" "$(source_seen pod-standard $INTERNET_IP 8080)"

assert_ok "DEL strict pod" cni DEL strict-pod /run/netns/pod-strict strict
assert_ok "DEL standard pod" cni DEL standard-pod /run/netns/pod-standard standard
summary
