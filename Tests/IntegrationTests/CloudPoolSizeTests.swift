import Foundation
import Glibc
import NetModel
import TestSupport
import Testing

/// The pool's size under each target variable on an m5.4xlarge (8 ENIs of 29 pod addresses),
/// against moto with the ENIs mirrored into the node: (ENIs, addresses) after 0, 1, 20 and 60
/// pods, the reference's arithmetic; with 60 pods ipamd is SIGKILLed and restarted and every
/// holder keeps its address; back at 0 pods the pool shrinks to its size at 0 (surplus
/// addresses, /28 prefixes and ENIs handed back). The cases run side by side: each waits about
/// 90 s for the shrink.
@Suite(.ownThread, .enabled(if: isRoot)) struct CloudPoolSizeTests {
    /// (ENIs, addresses) after 0, 1, 20 and 60 pods, then back at 0 once the pool has shrunk.
    @Test(arguments: [
        ("WARM_ENI_TARGET=1", [:], [(1, 29), (2, 58), (2, 58), (4, 116), (1, 29)]),
        ("WARM_IP_TARGET=5 MINIMUM_IP_TARGET=10", ["WARM_IP_TARGET": "5", "MINIMUM_IP_TARGET": "10"], [(1, 10), (1, 10), (1, 25), (3, 65), (1, 10)]),
        ("WARM_PREFIX_TARGET=1", ["ENABLE_PREFIX_DELEGATION": "true"], [(1, 16), (1, 32), (1, 48), (1, 80), (1, 16)]),
    ] as [(String, [String: String], [(Int, Int)])])
    func poolSizeAfter0_1_20_60PodsAndBack(_ name: String, _ env: [String: String], _ expected: [(Int, Int)]) async throws {
        let n = try CloudNode(trunkAttached: false, instanceType: "m5.4xlarge", ["ENABLE_POD_ENI": "false", "IP_COOLDOWN_PERIOD": "1"].merging(env) { _, b in b })
        let mirror = ENIMirror(n)
        defer { mirror.stop(); n.destroy() }
        #expect(try n.ipamd.start(), "ipamd ready: \(n.ipamd.log.suffix(20))")
        let plugin = PluginRunner(sim: n.sim, ipamd: n.ipamd, mode: "standard")
        var pods: [RegularPod] = []
        for (count, want) in zip([0, 1, 20, 60], expected) {
            while pods.count < count { if let p = try plugin.addRegular(n, "p\(pods.count)") { pods.append(p) } else { break } }
            #expect(await eventually(.seconds(60)) { n.poolCounts().map { ($0.enis, $0.total, $0.assigned) == (want.0, want.1, count) } ?? false },
                    "\(name), \(count) pods: (ENIs, addresses) \(want) expected, \(String(describing: n.poolCounts()))")
        }
        try #require(pods.count == 60)
        #expect(Set(pods.map(\.ip)).count == 60)

        // A crash and a restart with 60 pods: each keeps its address (the checkpoint's allocations).
        n.ipamd.stop(SIGKILL)
        #expect(try n.ipamd.start(), "restart: \(n.ipamd.log.suffix(20))")
        #expect(await eventually(.seconds(60)) { n.poolCounts()?.assigned == 60 }, "holders after the restart: \(String(describing: n.poolCounts()))")
        for p in [pods[0], pods[59]] {
            #expect(try plugin.run("CHECK", container: p.container, pod: p.name, netns: p.netns.path, prevResult: p.result).exitCode == 0, "CHECK \(p.name)")
        }
        // A new pod after the restart gets none of the 60 addresses.
        if let extra = try plugin.addRegular(n, "after-restart") {
            #expect(!pods.contains { $0.ip == extra.ip })
            pods.append(extra)
        }

        for p in pods { #expect(try plugin.delete(p).exitCode == 0, "DEL \(p.name)") }
        // Surplus addresses go back 30 s after the last decrease, whole ENIs one per 30 s once a
        // minute old: about 90 s to the size at 0 pods.
        let back = expected[4]
        #expect(await eventually(.seconds(240), every: .milliseconds(500)) { n.poolCounts().map { ($0.enis, $0.total, $0.assigned) == (back.0, back.1, 0) } ?? false },
                "\(name), back to 0 pods: (ENIs, addresses) \(back) expected, \(String(describing: n.poolCounts()))")
        let ec2 = n.cloud.requests().ec2
        print("pool size, \(name): \(expected.map { "\($0)" }.joined(separator: " -> ")); EC2 calls \(ec2.values.reduce(0, +))")
    }

}
