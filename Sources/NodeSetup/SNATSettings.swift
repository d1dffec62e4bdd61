import NetModel

/// How SNAT picks source ports (AWS_VPC_K8S_CNI_RANDOMIZESNAT).
public enum SNATPortRandomization: String, Sendable, Hashable, CaseIterable {
    /// nft `fully-random` (iptables --random-fully): ports from a PRNG, the reference's default.
    case prng
    /// nft `random` (iptables --random): hash-based port choice.
    case hashrandom
    /// The kernel's default sequential port choice.
    case none
}

/// What SPEC section 4 needs: which pod connections get SNATed to the node's primary IP.
public struct SNATSettings: Sendable, Hashable {
    /// AWS_VPC_K8S_CNI_EXTERNALSNAT: something outside the node (a NAT gateway) does it.
    public var external: Bool
    public var vpcCIDRs: [IPPrefix]
    /// AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: destinations reached with the pod's own address.
    public var excludedCIDRs: [IPPrefix]
    public var portRandomization: SNATPortRandomization
    /// AWS_VPC_K8S_CNI_CONNMARK: the connection mark bit(s) that route a connection via main.
    public var connmark: UInt32
    /// Standard-mode host veths are `<vethPrefix>*`; only their connections are marked.
    public var vethPrefix: String
    public var primaryInterface: String
    public var primaryIP: IPv4Address

    public init(external: Bool = false, vpcCIDRs: [IPPrefix], excludedCIDRs: [IPPrefix] = [],
                portRandomization: SNATPortRandomization = .prng, connmark: UInt32 = 0x80, vethPrefix: String = "eni",
                primaryInterface: String, primaryIP: IPv4Address) {
        self.external = external; self.vpcCIDRs = vpcCIDRs; self.excludedCIDRs = excludedCIDRs
        self.portRandomization = portRandomization; self.connmark = connmark; self.vethPrefix = vethPrefix
        self.primaryInterface = primaryInterface; self.primaryIP = primaryIP
    }

    /// Destinations never SNATed: the VPC and the exclusions, without prefixes another one covers
    /// (nft refuses overlapping elements in an interval set), sorted for a stable ruleset.
    public var exemptDestinations: [IPPrefix] {
        let all = Set((vpcCIDRs + excludedCIDRs).filter { $0.family == .ipv4 }.map(\.network))
        let kept = all.filter { p in !all.contains { q in q != p && q.length < p.length && q.contains(p.address) } }
        return kept.sorted { a, b in
            a.address.bytes == b.address.bytes ? a.length < b.length : a.address.bytes.lexicographicallyPrecedes(b.address.bytes)
        }
    }
}
