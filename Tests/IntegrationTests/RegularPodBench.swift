import Foundation
import Glibc
import NetModel
import TestSupport
import Testing

/// A benchmark, not a test: only with REGULAR_POD_BENCH=<pods> (`make bench` runs it on the host;
/// regular pods need no VLAN). On a node whose cloud is moto as an m5.4xlarge (8 ENIs of 30
/// addresses) and the IMDS test server, the ENIs it attaches mirrored into the node:
/// 1. regular-pod ADD and DEL latency of aws-cni (the plugin ipamd installed, its conflist, a warm
///    pool), of Debian's `ptp` + `host-local`, and of the C floor (scripts/bench/floor.c
///    add-regular: the same netlink requests in one static process), REGULAR_POD_BENCH pods each,
///    REGULAR_POD_BENCH_ROUNDS rounds (2) in alternating order, every exec timed from spawn to
///    reaped by this process;
/// 2. EC2 calls per 100 pod starts: warm (counted once the warm pool is filled) and cold
///    (counted from ipamd's start, the pods started as soon as it is ready), with the ADD latency
///    percentiles of the warm run;
/// 3. a churn: random ADDs and DELs, then everything deleted: the addresses still held after the
///    cool-down, and the pod rules and veths left.
/// Prints a table and one line "regular-pod-bench-json: {...}"; asserts nothing about time.
@Suite(.serialized, .ownThread) struct RegularPodBench {
    static let pods = ProcessInfo.processInfo.environment["REGULAR_POD_BENCH"].flatMap { Int($0) }
    static let rounds = ProcessInfo.processInfo.environment["REGULAR_POD_BENCH_ROUNDS"].flatMap { Int($0) } ?? 2
    static let floor = ProcessInfo.processInfo.environment["FLOOR"] ?? Binaries.root + "/.build-bench/floor"
    static let debianCNI = "/usr/lib/cni"

    /// One contestant's samples, in milliseconds.
    struct Samples {
        var add: [Double] = []
        var del: [Double] = []
        var failures = 0

        /// Nearest rank: the sample at rank ceil(p/100 * n).
        static func percentile(_ xs: [Double], _ p: Double) -> Double? {
            guard !xs.isEmpty else { return nil }
            let sorted = xs.sorted()
            return sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
        }

        static func summary(_ xs: [Double]) -> [String: Any] {
            var out: [String: Any] = ["n": xs.count]
            for (k, p) in [("median_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("max_ms", 100.0)] {
                out[k] = percentile(xs, p).map { ($0 * 100).rounded() / 100 }
            }
            return out
        }

        var json: [String: Any] { ["add": Self.summary(add), "del": Self.summary(del), "failures": failures] }
    }

    typealias Contestant = (name: String, add: (Int, TestNamespace) throws -> Completed, del: (Int, TestNamespace, Completed) throws -> Completed)

    @Test(.enabled(if: pods != nil && isRoot, "a benchmark: set REGULAR_POD_BENCH=<pods>"))
    func regularPods() async throws {
        var report: [String: Any] = [:]
        report["latency"] = try await latency(pods: Self.pods ?? 50)
        report["ec2_calls_per_100_pod_starts"] = try await ec2Calls()
        report["churn"] = try await churn(operations: 300)
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print("regular-pod-bench-json: " + String(decoding: json, as: UTF8.self))
    }

    // MARK: 1. latency

    func latency(pods: Int) async throws -> [String: Any] {
        // The plugin logs as installed (level Debug, the reference's default), into the node's
        // work directory rather than the host's /var/log. The pool holds an address for every pod
        // of a round and one more, so no EC2 call (moto's CPU on this machine) runs beside the
        // timed execs; part 2 measures the default targets.
        let n = try CloudNode(trunkAttached: false, instanceType: "m5.4xlarge",
                              ["ENABLE_POD_ENI": "false", "IP_COOLDOWN_PERIOD": "1", "MINIMUM_IP_TARGET": String(pods + 1), "WARM_IP_TARGET": "1"])
        n.ipamd.env["AWS_VPC_K8S_PLUGIN_LOG_FILE"] = n.sim.work + "/plugin.log"
        let mirror = ENIMirror(n)
        defer { mirror.stop(); n.destroy() }
        try #require(try n.ipamd.start(), "ipamd: \(n.ipamd.log.suffix(10))")
        let conf = try awsConf(n)
        let hostLocal = n.sim.work + "/host-local"
        let ptpConf = #"{"cniVersion":"1.0.0","name":"bench-ptp","type":"ptp","mtu":9001,"ipam":{"type":"host-local","subnet":"10.64.0.0/16","dataDir":"\#(hostLocal)"}}"#
        let node = n.sim.node.path
        func env(_ command: String, _ i: Int, _ ns: TestNamespace, cniPath: String) -> [String: String] {
            ["CNI_COMMAND": command, "CNI_CONTAINERID": "cid-bench-\(i)", "CNI_NETNS": ns.path, "CNI_IFNAME": "eth0", "CNI_PATH": cniPath,
             "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench-\(i);K8S_POD_UID=uid-bench-\(i)"]
        }
        func withPrev(_ conf: String, _ add: Completed) -> [UInt8] { Array((String(conf.dropLast()) + #","prevResult":"# + add.out + "}").utf8) }
        // The floor's addresses: outside the pool; the first ENI's worth on the primary (table
        // main), the rest on the ENI at device 1 (its 1536 rule), as the pool hands them out.
        func floorIP(_ i: Int) -> String { "10.65.\(i / 200).\(i % 200 + 10)" }
        func floorDevice(_ i: Int) -> String { i < 29 ? "0" : "1" }
        let contestants: [Contestant] = [
            ("aws-cni", { i, ns in try Spawn.run([n.ipamd.installedPlugin], env: env("ADD", i, ns, cniPath: n.ipamd.env["CNI_BIN_DIR"]!), stdin: Array(conf.utf8), netns: node) },
             { i, ns, add in try Spawn.run([n.ipamd.installedPlugin], env: env("DEL", i, ns, cniPath: n.ipamd.env["CNI_BIN_DIR"]!), stdin: withPrev(conf, add), netns: node) }),
            ("debian-ptp-host-local", { i, ns in try Spawn.run([Self.debianCNI + "/ptp"], env: env("ADD", i, ns, cniPath: Self.debianCNI), stdin: Array(ptpConf.utf8), netns: node) },
             { i, ns, add in try Spawn.run([Self.debianCNI + "/ptp"], env: env("DEL", i, ns, cniPath: Self.debianCNI), stdin: withPrev(ptpConf, add), netns: node) }),
            ("floor", { i, ns in try Spawn.run([Self.floor, "add-regular", ns.path, floorIP(i), "flr\(i)", floorDevice(i)], env: [:], netns: node) },
             { i, _, _ in try Spawn.run([Self.floor, "del-regular", floorIP(i), "flr\(i)", floorDevice(i)], env: [:], netns: node) }),
        ]
        var samples: [String: Samples] = [:]
        for round in 0..<Self.rounds {
            for c in round % 2 == 0 ? contestants : contestants.reversed() {
                // aws-cni: a warm pool for every pod of the round (the last round's addresses
                // back from their cool-down).
                if c.name == "aws-cni" {
                    #expect(await eventually(.seconds(120)) { n.poolCounts().map { $0.total - $0.assigned >= pods && $0.assigned == 0 } ?? false },
                            "warm pool: \(String(describing: n.poolCounts()))")
                }
                var s = samples[c.name] ?? Samples()
                var added: [(Int, TestNamespace, Completed)] = []
                for i in 0..<pods {
                    let ns = try n.sim.newPodNamespace()
                    let r = try c.add(i, ns)
                    if r.exitCode == 0 { s.add.append(r.elapsed.inMilliseconds); added.append((i, ns, r)) } else { s.failures += 1; print("\(c.name) ADD \(i): \(r)") }
                }
                for (i, ns, add) in added {
                    let r = try c.del(i, ns, add)
                    if r.exitCode == 0 { s.del.append(r.elapsed.inMilliseconds) } else { s.failures += 1; print("\(c.name) DEL \(i): \(r)") }
                    n.sim.deletePodNamespace(ns.path)
                }
                samples[c.name] = s
            }
        }
        print("regular pods on the host: \(pods) pods x \(Self.rounds) rounds per contestant, each exec from spawn to reaped; ms (nearest rank)")
        print("  contestant              ADD median    p90    p99    max   DEL median    p90    p99    max  fail")
        for c in contestants {
            let s = samples[c.name]!
            func f(_ xs: [Double], _ p: Double) -> String { Samples.percentile(xs, p).map { String(format: "%6.1f", $0) } ?? "     -" }
            print("  \(c.name.padding(toLength: 22, withPad: " ", startingAt: 0))     \(f(s.add, 50)) \(f(s.add, 90)) \(f(s.add, 99)) \(f(s.add, 100))       \(f(s.del, 50)) \(f(s.del, 90)) \(f(s.del, 99)) \(f(s.del, 100))  \(s.failures)")
        }
        return ["pods": pods, "rounds": Self.rounds, "contestants": samples.mapValues(\.json)]
    }

    /// The first plugin of the conflist ipamd installed, as kubelet hands it to aws-cni.
    func awsConf(_ n: CloudNode) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: try firstPluginConf(ofConflist: n.ipamd.conflist)), as: UTF8.self)
    }

    // MARK: 2. EC2 calls

    func ec2Calls() async throws -> [String: Any] {
        var out: [String: Any] = [:]
        for warm in [true, false] {
            let n = try CloudNode(trunkAttached: false, instanceType: "m5.4xlarge", ["ENABLE_POD_ENI": "false", "IP_COOLDOWN_PERIOD": "1"])
            let mirror = ENIMirror(n)
            defer { mirror.stop(); n.destroy() }
            if !warm { n.cloud.resetCounts() }
            try #require(try n.ipamd.start(), "ipamd: \(n.ipamd.log.suffix(10))")
            if warm {
                #expect(await eventually(.seconds(60)) { n.poolCounts().map { $0 == (1, 29, 0) } ?? false })
                n.cloud.resetCounts()
            }
            let plugin = PluginRunner(sim: n.sim, ipamd: n.ipamd, mode: "standard")
            var pods: [RegularPod] = []
            var latencies: [Double] = []
            for i in 0..<100 {
                if let p = try plugin.addRegular(n, "start\(i)") { pods.append(p); latencies.append(p.addElapsed.inMilliseconds) }
            }
            let calls = n.cloud.requests().ec2
            let slow = pods.enumerated().filter { $0.element.addElapsed.inMilliseconds > 20 }.map { "#\($0.offset) on device \($0.element.deviceNumber): \(Int($0.element.addElapsed.inMilliseconds)) ms" }
            if !slow.isEmpty { print("  ADDs over 20 ms: \(slow.joined(separator: ", "))") }
            let name = warm ? "warm" : "cold"
            out[name] = ["pods_started": pods.count, "calls": calls, "total": calls.values.reduce(0, +), "add_latency": Samples.summary(latencies)]
            print("EC2 calls for 100 pod starts, \(name) (\(warm ? "counted once the warm pool was filled" : "counted from ipamd's start")): " +
                  "\(calls.values.reduce(0, +)) \(calls.sorted { $0.key < $1.key }); ADD ms " +
                  ["median_ms", "p90_ms", "p99_ms", "max_ms"].map { "\($0.dropLast(3)) \(Samples.summary(latencies)[$0] as? Double ?? -1)" }.joined(separator: ", "))
            for p in pods { _ = try plugin.delete(p) }
        }
        return out
    }

    // MARK: 3. churn

    func churn(operations: Int) async throws -> [String: Any] {
        let n = try CloudNode(trunkAttached: false, instanceType: "m5.4xlarge", ["ENABLE_POD_ENI": "false", "IP_COOLDOWN_PERIOD": "1"])
        let mirror = ENIMirror(n)
        defer { mirror.stop(); n.destroy() }
        try #require(try n.ipamd.start(), "ipamd: \(n.ipamd.log.suffix(10))")
        let plugin = PluginRunner(sim: n.sim, ipamd: n.ipamd, mode: "standard")
        var churn = RegularPodChurn(node: n, plugin: plugin, seed: 14)
        let result = try churn.run(operations: operations, maxLive: 40)
        #expect(await eventually(.seconds(60)) { n.poolCounts()?.assigned == 0 })
        let held = n.poolCounts()?.assigned ?? -1
        let leftovers = try result.leftovers(n)
        print("churn: \(operations) operations (\(result.adds) ADD, \(result.dels) DEL), \(result.failures) failed; after every DEL and the cool-down: " +
              "\(held) addresses held, \(leftovers.rules) pod rules and \(leftovers.veths) host veths left")
        return ["operations": operations, "adds": result.adds, "dels": result.dels, "failures": result.failures,
                "addresses_held_after": held, "rules_left": leftovers.rules, "veths_left": leftovers.veths]
    }
}
