#!/bin/bash
# `make fuzz`: libFuzzer (+ AddressSanitizer) on the decoders of untrusted input, Fuzz/ package.
#   run.sh [--build-only] [SECONDS_PER_TARGET]     (default 600 s per target)
# Builds Fuzz/ into Fuzz/.build, then runs each target for the given time on its committed seeds
# (Fuzz/Corpus/<Target>, read only) plus a scratch corpus kept across runs (new inputs go there,
# never into git). Prints one line per target; exits 1 if any found a crash, leak, timeout or OOM,
# naming the directory that holds the input (a crash-*/leak-*/timeout-*/oom-* file).
# Reproduce one: Fuzz/.build/debug/<Target> <file>. Environment: FUZZ_OUT (default
# Fuzz/.build/fuzz-out: corpus/<Target>, artifacts/<Target>, logs/<Target>.log).
set -euo pipefail
export PATH=/opt/swift/usr/bin:$PATH LC_ALL=C
FUZZ=$(cd "$(dirname "$0")/../../Fuzz" && pwd)
TARGETS=(FuzzNetConf FuzzPodENIAnnotation FuzzRPCFrame FuzzWatchEvent)
BUILD_ONLY=no
if [[ ${1:-} == --build-only ]]; then BUILD_ONLY=yes; shift; fi
SECS=${1:-600}
[[ $SECS =~ ^[0-9]+$ ]] || { echo "usage: $0 [--build-only] [SECONDS_PER_TARGET]" >&2; exit 2; }

cd "$FUZZ"
BUILD=(swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
# ld.gold warns "Cannot export local symbol __asan_*" for every link: harmless, filtered.
if ! "${BUILD[@]}" 2>&1 | { grep -v "Cannot export local symbol" || true; }; then
    echo "fuzz: build failed" >&2; exit 1
fi
[[ $BUILD_ONLY == yes ]] && exit 0
BIN=$("${BUILD[@]}" --show-bin-path)

OUT=${FUZZ_OUT:-$FUZZ/.build/fuzz-out}
mkdir -p "$OUT/logs"
# Swift's own backtracer would catch the crash signal first (and trips ASan itself): leave
# crashes to libFuzzer, which saves the input and prints the stack.
export SWIFT_BACKTRACE=enable=no ASAN_SYMBOLIZER_PATH=/opt/swift/usr/bin/llvm-symbolizer
FAILED=()
for t in "${TARGETS[@]}"; do
    mkdir -p "$OUT/corpus/$t"
    rm -rf "$OUT/artifacts/$t" && mkdir -p "$OUT/artifacts/$t"
    log=$OUT/logs/$t.log
    start=$SECONDS rc=0
    "$BIN/$t" "$OUT/corpus/$t" "$FUZZ/Corpus/$t" -dict="$FUZZ/Dictionaries/$t.dict" \
        -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$OUT/artifacts/$t/" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    found=$(find "$OUT/artifacts/$t" -type f | wc -l)
    echo "fuzz $t: ${execs:-?} execs, $found crashes, $((SECONDS - start)) s"
    if [[ $rc != 0 || $found != 0 ]]; then
        FAILED+=("$t")
        echo "  exit $rc; input(s) in $OUT/artifacts/$t/, log $log:"
        grep -m1 -E "^==[0-9]+==ERROR|^SUMMARY|Fatal error|ERROR: libFuzzer" "$log" | sed 's/^/    /' || true
    fi
done
if (( ${#FAILED[@]} )); then echo "fuzz: findings in ${FAILED[*]}" >&2; exit 1; fi
