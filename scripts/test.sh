#!/bin/bash
# The test command (README): installs what it needs, then runs every level:
#   1. builds: release (a plain `swift build -c release`: the package alone must build the
#      static aws-cni) and debug with the tests
#   2. swift test on the host: unit, the 10,000 model-based sequences on the in-memory kernel,
#      privileged netlink/datapath tests, the Kubernetes client against the test API server, and
#      the integration tests of the real binaries in throwaway namespaces (host level)
#   3. fuzzing: every libFuzzer target briefly (make fuzz runs them long)
#   4. the VM (its kernel has 802.1Q): the Swift integration suites that need VLANs (fault
#      injection at every netlink request, sequences on the real kernel, the datapath) and the
#      shell suites (containerd, SNAT, the demo's checks); always the VM, because the containerd
#      suite replaces /opt/cni and /etc/cni, which only the VM's throw-away root may have done to it
set -euo pipefail
trap 'echo "test.sh: stopped at line $LINENO (exit $?)" >&2' ERR
cd "$(dirname "$0")/.."
[[ -d /opt/swift/usr/bin ]] && export PATH=/opt/swift/usr/bin:$PATH
[[ $(id -u) == 0 ]] || { echo "run as root: the tests create network namespaces and a VM" >&2; exit 1; }
scripts/install-deps.sh

LOGS=$(mktemp -d /tmp/aws-cni-test.XXXX)
total_passed=0
total_failed=0
count_shell() { # log file: adds its "N passed, N failed" line to the totals
    local line
    line=$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    total_passed=$((total_passed + $(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")))
    total_failed=$((total_failed + $(sed -E 's/.*, ([0-9]+) failed.*/\1/' <<<"$line")))
}

echo "== 1/4 builds: release (plain \`swift build -c release\`, as a user types it), debug with the tests"
swift build -c release 2>&1 | grep -vE "requires at runtime|mktemp' is dangerous" | tail -1
swift build --build-tests 2>&1 | tail -1
# The node agent's image from that release build, and a rebuilt one (another tag) that the VM's
# DaemonSet test upgrades to in place.
scripts/image/build.sh .build/image/aws-node.tar > "$LOGS/image.log"
IMAGE_TAG=upgrade scripts/image/build.sh .build/image/aws-node-upgrade.tar >> "$LOGS/image.log"
grep '^image: ' "$LOGS/image.log"

echo "== 2/4 swift test on the host (unit, sequences, privileged, Kubernetes, integration)"
# The cloud suites run on their own afterwards: each starts moto (seconds of CPU on two cores),
# which would starve the timing-sensitive watch tests running beside them.
CLOUD_SUITES='CloudTests\.|CloudDiscoveryTests|CloudRegularPodTests|CloudPoolSizeTests'
NO_COLOR=1 swift test --skip-build --disable-xctest --skip "$CLOUD_SUITES|CloudVMTests|CloudStartBench" 2>&1 | tee "$LOGS/swift-test.log" | grep -vE '^(◇|↳)|started\.$|passed after' || true
grep -q 'Test run with .* passed' "$LOGS/swift-test.log" || { echo "swift test failed"; exit 1; }
swift_tests=$(grep -oE 'Test run with [0-9]+ tests' "$LOGS/swift-test.log" | grep -oE '[0-9]+')
echo "== 2a/4 swift test: the cloud clients and discovery against moto and the IMDS test server"
NO_COLOR=1 swift test --skip-build --disable-xctest --filter "$CLOUD_SUITES" 2>&1 | tee "$LOGS/swift-cloud.log" | grep -vE '^(◇|↳)|started\.$|passed after' || true
grep -q 'Test run with .* passed' "$LOGS/swift-cloud.log" || { echo "swift test (cloud suites) failed"; exit 1; }
swift_tests=$((swift_tests + $(grep -oE 'Test run with [0-9]+ tests' "$LOGS/swift-cloud.log" | grep -oE '[0-9]+')))
total_passed=$((total_passed + swift_tests))

echo "== 2b/4 the demo's security-group model (scripts/vpc/vpc.py) in a throwaway namespace"
scripts/tests/host-vpc-model.sh | tee "$LOGS/vpc.log"
count_shell "$LOGS/vpc.log"

echo "== 2c/4 the cloud test harness against botocore's own clients (scripts/tests/cloud-sim-selftest.py)"
cloud_rc=0
python3 scripts/tests/cloud-sim-selftest.py | tee "$LOGS/cloud-sim.log" || cloud_rc=$?
if ((cloud_rc == 0)); then total_passed=$((total_passed + 1)); else total_failed=$((total_failed + 1)); fi

echo "== 3/4 fuzzing: each target ${FUZZ_SECONDS:-15} s (make fuzz: 10 minutes each)"
fuzz_rc=0
scripts/fuzz/run.sh "${FUZZ_SECONDS:-15}" | tee "$LOGS/fuzz.log" || fuzz_rc=$?
echo "fuzz: $(grep -cE '^fuzz .*, 0 crashes' "$LOGS/fuzz.log") passed, $(grep -cE '^fuzz .*, [1-9][0-9]* crashes|^  exit' "$LOGS/fuzz.log") failed" | tee -a "$LOGS/fuzz.log"
count_shell "$LOGS/fuzz.log"
((fuzz_rc == 0)) || total_failed=$((total_failed + 1))

echo "== 4/4 in the VM: VLAN integration suites (Swift) and the shell suites"
# The VM's PATH is Debian's: the cloud simulator needs the interpreter that has moto.
CLOUD_SIM_PYTHON=$(python3 -c 'import sys; print(sys.executable)')
export CLOUD_SIM_PYTHON
# Room for every write of the suites (the DaemonSet test's containerd unpacks two node-agent
# images, about 0.6 GB): a run from a clone under /tmp puts them all in the overlay, whose default
# 1G once ran out while the Swift suites ran side by side.
run_vm_suites() {
    VM_MEM=${VM_MEM:-4096} VM_OVERLAY_SIZE=${VM_OVERLAY_SIZE:-3G} VM_PASS_ENV=CLOUD_SIM_PYTHON scripts/vm/run.sh scripts/tests/vm-suites.sh | tee "$LOGS/vm.log"
    vm_rc=${PIPESTATUS[0]}
}
set +e
run_vm_suites
# Once (of many runs) the VM's output never reached the host: not one "== suite" line, exit 0.
# That is the VM runner losing its relay, not a test outcome, so the run is repeated once; a run
# that printed anything is judged as it is.
if ! grep -q '^== suite ' "$LOGS/vm.log"; then
    echo "test.sh: the VM run printed nothing (exit $vm_rc); running it once more" >&2
    run_vm_suites
fi
set -e
for suite in vm-swift vm-branch-pods vm-snat vm-k8s-late-annotation vm-containerd vm-demo; do
    grep -qE "^$suite: [0-9]+ passed" "$LOGS/vm.log" || { echo "VM suite $suite did not finish (exit $vm_rc)"; exit 1; }
    grep -E "^$suite: " "$LOGS/vm.log" > "$LOGS/$suite.log"
    count_shell "$LOGS/$suite.log"
done

echo
echo "swift test: $swift_tests tests passed"
grep -E '^(sequences|fault injection|kernel sequence):' "$LOGS/swift-test.log" "$LOGS/vm.log" -h | sed 's/^/  /' || true
grep -E '^fuzz ' "$LOGS/fuzz.log" | sed 's/^/  /'
echo "host: $(grep -E '^host-vpc-model:' "$LOGS/vpc.log")"
grep -E '^vm-[a-z0-9-]+: [0-9]+ passed' "$LOGS/vm.log" | sed 's/^/vm:   /'
echo "all: $total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 && $vm_rc -eq 0 && $fuzz_rc -eq 0 ]]
