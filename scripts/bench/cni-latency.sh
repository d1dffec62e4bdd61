#!/bin/bash
# Benchmark, not a test: CNI ADD/DEL latency of branch pods. Runs inside the VM (it needs 802.1Q):
#   scripts/vm/run.sh scripts/bench/cni-latency.sh     (scripts/bench/run.sh does this for you)
# All contestants run in one boot, because emulated timings move +-30-40% between boots:
#   aws-cni-strict, aws-cni-standard  the plugin, with ipamd (static pod-ENI file) in that mode
#   debian-vlan-host-local            containernetworking-plugins `vlan` (VLAN link moved into the
#                                     pod netns) with `host-local` IPAM, exec'd through CNI_PATH
#   floor                             scripts/bench/floor.c: aws-cni strict's netlink requests
#                                     in one C process, linked statically like aws-cni
#   baseline-strict, baseline-standard  with BENCH_BASELINE=DIR: the aws-cni and ipamd in DIR
#                                     (an earlier build), for a before/after in the same boot
# Each contestant ADDs BENCH_PODS pods one after the other (pod netns made beforehand, same VLAN
# ids and netns for everyone), then DELs them all (with prevResult, as a runtime does); each
# exec is timed alone with $EPOCHREALTIME by a bash already inside the node netns, so no extra
# fork lands in the timed region. Then 20 aws-cni strict pods are added, and deleted, 4 at a time.
# Then the scale part: for each mode, 20 pods added and deleted one after the other with 0, then
# 50, then 110 (BENCH_SCALE) other branch pods of that mode already on the node; in strict mode
# the floor does the same 20 pods beside aws-cni.
# Every exit code is checked; failed execs are counted and left out of the latency figures.
# Prints one JSON document on stdout; progress and diagnostics go to stderr.
#
# Environment: BIN (aws-cni and ipamd; default .build/release), FLOOR (the compiled floor;
# default .build-bench/floor), BENCH_PODS (50), BENCH_ROUNDS (2: rounds pool their samples,
# even rounds in reverse contestant order), BENCH_CONTESTANTS (all four, in the order above
# reversed: floor first; the two baseline contestants are added before the aws-cni ones when
# BENCH_BASELINE is set), BENCH_SCALE (pods already present: "0 50 110"; empty skips the part).
set -uo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh

BIN=${BIN:-.build/release}
FLOOR=${FLOOR:-.build-bench/floor}
PODS=${BENCH_PODS:-50}
ROUNDS=${BENCH_ROUNDS:-2}
BASELINE=${BENCH_BASELINE:-}
if [[ -n $BASELINE ]]; then DEFAULT_CONTESTANTS="floor debian-vlan-host-local baseline-strict baseline-standard aws-cni-strict aws-cni-standard"
else DEFAULT_CONTESTANTS="floor debian-vlan-host-local aws-cni-strict aws-cni-standard"; fi
CONTESTANTS=(${BENCH_CONTESTANTS:-$DEFAULT_CONTESTANTS})
PAR_PODS=20
PAR_JOBS=4
SCALE=(${BENCH_SCALE-0 50 110})
SCALE_PODS=20
DEBIAN_CNI=/usr/lib/cni
GW=10.0.32.1

# Pod i: netns bench-i, VLAN i, branch MAC/IP derived from i, host veth name from the file of
# names aws-cni would use (strict prefix), so the floor builds exactly the same links.
pod_vars() {
    local i=$1
    NETNS=/run/netns/bench-$i
    CID=cid-bench-$i
    POD_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench-$i;K8S_POD_UID=uid-bench-$i"
    printf -v MAC '0a:00:00:01:%02x:%02x' $((i >> 8)) $((i & 255))
    IP=10.0.$((40 + i / 200)).$((i % 200 + 10))
    VETH=${VETHS[i]}
}

# --- the timed loops, run as `ip netns exec node bash $0 --in-node ...` ---------------------

# in_node_sequential CONTESTANT PHASE [LABEL FIRST LAST]: execs for pods FIRST..LAST (1..PODS)
# one after the other; appends the successful samples (microseconds) to $WORK/samples/LABEL.PHASE
# and the failure count to LABEL.PHASE.fail (LABEL defaults to CONTESTANT).
in_node_sequential() {
    local c=$1 phase=$2 label=${3:-$1} i rc t0 t1 in fails=0 dir=$WORK/run/${3:-$1}
    local -a cmd samples=() times=()
    mkdir -p "$dir"
    for ((i = ${4:-1}; i <= ${5:-PODS}; i++)); do
        pod_vars "$i"
        # Everything but the exec itself is prepared before t0.
        export CNI_COMMAND=${phase^^} CNI_CONTAINERID=$CID CNI_NETNS=$NETNS CNI_IFNAME=eth0 CNI_ARGS=$POD_ARGS CNI_PATH=$DEBIAN_CNI
        case $c in
        aws-cni-*) cmd=("$AWS"); [[ $phase == add ]] && in=$WORK/conf/$c.add || in=$WORK/conf/$label.del.$i ;;
        baseline-*) cmd=("$BASE_AWS"); [[ $phase == add ]] && in=$WORK/conf/aws-cni-${c#baseline-}.add || in=$WORK/conf/$label.del.$i ;;
        debian-vlan-host-local) cmd=("$DEBIAN_CNI/vlan"); in=$WORK/conf/$c.$phase.$i ;;
        floor)
            in=/dev/null
            if [[ $phase == add ]]; then cmd=("$FLOOR" add "$NETNS" "$i" "$MAC" "$IP" "$GW" eth1 "$VETH" "$CID")
            else cmd=("$FLOOR" del "$i" "$VETH"); fi ;;
        esac
        t0=$EPOCHREALTIME
        "${cmd[@]}" <"$in" >"$dir/$i.$phase.out" 2>"$dir/$i.$phase.err"
        rc=$?
        t1=$EPOCHREALTIME
        if ((rc == 0)); then
            samples+=($((10#${t1/[.,]/} - 10#${t0/[.,]/})))
            # For the phase split from the plugin log (scripts/bench/phases.py).
            times+=("$CID ${t0/[.,]/} ${t1/[.,]/}")
        else
            fails=$((fails + 1))
            [[ -s $WORK/samples/$label.$phase.error ]] ||
                printf 'pod %d exit %d: %s %s\n' "$i" "$rc" "$(<"$dir/$i.$phase.out")" "$(<"$dir/$i.$phase.err")" >"$WORK/samples/$label.$phase.error"
        fi
    done
    ((${#samples[@]})) && printf '%s\n' "${samples[@]}" >>"$WORK/samples/$label.$phase"
    ((${#times[@]})) && printf '%s\n' "${times[@]}" >>"$WORK/samples/$label.$phase.times"
    echo "$fails" >>"$WORK/samples/$label.$phase.fail"
}

# in_node_parallel PHASE: aws-cni strict for pods 1..PAR_PODS, PAR_JOBS at a time; writes
# "wall_us failures" to $WORK/samples/parallel.PHASE.
in_node_parallel() {
    local phase=$1 i t0 t1 running=0 fails=0 in dir=$WORK/run/parallel
    mkdir -p "$dir"
    t0=$EPOCHREALTIME
    for ((i = 1; i <= PAR_PODS; i++)); do
        if ((running >= PAR_JOBS)); then
            wait -n || fails=$((fails + 1))
            running=$((running - 1))
        fi
        pod_vars "$i"
        [[ $phase == add ]] && in=$WORK/conf/aws-cni-strict.add || in=$WORK/conf/parallel.del.$i
        CNI_COMMAND=${phase^^} CNI_CONTAINERID=$CID CNI_NETNS=$NETNS CNI_IFNAME=eth0 CNI_ARGS=$POD_ARGS CNI_PATH=$DEBIAN_CNI \
            "$AWS" <"$in" >"$dir/$i.$phase.out" 2>"$dir/$i.$phase.err" &
        running=$((running + 1))
    done
    while ((running > 0)); do
        wait -n || fails=$((fails + 1))
        running=$((running - 1))
    done
    t1=$EPOCHREALTIME
    echo "$((10#${t1/[.,]/} - 10#${t0/[.,]/})) $fails" >"$WORK/samples/parallel.$phase"
}

# in_node_exec_baselines: what one exec costs before any work: 40 of each, round robin so load
# drift hits all three alike.
in_node_exec_baselines() {
    local k t0 t1 name names=(true floor-noop aws-cni-version)
    for name in "${names[@]}"; do : >"$WORK/samples/exec.$name"; done
    for ((k = 0; k < 40; k++)); do
        for name in "${names[@]}"; do
            case $name in
            true) t0=$EPOCHREALTIME; /bin/true; t1=$EPOCHREALTIME ;;
            floor-noop) t0=$EPOCHREALTIME; "$FLOOR" noop; t1=$EPOCHREALTIME ;;
            aws-cni-version) t0=$EPOCHREALTIME; CNI_COMMAND=VERSION "$AWS" </dev/null >/dev/null; t1=$EPOCHREALTIME ;;
            esac
            echo $((10#${t1/[.,]/} - 10#${t0/[.,]/})) >>"$WORK/samples/exec.$name"
        done
    done
}

if [[ ${1:-} == --in-node ]]; then
    shift
    mapfile -t -O 1 VETHS <"$WORK/veths"
    "in_node_$1" "${@:2}"
    exit
fi

# --- setup (not timed) ------------------------------------------------------------------------
exec 3>&1 1>&2 # fd 3 carries the JSON result; everything else goes to stderr
say() { echo "cni-latency: $*"; }
die() { say "$*"; exit 1; }
[[ -x $FLOOR ]] || die "no floor binary at $FLOOR (scripts/bench/run.sh compiles scripts/bench/floor.c)"
[[ -x $BIN/aws-cni && -x $BIN/ipamd ]] || die "no aws-cni/ipamd in BIN=$BIN"
[[ -x $DEBIAN_CNI/vlan && -x $DEBIAN_CNI/host-local ]] || die "containernetworking-plugins missing in $DEBIAN_CNI"
((PODS >= 1 && PODS <= 4094 && PODS >= PAR_PODS)) || die "BENCH_PODS must be $PAR_PODS..4094"
FLOOR=$(realpath "$FLOOR")
AWS=$(realpath "$BIN/aws-cni")
BASE_AWS=
if [[ -n $BASELINE ]]; then
    [[ -x $BASELINE/aws-cni && -x $BASELINE/ipamd ]] || die "no aws-cni/ipamd in BENCH_BASELINE=$BASELINE"
    BASE_AWS=$(realpath "$BASELINE/aws-cni")
fi
source scripts/lib/fabric.sh

# The scale part needs SCALE_PODS measured pods plus the largest number already present.
NS_COUNT=$PODS
for k in "${SCALE[@]}"; do ((SCALE_PODS + k > NS_COUNT)) && NS_COUNT=$((SCALE_PODS + k)); done
((NS_COUNT <= 4094)) || die "BENCH_SCALE needs more than 4094 VLANs"
POD_NS=()
for ((i = 1; i <= NS_COUNT; i++)); do POD_NS+=("bench-$i"); done
say "fabric and $NS_COUNT pod netns"
fabric_up "${POD_NS[@]}"
trap 'fabric_down; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/conf" "$WORK/samples" "$WORK/run" "$WORK/host-local"
export WORK FLOOR AWS BASE_AWS PODS PAR_PODS PAR_JOBS DEBIAN_CNI GW

# The host veth names aws-cni strict derives, in one process rather than a fork per pod.
host_veth_names vlan $(for ((i = 1; i <= NS_COUNT; i++)); do echo "default.bench-$i"; done) >"$WORK/veths"
mapfile -t -O 1 VETHS <"$WORK/veths"

pods_json='{"pods": {'
for ((i = 1; i <= NS_COUNT; i++)); do
    pod_vars "$i"
    ((i > 1)) && pods_json+=','
    printf -v entry '"default/bench-%d": [{"eniId":"eni-%017x","ifAddress":"%s","privateIp":"%s","vlanId":%d,"subnetCidr":"10.0.32.0/19","associationID":"trunk-assoc-%d"}]' \
        "$i" "$i" "$MAC" "$IP" "$i" "$i"
    pods_json+=$entry
done
write_pods_file <<<"$pods_json}}"

# Debian pair: one netconf per pod (the VLAN id is in it), host-local with its own dataDir.
debian_conf() { # vlan
    printf '{"cniVersion":"1.0.0","name":"bench-vlan","type":"vlan","master":"eth1","vlanId":%d,"mtu":9001,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.0.32.0/19","rangeStart":"10.0.48.10","rangeEnd":"10.0.63.250","gateway":"%s"}]],"routes":[{"dst":"0.0.0.0/0"}]}}' \
        "$1" "$WORK/host-local" "$GW"
}
for ((i = 1; i <= PODS; i++)); do debian_conf "$i" >"$WORK/conf/debian-vlan-host-local.add.$i"; done

IPAMD_MODE=
ipamd_mode() { # strict|standard [BIN]: (re)start ipamd (BIN's) in that mode when another runs
    local bin=${2:-$BIN}
    [[ $IPAMD_MODE == "$1 $bin" ]] && return 0
    stop_ipamd
    say "ipamd ($bin) in $1 mode"
    rm -f "$WORK/ipam.json" # each build starts from no checkpoint
    BIN=$bin start_ipamd POD_SECURITY_GROUP_ENFORCING_MODE="$1" || die "ipamd did not start"
    IPAMD_MODE="$1 $bin"
    # Production defaults: Debug level, a log file.
    conf "$1" >"$WORK/conf/aws-cni-$1.add"
}
in_node() { node bash scripts/bench/cni-latency.sh --in-node "$@"; }

# DEL netconf = ADD netconf + prevResult (the ADD's output), as runtimes send it.
write_del_confs() { # contestant [first last [label]]
    local c=$1 label=${4:-$1} i out
    for ((i = ${2:-1}; i <= ${3:-PODS}; i++)); do
        case $c in
        aws-cni-strict | aws-cni-standard | baseline-strict | baseline-standard)
            out=$WORK/run/$label/$i.add.out; conf "${c##*-}" "$(<"$out")" >"$WORK/conf/$label.del.$i" ;;
        parallel) out=$WORK/run/parallel/$i.add.out; conf strict "$(<"$out")" >"$WORK/conf/parallel.del.$i" ;;
        debian-vlan-host-local)
            out=$WORK/run/$c/$i.add.out
            local base
            base=$(<"$WORK/conf/$c.add.$i")
            printf '%s,"prevResult":%s}' "${base%\}}" "$(<"$out")" >"$WORK/conf/$c.del.$i" ;;
        esac
    done
}

# Node links, rules and routes, to show that a contestant's DEL left nothing behind.
node_state() { { node ip -o link show | awk -F': ' '{print $2}'; node ip rule show; node ip route show table all; } | sort; }

ipamd_mode strict

# Warm-up: the first exec of each binary reads it through 9p; keep that out of the samples.
for b in "$AWS" ${BASE_AWS:+"$BASE_AWS"} "$DEBIAN_CNI/vlan" "$DEBIAN_CNI/host-local"; do CNI_COMMAND=VERSION "$b" </dev/null >/dev/null 2>&1; done
"$FLOOR" noop

# --- the floor builds what aws-cni strict builds ------------------------------------------
snapshot() { # host veth of pod 1
    local veth=$1 hmac l k
    hmac=$(node cat "/sys/class/net/$veth/address")
    node ip rule show
    node ip route show table 101
    node ip route show table main
    # LOWER_UP is left out: carrier may lag the request by a moment.
    node ip -j -d link show dev "$veth" | jq -c '.[0] | {ifname, flags: (.flags - ["LOWER_UP"]), mtu, ifalias, kind: .linkinfo.info_kind}'
    node ip -j -d link show dev vlan.eth.1 | jq -c '.[0] | {ifname, flags: (.flags - ["LOWER_UP"]), mtu, address, ifalias, link,
        kind: .linkinfo.info_kind, id: .linkinfo.info_data.id, protocol: .linkinfo.info_data.protocol}'
    ip -n bench-1 -j link show dev eth0 | jq -c '.[0] | {ifname, flags: (.flags - ["LOWER_UP"]), mtu}'
    ip -n bench-1 -4 -o addr show dev eth0 | awk '{print $2, $3, $4, $5, $6}'
    ip -n bench-1 route show
    ip -n bench-1 neigh show 169.254.1.1 | sed "s/$hmac/HOST-VETH-MAC/"
    for l in "$veth" vlan.eth.1; do
        for k in accept_ra accept_redirects forwarding; do echo "$l $k $(node cat "/proc/sys/net/ipv6/conf/$l/$k")"; done
    done
}
say "checking that the floor builds the same datapath as aws-cni strict (pod 1)"
pod_vars 1
floor_matches=false
if add_out=$(cni ADD bench-1 "$NETNS" strict); then
    aws_snap=$(snapshot "$VETH")
    cni DEL bench-1 "$NETNS" strict "$add_out" >/dev/null || say "aws-cni DEL of pod 1 failed"
    if node "$FLOOR" add "$NETNS" 1 "$MAC" "$IP" "$GW" eth1 "$VETH" "$CID"; then
        floor_snap=$(snapshot "$VETH")
        node "$FLOOR" del 1 "$VETH" || say "floor DEL of pod 1 failed"
        if [[ $aws_snap == "$floor_snap" ]]; then floor_matches=true; else
            say "the floor's datapath differs from aws-cni strict's:"
            diff <(echo "$aws_snap") <(echo "$floor_snap")
        fi
    else say "floor ADD of pod 1 failed"; fi
else say "aws-cni strict ADD of pod 1 failed: $add_out"; fi
say "floor matches aws-cni strict: $floor_matches"

say "exec baselines"
in_node exec_baselines

# --- the contestants, one after the other, same pods ------------------------------------------
leftovers=0
for ((round = 1; round <= ROUNDS; round++)); do
    order=("${CONTESTANTS[@]}")
    if ((round % 2 == 0)); then order=(); for ((k = ${#CONTESTANTS[@]} - 1; k >= 0; k--)); do order+=("${CONTESTANTS[k]}"); done; fi
    for c in "${order[@]}"; do
        case $c in
        aws-cni-strict) ipamd_mode strict ;;
        aws-cni-standard) ipamd_mode standard ;;
        baseline-strict) ipamd_mode strict "$BASELINE" ;;
        baseline-standard) ipamd_mode standard "$BASELINE" ;;
        floor | debian-vlan-host-local) ;;
        *) die "unknown contestant $c" ;;
        esac
        before=$(node_state)
        say "round $round: $c: $PODS ADDs"
        in_node sequential "$c" add
        write_del_confs "$c"
        say "round $round: $c: $PODS DELs"
        in_node sequential "$c" del
        after=$(node_state)
        if [[ $before != "$after" ]]; then
            n=$(diff <(echo "$before") <(echo "$after") | grep -c '^[<>]')
            say "$c left $n differences in the node after DEL:"
            diff <(echo "$before") <(echo "$after") | head -20
            leftovers=$((leftovers + n))
        fi
        if [[ $c == debian-vlan-host-local ]]; then
            # host-local keeps one file per allocated IP: DEL must have released them all.
            held=$(find "$WORK/host-local" -name '10.*' | wc -l)
            ((held == 0)) || { say "host-local still holds $held addresses"; leftovers=$((leftovers + held)); }
        fi
    done
done

say "$PAR_PODS aws-cni strict pods, $PAR_JOBS at a time"
ipamd_mode strict
before=$(node_state)
in_node parallel add
write_del_confs parallel 1 "$PAR_PODS"
in_node parallel del
after=$(node_state)
[[ $before == "$after" ]] || { say "parallel DEL left differences"; leftovers=$((leftovers + 1)); }

# --- scale: the same 20 pods with 0, 50, 110 others already on the node ----------------------
# Pods 1..SCALE_PODS are measured; pods after them are the ones already present. Every strict pod
# adds two rules that the kernel and each rule dump walk, so this shows whether cost grows.
for mode in strict standard; do
    ((${#SCALE[@]})) || break
    c=aws-cni-$mode
    ipamd_mode "$mode"
    before=$(node_state)
    present=0
    for k in "${SCALE[@]}"; do
        if ((k > present)); then
            say "scale $mode: $((k - present)) more pods present"
            in_node sequential "$c" add "background-$mode" $((SCALE_PODS + present + 1)) $((SCALE_PODS + k))
            present=$k
        fi
        say "scale $mode: $SCALE_PODS ADDs and DELs with $present other pods present"
        in_node sequential "$c" add "scale-$mode-$present" 1 "$SCALE_PODS"
        write_del_confs "$c" 1 "$SCALE_PODS" "scale-$mode-$present"
        in_node sequential "$c" del "scale-$mode-$present" 1 "$SCALE_PODS"
        # The floor (a strict pod's requests alone) beside it: what of any growth is the kernel's.
        if [[ $mode == strict ]]; then
            in_node sequential floor add "scale-floor-$present" 1 "$SCALE_PODS"
            in_node sequential floor del "scale-floor-$present" 1 "$SCALE_PODS"
        fi
    done
    if ((present > 0)); then
        write_del_confs "$c" $((SCALE_PODS + 1)) $((SCALE_PODS + present)) "background-$mode"
        in_node sequential "$c" del "background-$mode" $((SCALE_PODS + 1)) $((SCALE_PODS + present))
    fi
    after=$(node_state)
    [[ $before == "$after" ]] || { say "scale $mode left differences"; leftovers=$((leftovers + 1)); }
done

# --- result --------------------------------------------------------------------------------
S=$WORK/samples
phase_json() { # contestant phase
    local f=$S/$1.$2 fails=0 n stats samples err=""
    [[ -f $f ]] || : >"$f"
    [[ -f $f.fail ]] && while read -r n; do fails=$((fails + n)); done <"$f.fail"
    [[ -f $f.error ]] && err=$(<"$f.error")
    stats=$(stats_json "$f")
    samples=$(samples_json "$f")
    jq -nc --argjson s "$stats" --argjson f "$fails" --argjson samples "$samples" --arg err "$err" \
        '($s // {n: 0}) + {failures: $f, samples_ms: $samples} + (if $err == "" then {} else {first_error: $err} end)'
}
# add_phases LABEL: the ADDs' phase medians from the plugin log (aws-cni runs only), or null.
add_phases() {
    local t=$S/$1.add.times
    [[ $1 == *floor* || $1 == debian* || ! -s $t ]] && { echo null; return; }
    python3 scripts/bench/phases.py "$t" "$WORK/plugin.log" --json || echo null
}
contestants=$(for c in "${CONTESTANTS[@]}"; do
    jq -nc --arg c "$c" --argjson add "$(phase_json "$c" add)" --argjson del "$(phase_json "$c" del)" --argjson split "$(add_phases "$c")" \
        '{($c): {add: ($add + {phases: $split}), del: $del}}'
done | jq -sc 'add')
# {"strict": {"0": {add, del}, "50": ...}, "standard": ...}, plus the failures of the pods present.
scale=$(for mode in strict standard floor; do
    for k in "${SCALE[@]}"; do
        jq -nc --arg m "$mode" --arg k "$k" --argjson add "$(phase_json "scale-$mode-$k" add)" --argjson del "$(phase_json "scale-$mode-$k" del)" \
            --argjson split "$(add_phases "scale-$mode-$k")" '{($m): {($k): {add: ($add + {phases: $split}), del: $del}}}'
    done
    [[ ! -f $S/background-$mode.add ]] || jq -nc --arg m "$mode" --argjson add "$(phase_json "background-$mode" add)" \
        --argjson del "$(phase_json "background-$mode" del)" '{($m): {background: {add: ($add | {n, failures}), del: ($del | {n, failures})}}}'
done | jq -sc 'reduce .[] as $x ({}; . * $x)')
read -r par_add_us par_add_fail <"$S/parallel.add"
read -r par_del_us par_del_fail <"$S/parallel.del"
jq -n --argjson contestants "$contestants" --argjson pods "$PODS" --argjson rounds "$ROUNDS" \
    --arg order "${CONTESTANTS[*]}" --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" \
    --argjson par_add_us "$par_add_us" --argjson par_add_fail "$par_add_fail" \
    --argjson par_del_us "$par_del_us" --argjson par_del_fail "$par_del_fail" \
    --argjson bin_true "$(stats_json "$S/exec.true")" --argjson noop "$(stats_json "$S/exec.floor-noop")" \
    --argjson version "$(stats_json "$S/exec.aws-cni-version")" \
    --argjson floor_matches "$floor_matches" --argjson leftovers "$leftovers" --argjson scale "$scale" --argjson scale_pods "$SCALE_PODS" '{
    kernel: $kernel, cpus: $cpus, pods: $pods, rounds: $rounds, order: ($order | split(" ")),
    percentiles: "nearest-rank",
    contestants: $contestants,
    parallel: {pods: 20, concurrency: 4, mode: "strict",
               add_wall_ms: ($par_add_us / 100 | round / 10), add_failures: $par_add_fail,
               del_wall_ms: ($par_del_us / 100 | round / 10), del_failures: $par_del_fail},
    exec_baselines: {bin_true: $bin_true, floor_noop: $noop, aws_cni_version: $version},
    scale: ($scale + {measured_pods: $scale_pods}),
    floor_matches_aws_cni_strict: $floor_matches,
    leftovers: $leftovers
}' >&3
say "done"
