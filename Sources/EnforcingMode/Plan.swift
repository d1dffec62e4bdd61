import NetModel

/// Which network namespace a step acts in.
public enum Side: String, Sendable, Hashable, Codable {
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

/// One step of a pod's datapath. Setup steps each have an inverse used for rollback.
public enum PlanStep: Hashable, Sendable, CustomStringConvertible {
    /// Veth with `host` in the host namespace and `container` in the pod namespace, each with its
    /// MAC set here: left to the kernel, udev's MACAddressPolicy=persistent may rewrite the host
    /// end's after creation, under the pod's permanent neighbour entry.
    case createVeth(host: String, container: String, mtu: UInt32, hostMAC: MACAddress, containerMAC: MACAddress)
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
    /// Permanent neighbour on `link` (pod side) with `mac` (the host veth's).
    case neighbor(Side, link: String, address: IPAddress, mac: MACAddress)

    // Teardown-only steps; each tolerates absence (DEL is idempotent).
    case deleteLink(Side, String)
    /// Exactly this rule (found in a dump and judged by TeardownPlanner).
    case deleteRule(Rule)

    public var description: String {
        switch self {
        case .createVeth(let h, let c, let mtu, let hm, let cm):
            return "host: link add \(h) address \(hm) type veth peer \(c) address \(cm) netns pod mtu \(mtu)"
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
            return "\(s.rawValue): neigh replace \(a) lladdr \(m) dev \(l) nud permanent"
        case .deleteLink(let s, let n):
            return "\(s.rawValue): link del \(n)"
        case .deleteRule(let r):
            return "host: rule del \(r)"
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
