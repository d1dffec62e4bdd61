import FoundationEssentials
import EnforcingMode
import NetModel

/// One element of the `vpc.amazonaws.com/pod-eni` annotation as the VPC resource controller writes it.
/// Everything is optional here; `BranchENI.validate` decides what is required and says which field is wrong.
public struct PodENIAnnotation: Codable, Sendable, Hashable {
    public var eniId: String?
    public var ifAddress: String?
    public var privateIp: String?
    public var ipv6Addr: String?
    public var vlanId: Int?
    public var subnetCidr: String?
    public var subnetV6Cidr: String?
    public var associationID: String?

    public init(eniId: String? = nil, ifAddress: String? = nil, privateIp: String? = nil, ipv6Addr: String? = nil,
                vlanId: Int? = nil, subnetCidr: String? = nil, subnetV6Cidr: String? = nil, associationID: String? = nil) {
        self.eniId = eniId; self.ifAddress = ifAddress; self.privateIp = privateIp; self.ipv6Addr = ipv6Addr
        self.vlanId = vlanId; self.subnetCidr = subnetCidr; self.subnetV6Cidr = subnetV6Cidr; self.associationID = associationID
    }

    enum CodingKeys: String, CodingKey {
        case eniId, ifAddress, privateIp, ipv6Addr, vlanId, vlanID, subnetCidr, subnetV6Cidr, associationID
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        eniId = try c.decodeIfPresent(String.self, forKey: .eniId)
        ifAddress = try c.decodeIfPresent(String.self, forKey: .ifAddress)
        privateIp = try c.decodeIfPresent(String.self, forKey: .privateIp)
        ipv6Addr = try c.decodeIfPresent(String.self, forKey: .ipv6Addr)
        // Older writers spell it vlanID.
        vlanId = try c.decodeIfPresent(Int.self, forKey: .vlanId) ?? c.decodeIfPresent(Int.self, forKey: .vlanID)
        subnetCidr = try c.decodeIfPresent(String.self, forKey: .subnetCidr)
        subnetV6Cidr = try c.decodeIfPresent(String.self, forKey: .subnetV6Cidr)
        associationID = try c.decodeIfPresent(String.self, forKey: .associationID)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(eniId, forKey: .eniId)
        try c.encodeIfPresent(ifAddress, forKey: .ifAddress)
        try c.encodeIfPresent(privateIp, forKey: .privateIp)
        try c.encodeIfPresent(ipv6Addr, forKey: .ipv6Addr)
        try c.encodeIfPresent(vlanId, forKey: .vlanId)
        try c.encodeIfPresent(subnetCidr, forKey: .subnetCidr)
        try c.encodeIfPresent(subnetV6Cidr, forKey: .subnetV6Cidr)
        try c.encodeIfPresent(associationID, forKey: .associationID)
    }
}

public struct AnnotationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The annotation field at fault ("vlanId", "ifAddress", ...), or "annotation" for the whole.
    public var field: String
    public var reason: String

    public init(field: String, reason: String) { self.field = field; self.reason = reason }

    public var description: String { "invalid pod-eni annotation: \(field): \(reason)" }
}

/// A validated branch interface: everything the datapath needs, typed.
public struct BranchENI: Sendable, Hashable, Codable {
    public var eniID: String
    public var mac: MACAddress
    public var vlanID: UInt16
    public var ipv4: IPAddress?
    public var subnetV4: IPPrefix?
    public var ipv6: IPAddress?
    public var subnetV6: IPPrefix?
    public var associationID: String?

    public init(eniID: String, mac: MACAddress, vlanID: UInt16, ipv4: IPAddress?, subnetV4: IPPrefix?,
                ipv6: IPAddress? = nil, subnetV6: IPPrefix? = nil, associationID: String? = nil) {
        self.eniID = eniID; self.mac = mac; self.vlanID = vlanID; self.ipv4 = ipv4; self.subnetV4 = subnetV4
        self.ipv6 = ipv6; self.subnetV6 = subnetV6; self.associationID = associationID
    }

    public var gatewayV4: IPAddress? {
        guard let s = subnetV4, case .v4(let net) = s.network.address else { return nil }
        return .v4(IPv4Address(net.value &+ 1))
    }

    /// Decodes the annotation string (a JSON array; element 0 is used) and validates it.
    public static func decode(annotation: String, ipv4: Bool = true, ipv6: Bool = false) throws(AnnotationError) -> BranchENI {
        let list: [PodENIAnnotation]
        do {
            list = try JSONDecoder().decode([PodENIAnnotation].self, from: Data(annotation.utf8))
        } catch {
            throw AnnotationError(field: "annotation", reason: "not a JSON array of pod-eni objects (\(Self.shortReason(error)))")
        }
        guard let first = list.first else { throw AnnotationError(field: "annotation", reason: "empty array") }
        return try validate(first, ipv4: ipv4, ipv6: ipv6)
    }

    public static func validate(_ a: PodENIAnnotation, ipv4: Bool = true, ipv6: Bool = false) throws(AnnotationError) -> BranchENI {
        guard let vlan = a.vlanId else { throw AnnotationError(field: "vlanId", reason: "missing") }
        if let problem = Naming.vlanIDProblem(vlan) { throw AnnotationError(field: "vlanId", reason: problem) }
        guard let macText = a.ifAddress else { throw AnnotationError(field: "ifAddress", reason: "missing") }
        guard let mac = MACAddress(macText) else {
            throw AnnotationError(field: "ifAddress", reason: "\"\(macText)\" is not a MAC address")
        }
        guard mac.isUnicast else { throw AnnotationError(field: "ifAddress", reason: "\(mac) is not a unicast MAC") }
        let eni = a.eniId ?? ""
        var out = BranchENI(eniID: eni, mac: mac, vlanID: UInt16(vlan), ipv4: nil, subnetV4: nil, associationID: a.associationID)
        if ipv4 {
            guard let ipText = a.privateIp, !ipText.isEmpty else { throw AnnotationError(field: "privateIp", reason: "missing") }
            guard let ip = IPv4Address(ipText) else {
                throw AnnotationError(field: "privateIp", reason: "\"\(ipText)\" is not an IPv4 address")
            }
            guard let subText = a.subnetCidr, !subText.isEmpty else { throw AnnotationError(field: "subnetCidr", reason: "missing") }
            guard let sub = IPPrefix(subText), sub.family == .ipv4 else {
                throw AnnotationError(field: "subnetCidr", reason: "\"\(subText)\" is not an IPv4 CIDR")
            }
            guard sub.contains(.v4(ip)) else {
                throw AnnotationError(field: "privateIp", reason: "\(ip) is not inside subnetCidr \(sub)")
            }
            out.ipv4 = .v4(ip); out.subnetV4 = sub.network
        }
        if ipv6 {
            guard let ipText = a.ipv6Addr, !ipText.isEmpty else { throw AnnotationError(field: "ipv6Addr", reason: "missing") }
            guard let ip = IPv6Address(ipText) else {
                throw AnnotationError(field: "ipv6Addr", reason: "\"\(ipText)\" is not an IPv6 address")
            }
            guard let subText = a.subnetV6Cidr, let sub = IPPrefix(subText), sub.family == .ipv6 else {
                throw AnnotationError(field: "subnetV6Cidr", reason: "\"\(a.subnetV6Cidr ?? "")\" is not an IPv6 CIDR")
            }
            guard sub.contains(.v6(ip)) else {
                throw AnnotationError(field: "ipv6Addr", reason: "\(ip) is not inside subnetV6Cidr \(sub)")
            }
            out.ipv6 = .v6(ip); out.subnetV6 = sub.network
        }
        return out
    }

    static func shortReason(_ error: any Error) -> String {
        if case DecodingError.typeMismatch(let t, let ctx) = error {
            let p = ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return "\(p.isEmpty ? "" : p + ": ")expected \(t)"
        }
        if case DecodingError.dataCorrupted = error { return "malformed JSON" }
        return "\(error)"
    }
}
