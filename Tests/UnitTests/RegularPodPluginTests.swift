import CNI
import CNIPlugin
import EnforcingMode
import IPAMDProtocol
import NetModel
import Testing
import TestSupport

/// The plugin's regular pods (issue 14, SPEC section 3a) on the in-memory kernel with a fake
/// ipamd: the datapath, the result DEL and CHECK read back, and ownership when an address moves
/// to another pod.
@Suite struct RegularPodPluginTests {
    static func regular(_ ip: String = "10.0.0.20", device: Int) -> PodNetwork {
        PodNetwork(branch: false, podIPv4: ip, vpcCIDRs: ["10.0.0.0/16"], deviceNumber: device, eniID: "eni-\(device)")
    }

    func harness(device: Int) -> Harness {
        let h = Harness()
        h.ipamd.network = Self.regular(device: device)
        return h
    }

    func rules(_ h: Harness) -> Set<String> { Set(h.dp.host.ruleList.map(\.description)) }

    @Test(arguments: [0, 2])
    func addCheckDelDel(device: Int) throws {
        let h = harness(device: device)
        let before = h.dp.host.state
        let add = h.run("ADD", conf: Harness.conf("standard"))
        #expect(add.exitCode == 0, "\(add.stdout)")
        let result = try CNIJSON.decode(CNIResult.self, from: Array(add.stdout.utf8))
        #expect(result.interfaces?.map(\.name) == ["enic440f455693", "eth0", "dummyc440f455693"])
        #expect(result.interfaces?[2].mac == "0" && result.interfaces?[2].sandbox == String(device), "VLAN 0 and the device number")
        #expect(result.ips == [.init(address: "10.0.0.20/32", interface: 1)], "no gateway: the pod's is link-local")
        let veth = try #require(h.dp.host.linkTable["enic440f455693"])
        #expect(veth.isUp && veth.alias == "c1")
        #expect(h.dp.host.routeList.contains { $0.destination == IPPrefix("10.0.0.20/32") && $0.outputIndex == veth.index && $0.table == RouteTable.main })
        var expected: Set<String> = [Rule(family: .ipv4, priority: 512, table: RouteTable.main, destination: IPPrefix("10.0.0.20/32")).description]
        if device != 0 { expected.insert(Rule(family: .ipv4, priority: 1536, table: UInt32(device + 1), source: IPPrefix("10.0.0.20/32")).description) }
        #expect(rules(h) == expected, "512 to the pod; 1536 into table d+1 for a secondary ENI only")
        #expect(h.dp.pod.neighborList.first?.mac == veth.mac)
        #expect(!h.dp.host.linkTable.values.contains { $0.kind == "vlan" }, "no VLAN")

        #expect(h.run("CHECK", conf: Harness.conf("standard", prevResult: add.stdout)).exitCode == 0)
        h.dp.host.ruleList.removeAll { $0.priority == 512 }
        let check = h.run("CHECK", conf: Harness.conf("standard", prevResult: add.stdout))
        #expect(check.exitCode != 0 && check.stdout.contains("512"), "\(check.stdout)")

        h.ipamd.down = true
        #expect(h.run("DEL", conf: Harness.conf("standard", prevResult: add.stdout)).exitCode == 0)
        #expect(h.dp.host.state == before)
        #expect(h.run("DEL", conf: Harness.conf("standard", prevResult: add.stdout), netns: "").exitCode == 0)
    }

    @Test(arguments: ["ipamd", "live state"])
    func delWithoutPrevResult(_ from: String) {
        let h = harness(device: 3)
        let before = h.dp.host.state
        #expect(h.run("ADD", conf: Harness.conf("standard")).exitCode == 0)
        if from == "live state" { h.ipamd.down = true }
        #expect(h.run("DEL", conf: Harness.conf("standard"), netns: "").exitCode == 0)
        #expect(h.dp.host.state == before, "DEL from \(from)")
    }

    /// A leaks; after the cool-down its address goes to B (another pod); A's late DEL leaves B whole.
    @Test(arguments: [true, false])
    func lateDelAfterTheAddressMovedLeavesTheNewPod(withPrevResult: Bool) {
        let h = harness(device: 2)
        let before = h.dp.host.state
        let addA = h.run("ADD", conf: Harness.conf("standard"))
        #expect(addA.exitCode == 0)
        _ = h.dp.addNamespace("/var/run/netns/pod2")
        let argsB = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=u2"
        let addB = h.run("ADD", conf: Harness.conf("standard"), netns: "/var/run/netns/pod2", args: argsB, containerID: "c2")
        #expect(addB.exitCode == 0, "\(addB.stdout)")
        let withB = rules(h)
        h.ipamd.down = true
        let del = h.run("DEL", conf: Harness.conf("standard", prevResult: withPrevResult ? addA.stdout : nil), netns: "")
        #expect(del.exitCode == 0, "\(del.stdout)")
        #expect(rules(h) == withB, "B's 512 and 1536 rules stay")
        #expect(h.dp.host.linkTable["enic440f455693"] == nil, "A's veth is gone")
        #expect(h.run("CHECK", conf: Harness.conf("standard", prevResult: addB.stdout), netns: "/var/run/netns/pod2", args: argsB, containerID: "c2").exitCode == 0)
        #expect(h.run("DEL", conf: Harness.conf("standard", prevResult: addB.stdout), netns: "/var/run/netns/pod2", args: argsB, containerID: "c2").exitCode == 0)
        #expect(h.dp.host.state == before)
    }

    @Test func noAddressIsTryAgainLater() {
        let h = harness(device: 0)
        h.ipamd.failure = RPCFailure(.noAddressAvailable, "the node's ENIs are full (3 ENIs, 27 addresses, all held)")
        let add = h.run("ADD", conf: Harness.conf("standard"))
        #expect(code(add) == 11 && add.stdout.contains("ENIs are full"))
    }
}
