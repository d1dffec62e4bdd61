# See README.md. Everything runs as root on Debian 12 / Ubuntu with Swift 6 on PATH.
SHELL := /bin/bash
SWIFT ?= swift
# The toolchain's usual place on our machines, in case the shell's PATH lacks it.
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all build release image test demo bench fuzz soak bench-cloud-start deps clean

all: build

deps:
	scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Release binaries with the Swift runtime linked in, symbol tables stripped, position-dependent
# (no start-up relocations): .build/release/aws-cni (fully static, see Package.swift),
# .build/release/ipamd. A plain `swift build -c release` builds working binaries too; this adds
# stripping and the static Swift runtime for ipamd. glibc's warnings about NSS functions in static
# links are filtered: aws-cni never calls them.
# Only the two products: the test-only library targets import Testing, which has no static build.
release: deps
	set -o pipefail; for product in aws-cni ipamd; do \
	    $(SWIFT) build -c release --product $$product --static-swift-stdlib -Xlinker --strip-all -Xlinker -no-pie 2>&1 \
	        | { grep -vE "statically linked applications requires at runtime|mktemp' is dangerous" || true; } || exit 1; \
	done

# The node agent's OCI image (.build/image/aws-node.tar; IMAGE_TAG), built with umoci, no daemon:
# the release binaries, the libraries ipamd loads, CA certificates. Prints its size. See deploy/.
image: release
	scripts/image/build.sh

# All three test levels: unit + privileged (swift test), host binaries, VLAN datapath in a VM.
test:
	scripts/test.sh

# The main job: a simulated VPC enforcing security groups, three branch pods and a regular pod
# (moto as the node's EC2) through the real aws-cni in strict and standard mode, expected vs
# observed. In the VM unless this kernel has 802.1Q.
demo: release
	CLOUD_SIM_PYTHON=$$(python3 -c 'import sys; print(sys.executable)') VM_PASS_ENV=CLOUD_SIM_PYTHON \
	    scripts/vlan-run.sh scripts/demo/security-groups.sh

# Benchmarks, not tests: CNI ADD/DEL latency in a VM against the Debian vlan plugin and a C floor,
# plus host figures (regular pods against Debian ptp + host-local and the floor, EC2 calls per 100
# pod starts, a churn); prints a table and writes bench-results.json (BENCH_OUT). See scripts/bench/run.sh.
bench: release
	$(SWIFT) build --build-tests
	scripts/bench/run.sh

# libFuzzer on every decoder of untrusted input (CNI config and prevResult, pod-eni annotation,
# RPC frames, watch events), 10 minutes each (FUZZ_SECONDS); crashes are kept for replay.
FUZZ_SECONDS ?= 600
fuzz: deps
	scripts/fuzz/run.sh $(FUZZ_SECONDS)

# A soak, in the VM: 100 pods churned 8 at a time for SOAK_SECONDS while ipamd is SIGKILLed and
# restarted every 20 s; prints the counts (no DEL may fail, nothing may leak).
SOAK_SECONDS ?= 600
soak: release
	$(SWIFT) build --build-tests
	CHURN_SOAK_SECONDS=$(SOAK_SECONDS) VM_PASS_ENV=CHURN_SOAK_SECONDS VM_TIMEOUT=$$(( $(SOAK_SECONDS) + 900 )) \
	    scripts/vm/run.sh .build/debug/aws-sg-podsPackageTests.xctest --testing-library swift-testing --filter ChurnSoakBench

# ipamd start to ready with cloud discovery (metadata + EC2 simulated on loopback), on the host:
# CLOUD_START_RUNS starts, the median and the cloud calls each made.
CLOUD_START_RUNS ?= 10
bench-cloud-start: release
	$(SWIFT) build --build-tests
	CLOUD_START_BENCH=$(CLOUD_START_RUNS) .build/debug/aws-sg-podsPackageTests.xctest --testing-library swift-testing --filter CloudStartBench

clean:
	rm -rf .build
