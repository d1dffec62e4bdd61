import NetModel

/// How a branch pod's traffic is steered. Strict: everything through the branch ENI (its security
/// groups apply to all of it). Standard: pod-to-pod/node traffic stays on the node's main table.
public enum PodSGEnforcingMode: String, Sendable, Hashable, Codable, CaseIterable {
    case strict
    case standard
}

/// Names and numbers fixed by compatibility with the reference CNI (SPEC section 3).
public enum Naming {
    public static let strictVethPrefix = "vlan"
    public static let defaultVethPrefix = "eni"
    public static let maxVethPrefixLength = 4
    /// Prefixes of the node's own links: a host veth named like them would be mistaken for one.
    public static let reservedVethPrefixes: Set<String> = ["eth", "lo", "vlan"]
    /// Pod interface MTUs the reference accepts (IPv4).
    public static let podMTURange: ClosedRange<UInt32> = 576...9001
    /// pluginLogLevel values, compared lowercased.
    public static let pluginLogLevels = ["debug", "info", "warn", "error"]
    public static let maxLinkNameLength = 15
    public static let tableOffset: UInt32 = 100
    public static let validVLANIDs: ClosedRange<UInt16> = 1...4094
    /// The pod's default gateway is this link-local address, answered by a permanent neighbour entry.
    public static let podGatewayV4 = IPAddress.v4(IPv4Address(169, 254, 1, 1))

    /// The pod's link-local gateway (the host veth answers for it through the permanent neighbour).
    public static func podGateway(_ family: AddressFamily) -> IPAddress { family == .ipv4 ? podGatewayV4 : podGatewayV6 }

    /// 0.0.0.0/0 or ::/0.
    public static func defaultDestination(_ family: AddressFamily) -> IPPrefix {
        IPPrefix(address: family == .ipv4 ? IPAddress("0.0.0.0")! : IPAddress("::")!, length: 0)!
    }
    public static let podGatewayV6 = IPAddress("fe80::1")!
    /// The VPC's IPv6 subnet router is always this address.
    public static let subnetGatewayV6 = IPAddress("fe80:ec2::1")!

    public static func vlanLinkName(vlanID: UInt16) -> String { "vlan.eth.\(vlanID)" }

    public static func routeTable(vlanID: UInt16) -> UInt32 { UInt32(vlanID) + tableOffset }

    /// A secondary ENI's route table: its device number + 1 (the reference's numbering), for
    /// device numbers 1...99, so no ENI table meets a VLAN table (101 and up). nil for the
    /// primary ENI (main) and beyond.
    public static func eniRouteTable(deviceNumber: Int) -> UInt32? {
        (1...Int(tableOffset) - 1).contains(deviceNumber) ? UInt32(deviceNumber + 1) : nil
    }

    /// Whether a table number is a secondary ENI's (2...100), never a VLAN's or the kernel's.
    public static func isENIRouteTable(_ table: UInt32) -> Bool { (2...tableOffset).contains(table) }

    /// Tables the kernel gives a meaning of its own: 253 default, 254 main, 255 local.
    public static let reservedTables: [UInt32: String] = [253: "default", 254: "main", 255: "local"]

    /// Why a VLAN id cannot carry a branch pod, or nil when it can. VLAN 153-155 would put the
    /// pod's routes into the kernel's own tables (154 + 100 = main) and break the node.
    public static func vlanIDProblem(_ id: Int) -> String? {
        guard id >= Int(validVLANIDs.lowerBound), id <= Int(validVLANIDs.upperBound) else { return "\(id) is outside 1...4094" }
        if let name = reservedTables[UInt32(id) + tableOffset] {
            return "\(id) would use route table \(UInt32(id) + tableOffset), which the kernel reserves (\(name))"
        }
        return nil
    }

    /// The VLAN id behind a per-pod table number, if it is one.
    public static func vlanID(forTable table: UInt32) -> UInt16? {
        guard table > tableOffset, let v = UInt16(exactly: table - tableOffset), vlanIDProblem(Int(v)) == nil else { return nil }
        return v
    }

    /// `<prefix>` + 11 hex digits of SHA-1("<namespace>.<name>"), as the reference names host veths.
    public static func hostVethName(prefix: String, podNamespace: String, podName: String) -> String {
        prefix + String(SHA1.hex("\(podNamespace).\(podName)").prefix(11))
    }

    /// For runtimes that pass no pod identity (containerd's ctr): hash the container id instead,
    /// so concurrent containers never share a name.
    public static func hostVethName(prefix: String, containerID: String) -> String {
        prefix + String(SHA1.hex(containerID).prefix(11))
    }

    /// Why a configured veth prefix cannot be used, or nil when it can. One rule for the plugin's
    /// `vethPrefix` and ipamd's AWS_VPC_K8S_CNI_VETHPREFIX, which writes it into the conflist.
    public static func vethPrefixProblem(_ prefix: String) -> String? {
        guard (1...maxVethPrefixLength).contains(prefix.utf8.count),
              prefix.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }) else {
            return "1 to 4 ASCII letters or digits"
        }
        if reservedVethPrefixes.contains(prefix) { return "\(reservedVethPrefixes.sorted().joined(separator: ", ")) are reserved" }
        return nil
    }

    /// The host veth prefix a pod gets in a mode.
    public static func vethPrefix(mode: PodSGEnforcingMode, configuredPrefix: String) -> String {
        mode == .strict ? strictVethPrefix : configuredPrefix
    }

    /// Subnet router of an IPv4 subnet: network address + 1 (10.0.32.0/19 gives 10.0.32.1).
    public static func subnetGatewayV4(subnet: IPPrefix) -> IPAddress? {
        guard case .v4(let net) = subnet.network.address else { return nil }
        return .v4(IPv4Address(net.value &+ 1))
    }
}
