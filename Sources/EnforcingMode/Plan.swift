import NetModel

/// Which network namespace a step acts in.
public enum Side: String, Sendable, Hashable {
    case host
    case pod
}

/// A route whose device is named; the applier resolves the name to an ifindex on its side.
public struct PlannedRoute: Hashable, Sendable {
    public var destination: IPPrefix
    public var gateway: IPAddress?
    public var device: String
    public var table: UInt32
    public var scope: RouteScope

    public init(destination: IPPrefix, gateway: IPAddress? = nil, device: String,
                table: UInt32 = RouteTable.main, scope: RouteScope = .universe) {
        self.destination = destination; self.gateway = gateway; self.device = device
        self.table = table; self.scope = scope
    }
}

/// Which rules a teardown removes. Every set field must match; nil fields match anything.
public struct RuleSelector: Hashable, Sendable {
    public var family: AddressFamily
    public var priority: UInt32?
    public var table: UInt32?
    public var inputInterface: String?
    public var source: IPPrefix?
    public var destination: IPPrefix?

    public init(family: AddressFamily = .ipv4, priority: UInt32? = nil, table: UInt32? = nil,
                inputInterface: String? = nil, source: IPPrefix? = nil, destination: IPPrefix? = nil) {
        self.family = family; self.priority = priority; self.table = table
        self.inputInterface = inputInterface; self.source = source; self.destination = destination
    }

    public func matches(_ r: Rule) -> Bool {
        r.family == family
            && (priority.map { $0 == r.priority } ?? true)
            && (table.map { $0 == r.table } ?? true)
            && (inputInterface.map { $0 == r.inputInterface } ?? true)
            && (source.map { $0 == r.source } ?? true)
            && (destination.map { $0 == r.destination } ?? true)
    }
}

/// One step of a pod's datapath. Setup steps each have an inverse used for rollback.
public enum PlanStep: Hashable, Sendable, CustomStringConvertible {
    /// Veth with `host` in the host namespace and `container` in the pod namespace.
    case createVeth(host: String, container: String, mtu: UInt32)
    case createVLAN(name: String, parentIndex: Int32, vlanID: UInt16, mac: MACAddress)
    case linkUp(Side, String)
    /// Records the owning container id in the link's alias, so a late DEL of an older sandbox
    /// can tell the links of the new one apart and leave them alone.
    case tagOwner(link: String, owner: String)
    /// A per-interface sysctl, e.g. net/ipv6/conf/<if>/accept_ra. ENOENT (no IPv6) is not an error.
    case sysctl(Side, key: String, value: String)
    case address(Side, link: String, IPPrefix)
    case route(Side, PlannedRoute)
    case rule(Rule)
    /// Permanent neighbour on `link` (pod side) pointing at the MAC of host link `macOf`.
    case neighbor(Side, link: String, address: IPAddress, macOf: String)

    // Teardown-only steps; each tolerates absence (DEL is idempotent).
    case deleteLink(Side, String)
    case deleteRules(RuleSelector)
    case deleteRoute(Side, PlannedRoute)

    public var description: String {
        switch self {
        case .createVeth(let h, let c, let mtu):
            return "host: link add \(h) type veth peer \(c) netns pod mtu \(mtu)"
        case .createVLAN(let n, let p, let id, let mac):
            return "host: link add \(n) link #\(p) type vlan id \(id) address \(mac)"
        case .linkUp(let s, let n):
            return "\(s.rawValue): link set \(n) up"
        case .tagOwner(let n, let owner):
            return "host: link set \(n) alias \(owner)"
        case .sysctl(let s, let k, let v):
            return "\(s.rawValue): sysctl \(k)=\(v)"
        case .address(let s, let l, let p):
            return "\(s.rawValue): addr add \(p) dev \(l)"
        case .route(let s, let r):
            return "\(s.rawValue): route replace \(Self.text(r))"
        case .rule(let r):
            return "host: rule add \(r)"
        case .neighbor(let s, let l, let a, let m):
            return "\(s.rawValue): neigh replace \(a) lladdr <mac of \(m)> dev \(l) nud permanent"
        case .deleteLink(let s, let n):
            return "\(s.rawValue): link del \(n)"
        case .deleteRules(let sel):
            var t = "host: rule del all"
            if let p = sel.priority { t += " prio \(p)" }
            if let s = sel.source { t += " from \(s)" }
            if let d = sel.destination { t += " to \(d)" }
            if let i = sel.inputInterface { t += " iif \(i)" }
            if let tb = sel.table { t += " table \(tb)" }
            return t
        case .deleteRoute(let s, let r):
            return "\(s.rawValue): route del \(Self.text(r))"
        }
    }

    public static func text(_ r: PlannedRoute) -> String {
        var t = r.destination.length == 0 ? "default" : r.destination.description
        if let g = r.gateway { t += " via \(g)" }
        t += " dev \(r.device)"
        t += " table " + (r.table == RouteTable.main ? "main" : String(r.table))
        if r.scope != .universe { t += " scope \(r.scope)" }
        return t
    }
}
