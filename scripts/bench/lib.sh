# Shared by the bench scripts (source it). Benchmarks, not tests: nothing here asserts timing.

# Microseconds since the epoch from bash's $EPOCHREALTIME: no fork, unlike `date`, whose
# fork+exec would cost more than a CNI plugin exec inside the emulated VM.
now_us() { local t=$EPOCHREALTIME; echo $((10#${t/[.,]/})); }

# stats_json FILE: summary of a file of microsecond samples (one per line) as a JSON object in
# milliseconds, or null when it is empty. Percentiles are nearest-rank: the value at rank
# ceil(p/100 * n) of the sorted samples (so the median of 50 is the 25th smallest).
stats_json() {
    sort -n "$1" | awk '
        function rank(p,  k) { k = int((p * NR + 99) / 100); if (k < 1) k = 1; return v[k] }
        { v[NR] = $1; s += $1 }
        END {
            if (!NR) { print "null"; exit }
            printf "{\"n\":%d,\"median_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"min_ms\":%.2f,\"mean_ms\":%.2f}\n",
                NR, rank(50) / 1000, rank(90) / 1000, rank(99) / 1000, v[NR] / 1000, v[1] / 1000, s / NR / 1000
        }'
}

# samples_json FILE: the samples themselves, in milliseconds, as a JSON array.
samples_json() {
    awk 'BEGIN { printf "[" } { printf "%s%.2f", (NR > 1 ? "," : ""), $1 / 1000 } END { print "]" }' "$1"
}
