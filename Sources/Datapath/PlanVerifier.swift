import EnforcingMode
import NetModel
import Netlink

/// Compares a setup plan with the live kernel state (CNI CHECK). Reads only.
public struct PlanVerifier {
    public var context: DatapathContext

    public init(context: DatapathContext) { self.context = context }

    /// One line per difference; empty when the datapath matches the plan.
    /// Only `family` is read: a node booted without IPv6 refuses IPv6 dumps.
    public func differences(_ steps: [PlanStep], family: AddressFamily = .ipv4) throws(NetlinkError) -> [String] {
        var problems: [String] = []
        var cache: [Side: Snapshot] = [:]
        func snap(_ side: Side) throws(NetlinkError) -> Snapshot? {
            if let s = cache[side] { return s }
            guard let c = side == .host ? context.host : context.pod else { return nil }
            let s = try Snapshot(c, family: family)
            cache[side] = s
            return s
        }
        for step in steps {
            switch step {
            case .createVeth(let host, let container, let mtu, let hostMAC, let containerMAC):
                if let h = try snap(.host) {
                    if let l = h.link(host) {
                        if l.kind != "veth" { problems.append("host link \(host) is \(l.kind.isEmpty ? "not a veth" : "a \(l.kind)"), expected veth") }
                        // The pod's neighbour entry pins this MAC: a rewritten one cuts the pod off.
                        if l.mac != hostMAC { problems.append("host veth \(host) has MAC \(l.mac?.description ?? "none"), expected \(hostMAC)") }
                    } else { problems.append("host veth \(host) is missing") }
                }
                if let p = try snap(.pod) {
                    if let l = p.link(container) {
                        if l.mtu != mtu { problems.append("pod link \(container) has MTU \(l.mtu), expected \(mtu)") }
                        if l.mac != containerMAC { problems.append("pod link \(container) has MAC \(l.mac?.description ?? "none"), expected \(containerMAC)") }
                    } else { problems.append("pod interface \(container) is missing") }
                } else { problems.append("pod namespace is not available") }
            case .createVLAN(let name, let parent, let id, let mac):
                guard let h = try snap(.host) else { continue }
                guard let l = h.link(name) else { problems.append("VLAN link \(name) is missing"); continue }
                if l.kind != "vlan" { problems.append("\(name) is not a VLAN link") }
                if l.vlanID != id { problems.append("\(name) has VLAN id \(l.vlanID), expected \(id)") }
                if l.mac != mac { problems.append("\(name) has MAC \(l.mac?.description ?? "none"), expected \(mac)") }
                if parent > 0 && l.parentIndex != parent { problems.append("\(name) is on link #\(l.parentIndex), expected the trunk #\(parent)") }
            case .linkUp(let side, let name):
                if let s = try snap(side), let l = s.link(name), !l.isUp { problems.append("\(side.rawValue) link \(name) is down") }
            case .tagOwner(let name, let owner):
                if let s = try snap(.host), let l = s.link(name), l.alias != owner {
                    problems.append("link \(name) belongs to container \(l.alias.isEmpty ? "<none>" : l.alias), not \(owner)")
                }
            case .address(let side, let link, let prefix):
                guard let s = try snap(side), let l = s.link(link) else { continue }
                if !s.addresses.contains(InterfaceAddress(linkIndex: l.index, prefix: prefix)) {
                    problems.append("\(side.rawValue) address \(prefix) on \(link) is missing")
                }
            case .route(let side, let r):
                guard let s = try snap(side) else { continue }
                guard let l = s.link(r.device) else { problems.append("\(side.rawValue) route \(PlanStep.text(r)): device missing"); continue }
                if !s.routes.contains(PlanApplier.route(r, index: l.index)) {
                    problems.append("\(side.rawValue) route \(PlanStep.text(r)) is missing")
                }
            case .rule(let r):
                guard let s = try snap(.host) else { continue }
                if !s.rules.contains(r) { problems.append("rule \(r) is missing") }
            case .neighbor(let side, let link, let address, let mac):
                guard let s = try snap(side), let l = s.link(link) else { continue }
                if !s.neighbors.contains(where: { $0.linkIndex == l.index && $0.address == address && $0.mac == mac && $0.permanent }) {
                    problems.append("\(side.rawValue) permanent neighbour \(address) -> \(mac) on \(link) is missing")
                }
            case .sysctl, .deleteLink, .deleteRule:
                continue
            }
        }
        return problems
    }

    /// One dump of each object kind per namespace, so CHECK costs a fixed number of requests.
    struct Snapshot {
        var links: [String: LinkInfo]
        var addresses: [InterfaceAddress]
        var routes: [Route]
        var rules: [Rule]
        var neighbors: [Neighbor]

        init(_ c: any NetlinkClient, family: AddressFamily) throws(NetlinkError) {
            links = Dictionary(try c.links().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            addresses = try c.addresses(family: family)
            routes = try c.routes(family: family)
            rules = try c.rules(family: family)
            neighbors = try c.neighbors(family: family)
        }

        func link(_ name: String) -> LinkInfo? { links[name] }
    }
}
