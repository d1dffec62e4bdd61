// LibNLClient against a real kernel. Every test works in its own throwaway namespaces and opens
// its clients with `namespacePath:`, so nothing here touches the host's links, routes or rules.
// Where it matters, iproute2's view of the namespace is compared with what the client reports.
#if canImport(Glibc)
import TestSupport
import Glibc
#endif
import Foundation
import NetModel
import Netlink
import Testing

private func ipv4(_ s: String) -> IPAddress { IPAddress(s)! }
private func prefix(_ s: String) -> IPPrefix { IPPrefix(s)! }

/// Two namespaces joined by a veth pair: `hostVeth` in `host`, eth0 in `pod`.
private final class VethPair {
    let host: TestNamespace
    let pod: TestNamespace
    let hostNL: LibNLClient
    let podNL: LibNLClient
    let hostVeth: LinkInfo
    let podEth: LinkInfo

    init(hostVethName: String = "vethnl0", mtu: UInt32 = 9001, up: Bool = true) throws {
        host = try TestNamespace.create("nlh")
        pod = try TestNamespace.create("nlp")
        hostNL = try LibNLClient(namespacePath: host.path)
        podNL = try LibNLClient(namespacePath: pod.path)
        let podFD = try NetworkNamespaceHandle(path: pod.path)
        try hostNL.addVeth(name: hostVethName, peerName: "eth0", peerNamespaceFD: podFD.fd, mtu: mtu)
        var h = try #require(try hostNL.link(named: hostVethName))
        var p = try #require(try podNL.link(named: "eth0"))
        if up {
            try hostNL.setLinkUp(index: h.index)
            try podNL.setLinkUp(index: p.index)
            h = try #require(try hostNL.link(index: h.index))
            p = try #require(try podNL.link(index: p.index))
        }
        hostVeth = h
        podEth = p
    }

    func destroy() {
        pod.destroy()
        host.destroy()
    }
}

/// `ip rule show` text in the shape of `Rule.description`: whitespace collapsed, and the
/// "[detached]" marker iproute2 adds for an iif that does not exist (yet) removed.
private func normalizedRuleLines(_ text: String) -> [String] {
    text.split(separator: "\n").map { line in
        line.replacingOccurrences(of: "[detached]", with: "")
            .split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }
}

@Suite("LibNLClient (privileged)", .ownThread)
struct NetlinkTests {
    // MARK: Links

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func vethWithPeerInAnotherNamespace() throws {
        let pair = try VethPair(mtu: 9001, up: false)
        defer { pair.destroy() }
        let h = pair.hostVeth, p = pair.podEth

        #expect(h.kind == "veth" && p.kind == "veth")
        #expect(h.mtu == 9001 && p.mtu == 9001)
        #expect(!h.isUp && !p.isUp)
        // IFLA_LINK of each end is the other end's index (in the other namespace).
        #expect(h.parentIndex == p.index && p.parentIndex == h.index)
        // Each end exists only in its own namespace.
        #expect(try pair.hostNL.link(named: "eth0") == nil)
        #expect(try pair.podNL.link(named: h.name) == nil)
        #expect(Set(try pair.podNL.links().map(\.name)) == ["lo", "eth0"])
        #expect(Set(try pair.hostNL.links().map(\.name)) == ["lo", h.name])

        let mac = try #require(p.mac)
        #expect(mac.isUnicast)
        #expect(try pair.podNL.link(withMAC: mac) == p)
        #expect(try pair.podNL.link(index: p.index) == p)
        #expect(try pair.hostNL.link(withMAC: mac) == nil)

        let text = try pair.pod.ip("link", "show", "dev", "eth0")
        #expect(text.contains("mtu 9001"))
        #expect(text.contains("link/ether \(mac)"))
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func vethWithPeerInSameNamespace() throws {
        let ns = try TestNamespace.create("nlv")
        defer { ns.destroy() }
        let nl = try LibNLClient(namespacePath: ns.path)
        try nl.addVeth(name: "va", peerName: "vb", peerNamespaceFD: -1, mtu: 0)
        let a = try #require(try nl.link(named: "va"))
        let b = try #require(try nl.link(named: "vb"))
        #expect(a.parentIndex == b.index && b.parentIndex == a.index)
        #expect(a.mtu == 1500)  // mtu 0 keeps the kernel default

        let dup = #expect(throws: NetlinkError.self) {
            try nl.addVeth(name: "va", peerName: "vc", peerNamespaceFD: -1, mtu: 0)
        }
        #expect(dup?.errno == EEXIST)
        #expect(dup?.isExists == true)
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func linkUpAndMTU() throws {
        let pair = try VethPair(up: false)
        defer { pair.destroy() }
        let index = pair.podEth.index
        try pair.podNL.setLinkUp(index: index)
        try pair.podNL.setMTU(index: index, mtu: 1400)
        let l = try #require(try pair.podNL.link(index: index))
        #expect(l.isUp)
        #expect(l.mtu == 1400)
        let text = try pair.pod.ip("link", "show", "dev", "eth0")
        #expect(text.contains(",UP"))
        #expect(text.contains("mtu 1400"))
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func missingLinks() throws {
        let ns = try TestNamespace.create("nlm")
        defer { ns.destroy() }
        let nl = try LibNLClient(namespacePath: ns.path)

        let del = #expect(throws: NetlinkError.self) { try nl.deleteLink(index: 9999) }
        #expect(del?.errno == ENODEV)
        #expect(del?.isNotFound == true)
        let up = #expect(throws: NetlinkError.self) { try nl.setLinkUp(index: 9999) }
        #expect(up?.errno == ENODEV)
        #expect(try nl.link(named: "nope0") == nil)
        #expect(try nl.link(index: 9999) == nil)

        // Delete a real one: gone afterwards, its peer with it.
        try nl.addVeth(name: "gone0", peerName: "gone1", peerNamespaceFD: -1, mtu: 0)
        let l = try #require(try nl.link(named: "gone0"))
        try nl.deleteLink(index: l.index)
        #expect(try nl.link(named: "gone0") == nil)
        #expect(try nl.link(named: "gone1") == nil)
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func vlanCreation() throws {
        let ns = try TestNamespace.create("nlvl")
        defer { ns.destroy() }
        let nl = try LibNLClient(namespacePath: ns.path)
        try nl.addVeth(name: "trunk0", peerName: "trunk1", peerNamespaceFD: -1, mtu: 9001)
        let parent = try #require(try nl.link(named: "trunk0"))

        // Ask iproute2 first whether this kernel has 802.1Q at all (no 8021q module on some hosts).
        let probe = try ns.exec([TestNamespace.ipPath, "link", "add", "link", "trunk0", "name", "probe.9", "type", "vlan", "id", "9"])
        let supported = probe.status == 0
        if supported { _ = try ns.ip("link", "del", "probe.9") }

        let mac = MACAddress("02:00:00:aa:bb:cc")!
        if supported {
            try nl.addVLAN(name: "vlan.7", parentIndex: parent.index, vlanID: 7, mac: mac)
            let v = try #require(try nl.link(named: "vlan.7"))
            #expect(v.kind == "vlan")
            #expect(v.vlanID == 7)
            #expect(v.parentIndex == parent.index)
            #expect(v.mac == mac)
            #expect(v.mtu == 9001)  // inherited from the parent
            let text = try ns.ip("-d", "link", "show", "dev", "vlan.7")
            #expect(text.contains("vlan protocol 802.1Q id 7"))
        } else {
            // Without kernel support the failure must be a typed error, carrying the kernel's errno.
            let e = #expect(throws: NetlinkError.self) {
                try nl.addVLAN(name: "vlan.7", parentIndex: parent.index, vlanID: 7, mac: mac)
            }
            #expect(e?.errno == EOPNOTSUPP)
            #expect(try nl.link(named: "vlan.7") == nil)
        }
    }

    // MARK: Addresses

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func addresses() throws {
        let pair = try VethPair()
        defer { pair.destroy() }
        let nl = pair.podNL, eth = pair.podEth.index
        let host32 = InterfaceAddress(linkIndex: eth, prefix: prefix("10.0.0.5/32"))
        let net24 = InterfaceAddress(linkIndex: eth, prefix: prefix("10.9.0.7/24"))
        let v6 = InterfaceAddress(linkIndex: eth, prefix: prefix("2001:db8::5/128"))
        try nl.addAddress(host32)
        try nl.addAddress(net24)
        try nl.addAddress(v6)

        #expect(Set(try nl.addresses(family: .ipv4)) == [host32, net24])
        #expect(try nl.addresses(family: .ipv6).contains(v6))
        // Plain `ip addr add`: no broadcast and no peer on the /32 (nor on the /24).
        let text = try pair.pod.ip("-4", "addr", "show", "dev", "eth0")
        #expect(text.contains("inet 10.0.0.5/32 scope global eth0"))
        #expect(text.contains("inet 10.9.0.7/24 scope global eth0"))
        #expect(!text.contains("brd 10.") && !text.contains("peer"))

        let dup = #expect(throws: NetlinkError.self) { try nl.addAddress(host32) }
        #expect(dup?.isExists == true)
        let missing = #expect(throws: NetlinkError.self) {
            try nl.addAddress(InterfaceAddress(linkIndex: 9999, prefix: prefix("10.0.0.6/32")))
        }
        #expect(missing?.errno == ENODEV)
    }

    // MARK: Routes

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func ipv4RoutesInMainAndTable107() throws {
        let pair = try VethPair()
        defer { pair.destroy() }
        let nl = pair.podNL, eth = pair.podEth.index
        try nl.addAddress(InterfaceAddress(linkIndex: eth, prefix: prefix("10.0.0.5/32")))
        let gw = ipv4("169.254.1.1")

        let expected: Set<Route> = [
            Route(destination: IPPrefix(host: gw), outputIndex: eth, table: RouteTable.main, scope: .link),
            Route(destination: prefix("0.0.0.0/0"), gateway: gw, outputIndex: eth, table: RouteTable.main),
            Route(destination: prefix("10.1.0.0/16"), outputIndex: eth, table: 107, scope: .link),
            Route(destination: prefix("0.0.0.0/0"), gateway: gw, outputIndex: eth, table: 107),
            Route(destination: prefix("10.2.0.0/16"), gateway: gw, outputIndex: eth, table: 100_000),
        ]
        // The scope-link host route first: the gateways must be reachable when added.
        for r in expected.filter({ $0.scope == .link }) + expected.filter({ $0.scope != .link }) {
            try nl.replaceRoute(r)
        }
        #expect(Set(try nl.routes(family: .ipv4)) == expected)

        // Replace is idempotent.
        for r in expected { try nl.replaceRoute(r) }
        #expect(try nl.routes(family: .ipv4).count == expected.count)

        // The kernel's view, through iproute2.
        let t107 = try pair.pod.ip("route", "show", "table", "107")
        #expect(t107.contains("default via 169.254.1.1 dev eth0"))
        #expect(t107.contains("10.1.0.0/16 dev eth0 scope link"))
        #expect(try pair.pod.ip("route", "show", "table", "100000").contains("10.2.0.0/16 via 169.254.1.1 dev eth0"))
        #expect(try pair.pod.ip("route", "show").contains("169.254.1.1 dev eth0 scope link"))

        // Delete one; deleting it again is "not found".
        let victim = Route(destination: prefix("10.1.0.0/16"), outputIndex: eth, table: 107, scope: .link)
        try nl.deleteRoute(victim)
        #expect(Set(try nl.routes(family: .ipv4)) == expected.subtracting([victim]))
        #expect(!(try pair.pod.ip("route", "show", "table", "107")).contains("10.1.0.0/16"))
        let again = #expect(throws: NetlinkError.self) { try nl.deleteRoute(victim) }
        #expect(again?.isNotFound == true)

        // The default route of table 107 goes, main's stays.
        try nl.deleteRoute(Route(destination: prefix("0.0.0.0/0"), gateway: gw, outputIndex: eth, table: 107))
        #expect(try nl.routes(family: .ipv4).filter { $0.table == 107 }.isEmpty)
        #expect(try nl.routes(family: .ipv4).contains { $0.table == RouteTable.main && $0.destination.length == 0 })
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func ipv6Routes() throws {
        let pair = try VethPair()
        defer { pair.destroy() }
        let nl = pair.podNL, eth = pair.podEth.index
        let gw = IPAddress("fe80::1")!
        let onLink = Route(destination: prefix("2001:db8:1::/64"), outputIndex: eth, table: 107)
        let viaGW = Route(destination: prefix("::/0"), gateway: gw, outputIndex: eth, table: 107)
        try nl.replaceRoute(onLink)
        try nl.replaceRoute(viaGW)
        let listed = try nl.routes(family: .ipv6).filter { $0.table == 107 }
        // IPv6 has no route scopes: the kernel reports every IPv6 route as scope universe.
        #expect(Set(listed) == [onLink, viaGW])
        let text = try pair.pod.ip("-6", "route", "show", "table", "107")
        #expect(text.contains("default via fe80::1 dev eth0"))
        #expect(text.contains("2001:db8:1::/64 dev eth0"))
        try nl.deleteRoute(viaGW)
        let again = #expect(throws: NetlinkError.self) { try nl.deleteRoute(viaGW) }
        #expect(again?.isNotFound == true)
    }

    // MARK: Rules

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func rulesAddListDelete() throws {
        let ns = try TestNamespace.create("nlr")
        defer { ns.destroy() }
        let nl = try LibNLClient(namespacePath: ns.path)
        let defaults = Set(try nl.rules(family: .ipv4))
        #expect(defaults.map(\.priority).sorted() == [0, 32766, 32767])

        let iif = Rule(priority: 10, table: 107, inputInterface: "vethnl0")
        let toPod = Rule(priority: 512, table: RouteTable.main, destination: prefix("10.0.0.5/32"))
        let marked = Rule(priority: 1024, table: RouteTable.main, fwmark: 0x80, fwmask: 0x80)
        let fromPod = Rule(priority: 1536, table: 107, source: prefix("10.0.0.5/32"))
        let fromOther = Rule(priority: 1536, table: 107, source: prefix("10.0.0.6/32"))
        let markOnly = Rule(priority: 2000, table: 107, fwmark: 0x1)
        let bigTable = Rule(priority: 2048, table: 100_000, source: prefix("10.2.0.0/16"), ipProtocol: 6)
        let added = [iif, toPod, marked, fromPod, fromOther, markOnly, bigTable]
        for r in added { try nl.addRule(r) }

        let listed = try nl.rules(family: .ipv4).filter { !defaults.contains($0) }
        #expect(Set(listed) == Set(added))
        #expect(listed.count == added.count)
        // "fwmark M" alone lists without a mask (the kernel stores it as M/0xffffffff).
        #expect(listed.first { $0.priority == 2000 }?.fwmask == nil)

        // iproute2 prints the same rules (the ipproto one aside: it prints protocol names).
        let shown = normalizedRuleLines(try ns.ip("rule", "show"))
        for r in added where r.ipProtocol == nil {
            #expect(shown.contains(r.description), "\(r.description) not in \(shown)")
        }
        #expect(shown.contains { $0.hasPrefix("2048: from 10.2.0.0/16 ipproto tcp lookup 100000") })

        // Deleting one of two rules at the same priority leaves the other.
        try nl.deleteRule(fromPod)
        var now = Set(try nl.rules(family: .ipv4)).subtracting(defaults)
        #expect(now == Set(added).subtracting([fromPod]))
        let gone = #expect(throws: NetlinkError.self) { try nl.deleteRule(fromPod) }
        #expect(gone?.isNotFound == true)

        // A listed mark-only rule deletes by its listed form.
        let listedMarkOnly = try #require(try nl.rules(family: .ipv4).first { $0.priority == 2000 })
        try nl.deleteRule(listedMarkOnly)

        // deleteRules(matching:) counts what it removed and leaves the rest.
        let n = try nl.deleteRules(family: .ipv4) { $0.table == 107 }
        #expect(n == 2)  // iif, fromOther
        now = Set(try nl.rules(family: .ipv4)).subtracting(defaults)
        #expect(now == [toPod, marked, bigTable])
        #expect(try nl.deleteRules(family: .ipv4) { $0.table == 107 } == 0)
        let rest = normalizedRuleLines(try ns.ip("rule", "show"))
        #expect(rest.count == 6)
        #expect(!rest.contains { $0.contains("lookup 107") })
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func duplicateRuleIsExists() throws {
        let ns = try TestNamespace.create("nlr")
        defer { ns.destroy() }
        let nl = try LibNLClient(namespacePath: ns.path)
        let r = Rule(priority: 1536, table: 107, source: prefix("10.0.0.5/32"))
        try nl.addRule(r)
        let dup = #expect(throws: NetlinkError.self) { try nl.addRule(r) }
        #expect(dup?.errno == EEXIST)
        #expect(dup?.isExists == true)
        #expect(try nl.rules(family: .ipv4).filter { $0 == r }.count == 1)
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func ipv6Rules() throws {
        let ns = try TestNamespace.create("nlr6")
        defer { ns.destroy() }
        let nl = try LibNLClient(namespacePath: ns.path)
        let from = Rule(family: .ipv6, priority: 1536, table: 107, source: prefix("2001:db8::5/128"))
        let to = Rule(family: .ipv6, priority: 512, table: RouteTable.main, destination: prefix("2001:db8::/64"))
        try nl.addRule(from)
        try nl.addRule(to)
        let listed = try nl.rules(family: .ipv6)
        #expect(listed.contains(from) && listed.contains(to))
        #expect(!(try nl.rules(family: .ipv4)).contains(from))
        let text = normalizedRuleLines(try ns.ip("-6", "rule", "show"))
        #expect(text.contains("1536: from 2001:db8::5 lookup 107"))
        try nl.deleteRule(from)
        #expect(!(try nl.rules(family: .ipv6)).contains(from))
        #expect(try nl.rules(family: .ipv6).contains(to))
    }

    // MARK: Neighbours

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func permanentNeighbors() throws {
        let pair = try VethPair()
        defer { pair.destroy() }
        let nl = pair.podNL, eth = pair.podEth.index
        let mac = MACAddress("02:11:22:33:44:55")!
        let v4 = Neighbor(linkIndex: eth, address: ipv4("169.254.1.1"), mac: mac)
        let v6 = Neighbor(linkIndex: eth, address: IPAddress("fe80::1")!, mac: mac)
        try nl.addNeighbor(v4)
        try nl.addNeighbor(v6)
        try nl.addNeighbor(v4)  // replace: adding again is fine

        #expect(try nl.neighbors(family: .ipv4) == [v4])
        #expect(try nl.neighbors(family: .ipv6).contains(v6))
        let text = try pair.pod.ip("neigh", "show", "dev", "eth0")
        #expect(text.contains("169.254.1.1 lladdr 02:11:22:33:44:55 PERMANENT"))
        #expect(text.contains("fe80::1 lladdr 02:11:22:33:44:55 PERMANENT"))
    }

    // MARK: Namespaces and sockets

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func namespaceErrorsAndThreadNamespaceUnchanged() throws {
        let missing = #expect(throws: NetlinkError.self) {
            _ = try LibNLClient(namespacePath: "/run/netns/does-not-exist-nl")
        }
        #expect(missing?.errno == ENOENT)
        let handle = #expect(throws: NetlinkError.self) {
            _ = try NetworkNamespaceHandle(path: "/run/netns/does-not-exist-nl")
        }
        #expect(handle?.isNotFound == true)

        // Opening a client for another namespace leaves the calling thread where it was.
        let ns = try TestNamespace.create("nlt")
        defer { ns.destroy() }
        func threadNamespace() throws -> String {
            try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")
        }
        let before = try threadNamespace()
        let nl = try LibNLClient(namespacePath: ns.path)
        #expect(try threadNamespace() == before)
        #expect(Set(try nl.links().map(\.name)) == ["lo"])
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func largeMultipartDumps() throws {
        let ns = try TestNamespace.create("nlbig")
        defer { ns.destroy() }
        let nl = try LibNLClient(namespacePath: ns.path)
        // Enough objects that each dump spans many datagrams.
        for i in 0..<40 { try nl.addVeth(name: "a\(i)", peerName: "b\(i)", peerNamespaceFD: -1, mtu: 0) }
        #expect(try nl.links().count == 81)
        let a0 = try #require(try nl.link(named: "a0"))
        try nl.setLinkUp(index: a0.index)
        var expected: Set<Route> = []
        for i in 0..<600 {
            let r = Route(destination: prefix("10.\(i / 256).\(i % 256).0/24"), outputIndex: a0.index,
                          table: 1000 + UInt32(i % 3), scope: .link)
            try nl.replaceRoute(r)
            expected.insert(r)
        }
        #expect(Set(try nl.routes(family: .ipv4)) == expected)
        // Requests still line up with their answers after the big dumps.
        #expect(try nl.link(named: "b39") != nil)
    }
}
