#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NetModel
import Netlink

/// A test hook: numbers the netlink requests of one plugin run and makes the k-th fail, or stops
/// the run right after it (the process kills itself; in-process tests make every later request
/// fail, which is what a dead process amounts to). aws-cni wires it only in debug builds.
public final class FaultInjector: @unchecked Sendable {
    // @unchecked: one plugin run is single-threaded; the counter is touched by that thread only.
    public enum Plan: Equatable, Sendable {
        /// Count only (the run reports how many requests it made).
        case count
        /// Request k (1-based) fails with this errno before reaching the kernel.
        case fail(request: Int, errno: Int32)
        /// The run stops dead right after request k completed.
        case stop(afterRequest: Int)

        /// `count`, `fail:K:ERRNO` or `kill:K`.
        public init?(_ text: String) {
            let parts = text.split(separator: ":")
            switch parts.first {
            case "count" where parts.count == 1: self = .count
            case "fail" where parts.count == 3:
                guard let k = Int(parts[1]), let e = Int32(parts[2]), k > 0, e > 0 else { return nil }
                self = .fail(request: k, errno: e)
            case "kill" where parts.count == 2:
                guard let k = Int(parts[1]), k > 0 else { return nil }
                self = .stop(afterRequest: k)
            default: return nil
            }
        }
    }

    public let plan: Plan
    public private(set) var requests = 0
    public private(set) var stopped = false
    let onStop: () -> Void

    public init(_ plan: Plan, onStop: @escaping () -> Void = {}) { self.plan = plan; self.onStop = onStop }

    func before(_ operation: String) throws(NetlinkError) {
        if stopped { throw NetlinkError(operation: operation, errno: EIO, detail: "(the run was stopped by the fault hook)") }
        requests += 1
        if case .fail(let k, let e) = plan, k == requests {
            throw NetlinkError(operation: operation, errno: e, detail: "(injected fault at request \(k))")
        }
    }

    func after() {
        if case .stop(let k) = plan, k == requests, !stopped {
            stopped = true
            onStop()
        }
    }

    func run<T>(_ operation: String, _ body: () throws(NetlinkError) -> T) throws(NetlinkError) -> T {
        try before(operation)
        defer { after() }
        return try body()
    }
}

/// Every request of `base` through the injector.
public final class FaultInjectingClient: NetlinkClient {
    let base: any NetlinkClient
    let injector: FaultInjector

    public init(_ base: any NetlinkClient, _ injector: FaultInjector) { self.base = base; self.injector = injector }

    public func links() throws(NetlinkError) -> [LinkInfo] { try injector.run("list links") { () throws(NetlinkError) in try base.links() } }
    public func link(named name: String) throws(NetlinkError) -> LinkInfo? { try injector.run("get link") { () throws(NetlinkError) in try base.link(named: name) } }
    public func link(index: Int32) throws(NetlinkError) -> LinkInfo? { try injector.run("get link") { () throws(NetlinkError) in try base.link(index: index) } }
    public func link(withMAC mac: MACAddress) throws(NetlinkError) -> LinkInfo? { try injector.run("list links") { () throws(NetlinkError) in try base.link(withMAC: mac) } }
    public func addVeth(name: String, peerName: String, peerNamespaceFD: Int32, mtu: UInt32, mac: MACAddress?, peerMAC: MACAddress?) throws(NetlinkError) {
        try injector.run("add veth") { () throws(NetlinkError) in try base.addVeth(name: name, peerName: peerName, peerNamespaceFD: peerNamespaceFD, mtu: mtu, mac: mac, peerMAC: peerMAC) }
    }
    public func addVLAN(name: String, parentIndex: Int32, vlanID: UInt16, mac: MACAddress) throws(NetlinkError) {
        try injector.run("add vlan") { () throws(NetlinkError) in try base.addVLAN(name: name, parentIndex: parentIndex, vlanID: vlanID, mac: mac) }
    }
    public func setLinkUp(index: Int32) throws(NetlinkError) { try injector.run("set link up") { () throws(NetlinkError) in try base.setLinkUp(index: index) } }
    public func setMTU(index: Int32, mtu: UInt32) throws(NetlinkError) { try injector.run("set mtu") { () throws(NetlinkError) in try base.setMTU(index: index, mtu: mtu) } }
    public func setAlias(index: Int32, alias: String, up: Bool) throws(NetlinkError) {
        try injector.run("set alias") { () throws(NetlinkError) in try base.setAlias(index: index, alias: alias, up: up) }
    }
    public func deleteLink(index: Int32) throws(NetlinkError) { try injector.run("delete link") { () throws(NetlinkError) in try base.deleteLink(index: index) } }
    public func addAddress(_ address: InterfaceAddress) throws(NetlinkError) { try injector.run("add address") { () throws(NetlinkError) in try base.addAddress(address) } }
    public func addresses(family: AddressFamily) throws(NetlinkError) -> [InterfaceAddress] {
        try injector.run("list addresses") { () throws(NetlinkError) in try base.addresses(family: family) }
    }
    public func replaceRoute(_ route: Route) throws(NetlinkError) { try injector.run("replace route") { () throws(NetlinkError) in try base.replaceRoute(route) } }
    public func deleteRoute(_ route: Route) throws(NetlinkError) { try injector.run("delete route") { () throws(NetlinkError) in try base.deleteRoute(route) } }
    public func routes(family: AddressFamily) throws(NetlinkError) -> [Route] { try injector.run("list routes") { () throws(NetlinkError) in try base.routes(family: family) } }
    public func addRule(_ rule: Rule) throws(NetlinkError) { try injector.run("add rule") { () throws(NetlinkError) in try base.addRule(rule) } }
    public func deleteRule(_ rule: Rule) throws(NetlinkError) { try injector.run("delete rule") { () throws(NetlinkError) in try base.deleteRule(rule) } }
    public func rules(family: AddressFamily) throws(NetlinkError) -> [Rule] { try injector.run("list rules") { () throws(NetlinkError) in try base.rules(family: family) } }
    public func addNeighbor(_ neighbor: Neighbor) throws(NetlinkError) { try injector.run("add neighbor") { () throws(NetlinkError) in try base.addNeighbor(neighbor) } }
    public func neighbors(family: AddressFamily) throws(NetlinkError) -> [Neighbor] {
        try injector.run("list neighbors") { () throws(NetlinkError) in try base.neighbors(family: family) }
    }
}

/// The namespaces `base` opens, with every netlink request through the injector.
public final class FaultInjectingProvider: DatapathProvider {
    let base: any DatapathProvider
    public let injector: FaultInjector

    public init(_ base: any DatapathProvider, _ injector: FaultInjector) { self.base = base; self.injector = injector }

    public func hostContext() throws(NetlinkError) -> DatapathContext { wrap(try base.hostContext()) }
    public func podContext(netnsPath: String) throws(NetlinkError) -> DatapathContext { wrap(try base.podContext(netnsPath: netnsPath)) }

    func wrap(_ c: DatapathContext) -> DatapathContext {
        DatapathContext(host: FaultInjectingClient(c.host, injector), pod: c.pod.map { FaultInjectingClient($0, injector) },
                        podNamespaceFD: c.podNamespaceFD, sysctl: c.sysctl)
    }
}
