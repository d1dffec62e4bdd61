# See README.md. Everything runs as root on Debian 12 / Ubuntu with Swift 6 on PATH.
SHELL := /bin/bash
SWIFT ?= swift
# The toolchain's usual place on our machines, in case the shell's PATH lacks it.
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all build release test demo bench deps clean

all: build

deps:
	scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Release binaries with the Swift runtime linked in, symbol tables stripped, position-dependent
# (no start-up relocations): .build/release/aws-cni (fully static, see Package.swift),
# .build/release/ipamd. glibc's warnings about NSS functions in static links are filtered:
# aws-cni never calls them.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib -Xlinker --strip-all -Xlinker -no-pie 2>&1 \
	    | grep -vE "statically linked applications requires at runtime|mktemp' is dangerous"; exit $${PIPESTATUS[0]}

# All three test levels: unit + privileged (swift test), host binaries, VLAN datapath in a VM.
test:
	scripts/test.sh

# The main job: a simulated VPC enforcing security groups, three branch pods through the real
# aws-cni in strict and standard mode, expected vs observed. In the VM unless this kernel has 802.1Q.
demo: release
	scripts/vlan-run.sh scripts/demo/security-groups.sh

# Benchmarks, not tests: CNI ADD/DEL latency in a VM against the Debian vlan plugin and a C floor,
# plus host figures; prints a table and writes bench-results.json (BENCH_OUT). See scripts/bench/run.sh.
bench: release
	scripts/bench/run.sh

clean:
	rm -rf .build
