#!/bin/bash
# Benchmark helper, not a test, not part of `make bench`: where aws-cni's time goes on the host,
# for the parts that need no 802.1Q. In a throwaway network namespace, with no ipamd (the socket
# path does not exist, so the RPC fails at connect, as a DEL with ipamd down does):
#   version   CNI_COMMAND=VERSION, nothing on stdin
#   del       DEL with prevResult (config and prevResult decoding, ipamd attempt, one rule dump,
#             the links it names, nothing to delete)
#   del-220   the same with 220 strict-style `iif` rules in the namespace (what 110 strict pods add)
# and the static floor's `noop` beside them. For each: perf stat (200 runs: wall time, CPU time,
# page faults), then perf record over 300 runs, aws-cni's samples summed by category
# (scripts/bench/perf_categories.py). Needs an unstripped aws-cni for symbols: BIN defaults to
# .build/release after a plain `swift build -c release`. FLOOR as for cni-latency.sh.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
[[ $(id -u) == 0 ]] || { echo "run as root: it creates a network namespace" >&2; exit 1; }
AWS=$(realpath "${BIN:-.build/release}/aws-cni")
FLOOR=$(realpath "${FLOOR:-.build-bench/floor}")
[[ -x $AWS && -x $FLOOR ]] || { echo "need $AWS and $FLOOR (scripts/bench/run.sh builds the floor)" >&2; exit 1; }
NS=aws-cni-hostprof-$$
WORK=$(mktemp -d /tmp/aws-cni-hostprof.XXXX)
trap 'ip netns del "$NS" 2>/dev/null; rm -rf "$WORK"' EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up

cat >"$WORK/del.json" <<EOF
{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"strict","pluginLogFile":"$WORK/plugin.log","pluginLogLevel":"Debug","ipamdSocket":"$WORK/absent.sock","prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"vlan0a1b2c3d4e5","mac":"02:11:22:33:44:55"},{"name":"eth0","mac":"02:11:22:33:44:56","sandbox":"/run/netns/gone"},{"name":"dummy0a1b2c3d4e","mac":"7"}],"ips":[{"address":"10.0.40.12/32","gateway":"10.0.32.1","interface":1}]}}
EOF
export CNI_CONTAINERID=cid-hostprof CNI_NETNS= CNI_IFNAME=eth0 CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=hostprof"

# run NAME: one exec of the case (stdin and environment set here, output discarded).
cat >"$WORK/run.sh" <<'EOF'
case $1 in
version) CNI_COMMAND=VERSION "$AWS" </dev/null ;;
noop) "$FLOOR" noop ;;
del*) CNI_COMMAND=DEL "$AWS" <"$WORK/del.json" ;;
esac >/dev/null
EOF
export AWS FLOOR WORK

measure() { # name
    echo "== $1"
    ip netns exec "$NS" perf stat -r 200 -e task-clock,page-faults bash -c 'source "$WORK/run.sh" "$1"' _ "$1" 2>&1 >/dev/null |
        awk '/task-clock|page-faults|elapsed/ {print "  " $0}'
    [[ $1 == noop ]] && return
    ip netns exec "$NS" perf record -q -e cpu-clock -F 20000 -g -o "$WORK/perf.$1" -- \
        bash -c 'for ((k = 0; k < 300; k++)); do source "$WORK/run.sh" "$1"; done' _ "$1" >/dev/null 2>&1
    perf report -i "$WORK/perf.$1" --comm aws-cni --no-children --sort dso,sym -g none --stdio --percent-limit 0 2>/dev/null |
        python3 scripts/bench/perf_categories.py "${PROFILE_TOP:-8}"
}
echo "(perf stat figures include the bash that runs each exec; compare rows)"
measure noop
measure version
measure del
for ((i = 1; i <= 220; i++)); do echo "rule add iif vlanp$i table $((100 + i)) prio 10"; done | ip -n "$NS" -batch -
measure del-220
