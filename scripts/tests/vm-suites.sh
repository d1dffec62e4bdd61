#!/bin/bash
# Runs every VLAN suite in one VM boot (scripts/vm/run.sh scripts/tests/vm-suites.sh), one after
# the other: they share the fixed namespace names of scripts/lib/fabric.sh. Exits non-zero if any
# suite failed; each prints its own "SUITE: N passed, N failed" line.
cd "$(dirname "$0")"
rc=0
# The demo's checks count as a suite (vm-demo) too.
for suite in vm-branch-pods.sh vm-snat.sh vm-k8s-late-annotation.sh vm-containerd.sh ../demo/security-groups.sh; do
    echo "== suite $suite"
    bash "./$suite" || rc=1
done
exit $rc
