#!/bin/bash
# Benchmark helper, not a test, not part of `make bench`: where an aws-cni branch-pod ADD/DEL
# spends its time compared with the floor, inside the VM (needs 802.1Q):
#   BIN=... scripts/vm/run.sh scripts/bench/cni-profile.sh      (FLOOR as for cni-latency.sh)
# Prints a readable report:
#   1. exec costs (median of 20, round robin): /bin/true, the floor doing nothing, aws-cni
#      VERSION as built, with the Swift backtracer's start-up probe turned off, from a tmpfs copy
#      (no 9p lookups for its $ORIGIN runpath), and STATUS (config decode + one ipamd round trip);
#      ipamd's round trip alone (scripts/bench/rpc-load.c, one client)
#   2. ADD/DEL medians, odd pods at the default Debug log level, even ones at "error"
#   3. ADD phases without any tracer: exec -> "command start" log line -> "branch pod added" log
#      line -> exit, from $EPOCHREALTIME around the exec and the plugin log's ms timestamps
#   4. syscalls of one ADD and one DEL, aws-cni and floor (strace -f -c), netlink requests
#      (sendmsg/sendto on NETLINK sockets) and the ipamd round trip seen by strace
#   5. perf (cpu-clock) of 40 VERSIONs, 20 ADDs and 20 DELs: aws-cni's samples summed by category
#      (scripts/bench/perf_categories.py) and its top symbols; needs an unstripped aws-cni, e.g.
#      BIN=.build/release after a plain `swift build -c release`
# strace figures are inflated (every syscall stops the process); use them for counts and order.
# PROFILE_KEEP=1 also prints the raw traces.
set -uo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
BIN=${BIN:-.build/release}
FLOOR=$(realpath "${FLOOR:-.build-bench/floor}")
AWS=$(realpath "$BIN/aws-cni")
N=20
[[ -x $FLOOR && -x $AWS ]] || { echo "need $FLOOR and $AWS" >&2; exit 1; }
source scripts/lib/fabric.sh
pods=()
for ((i = 1; i <= N; i++)); do pods+=("prof-$i"); done
fabric_up "${pods[@]}" >&2
trap 'fabric_down; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/s" "$WORK/o"
pods_json='{"pods": {'
for ((i = 1; i <= N; i++)); do
    ((i > 1)) && pods_json+=','
    printf -v e '"default/prof-%d": [{"eniId":"eni-%017x","ifAddress":"0a:00:00:02:00:%02x","privateIp":"10.0.40.%d","vlanId":%d,"subnetCidr":"10.0.32.0/19"}]' \
        "$i" "$i" "$i" "$((i + 10))" "$i"
    pods_json+=$e
done
# bench/pod-1..20 for scripts/bench/rpc-load.c (the ipamd round trip alone), on VLANs 41..60.
for ((i = 1; i <= N; i++)); do
    printf -v e ',"bench/pod-%d": [{"eniId":"eni-%017x","ifAddress":"0a:00:00:03:00:%02x","privateIp":"10.0.41.%d","vlanId":%d,"subnetCidr":"10.0.32.0/19"}]' \
        "$i" "$((i + 40))" "$i" "$((i + 10))" "$((i + 40))"
    pods_json+=$e
done
write_pods_file <<<"$pods_json}}"
start_ipamd POD_SECURITY_GROUP_ENFORCING_MODE=strict || exit 1
cp "$AWS" /tmp/aws-cni-tmpfs # the VM's /tmp is tmpfs: no 9p below it
conf strict >"$WORK/conf.debug"
conf strict | sed 's/"pluginLogLevel":"Debug"/"pluginLogLevel":"error"/' >"$WORK/conf.error"
export WORK AWS FLOOR N
host_veth_names vlan $(for ((i = 1; i <= N; i++)); do echo "default.prof-$i"; done) >"$WORK/veths"
ms() { stats_json "$1" | jq -r '"median \(.median_ms) ms (min \(.min_ms), max \(.max_ms))"'; }

# Runs in the node netns: a timing loop with nothing but the exec between the two clock reads.
cat >"$WORK/loops.sh" <<'EOF'
set -u
# exec_costs: every variant once per iteration (round robin), so load drift hits all alike.
exec_costs() {
    local k t0 t1 v
    for ((k = 0; k < N; k++)); do
        for v in true floor-noop env-true version version-nobt version-tmpfs version-tmpfs-nobt status; do
            case $v in
            true) t0=$EPOCHREALTIME; /bin/true; t1=$EPOCHREALTIME ;;
            floor-noop) t0=$EPOCHREALTIME; "$FLOOR" noop; t1=$EPOCHREALTIME ;;
            env-true) t0=$EPOCHREALTIME; env -u X /bin/true; t1=$EPOCHREALTIME ;;
            # Through env like the next three, which need it to set SWIFT_BACKTRACE.
            version) t0=$EPOCHREALTIME; env -u X CNI_COMMAND=VERSION "$AWS" </dev/null >/dev/null; t1=$EPOCHREALTIME ;;
            version-nobt) t0=$EPOCHREALTIME; env -u X SWIFT_BACKTRACE=enable=no CNI_COMMAND=VERSION "$AWS" </dev/null >/dev/null; t1=$EPOCHREALTIME ;;
            version-tmpfs) t0=$EPOCHREALTIME; env -u X CNI_COMMAND=VERSION /tmp/aws-cni-tmpfs </dev/null >/dev/null; t1=$EPOCHREALTIME ;;
            version-tmpfs-nobt) t0=$EPOCHREALTIME; env -u X SWIFT_BACKTRACE=enable=no CNI_COMMAND=VERSION /tmp/aws-cni-tmpfs </dev/null >/dev/null; t1=$EPOCHREALTIME ;;
            status) t0=$EPOCHREALTIME; CNI_COMMAND=STATUS "$AWS" <"$WORK/conf.debug" >/dev/null 2>&1; t1=$EPOCHREALTIME ;;
            esac
            echo $((10#${t1/[.,]/} - 10#${t0/[.,]/})) >>"$WORK/s/exec.$v"
        done
    done
}
pods() { # phase: ADD or DEL of every pod, odd pods at log level Debug (the default), even ones
    # at "error" (interleaved so load drift hits both alike); "cid t0 t1 rc" into s/LEVEL.PHASE
    local phase=$1 i t0 t1 rc in label
    for ((i = 1; i <= N; i++)); do
        ((i % 2)) && label=debug || label=error
        export CNI_COMMAND=${phase^^} CNI_CONTAINERID=cid-prof-$i CNI_NETNS=/run/netns/prof-$i CNI_IFNAME=eth0 \
            CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=prof-$i;K8S_POD_UID=uid-prof-$i"
        [[ $phase == add ]] && in=$WORK/conf.$label || in=$WORK/o/$label.del.$i
        t0=$EPOCHREALTIME; "$AWS" <"$in" >"$WORK/o/$label.add.$i.out" 2>/dev/null; rc=$?; t1=$EPOCHREALTIME
        [[ $phase == add ]] || mv "$WORK/o/$label.add.$i.out" "$WORK/o/$label.del.$i.out"
        echo "cid-prof-$i ${t0/[.,]/} ${t1/[.,]/} $rc" >>"$WORK/s/$label.$phase"
    done
}
"$@"
EOF
loop() { node bash "$WORK/loops.sh" "$@"; }
del_confs() {
    local i c label
    for ((i = 1; i <= N; i++)); do
        ((i % 2)) && label=debug || label=error
        c=$(<"$WORK/conf.$label")
        printf '%s,"prevResult":%s}' "${c%\}}" "$(<"$WORK/o/$label.add.$i.out")" >"$WORK/o/$label.del.$i"
    done
}

echo "== 1. exec costs in the VM (median of $N; the host is ~30x faster)"
loop exec_costs
echo "/bin/true:                                  $(ms "$WORK/s/exec.true")"
echo "floor noop (C + libnl, static):             $(ms "$WORK/s/exec.floor-noop")"
echo "env /bin/true (the wrapper below):           $(ms "$WORK/s/exec.env-true")"
echo "env aws-cni VERSION:                        $(ms "$WORK/s/exec.version")"
echo "  SWIFT_BACKTRACE=enable=no:                $(ms "$WORK/s/exec.version-nobt")"
echo "  copy on tmpfs:                            $(ms "$WORK/s/exec.version-tmpfs")"
echo "  copy on tmpfs, SWIFT_BACKTRACE=enable=no: $(ms "$WORK/s/exec.version-tmpfs-nobt")"
echo "aws-cni STATUS (decode + ipamd ping):       $(ms "$WORK/s/exec.status")"
# ipamd's side alone: connect, an AddNetwork of a pod it serves (a checkpoint write each), answer.
if gcc -O2 -pthread -o "$WORK/rpc-load" scripts/bench/rpc-load.c; then
    echo "ipamd round trip, one client, 200 AddNetworks (rpc-load): $(node "$WORK/rpc-load" "$IPAMD_SOCKET" 200 1 "$N" |
        jq -r '"p50 \(.p50_ms) ms, p90 \(.p90_ms) ms, max \(.max_ms) ms, \(.errors) errors"')"
fi
/usr/bin/time -f 'aws-cni VERSION: %e s wall, %U s user, %S s sys, %R minor page faults, %M KiB max RSS' \
    env CNI_COMMAND=VERSION "$AWS" </dev/null >/dev/null
/usr/bin/time -f 'floor noop:      %e s wall, %U s user, %S s sys, %R minor page faults, %M KiB max RSS' "$FLOOR" noop

echo
echo "== 2. aws-cni strict ADD/DEL of $N pods: odd pods at log level Debug (default), even at error"
: >"$WORK/plugin.log"
loop pods add
del_confs
loop pods del
for x in debug.add error.add debug.del error.del; do awk '{print $3 - $2}' "$WORK/s/$x" >"$WORK/s/$x.us"; done
echo "ADD Debug: $(ms "$WORK/s/debug.add.us");  error: $(ms "$WORK/s/error.add.us")"
echo "DEL Debug: $(ms "$WORK/s/debug.del.us");  error: $(ms "$WORK/s/error.del.us")"
echo "failed execs: $(cat "$WORK/s"/{debug,error}.{add,del} | awk '$4 != 0' | wc -l)"
echo "plugin log lines per Debug ADD: $(jq -r 'select(.["cni.command"] == "ADD") | .msg' "$WORK/plugin.log" | wc -l | awk -v n=$(((N + 1) / 2)) '{print $1 / n}')"

echo
echo "== 3. phases of the Debug ADDs, from the plugin log (ms timestamps: +-1 ms; no tracer)"
python3 scripts/bench/phases.py "$WORK/s/debug.add" "$WORK/plugin.log"

echo
echo "== 4. syscalls of one ADD and one DEL (pod 1), strace -f"
mapfile -t -O 1 VETHS <"$WORK/veths"
export CNI_CONTAINERID=cid-prof-1 CNI_NETNS=/run/netns/prof-1 CNI_IFNAME=eth0 \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=prof-1;K8S_POD_UID=uid-prof-1"
trace() { # name cmd...: strace -f -yy -tt log + -c summary
    node strace -f -yy -ttt -o "$WORK/$1.trace" "${@:2}"
}
CNI_COMMAND=ADD trace aws-add "$AWS" <"$WORK/conf.debug" >"$WORK/o/trace.add.out" || echo "traced ADD failed"
printf '%s,"prevResult":%s}' "$(sed 's/}$//' "$WORK/conf.debug")" "$(<"$WORK/o/trace.add.out")" >"$WORK/o/trace.del"
CNI_COMMAND=DEL trace aws-del "$AWS" <"$WORK/o/trace.del" >/dev/null || echo "traced DEL failed"
trace floor-add "$FLOOR" add /run/netns/prof-1 1 0a:00:00:02:00:01 10.0.40.11 10.0.32.1 eth1 "${VETHS[1]}" cid-prof-1 || echo "traced floor ADD failed"
trace floor-del "$FLOOR" del 1 "${VETHS[1]}" || echo "traced floor DEL failed"
summary() { # trace file
    local f=$1
    printf '%-10s syscalls %4d, netlink requests %3d (dumps %2d), setns %d, failed open/stat %3d, mmap %3d, writes to the log %d\n' "$2" \
        "$(grep -cvE 'resumed>|\+\+\+|---' "$f")" \
        "$(grep -cE '(sendmsg|sendto)\([0-9]+<NETLINK' "$f")" \
        "$(grep -E '(sendmsg|sendto)\([0-9]+<NETLINK' "$f" | grep -c 'NLM_F_DUMP')" \
        "$(grep -c 'setns(' "$f")" \
        "$(grep -E '(openat|newfstatat|stat|access)\(' "$f" | grep -c ' = -1 E')" \
        "$(grep -c 'mmap(' "$f")" \
        "$(grep -E 'write\([0-9]+</' "$f" | grep -c 'plugin.log')"
}
summary "$WORK/aws-add.trace" "aws ADD"
summary "$WORK/floor-add.trace" "floor ADD"
summary "$WORK/aws-del.trace" "aws DEL"
summary "$WORK/floor-del.trace" "floor DEL"
types() { # trace file: netlink request types sent, with counts
    # Sockets in the pod netns are not decoded by strace (it asks sock_diag in its own netns):
    # their types show as numbers.
    awk 'BEGIN { split("0x10 RTM_NEWLINK 0x11 RTM_DELLINK 0x12 RTM_GETLINK 0x14 RTM_NEWADDR 0x16 RTM_GETADDR 0x18 RTM_NEWROUTE 0x1a RTM_GETROUTE 0x1c RTM_NEWNEIGH 0x1e RTM_GETNEIGH", m, " ");
               for (i = 1; i < 18; i += 2) name[m[i]] = m[i + 1] }
         /(sendmsg|sendto)\([0-9]+<NETLINK/ { if (match($0, /nlmsg_type=(RTM_[A-Z_]+|0x[0-9a-f]+)/)) { t = substr($0, RSTART + 11, RLENGTH - 11);
         if (t in name) t = name[t] " (pod netns)";
         if ($0 ~ /NLM_F_DUMP/) t = t " (dump)"; n[t]++ } } END { for (t in n) printf "  %3d %s\n", n[t], t }' "$1" | sort -rn
}
echo "netlink requests by type, aws-cni ADD:"; types "$WORK/aws-add.trace"
echo "netlink requests by type, floor ADD:"; types "$WORK/floor-add.trace"
echo "netlink requests by type, aws-cni DEL:"; types "$WORK/aws-del.trace"
echo "ipamd round trip in the traced ADD (connect to the reply's last read):"
awk '/connect\([0-9]+<UNIX/ && /ipamd.sock/ {c = $2} c && /recvfrom\([0-9]+<UNIX/ {r = $2} END { if (c && r) printf "  %.1f ms (under strace)\n", (r - c) * 1000 }' "$WORK/aws-add.trace"
echo "traced ADD, first and last syscall times relative to execve (under strace: inflated):"
awk 'NR == 1 {t0 = $2} /NETLINK/ && !n {n = $2} /connect\(/ && /ipamd/ && !c {c = $2} /read\(0/ && !r {r = $2} {last = $2}
     END { printf "  stdin read at %.0f ms, ipamd connect at %.0f ms, first netlink at %.0f ms, exit at %.0f ms\n", (r-t0)*1000, (c-t0)*1000, (n-t0)*1000, (last-t0)*1000 }' "$WORK/aws-add.trace"
echo "strace -c of the ADD (top 15):"
CNI_COMMAND=ADD node strace -f -c -o "$WORK/c.txt" "$AWS" <"$WORK/conf.debug" >/dev/null
head -n 18 "$WORK/c.txt" | sed 's/^/  /'
CNI_COMMAND=DEL node "$AWS" <"$WORK/o/trace.del" >/dev/null 2>&1 # pod 1, added again by strace -c

echo
echo "== 5. where aws-cni's CPU time goes in the VM: perf (cpu-clock, frame-pointer call chains)"
# Needs symbols: the plain `swift build -c release` binary (the Makefile's release is stripped).
if ! node perf record -q -e cpu-clock -o "$WORK/perf.probe" -- true 2>/dev/null; then
    echo "  perf cannot record here"
else
    profile() { # name command...: perf over the command, aws-cni's samples by category
        node perf record -q -e cpu-clock -F 20000 -g -o "$WORK/perf.$1" -- "${@:2}" >/dev/null 2>&1
        echo "$1 (aws-cni's samples only; shares of them):"
        perf report -i "$WORK/perf.$1" --comm aws-cni --no-children --sort dso,sym -g none --stdio --percent-limit 0 2>/dev/null |
            python3 scripts/bench/perf_categories.py "${PROFILE_TOP:-12}"
    }
    rm -f "$WORK"/s/{debug,error}.{add,del}
    profile version bash -c 'for ((k = 0; k < 40; k++)); do CNI_COMMAND=VERSION "$0" </dev/null; done' "$AWS"
    profile add bash "$WORK/loops.sh" pods add
    del_confs
    profile del bash "$WORK/loops.sh" pods del
fi
if [[ -n ${PROFILE_KEEP:-} ]]; then for f in "$WORK"/*.trace; do echo "--- $f"; cat "$f"; done; fi
