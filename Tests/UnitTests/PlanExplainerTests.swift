import Datapath
import EnforcingMode
import Foundation
import Glibc
import NetModel
import Netlink
import TestSupport
import Testing

/// Sysctls kept in memory, so what setup wrote can be read back (FakeSysctl reads "0" for all).
final class MemorySysctl: SysctlWriter {
    var values: [String: String] = [:]
    func write(_ key: String, _ value: String) throws(SysctlError) { values[key] = value }
    func read(_ key: String) throws(SysctlError) -> String {
        guard let v = values[key] else { throw SysctlError(key: key, errno: ENOENT) }
        return v
    }
}

@Suite struct PlanExplainerTests {
    static let netns = "/var/run/netns/pod1"
    static let hostVeth = "vlanabcdef01234"

    /// A branch pod's plan applied to the in-memory kernel, ready to be broken and explained.
    struct Applied {
        let f = FakeDatapath()
        let sysctl = MemorySysctl()
        let pod: BranchPod
        let steps: [PlanStep]
        let context: DatapathContext

        init(_ mode: PodSGEnforcingMode, v6: Bool = false) throws {
            pod = BranchPod(mode: mode, vlanID: 7, podIP: IPAddress(v6 ? "2600:1f14::7" : "10.0.40.7")!,
                            subnetGateway: v6 ? Naming.subnetGatewayV6 : IPAddress("10.0.32.1")!,
                            branchMAC: MACAddress("0a:00:00:00:00:07")!, trunkIndex: f.trunk.index, hostVeth: PlanExplainerTests.hostVeth,
                            containerInterface: "eth0", mtu: 9001, owner: "cid-1",
                            hostVethMAC: MACAddress("02:00:00:00:01:01")!, containerMAC: MACAddress("02:00:00:00:01:02")!)
            steps = BranchPodPlanner.setup(pod)
            var ctx = try f.podContext(netnsPath: PlanExplainerTests.netns)
            ctx.sysctl = sysctl
            context = ctx
            try PlanApplier(context: context, logger: quiet).setup(steps)
        }

        func explain(_ ctx: DatapathContext? = nil, netns: String? = PlanExplainerTests.netns) throws -> [ExplainedObject] {
            try PlanExplainer(context: ctx ?? context).explain(steps, family: pod.family, podNetnsPath: netns)
        }

        /// The host side alone, as ipamd has it when the pod's namespace cannot be opened.
        var hostOnly: DatapathContext { DatapathContext(host: f.host, pod: nil, podNamespaceFD: -1, sysctl: sysctl) }
    }

    /// Everything not present, as "kind side what: status detail".
    func problems(_ out: [ExplainedObject]) -> [String] {
        out.filter { $0.status != .present }.map { "\($0.kind) \($0.side.rawValue) \($0.what): \($0.status) \($0.detail ?? "-")" }
    }

    func find(_ out: [ExplainedObject], _ kind: ExplainedObject.Kind, _ side: Side, _ what: String) throws -> ExplainedObject {
        try #require(out.first { $0.kind == kind && $0.side == side && $0.what.hasPrefix(what) })
    }

    @Test(arguments: [PodSGEnforcingMode.strict, .standard])
    func appliedPlanIsAllPresent(_ mode: PodSGEnforcingMode) throws {
        let a = try Applied(mode)
        let out = try a.explain()
        #expect(problems(out) == [])
        #expect(out.allSatisfy { $0.detail == nil })
        // Up and owner steps fold into their link: three links, one entry each.
        let kinds = Dictionary(grouping: out, by: \.kind).mapValues(\.count)
        #expect(kinds == [.link: 3, .address: 1, .route: 5, .rule: 2, .neighbor: 1, .sysctl: 6])
        #expect(try find(out, .link, .host, "vlan.eth.7").what == "vlan.eth.7 VLAN 7 on trunk #\(a.f.trunk.index), MAC 0a:00:00:00:00:07, up, owner cid-1")
        #expect(try find(out, .link, .host, "vlan.eth.7").command == "ip -d link show vlan.eth.7")
        #expect(try find(out, .link, .pod, "eth0").command == "nsenter --net=/var/run/netns/pod1 ip -d link show eth0")
        #expect(try find(out, .route, .pod, "default").command == "nsenter --net=/var/run/netns/pod1 ip -4 route show table main default")
        #expect(try find(out, .route, .host, "10.0.32.1/32").command == "ip -4 route show table 107 10.0.32.1/32")
        #expect(try find(out, .neighbor, .pod, "169.254.1.1").command == "nsenter --net=/var/run/netns/pod1 ip -4 neigh show 169.254.1.1 dev eth0")
        #expect(try find(out, .sysctl, .host, "net/ipv6/conf/vlan.eth.7/accept_ra").command == "cat /proc/sys/net/ipv6/conf/vlan.eth.7/accept_ra")
        let rulePriorities = out.filter { $0.kind == .rule }.map(\.command)
        #expect(rulePriorities == (mode == .strict
            ? ["ip -4 rule show priority 10", "ip -4 rule show priority 10"]
            : ["ip -4 rule show priority 512", "ip -4 rule show priority 1536"]))
    }

    @Test(arguments: [PodSGEnforcingMode.strict, .standard])
    func appliedIPv6PlanIsAllPresent(_ mode: PodSGEnforcingMode) throws {
        let a = try Applied(mode, v6: true)
        let out = try a.explain()
        #expect(problems(out) == [])
        #expect(try find(out, .neighbor, .pod, "fe80::1").command == "nsenter --net=/var/run/netns/pod1 ip -6 neigh show fe80::1 dev eth0")
        #expect(out.filter { $0.kind == .rule }.allSatisfy { $0.command.hasPrefix("ip -6 rule show priority ") })
    }

    @Test func removedVLANLinkTakesItsTableWithIt() throws {
        let a = try Applied(.strict)
        a.f.host.removeLink(a.f.host.linkTable["vlan.eth.7"]!)
        // The kernel keeps `iif` rules of a vanished link, so they still count as present.
        #expect(problems(try a.explain()) == [
            "link host vlan.eth.7 VLAN 7 on trunk #\(a.f.trunk.index), MAC 0a:00:00:00:00:07, up, owner cid-1: missing -",
            "route host 10.0.32.1/32 dev vlan.eth.7 table 107 scope link: missing device vlan.eth.7 is missing",
            "route host default via 10.0.32.1 dev vlan.eth.7 table 107: missing device vlan.eth.7 is missing",
        ])
    }

    @Test func rewrittenMACsAreDifferent() throws {
        let a = try Applied(.standard)
        a.f.host.linkTable[Self.hostVeth]!.mac = MACAddress("02:00:00:00:09:09")
        a.f.host.linkTable["vlan.eth.7"]!.mac = MACAddress("0a:00:00:00:00:08")
        let out = try a.explain()
        #expect(problems(out).count == 2)
        let veth = try find(out, .link, .host, Self.hostVeth)
        #expect(veth.status == .different)
        #expect(veth.detail == "MAC 02:00:00:00:09:09, expected 02:00:00:00:01:01")
        #expect(veth.command == "ip -d link show \(Self.hostVeth)")
        #expect(try find(out, .link, .host, "vlan.eth.7").detail == "MAC 0a:00:00:00:00:08, expected 0a:00:00:00:00:07")
    }

    @Test func downLinkOfAnotherOwnerIsDifferent() throws {
        let a = try Applied(.strict)
        a.f.host.linkTable["vlan.eth.7"]!.isUp = false
        a.f.host.linkTable["vlan.eth.7"]!.alias = "cid-2"
        a.f.pod.linkTable["eth0"]!.mtu = 1500
        let out = try a.explain()
        #expect(problems(out).count == 2)
        #expect(try find(out, .link, .host, "vlan.eth.7").detail == "down, expected up; owner (alias) cid-2, expected cid-1")
        #expect(try find(out, .link, .pod, "eth0").detail == "MTU 1500, expected 9001")
    }

    @Test func deletedAndRepointedStrictRules() throws {
        let a = try Applied(.strict)
        a.f.host.ruleList.removeAll { $0.inputInterface == Self.hostVeth }
        let i = try #require(a.f.host.ruleList.firstIndex { $0.inputInterface == "vlan.eth.7" })
        a.f.host.ruleList[i].table = 108
        let out = try a.explain()
        #expect(problems(out) == [
            "rule host 10: from all iif vlan.eth.7 lookup 107: different lookup 108, expected 107",
            "rule host 10: from all iif \(Self.hostVeth) lookup 107: missing -",
        ])
        #expect(out.filter { $0.kind == .rule }.allSatisfy { $0.command == "ip -4 rule show priority 10" })
    }

    @Test func movedStandardRuleIsDifferent() throws {
        let a = try Applied(.standard)
        let i = try #require(a.f.host.ruleList.firstIndex { $0.priority == Priority.standardFromPod })
        a.f.host.ruleList[i].priority = 1537
        #expect(problems(try a.explain()) == ["rule host 1536: from 10.0.40.7 lookup 107: different priority 1537, expected 1536"])
    }

    @Test func deletedAndChangedRoutes() throws {
        let a = try Applied(.strict)
        a.f.pod.routeList.removeAll { $0.destination.length == 0 }
        let i = try #require(a.f.host.routeList.firstIndex { $0.table == 107 && $0.destination.length == 0 })
        a.f.host.routeList[i].gateway = IPAddress("10.0.32.9")
        let out = try a.explain()
        #expect(problems(out) == [
            "route pod default via 169.254.1.1 dev eth0 table main: missing -",
            "route host default via 10.0.32.1 dev vlan.eth.7 table 107: different via 10.0.32.9, expected via 10.0.32.1",
        ])
        #expect(try find(out, .route, .host, "default").command == "ip -4 route show table 107 default")
    }

    @Test func routeThroughAnotherDeviceIsDifferent() throws {
        let a = try Applied(.standard)
        let i = try #require(a.f.host.routeList.firstIndex { $0.destination == IPPrefix("10.0.40.7/32") })
        a.f.host.routeList[i].outputIndex = a.f.trunk.index
        #expect(problems(try a.explain()) == [
            "route host 10.0.40.7/32 dev \(Self.hostVeth) table main scope link: different dev eth1, expected \(Self.hostVeth)",
        ])
    }

    @Test func deletedOrStaleNeighbour() throws {
        let a = try Applied(.strict)
        let n = try #require(a.f.pod.neighborList.first)
        a.f.pod.neighborList = []
        #expect(problems(try a.explain()) == ["neighbor pod 169.254.1.1 lladdr 02:00:00:00:01:01 dev eth0 permanent: missing -"])
        a.f.pod.neighborList = [Neighbor(linkIndex: n.linkIndex, address: n.address, mac: MACAddress("02:00:00:00:09:09")!, permanent: false)]
        #expect(problems(try a.explain()) == [
            "neighbor pod 169.254.1.1 lladdr 02:00:00:00:01:01 dev eth0 permanent: different "
                + "lladdr 02:00:00:00:09:09, expected 02:00:00:00:01:01; not permanent (the kernel may expire it)",
        ])
    }

    @Test func wrongOrMissingPodAddress() throws {
        let a = try Applied(.strict)
        let idx = a.f.pod.linkTable["eth0"]!.index
        a.f.pod.addressList = [InterfaceAddress(linkIndex: idx, prefix: IPPrefix("10.0.40.7/24")!)]
        let out = try a.explain()
        #expect(problems(out) == ["address pod 10.0.40.7/32 on eth0: different prefix length /24, expected /32"])
        #expect(try find(out, .address, .pod, "10.0.40.7").command == "nsenter --net=/var/run/netns/pod1 ip -4 addr show dev eth0")
        a.f.pod.addressList = []
        #expect(problems(try a.explain()) == ["address pod 10.0.40.7/32 on eth0: missing -"])
    }

    @Test func sysctlsChangedOrAbsent() throws {
        let a = try Applied(.strict)
        a.sysctl.values["net/ipv6/conf/vlan.eth.7/accept_ra"] = "1"
        a.sysctl.values["net/ipv6/conf/\(Self.hostVeth)/forwarding"] = nil
        #expect(problems(try a.explain()) == [
            "sysctl host net/ipv6/conf/\(Self.hostVeth)/forwarding = 0: unchecked "
                + "no such key: the kernel has no IPv6 or the link is gone (setup skips it then)",
            "sysctl host net/ipv6/conf/vlan.eth.7/accept_ra = 0: different is 1, expected 0",
        ])
    }

    @Test func withoutPodNamespaceThePodSideIsUnchecked() throws {
        let a = try Applied(.strict)
        let out = try a.explain(a.hostOnly, netns: nil)
        let pod = out.filter { $0.side == .pod }
        #expect(pod.map(\.kind) == [.link, .address, .route, .route, .neighbor])
        #expect(pod.allSatisfy { $0.status == .unchecked && $0.detail == "the pod has no network namespace" })
        #expect(pod.allSatisfy { $0.command.hasPrefix("nsenter --net=<pod netns> ip ") })
        #expect(out.filter { $0.side == .host }.allSatisfy { $0.status == .present })

        let named = try a.explain(a.hostOnly, netns: "/var/run/netns/gone")
        #expect(named.filter { $0.side == .pod }.allSatisfy { $0.detail == "pod network namespace /var/run/netns/gone is not open" })
    }

    @Test func goneNamespaceTakesTheHostVethWithIt() throws {
        let a = try Applied(.strict)
        a.f.deleteNamespace(Self.netns)
        let host = try a.explain(a.hostOnly).filter { $0.side == .host && $0.status != .present }
        #expect(host.map { "\($0.kind) \($0.status)" } == ["link missing", "route missing"])
        #expect(host.last?.detail == "device \(Self.hostVeth) is missing")
    }

    @Test func teardownStepsAreNotObjects() throws {
        let a = try Applied(.strict)
        let r = Rule(priority: 10, table: 107, inputInterface: "vlan.eth.7")
        #expect(try PlanExplainer(context: a.context).explain([.deleteLink(.host, "vlan.eth.7"), .deleteRule(r)]) == [])
    }

    @Test func roundTripsThroughJSON() throws {
        let a = try Applied(.strict)
        a.f.pod.neighborList = []
        let out = try a.explain(a.hostOnly, netns: nil) + a.explain()
        let json = try JSONEncoder().encode(out)
        #expect(try JSONDecoder().decode([ExplainedObject].self, from: json) == out)
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains(#""side":"pod""#) && text.contains(#""status":"unchecked""#) && text.contains(#""kind":"neighbor""#))
        #expect(text.contains(#""status":"missing""#))
    }
}
