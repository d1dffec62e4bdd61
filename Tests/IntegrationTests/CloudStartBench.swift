import Foundation
import Glibc
import TestSupport
import Testing

/// A benchmark, not a test: only with CLOUD_START_BENCH set (`make bench-cloud-start`). ipamd
/// with no overrides started CLOUD_START_BENCH times against the cloud simulator in the node's
/// namespace: exec to "ipamd ready" (discovery, node setup, sockets, plugin install), and the
/// cloud calls each start makes. Prints the median and the spread; asserts nothing about time.
@Suite(.ownThread) struct CloudStartBench {
    static let runs = ProcessInfo.processInfo.environment["CLOUD_START_BENCH"].flatMap { Int($0) }

    @Test(.enabled(if: runs != nil && isRoot, "a benchmark: set CLOUD_START_BENCH=<runs>"))
    func startToReadyWithDiscovery() throws {
        let n = try CloudNode()
        defer { n.destroy() }
        var samples: [Double] = []
        var calls: [String] = []
        for _ in 0..<(Self.runs ?? 0) {
            n.cloud.resetCounts()
            let t0 = ContinuousClock.now
            guard try n.ipamd.start() else { Issue.record("ipamd did not start: \(n.ipamd.log.suffix(10))"); return }
            let d = ContinuousClock.now - t0
            samples.append(d.inMilliseconds)
            let r = n.cloud.requests()
            calls.append("EC2 \(r.ec2.values.reduce(0, +)), IMDS \(r.imdsGETs) GET + \(r.tokenPUTs) PUT")
            n.ipamd.stop()
        }
        let sorted = samples.sorted()
        print(String(format: "cloud start bench: %d starts, exec to ready median %.1f ms (min %.1f, max %.1f); cloud calls per start: %@",
                     sorted.count, sorted[sorted.count / 2], sorted.first ?? 0, sorted.last ?? 0, Set(calls).sorted().joined(separator: " | ")))
    }
}
