# Tiny assertion helpers for the shell-level tests. Source it; call `summary` at the end.
# Prints one line per check and a closing "N passed, N failed" line.

PASSED=0
FAILED=0
SUITE=${SUITE:-shell}

pass() { PASSED=$((PASSED + 1)); echo "  ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL $*"; }

# assert_eq NAME EXPECTED ACTUAL
assert_eq() {
    if [[ "$2" == "$3" ]]; then pass "$1"; else
        fail "$1"
        echo "       expected:"; printf '%s\n' "$2" | sed 's/^/         | /'
        echo "       actual:";   printf '%s\n' "$3" | sed 's/^/         | /'
    fi
}

# assert_ok NAME CMD...   (command must exit 0)
assert_ok() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name (exit $?)"; printf '%s\n' "$out" | sed 's/^/         | /'; fi
}

# assert_contains NAME NEEDLE HAYSTACK
assert_contains() {
    if [[ "$3" == *"$2"* ]]; then pass "$1"; else fail "$1: no \"$2\" in:"; printf '%s\n' "$3" | sed 's/^/         | /'; fi
}

# assert_empty NAME TEXT
assert_empty() {
    if [[ -z "$2" ]]; then pass "$1"; else fail "$1: expected nothing, got:"; printf '%s\n' "$2" | sed 's/^/         | /'; fi
}

summary() {
    echo "$SUITE: $PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}
