// Kernel networking objects as plain values. Planning produces them; Netlink applies and lists them.

public enum RouteScope: UInt8, Sendable, Hashable, Codable, CustomStringConvertible {
    case universe = 0
    case link = 253
    case host = 254

    public var description: String {
        switch self { case .universe: "global"; case .link: "link"; case .host: "host" }
    }
}

public enum RouteTable {
    public static let main: UInt32 = 254
    public static let local: UInt32 = 255
}

/// A live link as the kernel reports it.
public struct LinkInfo: Hashable, Sendable {
    public var index: Int32
    public var name: String
    public var mac: MACAddress?
    public var mtu: UInt32
    public var isUp: Bool
    /// rtnl "kind": "veth", "vlan", "dummy", ... (empty for physical/unknown).
    public var kind: String
    /// IFLA_LINK: the parent link's index for a VLAN, the peer's index for a veth (0 when none).
    public var parentIndex: Int32
    /// VLAN id for kind "vlan", else 0.
    public var vlanID: UInt16
    /// IFLA_IFALIAS; the plugin records the owning container id here.
    public var alias: String

    public init(index: Int32, name: String, mac: MACAddress?, mtu: UInt32, isUp: Bool,
                kind: String = "", parentIndex: Int32 = 0, vlanID: UInt16 = 0, alias: String = "") {
        self.index = index; self.name = name; self.mac = mac; self.mtu = mtu; self.isUp = isUp
        self.kind = kind; self.parentIndex = parentIndex; self.vlanID = vlanID; self.alias = alias
    }
}

/// A route. `outputIndex` is the ifindex in the namespace the route lives in.
public struct Route: Hashable, Sendable, CustomStringConvertible {
    public var destination: IPPrefix
    public var gateway: IPAddress?
    public var outputIndex: Int32?
    public var table: UInt32
    public var scope: RouteScope

    public init(destination: IPPrefix, gateway: IPAddress? = nil, outputIndex: Int32? = nil,
                table: UInt32 = RouteTable.main, scope: RouteScope = .universe) {
        self.destination = destination; self.gateway = gateway; self.outputIndex = outputIndex
        self.table = table; self.scope = scope
    }

    public var description: String {
        var s = destination.length == 0 ? "default" : destination.description
        if let g = gateway { s += " via \(g)" }
        if let o = outputIndex { s += " dev#\(o)" }
        s += " table \(table) scope \(scope)"
        return s
    }
}

/// A policy routing rule (action: lookup table).
public struct Rule: Hashable, Sendable, CustomStringConvertible {
    public var family: AddressFamily
    public var priority: UInt32
    public var table: UInt32
    public var inputInterface: String?
    public var source: IPPrefix?
    public var destination: IPPrefix?
    public var fwmark: UInt32?
    public var fwmask: UInt32?
    public var ipProtocol: UInt8?

    public init(family: AddressFamily = .ipv4, priority: UInt32, table: UInt32, inputInterface: String? = nil,
                source: IPPrefix? = nil, destination: IPPrefix? = nil, fwmark: UInt32? = nil,
                fwmask: UInt32? = nil, ipProtocol: UInt8? = nil) {
        self.family = family; self.priority = priority; self.table = table; self.inputInterface = inputInterface
        self.source = source; self.destination = destination; self.fwmark = fwmark; self.fwmask = fwmask
        self.ipProtocol = ipProtocol
    }

    /// Same text shape as `ip rule show`, which is what users compare against.
    public var description: String {
        var s = "\(priority):"
        if let src = source { s += " from \(src.length == src.address.maxPrefixLength ? src.address.description : src.description)" } else { s += " from all" }
        if let dst = destination { s += " to \(dst.length == dst.address.maxPrefixLength ? dst.address.description : dst.description)" }
        if let p = ipProtocol { s += " ipproto \(p)" }
        if let m = fwmark { s += " fwmark 0x\(String(m, radix: 16))" + (fwmask.map { "/0x\(String($0, radix: 16))" } ?? "") }
        if let i = inputInterface { s += " iif \(i)" }
        s += " lookup " + (table == RouteTable.main ? "main" : table == RouteTable.local ? "local" : String(table))
        return s
    }
}

/// A neighbour (ARP/NDP) entry.
public struct Neighbor: Hashable, Sendable {
    public var linkIndex: Int32
    public var address: IPAddress
    public var mac: MACAddress
    public var permanent: Bool

    public init(linkIndex: Int32, address: IPAddress, mac: MACAddress, permanent: Bool = true) {
        self.linkIndex = linkIndex; self.address = address; self.mac = mac; self.permanent = permanent
    }
}

/// An address assigned to a link.
public struct InterfaceAddress: Hashable, Sendable {
    public var linkIndex: Int32
    public var prefix: IPPrefix

    public init(linkIndex: Int32, prefix: IPPrefix) {
        self.linkIndex = linkIndex; self.prefix = prefix
    }
}
