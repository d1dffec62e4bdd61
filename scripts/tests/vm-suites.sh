#!/bin/bash
# Runs every VLAN suite in one VM boot (scripts/vm/run.sh scripts/tests/vm-suites.sh): first the
# Swift integration suites that need 802.1Q (fault injection, sequences on the real kernel), then
# the shell suites one after the other (they share the fixed namespace names of
# scripts/lib/fabric.sh). Exits non-zero if any suite failed; each prints its own
# "SUITE: N passed, N failed" line.
cd "$(dirname "$0")"
rc=0
TESTS=../../.build/debug/aws-sg-podsPackageTests.xctest
echo "== suite vm-swift"
# Their own namespaces, so nothing collides with the shell suites that follow.
NO_COLOR=1 "$TESTS" --testing-library swift-testing --filter "FaultInjectionTests|KernelSequenceTests|VLANDatapathTests|CloudVMTests|MixedPodsVMTests|DaemonSetVMTests" 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g' | grep -vE '^(◇|↳ Testing Library|↳ Target Platform)|started\.$' | tee /tmp/vm-swift.log
summary=$(grep -E 'Test run with [0-9]+ tests' /tmp/vm-swift.log | tail -1)
cases=$(grep -cE '^✔ Test .* passed after' /tmp/vm-swift.log)
failed=$(grep -cE '^✘ Test .* failed after' /tmp/vm-swift.log)
if [[ $summary != *passed* ]]; then rc=1; ((failed == 0)) && failed=1; fi
echo "vm-swift: $cases passed, $failed failed"
# The demo's checks count as a suite (vm-demo) too.
for suite in vm-branch-pods.sh vm-snat.sh vm-k8s-late-annotation.sh vm-containerd.sh ../demo/security-groups.sh; do
    echo "== suite $suite"
    bash "./$suite" || rc=1
done
exit $rc
