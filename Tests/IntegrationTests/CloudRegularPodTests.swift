import CNI
import EnforcingMode
import Foundation
import Glibc
import NetModel
import Netlink
import TestSupport
import Testing

/// Regular pods (issue 14) on a node whose cloud is moto and the IMDS test server, ipamd and
/// aws-cni as processes, the ENIs EC2 attaches mirrored into the node as links (ENIMirror): the
/// warm pool on the primary ENI, a second ENI attached and set up when it runs low, the pods'
/// rules per ENI, a restart that keeps every holder, and DEL that leaves nothing behind.
@Suite(.serialized, .ownThread, .enabled(if: isRoot)) struct CloudRegularPodTests {
    typealias Pod = RegularPod

    func pool(_ n: CloudNode) -> (enis: Int, total: Int, assigned: Int)? { n.poolCounts() }

    func rules(_ n: CloudNode) throws -> [Rule] { try LibNLClient(namespacePath: n.sim.node.path).rules(family: .ipv4) }

    func add(_ n: CloudNode, _ plugin: PluginRunner, _ i: Int) throws -> Pod? { try plugin.addRegular(n, "p\(i)") }

    /// A node whose pods are all regular (pod ENI off), its ENIs mirrored, ipamd started with
    /// `extra` and its warm pool filled (`warm` addresses on the primary ENI); the caller stops
    /// the mirror and destroys the node.
    func started(_ extra: [String: String], warm: Int) async throws -> (CloudNode, ENIMirror, PluginRunner) {
        let n = try CloudNode(trunkAttached: false, ["ENABLE_POD_ENI": "false", "IP_COOLDOWN_PERIOD": "1"].merging(extra) { _, b in b })
        let mirror = ENIMirror(n)
        #expect(try n.ipamd.start(), "ipamd ready: \(n.ipamd.log.suffix(20))")
        #expect(await eventually { pool(n).map { $0 == (1, warm, 0) } ?? false }, "warm pool: \(String(describing: pool(n)))")
        return (n, mirror, PluginRunner(sim: n.sim, ipamd: n.ipamd, mode: "standard"))
    }

    @Test func podsFillThePrimaryThenASecondENIAndLeaveNothing() async throws {
        // WARM_ENI_TARGET=1 on an m5.large: the primary's 9 secondary addresses.
        let (n, mirror, plugin) = try await started([:], warm: 9)
        defer { mirror.stop(); n.destroy() }
        n.cloud.resetCounts()
        let baselineRules = try rules(n)
        var pods: [Pod] = []
        for i in 0..<12 { if let p = try add(n, plugin, i) { pods.append(p) } }
        try #require(pods.count == 12)
        #expect(Set(pods.map(\.ip)).count == 12, "every pod its own address")
        #expect(pods.prefix(9).allSatisfy { $0.deviceNumber == 0 }, "the first 9 from the primary ENI")
        #expect(pods.suffix(3).allSatisfy { $0.deviceNumber == 1 }, "then the ENI attached at device 1")
        // WARM_ENI_TARGET=1: a whole ENI's worth stays free, so with 3 of the second ENI's
        // addresses taken the pool attaches the m5.large's third ENI too (without waiting for
        // its tick). Each ENI costs one call of each kind; no pod costs a call.
        #expect(await eventually { pool(n).map { $0 == (3, 27, 12) } ?? false }, "\(String(describing: pool(n)))")
        let ec2 = n.cloud.requests().ec2
        #expect(["CreateNetworkInterface", "AttachNetworkInterface", "ModifyNetworkInterfaceAttribute", "AssignPrivateIpAddresses"].allSatisfy { ec2[$0] == 2 },
                "two ENIs attached and filled for 12 pods: \(ec2)")
        print("regular pods: EC2 calls for 12 pod starts from a warm pool: \(ec2)")

        // The second ENI's link (mirrored from EC2) set up as SPEC 3a says.
        let node = try LibNLClient(namespacePath: n.sim.node.path)
        let state = try #require(n.cloud.state())
        let second = try #require(state.enis.first { $0.deviceIndex == 1 })
        let link = try #require(try node.link(withMAC: MACAddress(second.mac)!))
        #expect(link.isUp && link.mtu == 9001)
        let ruleSet = try rules(n)
        #expect(ruleSet.contains { $0.priority == 32765 && $0.table == 2 && $0.source == IPPrefix(host: IPAddress(second.ip)!) }, "32765 from the ENI's address")
        let table2 = try node.routes(family: .ipv4).filter { $0.table == 2 }
        #expect(table2.contains { $0.destination.length == 0 && $0.gateway == IPAddress("10.0.0.1") && $0.outputIndex == link.index }, "\(table2)")
        for p in pods {
            #expect(ruleSet.contains { $0.priority == 512 && $0.destination == IPPrefix(host: p.ip) && $0.table == RouteTable.main })
            let from = ruleSet.filter { $0.priority == 1536 && $0.source == IPPrefix(host: p.ip) }
            #expect(from.map(\.table) == (p.deviceNumber == 0 ? [] : [2]), "\(p.name): 1536 only for the second ENI's addresses")
        }
        #expect(pool(n)?.assigned == 12)

        // A restart keeps every holder (from the checkpoint, in the reference's allocations).
        n.ipamd.stop()
        let checkpoint = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: n.ipamd.env["AWS_VPC_K8S_CNI_BACKING_STORE"]!))) as? [String: Any]
        let allocations = checkpoint?["allocations"] as? [[String: Any]] ?? []
        #expect(Set(allocations.compactMap { $0["ipv4"] as? String }) == Set(pods.map(\.ip.description)), "the checkpoint's allocations")
        #expect(try n.ipamd.start(), "ipamd ready again: \(n.ipamd.log.suffix(20))")
        #expect(await eventually { pool(n)?.assigned == 12 }, "holders restored: \(String(describing: pool(n)))")
        let check = try plugin.run("CHECK", container: pods[10].container, pod: pods[10].name, netns: pods[10].netns.path, prevResult: pods[10].result)
        #expect(check.exitCode == 0, "CHECK after the restart: \(check.out)")

        for p in pods {
            let del = try plugin.delete(p)
            #expect(del.exitCode == 0, "DEL \(p.name): \(del.out)")
        }
        let left = try rules(n).filter { r in pods.contains { r.source == IPPrefix(host: $0.ip) || r.destination == IPPrefix(host: $0.ip) } }
        #expect(left.isEmpty, "pod rules left: \(left.map(\.description))")
        #expect(try rules(n).filter { $0.priority != 32765 } == baselineRules.filter { $0.priority != 32765 })
        #expect(try node.links().filter { $0.kind == "veth" && $0.name.hasPrefix("eni") }.isEmpty, "no host veth left")
        // After the cool-down nothing is held, and every address is free again.
        #expect(await eventually { pool(n)?.assigned == 0 }, "\(String(describing: pool(n)))")
        print("regular pods: addresses held after 12 ADD and DEL: \(pool(n)?.assigned ?? -1)")
    }

    /// Traffic: two regular pods on different ENIs reach each other; each reaches a VPC address
    /// with its own address and through its own ENI (the VPC drops a source arriving on another
    /// ENI's wire, as EC2's source/destination check does), the VPC reaches the pod on the second
    /// ENI, and a connection leaving the VPC arrives from the node's primary IP (SNAT).
    @Test func podsOnTwoENIsTalkWithTheirOwnAddressesAndLeaveTheVPCSNATed() async throws {
        let (n, mirror, plugin) = try await started([:], warm: 9)
        defer { mirror.stop(); n.destroy() }
        var pods: [Pod] = []
        for i in 0..<10 { if let p = try add(n, plugin, i) { pods.append(p) } }
        try #require(pods.count == 10)
        let onPrimary = pods[0], onSecond = pods[9]
        try #require(onPrimary.deviceNumber == 0 && onSecond.deviceNumber == 1)
        #expect(await eventually { mirror.routes(onPrimary.ip.description) && mirror.routes(onSecond.ip.description) }, "the VPC routes both")
        // In the VPC namespace: a VPC address outside the subnet, and one outside the VPC.
        let vpcHost = "10.0.200.1", internet = "198.51.100.1", nodeIP = n.cloud.initial.primaryENI.ip
        try n.sim.vpc.ip("addr", "add", "\(vpcHost)/32", "dev", "lo")
        try n.sim.vpc.ip("addr", "add", "\(internet)/32", "dev", "lo")
        let vpcServer = try WhoamiServer(netns: n.sim.vpc.path)
        let podServer = try WhoamiServer(netns: onSecond.netns.path)
        defer { vpcServer.stop(); podServer.stop() }

        for p in [onPrimary, onSecond] {
            #expect(WhoamiServer.sourceSeen(from: p.netns.path, vpcHost) == p.ip.description, "\(p.name) on ENI \(p.deviceNumber) → VPC: its own address")
            #expect(WhoamiServer.sourceSeen(from: p.netns.path, internet) == nodeIP, "\(p.name) → outside the VPC: SNATed to the node's primary IP")
        }
        #expect(WhoamiServer.sourceSeen(from: onPrimary.netns.path, onSecond.ip.description) == onPrimary.ip.description, "pod to pod across ENIs")
        #expect(WhoamiServer.sourceSeen(from: n.sim.vpc.path, onSecond.ip.description, source: vpcHost) == vpcHost,
                "the VPC reaches the pod on the second ENI, and its answers go back out that ENI")

        // The check above can fail: without its 1536 rule the second ENI's pod leaves through the
        // primary ENI, and the VPC drops it.
        let rule = ["from", "\(onSecond.ip)/32", "lookup", "2", "priority", "1536"]
        #expect(try n.sim.node.exec([TestNamespace.ipPath, "rule", "del"] + rule).status == 0)
        #expect(WhoamiServer.sourceSeen(from: onSecond.netns.path, vpcHost, timeout: 2) == nil, "source/destination check")
        #expect(try n.sim.node.exec([TestNamespace.ipPath, "rule", "add"] + rule).status == 0)

        for p in pods { _ = try plugin.delete(p) }
        #expect(await eventually { pool(n)?.assigned == 0 })
    }

    /// Churn: 150 random ADDs and DELs (at most 20 pods at once, so ENIs come and go), then
    /// every pod deleted: after the cool-down no address is held, and no pod rule or host veth
    /// is left in the node.
    @Test func churnLeavesNothingBehind() async throws {
        let (n, mirror, plugin) = try await started([:], warm: 9)
        defer { mirror.stop(); n.destroy() }
        var churn = RegularPodChurn(node: n, plugin: plugin, seed: 7)
        let result = try churn.run(operations: 150, maxLive: 20)
        #expect(result.failures == 0, "\(result.failures) of \(result.adds) ADD and \(result.dels) DEL failed")
        #expect(await eventually { pool(n)?.assigned == 0 }, "held after the churn: \(String(describing: pool(n)))")
        let left = try result.leftovers(n)
        #expect(left.rules == 0 && left.veths == 0, "left: \(left)")
        print("regular pods: churn of \(result.adds) ADD and \(result.dels) DEL: \(pool(n)?.assigned ?? -1) addresses held after, \(left.rules) rules and \(left.veths) veths left")
    }

    /// EC2 throttled (503 RequestLimitExceeded) or failing (500 InternalError) on every call: the
    /// warm pool still serves every ADD it can, the next one waits its bound
    /// and gets code 11 naming EC2's error. Then the instance type's limit: 3 ENIs of 9 addresses
    /// each, the 28th pod refused with a clear error until a DEL frees an address (after its
    /// cool-down).
    @Test(arguments: [("RequestLimitExceeded", 503), ("InternalError", 500)])
    func throttlingOr5xxAndTheInstanceTypesLimit(_ code: String, _ status: Int) async throws {
        let (n, mirror, plugin) = try await started(["IP_WAIT_TIMEOUT": "3"], warm: 9)
        defer { mirror.stop(); n.destroy() }

        n.cloud.ec2Fault(code: code, status: status, count: 100_000)
        var pods: [Pod] = []
        for i in 0..<9 { if let p = try add(n, plugin, i) { pods.append(p) } }
        #expect(pods.count == 9, "the warm pool serves 9 pods with EC2 throttled")
        let ns = try n.sim.newPodNamespace()
        let refused = try plugin.run("ADD", container: "c9", pod: "p9", netns: ns.path)
        #expect(refused.exitCode != 0 && refused.json?["code"] as? Int == 11 && refused.out.contains("refilled"), "\(refused.out)")
        // The EC2 client retries within its bound before the pool logs the failure (the ADD's
        // message names it once a sizing step has failed; its 3 s may end before that).
        #expect(n.ipamd.process?.waitForLine(containing: code, timeout: 60) == true, "the pool says why")

        n.cloud.ec2Fault(code: code, status: status, count: 0)
        for i in 9..<27 { if let p = try add(n, plugin, i) { pods.append(p) } }
        #expect(pods.count == 27 && Set(pods.map(\.ip)).count == 27)
        #expect(Set(pods.map(\.deviceNumber)) == [0, 1, 2], "three ENIs: the m5.large's limit")
        let full = try plugin.run("ADD", container: "c27", pod: "p27", netns: try n.sim.newPodNamespace().path)
        #expect(full.exitCode != 0 && full.json?["code"] as? Int == 11 && full.out.contains("full"), "\(full.out)")

        // A DEL frees one: after its cool-down the 28th pod gets it.
        let del = try plugin.delete(pods[0])
        #expect(del.exitCode == 0)
        if let p = try add(n, plugin, 27) {
            #expect(p.ip == pods[0].ip, "the freed address, after the cool-down")
            pods[0] = p
        }
        for p in pods { _ = try plugin.delete(p) }
        #expect(await eventually { pool(n)?.assigned == 0 })
    }

    /// ENABLE_PREFIX_DELEGATION: the pool holds /28 prefixes, the pods' addresses come from them.
    @Test func prefixDelegation() async throws {
        // One /28 warm.
        let (n, mirror, plugin) = try await started(["ENABLE_PREFIX_DELEGATION": "true"], warm: 16)
        defer { mirror.stop(); n.destroy() }
        var pods: [Pod] = []
        for i in 0..<20 { if let p = try add(n, plugin, i) { pods.append(p) } }
        #expect(pods.count == 20 && Set(pods.map(\.ip)).count == 20)
        let prefixes = (n.cloud.state()?.enis.first { $0.deviceIndex == 0 }?.ipv4Prefixes ?? []).compactMap { IPPrefix($0) }
        #expect(pods.allSatisfy { p in prefixes.contains { $0.contains(p.ip) } }, "every address from a delegated /28: \(prefixes)")
        #expect(pods.allSatisfy { $0.deviceNumber == 0 }, "20 pods fit on the primary ENI's prefixes")
        for p in pods { _ = try plugin.delete(p) }
        #expect(await eventually { pool(n)?.assigned == 0 })
    }
}
