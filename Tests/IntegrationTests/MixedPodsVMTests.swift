import Foundation
import Glibc
import NetModel
import Netlink
import TestSupport
import Testing

/// Regular and branch pods on one node (issue 14), in the VM (branch pods need 802.1Q): moto as
/// an m5.4xlarge's EC2 (8 ENIs of 30 addresses), the ENIs it attaches mirrored into the node and
/// routed by the simulated VPC, which enforces security groups (scripts/vpc/vpc.py, strict mode).
/// 60 regular and 3 branch pods start, every one reaches the VPC, a regular pod and a branch pod
/// reach each other exactly as the groups allow, and DEL leaves nothing of theirs.
@Suite(.serialized, .ownThread) struct MixedPodsVMTests {
    struct Branch {
        var name: String
        var vlan: UInt16
        var ip: String
        var mac: String
        var group: String
    }

    static let branches = [
        Branch(name: "web", vlan: 7, ip: "10.0.40.7", mac: "0a:00:00:00:00:07", group: "sg-web"),
        Branch(name: "db", vlan: 8, ip: "10.0.40.8", mac: "0a:00:00:00:00:08", group: "sg-db"),
        Branch(name: "reports", vlan: 9, ip: "10.0.40.9", mac: "0a:00:00:00:00:09", group: "sg-reports"),
    ]

    /// The groups: the node's ENIs (and so every regular pod) carry sg-node, as the pool creates
    /// its ENIs with the primary ENI's groups.
    static var groups: [String: Any] { [
        "sg-node": ["ingress": [["protocol": "all", "cidr": "10.0.0.0/16"]], "egress": [["protocol": "all", "cidr": "0.0.0.0/0"]]],
        "sg-web": ["ingress": [["protocol": "tcp", "ports": "8080", "group": "sg-node"]], "egress": [["protocol": "all", "cidr": "0.0.0.0/0"]]],
        "sg-db": ["ingress": [["protocol": "tcp", "ports": "8080", "group": "sg-web"]], "egress": [] as [Any]],
        "sg-reports": ["ingress": [] as [Any], "egress": [["protocol": "tcp", "ports": "8080", "cidr": "10.0.0.0/16"]]],
    ] }

    static let vpcHost = "10.0.200.1"

    @Test(.enabled(if: kernelHasVLAN, "needs 802.1Q: runs in the test VM"))
    func sixtyRegularAndThreeBranchPodsTalkAsTheGroupsAllow() async throws {
        let n = try CloudNode(mode: "strict", instanceType: "m5.4xlarge", ["IP_COOLDOWN_PERIOD": "1"])
        let mirror = ENIMirror(n)
        defer { mirror.stop(); n.destroy() }
        n.ipamd.setPods(Dictionary(uniqueKeysWithValues: Self.branches.map { ("default/\($0.name)", annotation(vlan: $0.vlan, ip: $0.ip, mac: $0.mac)) }))
        #expect(try n.ipamd.start(), "ipamd ready: \(n.ipamd.log.suffix(20))")
        // WARM_ENI_TARGET=1: the primary ENI's 29 secondary addresses.
        #expect(await eventually(.seconds(120)) { n.poolCounts().map { $0 == (1, 29, 0) } ?? false }, "warm pool: \(String(describing: n.poolCounts()))")
        for b in Self.branches { try n.sim.branch(vlan: b.vlan, mac: b.mac, ip: b.ip) }
        try n.sim.vpc.ip("addr", "add", "\(Self.vpcHost)/32", "dev", "lo")
        let node = try LibNLClient(namespacePath: n.sim.node.path)
        let baselineRules = try node.rules(family: .ipv4)

        let plugin = PluginRunner(sim: n.sim, ipamd: n.ipamd, mode: "strict")
        var branchPods: [String: (ns: TestNamespace, result: String)] = [:]
        for b in Self.branches {
            let ns = try n.sim.newPodNamespace()
            let add = try plugin.run("ADD", container: "c-\(b.name)", pod: b.name, netns: ns.path)
            #expect(add.exitCode == 0, "branch \(b.name): \(add) \(n.ipamd.log.suffix(5))")
            branchPods[b.name] = (ns, add.out)
        }
        var regular: [RegularPod] = []
        for i in 0..<60 { if let p = try plugin.addRegular(n, "app\(i)") { regular.append(p) } }
        if regular.count != 60 {
            print("mixed pods VM: the pool's log:\n" + n.ipamd.log.filter { $0.contains("IPAMDPool") }.joined(separator: "\n"))
            print("mixed pods VM: the mirror:\n" + mirror.history.joined(separator: "\n"))
        }
        try #require(regular.count == 60 && branchPods.count == 3)
        #expect(Set(regular.map(\.ip)).count == 60, "every regular pod its own address")
        let devices = Set(regular.map(\.deviceNumber))
        #expect(devices.count >= 3 && !devices.contains(1), "60 pods over the primary and two more ENIs, never the trunk (device 1): \(devices.sorted())")
        #expect(n.poolCounts()?.assigned == 60)
        print("mixed pods VM: regular pods per device number: \(Dictionary(grouping: regular, by: \.deviceNumber).mapValues(\.count).sorted { $0.key < $1.key })")

        // Every pod talks: reaches a VPC address (the VPC answers only along the ENI that holds
        // the source address).
        #expect(await eventually(.seconds(60)) { regular.allSatisfy { mirror.routes($0.ip.description) } }, "the VPC routes every pod address")
        var silent: [String] = []
        for p in regular where try p.netns.exec(["ping", "-c", "1", "-W", "10", Self.vpcHost]).status != 0 { silent.append(p.name) }
        for (name, pod) in branchPods where try pod.ns.exec(["ping", "-c", "1", "-W", "10", Self.vpcHost]).status != 0 { silent.append(name) }
        #expect(silent.isEmpty, "pods that could not reach the VPC: \(silent)")

        // The security groups, enforced by the VPC, with every regular pod's address a secondary
        // address of the ENI that holds it.
        try loadGroups(n, regular)
        let first = regular[0], last = try #require(regular.last { $0.deviceNumber != 0 })
        let web = branchPods["web"]!.ns, db = branchPods["db"]!.ns, reports = branchPods["reports"]!.ns
        var servers: [WhoamiServer] = []
        for ns in [web, db, reports, first.netns, last.netns] { servers.append(try WhoamiServer(netns: ns.path)) }
        defer { servers.forEach { $0.stop() } }
        // (from, its address, to, allowed, why)
        let matrix: [(String, TestNamespace, String, String, Bool, String)] = [
            (first.name, first.netns, first.ip.description, "10.0.40.7", true, "sg-web admits sg-node, which the primary ENI's addresses carry"),
            (last.name, last.netns, last.ip.description, "10.0.40.7", true, "a pool ENI carries the primary's groups"),
            (first.name, first.netns, first.ip.description, "10.0.40.8", false, "sg-db admits only sg-web"),
            ("web", web, "10.0.40.7", first.ip.description, true, "sg-node admits the VPC"),
            ("web", web, "10.0.40.7", last.ip.description, true, "sg-node admits the VPC"),
            ("db", db, "10.0.40.8", first.ip.description, false, "sg-db lets nothing out"),
            ("reports", reports, "10.0.40.9", last.ip.description, true, "sg-reports may reach the VPC on 8080"),
            (first.name, first.netns, first.ip.description, "10.0.40.9", false, "sg-reports admits nothing"),
        ]
        for (from, ns, source, to, allowed, why) in matrix {
            let seen = WhoamiServer.sourceSeen(from: ns.path, to, timeout: 5)
            #expect(seen == (allowed ? source : nil), "\(from) → \(to): \(allowed ? "allowed" : "blocked") (\(why)), saw \(seen ?? "nothing")")
        }

        // DEL leaves nothing of theirs.
        for p in regular { #expect(try plugin.delete(p).exitCode == 0, "DEL \(p.name)") }
        for b in Self.branches {
            let del = try plugin.run("DEL", container: "c-\(b.name)", pod: b.name, netns: branchPods[b.name]!.ns.path, prevResult: branchPods[b.name]!.result)
            #expect(del.exitCode == 0, "DEL \(b.name): \(del.out)")
        }
        let podIPs = Set(regular.map(\.ip) + Self.branches.compactMap { IPAddress($0.ip) })
        #expect(try node.rules(family: .ipv4).filter { $0.priority != 32765 } == baselineRules.filter { $0.priority != 32765 }, "no pod rule left")
        let leftRoutes = try node.routes(family: .ipv4).filter { r in podIPs.contains { r.destination == IPPrefix(host: $0) } }
        #expect(leftRoutes.isEmpty, "routes to pods left: \(leftRoutes)")
        let leftLinks = try node.links().filter { ($0.kind == "veth" && $0.name.hasPrefix("eni")) || $0.kind == "vlan" }
        #expect(leftLinks.isEmpty, "pod links left: \(leftLinks.map(\.name))")
        #expect(await eventually(.seconds(60)) { n.poolCounts()?.assigned == 0 }, "addresses held after DEL: \(String(describing: n.poolCounts()))")
        print("mixed pods VM: addresses held after 63 DELs: \(n.poolCounts()?.assigned ?? -1)")
    }

    /// The VPC file for this node (every interface ENI with its pods' addresses, the branch
    /// ENIs) rendered by vpc.py and loaded into the VPC namespace.
    func loadGroups(_ n: CloudNode, _ regular: [RegularPod]) throws {
        let state = try #require(n.cloud.state())
        var interfaces: [String: Any] = [:]
        for eni in state.enis where eni.interfaceType == "interface" {
            interfaces[eni.eniID] = ["link": ENIMirror.vpcLink(deviceIndex: eni.deviceIndex), "ip": eni.ip, "groups": ["sg-node"],
                                     "secondaryIps": regular.filter { $0.deviceNumber == eni.deviceIndex }.map(\.ip.description)]
        }
        for b in Self.branches { interfaces["eni-\(b.name)"] = ["link": "trunk.\(b.vlan)", "ip": b.ip, "groups": [b.group]] }
        let file = n.sim.work + "/vpc.json"
        try JSONSerialization.data(withJSONObject: ["securityGroups": Self.groups, "interfaces": interfaces]).write(to: URL(fileURLWithPath: file))
        let nft = try Spawn.run(["/usr/bin/python3", Binaries.root + "/scripts/vpc/vpc.py", "nft", file], env: ["PATH": "/usr/bin:/bin"])
        try #require(nft.exitCode == 0, "vpc.py: \(nft)")
        let load = try Spawn.run(["/usr/sbin/nft", "-f", "-"], env: ["PATH": "/usr/sbin:/usr/bin"], stdin: nft.stdout, netns: n.sim.vpc.path)
        try #require(load.exitCode == 0, "nft: \(load)")
    }
}
