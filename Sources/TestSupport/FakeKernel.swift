import Datapath
import EnforcingMode
import Glibc
import IPAMDProtocol
import NetModel
import Netlink
import Synchronization

/// An in-memory kernel namespace: enough netlink semantics (EEXIST, ENODEV, routes leaving
/// with their link, veth peers in another namespace) to test plugin logic without root.
public final class FakeNetlink: NetlinkClient {
    public var linkTable: [String: LinkInfo] = [:]
    public var addressList: [InterfaceAddress] = []
    public var routeList: [Route] = []
    public var ruleList: [Rule] = []
    public var neighborList: [Neighbor] = []
    public var nextIndex: Int32 = 100
    /// Namespaces by fd, for veth peers.
    public var peers: [Int32: FakeNetlink] = [:]
    /// Fails the n-th mutating call (1-based) with this errno, to test rollback.
    public var failAt: (call: Int, errno: Int32)?
    /// Fails every read (lookups and dumps) with this errno, e.g. EPERM.
    public var failReads: Int32?
    public var mutations = 0
    public var calls: [String] = []
    public var supportsVLAN = true
    /// Round trips an applier would pay for: lookups by name and rule dumps.
    public var nameLookups = 0
    public var ruleDumps = 0

    public init() {}

    public func mutate(_ op: String) throws(NetlinkError) {
        mutations += 1
        calls.append(op)
        if let f = failAt, f.call == mutations { throw NetlinkError(operation: op, errno: f.errno) }
    }

    @discardableResult
    public func addLink(_ name: String, kind: String = "", mac: MACAddress? = nil, mtu: UInt32 = 1500, up: Bool = false, parent: Int32 = 0, vlan: UInt16 = 0) -> LinkInfo {
        nextIndex += 1
        let m = mac ?? MACAddress(bytes: [0x02, 0, 0, 0, UInt8(nextIndex >> 8), UInt8(nextIndex & 0xff)])!
        let l = LinkInfo(index: nextIndex, name: name, mac: m, mtu: mtu, isUp: up, kind: kind, parentIndex: parent, vlanID: vlan)
        linkTable[name] = l
        return l
    }

    public func removeLink(_ l: LinkInfo) {
        linkTable[l.name] = nil
        addressList.removeAll { $0.linkIndex == l.index }
        routeList.removeAll { $0.outputIndex == l.index }
        neighborList.removeAll { $0.linkIndex == l.index }
    }

    public func read(_ op: String) throws(NetlinkError) {
        if let e = failReads { throw NetlinkError(operation: op, errno: e) }
    }

    public func links() throws(NetlinkError) -> [LinkInfo] { try read("links"); return Array(linkTable.values) }
    public func link(named name: String) throws(NetlinkError) -> LinkInfo? { try read("link"); nameLookups += 1; return linkTable[name] }
    public func link(index: Int32) throws(NetlinkError) -> LinkInfo? { linkTable.values.first { $0.index == index } }
    public func link(withMAC mac: MACAddress) throws(NetlinkError) -> LinkInfo? { linkTable.values.first { $0.mac == mac } }

    public func addVeth(name: String, peerName: String, peerNamespaceFD: Int32, mtu: UInt32, mac: MACAddress?, peerMAC: MACAddress?) throws(NetlinkError) {
        try mutate("addVeth \(name)")
        let peerNS = peerNamespaceFD >= 0 ? peers[peerNamespaceFD]! : self
        guard linkTable[name] == nil, peerNS.linkTable[peerName] == nil else { throw NetlinkError(operation: "addVeth", errno: EEXIST) }
        let a = addLink(name, kind: "veth", mac: mac, mtu: mtu)
        let b = peerNS.addLink(peerName, kind: "veth", mac: peerMAC, mtu: mtu)
        vethPeers[a.name] = (peerNS, b.name)
    }

    public var vethPeers: [String: (FakeNetlink, String)] = [:]

    public func addVLAN(name: String, parentIndex: Int32, vlanID: UInt16, mac: MACAddress) throws(NetlinkError) {
        try mutate("addVLAN \(name)")
        guard supportsVLAN else { throw NetlinkError(operation: "addVLAN", errno: EOPNOTSUPP) }
        guard linkTable[name] == nil else { throw NetlinkError(operation: "addVLAN", errno: EEXIST) }
        guard let parent = linkTable.values.first(where: { $0.index == parentIndex }) else { throw NetlinkError(operation: "addVLAN", errno: ENODEV) }
        addLink(name, kind: "vlan", mac: mac, mtu: parent.mtu, parent: parentIndex, vlan: vlanID)
    }

    public func setLinkUp(index: Int32) throws(NetlinkError) {
        try mutate("setLinkUp \(index)")
        guard let l = linkTable.values.first(where: { $0.index == index }) else { throw NetlinkError(operation: "setLinkUp", errno: ENODEV) }
        linkTable[l.name]!.isUp = true
    }

    public func setAlias(index: Int32, alias: String, up: Bool) throws(NetlinkError) {
        try mutate("setAlias \(index)")
        guard let l = linkTable.values.first(where: { $0.index == index }) else { throw NetlinkError(operation: "setAlias", errno: ENODEV) }
        linkTable[l.name]!.alias = alias
        if up { linkTable[l.name]!.isUp = true }
    }

    public func setMTU(index: Int32, mtu: UInt32) throws(NetlinkError) {
        try mutate("setMTU")
        guard let l = linkTable.values.first(where: { $0.index == index }) else { throw NetlinkError(operation: "setMTU", errno: ENODEV) }
        linkTable[l.name]!.mtu = mtu
    }

    public func deleteLink(index: Int32) throws(NetlinkError) {
        try mutate("deleteLink \(index)")
        guard let l = linkTable.values.first(where: { $0.index == index }) else { throw NetlinkError(operation: "deleteLink", errno: ENODEV) }
        removeLink(l)
        if let (ns, peer) = vethPeers.removeValue(forKey: l.name), let p = ns.linkTable[peer] { ns.removeLink(p) }
    }

    public func addAddress(_ a: InterfaceAddress) throws(NetlinkError) {
        try mutate("addAddress \(a.prefix)")
        guard !addressList.contains(a) else { throw NetlinkError(operation: "addAddress", errno: EEXIST) }
        addressList.append(a)
    }
    public func addresses(family: AddressFamily) throws(NetlinkError) -> [InterfaceAddress] { addressList.filter { $0.prefix.family == family } }

    public func replaceRoute(_ r: Route) throws(NetlinkError) {
        try mutate("replaceRoute \(r)")
        routeList.removeAll { $0.destination == r.destination && $0.table == r.table }
        routeList.append(r)
    }
    public func deleteRoute(_ r: Route) throws(NetlinkError) {
        try mutate("deleteRoute \(r)")
        // Like the kernel: a given device or gateway must match too.
        guard let i = routeList.firstIndex(where: {
            $0.destination == r.destination && $0.table == r.table
                && (r.outputIndex == nil || $0.outputIndex == r.outputIndex) && (r.gateway == nil || $0.gateway == r.gateway)
        }) else {
            throw NetlinkError(operation: "deleteRoute", errno: ESRCH)
        }
        routeList.remove(at: i)
    }
    public func routes(family: AddressFamily) throws(NetlinkError) -> [Route] { try read("routes"); return routeList.filter { $0.destination.family == family } }

    public func addRule(_ r: Rule) throws(NetlinkError) {
        try mutate("addRule \(r)")
        guard !ruleList.contains(r) else { throw NetlinkError(operation: "addRule", errno: EEXIST) }
        ruleList.append(r)
    }
    public func deleteRule(_ r: Rule) throws(NetlinkError) {
        try mutate("deleteRule \(r)")
        guard let i = ruleList.firstIndex(of: r) else { throw NetlinkError(operation: "deleteRule", errno: ENOENT) }
        ruleList.remove(at: i)
    }
    public func rules(family: AddressFamily) throws(NetlinkError) -> [Rule] { try read("rules"); ruleDumps += 1; return ruleList.filter { $0.family == family } }

    public func addNeighbor(_ n: Neighbor) throws(NetlinkError) {
        try mutate("addNeighbor \(n.address)")
        neighborList.removeAll { $0.linkIndex == n.linkIndex && $0.address == n.address }
        neighborList.append(n)
    }
    public func neighbors(family: AddressFamily) throws(NetlinkError) -> [Neighbor] { neighborList.filter { $0.address.family == family } }

    /// Comparable summary of everything in the namespace.
    public var state: [String] {
        linkTable.values.map { "link \($0.name) \($0.kind) up=\($0.isUp)" }.sorted()
            + addressList.map { "addr \($0.prefix) #\($0.linkIndex)" }.sorted()
            + routeList.map(\.description).sorted()
            + ruleList.map(\.description).sorted()
            + neighborList.map { "neigh \($0.address) \($0.mac)" }.sorted()
    }
}

/// Remembers what was written (a key never written reads "0").
public final class FakeSysctl: SysctlWriter, Sendable {
    private let values = Mutex<[String: String]>([:])
    public init() {}
    public func write(_ key: String, _ value: String) throws(SysctlError) { values.withLock { $0[key] = value } }
    public func read(_ key: String) throws(SysctlError) -> String { values.withLock { $0[key] ?? "0" } }
}

/// A host and pod namespaces by path (the first, /var/run/netns/pod1, exists from the start).
public final class FakeDatapath: DatapathProvider {
    public let host = FakeNetlink()
    /// The node's /proc/sys, shared by every context.
    public let sysctl = FakeSysctl()
    public let trunk: LinkInfo
    public private(set) var namespaces: [String: (fd: Int32, ns: FakeNetlink)] = [:]
    private var nextFD: Int32 = 7

    public init() {
        trunk = host.addLink("eth1", kind: "", mac: MACAddress("0a:00:00:00:00:01"), mtu: 9001, up: true)
        addNamespace("/var/run/netns/pod1")
    }

    /// The first pod namespace.
    public var pod: FakeNetlink { namespaces["/var/run/netns/pod1"]!.ns }

    @discardableResult
    public func addNamespace(_ path: String) -> FakeNetlink {
        let ns = FakeNetlink()
        namespaces[path] = (nextFD, ns)
        host.peers[nextFD] = ns
        nextFD += 1
        return ns
    }

    /// What the kernel does when a pod's netns goes: its links die, and the host ends of their
    /// veths (with the routes through them) go too.
    public func deleteNamespace(_ path: String) {
        guard let (fd, ns) = namespaces.removeValue(forKey: path) else { return }
        host.peers[fd] = nil
        for (hostName, peer) in host.vethPeers where peer.0 === ns {
            if let l = host.linkTable[hostName] { host.removeLink(l) }
            host.vethPeers[hostName] = nil
        }
        for l in ns.linkTable.values { ns.removeLink(l) }
    }

    public func hostContext() throws(NetlinkError) -> DatapathContext {
        DatapathContext(host: host, pod: nil, podNamespaceFD: -1, sysctl: sysctl)
    }
    public func podContext(netnsPath: String) throws(NetlinkError) -> DatapathContext {
        guard let (fd, ns) = namespaces[netnsPath] else { throw NetlinkError(operation: "open netns", errno: ENOENT, detail: netnsPath) }
        return DatapathContext(host: host, pod: ns, podNamespaceFD: fd, sysctl: sysctl)
    }
}

