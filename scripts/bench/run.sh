#!/bin/bash
# `make bench`: benchmarks, not tests (scripts/test.sh runs none of this; nothing asserts timing).
#   1. compiles the floor (scripts/bench/floor.c, libnl) into .build-bench/
#   2. one VM boot: CNI ADD/DEL latency of aws-cni strict and standard, the Debian vlan +
#      host-local pair and the floor (static, like aws-cni), two rounds in alternating order;
#      per-exec baselines; 20 aws-cni pods 4 at a time; the scale table: 20 pods with 0, 50 and
#      110 others present (scripts/bench/cni-latency.sh)
#   3. on the host: aws-cni VERSION wall time, and ipamd RPC latency / resident memory when
#      scripts/bench/ipamd-rpc.sh / ipamd-rss.sh exist; regular pods (no VLAN needed): aws-cni
#      ADD/DEL against Debian ptp + host-local and the floor, EC2 calls per 100 pod starts warm
#      and cold, and a churn's leftovers (BENCH_REGULAR_PODS pods, default 50; needs the test
#      build, which `make bench` makes)
#   4. prints a table and writes everything as JSON to $BENCH_OUT (default bench-results.json)
# Percentiles are nearest-rank (the sample at rank ceil(p/100 * n)). Exits 1 when an exec
# failed, a DEL left something behind or the floor did not build aws-cni's datapath: the
# figures would not mean what they say.
# `run.sh --table [FILE]` prints the table of an earlier result again.
# Environment: BIN (default .build/release), BENCH_OUT, and BENCH_PODS, BENCH_ROUNDS,
# BENCH_CONTESTANTS, BENCH_SCALE, BENCH_BASELINE (an earlier build's directory: its aws-cni and
# ipamd run as two more contestants in the same boot, for a before/after; see cni-latency.sh).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
[[ $(id -u) == 0 ]] || { echo "run as root: the bench creates network namespaces and a VM" >&2; exit 1; }
export BIN=${BIN:-.build/release}
OUT=${BENCH_OUT:-bench-results.json}

# print_table FILE: the readable table of a result file.
print_table() {
    local OUT=$1
    r() { jq -r "$1" "$OUT"; }
    echo
    echo "CNI ADD/DEL in the VM (QEMU TCG: ~30x slower than a real node; compare rows, not absolutes)"
    echo "host load average (1/5/15 min) before the VM: $(r .host_load_average_around_vm.before), after: $(r .host_load_average_around_vm.after)"
    echo "$(r .vm.pods) pods per contestant$(r 'if .vm.rounds > 1 then " x \(.vm.rounds) rounds (pooled; even rounds in reverse order)" else "" end'), added one after the other, then deleted; ms; nearest-rank percentiles; ratios are of medians"
    printf '%-26s %27s %27s %5s %16s %16s\n' "" "---------- ADD ----------" "---------- DEL ----------" "" "ADD ratio" "DEL ratio"
    printf '%-26s %8s %8s %9s %8s %8s %9s %5s %7s %8s %7s %8s\n' contestant median p90 max median p90 max fail /floor /debian /floor /debian
    jq -r '
        # ms with one decimal, ratios with two; "-" where there is nothing to show.
        def fmt(d): if . == null then "-" else (. * d | round) as $n | ($n / d | floor | tostring) + "." +
            ($n % d | tostring | ("00" + .)[-(d | tostring | length - 1):]) end;
        def f: fmt(10);
        def x: fmt(100);
        [["aws-cni-strict", "aws-cni strict"], ["aws-cni-standard", "aws-cni standard"],
         ["baseline-strict", "baseline strict"], ["baseline-standard", "baseline standard"],
         ["debian-vlan-host-local", "Debian vlan + host-local"], ["floor", "floor (C, libnl, static)"]][] as [$k, $name] |
        .vm.contestants[$k] as $c | select($c != null) | (.ratios[$k] // {}) as $r |
        [$name, ($c.add.median_ms | f), ($c.add.p90_ms | f), ($c.add.max_ms | f),
         ($c.del.median_ms | f), ($c.del.p90_ms | f), ($c.del.max_ms | f), ($c.add.failures + $c.del.failures | tostring),
         ($r.add_vs_floor | x), ($r.add_vs_debian | x), ($r.del_vs_floor | x), ($r.del_vs_debian | x)] | @tsv' "$OUT" |
        while IFS=$'\t' read -r label a1 a2 a3 d1 d2 d3 fl x1 x2 x3 x4; do
            printf '%-26s %8s %8s %9s %8s %8s %9s %5s %7s %8s %7s %8s\n' "$label" "$a1" "$a2" "$a3" "$d1" "$d2" "$d3" "$fl" "$x1" "$x2" "$x3" "$x4"
        done
    jq -r '.vm.contestants | to_entries[] | select(.value.add.phases.n // 0 > 0) |
        "  \(.key) ADD phases (medians from the plugin log): exec to first line \(.value.add.phases.start_ms) ms, first to last line \(.value.add.phases.work_ms) ms, last line to exit \(.value.add.phases.end_ms) ms"' "$OUT"
    echo
    r '.vm.parallel | "20 aws-cni strict pods, 4 at a time (VM): ADD wall \(.add_wall_ms) ms, \(.add_failures) failures; DEL wall \(.del_wall_ms) ms, \(.del_failures) failures"'
    r '.vm.exec_baselines | "VM cost of one exec (median of \(.floor_noop.n), round robin): /bin/true \(.bin_true.median_ms) ms, floor noop \(.floor_noop.median_ms) ms, aws-cni VERSION \(.aws_cni_version.median_ms) ms: VERSION/noop \(if .floor_noop.median_ms > 0 then (.aws_cni_version.median_ms / .floor_noop.median_ms * 100 | round / 100) else "-" end)"'
    if [[ $(jq '.vm.scale | length > 1' "$OUT") == true ]]; then
        echo
        r '.vm.scale | "Scale (VM): \(.measured_pods) pods added then deleted one after the other, with N other branch pods of the same mode already on the node; ms; ratios are of medians against N = 0"'
        printf '%-18s %5s %9s %9s %9s %9s %5s %8s %8s  %s\n' mode N "ADD med" "ADD p90" "DEL med" "DEL p90" fail "ADD/N=0" "DEL/N=0" "ADD phases start/work/end"
        jq -r '.vm.scale | del(.measured_pods) | to_entries | sort_by(.key | {strict: 0, floor: 1, standard: 2}[.])[] | .key as $m | .value | (.["0"] // null) as $z |
            del(.background) | to_entries | sort_by(.key | tonumber)[] |
            def r(a; b): if a != null and b != null and b > 0 then (a / b * 100 | round / 100 | tostring) else "-" end;
            [$m, .key, (.value.add.median_ms // "-"), (.value.add.p90_ms // "-"), (.value.del.median_ms // "-"), (.value.del.p90_ms // "-"),
             (.value.add.failures + .value.del.failures), r(.value.add.median_ms; $z.add.median_ms), r(.value.del.median_ms; $z.del.median_ms),
             (.value.add.phases | if . == null then "-" else "\(.start_ms)/\(.work_ms)/\(.end_ms)" end)] | @tsv' "$OUT" |
            while IFS=$'\t' read -r m n a1 a2 d1 d2 fl x1 x2 ph; do
                [[ $m == floor ]] && m="floor (strict)" || m="aws-cni $m"
                printf '%-18s %5s %9s %9s %9s %9s %5s %8s %8s  %s\n' "$m" "$n" "$a1" "$a2" "$d1" "$d2" "$fl" "$x1" "$x2" "$ph"
            done
    fi
    r '.vm | "Floor builds the same datapath as aws-cni strict (pod 1 compared): \(if .floor_matches_aws_cni_strict then "yes" else "NO" end); differences left after DELs: \(.leftovers)"'
    r '.host.aws_cni_version | "Host: aws-cni VERSION wall time: median \(.median_ms) ms, p90 \(.p90_ms) ms, max \(.max_ms) ms (n=\(.n))"'
    r '.host.ipamd_rpc | if . == null then "Host: ipamd RPC latency: not available" else
        "Host: ipamd RPC, \(.requests) requests from \(.clients) concurrent clients: p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, max \(.max_ms) ms, \(.per_second) requests/s, \(.errors) errors" +
        (if .floor == null then "" else "; floor (C, canned reply, one thread): p50 \(.floor.p50_ms) ms, p99 \(.floor.p99_ms) ms, \(.floor.per_second) requests/s" end) end'
    if [[ $(jq '.host.regular_pods != null' "$OUT") == true ]]; then
        echo
        r '.host.regular_pods.latency | "Regular pods on the host: \(.pods) pods x \(.rounds) rounds per contestant, added one after the other, then deleted; ms from spawn to reaped; nearest-rank"'
        printf '%-26s %8s %8s %8s %8s %8s %8s %5s %7s %8s\n' contestant "ADD med" p90 p99 "DEL med" p90 p99 fail /floor /debian
        jq -r '.host.regular_pods.latency.contestants as $c |
            def r(a; b): if a != null and b != null and b > 0 then (a / b * 100 | round / 100 | tostring) else "-" end;
            ["aws-cni", "debian-ptp-host-local", "floor"][] as $k | $c[$k] | select(. != null) |
            [$k, .add.median_ms, .add.p90_ms, .add.p99_ms, .del.median_ms, .del.p90_ms, .del.p99_ms, .failures,
             r(.add.median_ms; $c.floor.add.median_ms), r(.add.median_ms; $c["debian-ptp-host-local"].add.median_ms)] | map(tostring) | @tsv' "$OUT" |
            while IFS=$'\t' read -r k a1 a2 a3 d1 d2 d3 fl x1 x2; do
                printf '%-26s %8s %8s %8s %8s %8s %8s %5s %7s %8s\n' "$k" "$a1" "$a2" "$a3" "$d1" "$d2" "$d3" "$fl" "$x1" "$x2"
            done
        r '.host.regular_pods.ec2_calls_per_100_pod_starts | to_entries[] | "EC2 calls per 100 regular pod starts, \(.key): \(.value.total) (\(.value.calls | to_entries | map("\(.key) \(.value)") | join(", "))); ADD median \(.value.add_latency.median_ms) ms, p90 \(.value.add_latency.p90_ms), p99 \(.value.add_latency.p99_ms), max \(.value.add_latency.max_ms)"'
        r '.host.regular_pods.churn | "Churn: \(.operations) operations (\(.adds) ADD, \(.dels) DEL), \(.failures) failed; after: \(.addresses_held_after) addresses held, \(.rules_left) pod rules, \(.veths_left) host veths"'
    fi
    for key in ipamd_rss ipamd_rss_kubernetes; do
        r ".host.$key"' | if . == null then "Host: ipamd resident memory: not available" else
            "Host: ipamd resident memory with \(.pods) pods known (\(.source) source): \(.rss_kib) KiB (\((.rss_kib / 1024 * 10 | round) / 10) MiB; \(.anon_kib) KiB private, \(.file_kib) KiB file-backed), \(.threads) threads" end'
    done
}
if [[ ${1:-} == --table ]]; then print_table "${2:-$OUT}"; exit; fi
[[ -x $BIN/aws-cni && -x $BIN/ipamd ]] || { echo "no aws-cni/ipamd in $BIN: make release first (or set BIN)" >&2; exit 1; }

echo "== compiling the floor (scripts/bench/floor.c)"
mkdir -p .build-bench
# Under the repository, not /tmp: the VM sees the host root but gets its own empty /tmp.
# Static, like aws-cni: a dynamically linked floor pays the loader and libnl-route's constructors
# on every exec (about 30 ms under emulation), which would flatter aws-cni. glibc warns that the
# NSS functions libnl references need shared libraries at run time; the floor never calls them.
gcc -O2 -static -Wall -Wextra -Werror -o .build-bench/floor scripts/bench/floor.c \
    $(pkg-config --cflags libnl-route-3.0) -lnl-route-3 -lnl-3 2>&1 | { grep -v -e 'statically linked applications requires' -e ': in function ' >&2 || true; }
[[ -x .build-bench/floor ]] || { echo "the floor did not build" >&2; exit 1; }
export FLOOR=.build-bench/floor

tmp=$(mktemp -d /tmp/aws-cni-bench.XXXX)
trap 'rm -rf "$tmp"' EXIT

echo "== VM: CNI ADD/DEL latency, all contestants in one boot (several minutes)"
# The VM's two emulated CPUs take both host cores: anything else running skews the figures,
# so the load around the run goes into the result.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
(($(cut -d. -f1 /proc/loadavg) < 1)) || echo "warning: host load average is $load_before; other work will skew the VM figures" >&2
VM_PASS_ENV="BIN FLOOR BENCH_PODS BENCH_ROUNDS BENCH_CONTESTANTS BENCH_SCALE BENCH_BASELINE" scripts/vm/run.sh scripts/bench/cni-latency.sh >"$tmp/vm.json"
jq -e .contestants "$tmp/vm.json" >/dev/null || { echo "the VM part printed no result" >&2; exit 1; }
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The host parts run after the VM, so they do not compete with it for the CPUs.
echo "== host: aws-cni VERSION"
version=$(scripts/bench/version.sh --json)
# host_part SCRIPT: its last JSON line, or null when the script is missing or fails.
host_part() {
    [[ -x $1 ]] || { echo null; return; }
    echo "== host: $1" >&2
    local line
    line=$("$1" | grep '^{' | tail -n 1) || true
    if [[ -n $line ]] && jq -e . <<<"$line" >/dev/null 2>&1; then echo "$line"; else echo "$1 gave no result" >&2; echo null; fi
}
rpc=$(host_part scripts/bench/ipamd-rpc.sh)
rss=$(SOURCE=file host_part scripts/bench/ipamd-rss.sh)
rss_k8s=$(SOURCE=kubernetes host_part scripts/bench/ipamd-rss.sh)
# Regular pods need no VLAN: on the host, aws-cni against Debian ptp + host-local and the floor
# in one run, EC2 calls per 100 pod starts, and a churn (Tests/IntegrationTests/RegularPodBench.swift).
echo "== host: regular pods (aws-cni, Debian ptp + host-local, floor; EC2 calls; churn)"
TESTS=.build/debug/aws-sg-podsPackageTests.xctest
regular=null
if [[ -x $TESTS ]]; then
    REGULAR_POD_BENCH=${BENCH_REGULAR_PODS:-50} AWS_CNI_RELEASE_DIR=$(realpath "$BIN") FLOOR=$(realpath "$FLOOR") NO_COLOR=1 \
        "$TESTS" --testing-library swift-testing --filter RegularPodBench >"$tmp/regular.log" 2>&1 || true
    grep -E '^(regular pods on the host|  |EC2 calls for|churn:)' "$tmp/regular.log" >&2 || true
    line=$(sed -n 's/^regular-pod-bench-json: //p' "$tmp/regular.log" | tail -n 1)
    if [[ -n $line ]] && jq -e . <<<"$line" >/dev/null 2>&1; then regular=$line; else echo "the regular-pod bench gave no result (see $tmp/regular.log)" >&2; tail -20 "$tmp/regular.log" >&2; fi
else
    echo "no $TESTS: swift build --build-tests first" >&2
fi

jq -n --slurpfile vm "$tmp/vm.json" --argjson version "$version" --argjson rpc "$rpc" --argjson rss "$rss" --argjson rss_k8s "$rss_k8s" \
    --argjson regular "$regular" \
    --arg load_before "$load_before" --arg load_after "$load_after" \
    --arg bin "$BIN" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" '
    $vm[0] as $v |
    def ratio(a; b): if a != null and b != null and b > 0 then (a / b * 100 | round) / 100 else null end;
    def ratios(c): {
        add_vs_floor: ratio($v.contestants[c].add.median_ms; $v.contestants.floor.add.median_ms),
        add_vs_debian: ratio($v.contestants[c].add.median_ms; $v.contestants["debian-vlan-host-local"].add.median_ms),
        del_vs_floor: ratio($v.contestants[c].del.median_ms; $v.contestants.floor.del.median_ms),
        del_vs_debian: ratio($v.contestants[c].del.median_ms; $v.contestants["debian-vlan-host-local"].del.median_ms)};
    {generated: $date, commit: $commit, bin: $bin, percentiles: "nearest-rank",
     ratios_note: "median over median, same VM boot",
     host_load_average_around_vm: {before: $load_before, after: $load_after},
     vm: $v,
     ratios: ({"aws-cni-strict": ratios("aws-cni-strict"), "aws-cni-standard": ratios("aws-cni-standard")}
             + if $v.contestants["baseline-strict"] then
                 {"baseline-strict": ratios("baseline-strict"), "baseline-standard": ratios("baseline-standard")} else {} end),
     host: {aws_cni_version: $version, ipamd_rpc: $rpc, ipamd_rss: $rss, ipamd_rss_kubernetes: $rss_k8s, regular_pods: $regular}}' >"$OUT"

print_table "$OUT"
echo "Written to $OUT"

failures=$(jq '[.vm.contestants[][] | .failures] + [.vm.parallel.add_failures, .vm.parallel.del_failures, .vm.leftovers]
    + [.host.regular_pods // {} | (.latency.contestants // {})[] | .failures] + [.host.regular_pods.churn // {} | .failures, .addresses_held_after, .rules_left, .veths_left]
    + [.vm.scale // {} | del(.measured_pods) | .[][] | .add.failures, .del.failures] | add' "$OUT")
if ((failures > 0)) || [[ $(jq .vm.floor_matches_aws_cni_strict "$OUT") != true ]]; then
    echo "bench: $failures failed execs or leftovers, or the floor differs from aws-cni: these figures are not comparable" >&2
    exit 1
fi
if [[ $(jq '.host.regular_pods == null' "$OUT") == true ]]; then
    echo "bench: the regular-pod part gave no result" >&2
    exit 1
fi
