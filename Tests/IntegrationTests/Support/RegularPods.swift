import Foundation
import NetModel
import Netlink
import TestSupport
import Testing

/// A regular pod as the tests keep it: what DEL and CHECK need, and where ADD put it.
struct RegularPod {
    var container: String
    var name: String
    var netns: TestNamespace
    var result: String
    var ip: IPAddress
    var deviceNumber: Int
    /// The ADD exec, from spawn to reaped.
    var addElapsed: Duration = .zero
}

extension CloudNode {
    /// (pool ENIs, addresses, held) as `/v1/enis` shows them.
    func poolCounts() -> (enis: Int, total: Int, assigned: Int)? { Self.poolCounts(enis: try? ipamd.get("/v1/enis").json) }

    /// (pool ENIs, addresses, held) from a `/v1/enis` answer: the ENIs that list addresses.
    static func poolCounts(enis json: Any?) -> (enis: Int, total: Int, assigned: Int)? {
        guard let cards = json as? [String: [String: Any]], let card = cards["0"],
              let enis = card["ENIs"] as? [String: [String: Any]] else { return nil }
        let pool = enis.values.filter { !($0["AvailableIPv4Cidrs"] as? [String: Any] ?? [:]).isEmpty }
        return (pool.count, card["TotalIPs"] as? Int ?? -1, card["AssignedIPs"] as? Int ?? -1)
    }
}

extension PluginRunner {
    /// ADD for pod `name` (container "c-`name`") in a new namespace; records an issue and returns
    /// nil when it fails.
    func addRegular(_ n: CloudNode, _ name: String) throws -> RegularPod? {
        let ns = try n.sim.newPodNamespace()
        let r = try run("ADD", container: "c-\(name)", pod: name, netns: ns.path)
        guard r.exitCode == 0, let result = RegularPodResult(r.out) else {
            Issue.record("ADD \(name): \(r) \(n.ipamd.log.suffix(5))")
            return nil
        }
        return RegularPod(container: "c-\(name)", name: name, netns: ns, result: r.out, ip: result.ip, deviceNumber: result.deviceNumber, addElapsed: r.elapsed)
    }

    func delete(_ p: RegularPod) throws -> Completed {
        try run("DEL", container: p.container, pod: p.name, netns: p.netns.path, prevResult: p.result)
    }
}

/// Random ADDs and DELs of regular pods (seeded: a failure replays), at most `maxLive` at once,
/// then every pod deleted; what leaks is counted against the kernel afterwards.
struct RegularPodChurn {
    let node: CloudNode
    let plugin: PluginRunner
    var rng: SeededGenerator

    init(node: CloudNode, plugin: PluginRunner, seed: UInt64) {
        self.node = node; self.plugin = plugin; rng = SeededGenerator(seed: seed)
    }

    struct Result {
        var adds = 0
        var dels = 0
        var failures = 0
        /// Every address a pod had.
        var addresses: Set<IPAddress> = []

        /// Pod rules (512/1536) naming one of the churn's addresses, and host veths, still in the node.
        func leftovers(_ n: CloudNode) throws -> (rules: Int, veths: Int) {
            let node = try LibNLClient(namespacePath: n.sim.node.path)
            let rules = try node.rules(family: .ipv4).filter { r in
                addresses.contains { r.source == IPPrefix(host: $0) || r.destination == IPPrefix(host: $0) }
            }
            let veths = try node.links().filter { $0.kind == "veth" && $0.name.hasPrefix("eni") }
            return (rules.count, veths.count)
        }
    }

    mutating func run(operations: Int, maxLive: Int) throws -> Result {
        var result = Result()
        var live: [RegularPod] = []
        var next = 0
        func del(_ p: RegularPod, _ result: inout Result) throws {
            result.dels += 1
            if try plugin.delete(p).exitCode != 0 { result.failures += 1 }
            node.sim.deletePodNamespace(p.netns.path)
        }
        for _ in 0..<operations {
            if live.isEmpty || (live.count < maxLive && Bool.random(using: &rng)) {
                result.adds += 1
                next += 1
                if let p = try plugin.addRegular(node, "churn\(next)") {
                    live.append(p)
                    result.addresses.insert(p.ip)
                } else {
                    result.failures += 1
                }
            } else {
                try del(live.remove(at: Int.random(in: 0..<live.count, using: &rng)), &result)
            }
        }
        for p in live { try del(p, &result) }
        return result
    }
}
