import AWSCloud
import IPAMDCore
import Logging
import NetModel
import Netlink

/// What discovery found: the overrides where they were given, the cloud's answer elsewhere.
public struct DiscoveredNode: Sendable, Equatable {
    /// nil when nothing had to be discovered (every override given: no cloud call at all).
    public var metadata: InstanceMetadata?
    public var primaryInterface: String
    /// nil: the primary interface's first IPv4 address (NodeSetup resolves it).
    public var primaryIP: IPv4Address?
    public var vpcCIDRs: [IPPrefix]
    /// The trunk given as TRUNK_INTERFACE.
    public var trunk: IPAMDConfig.TrunkSpec?
    /// The trunk EC2 lists as attached (its link may not be on the node yet, and it may be down):
    /// TrunkWatcher brings it up. nil with pod ENI on and no TRUNK_INTERFACE: not attached yet.
    public var attachedTrunk: MACAddress?
    /// The ENIs EC2 listed at start (the trunk among them if attached): a link that appears later
    /// with one of these MACs is not the trunk arriving.
    public var knownENIMACs: Set<MACAddress>
    /// EC2's list of the instance's ENIs when discovery asked for it (the pool starts from it
    /// instead of asking again).
    public var enis: [NetworkInterfaceDescription]? = nil
}

/// Why discovery could not give ipamd what it needs to serve. ipamd does not serve without it:
/// no VPC CIDRs would mean SNATing VPC traffic (fail closed).
public enum DiscoveryError: Error, Sendable, CustomStringConvertible {
    case metadata(CloudError)
    case ec2(CloudError)
    case netlink(NetlinkError)
    /// No local link has the primary ENI's MAC.
    case primaryLinkMissing(MACAddress)
    /// Metadata lists no IPv4 CIDR for the VPC.
    case noVPCCIDRs(mac: MACAddress)

    public var description: String {
        switch self {
        case .metadata(let e):
            "cannot read instance metadata (AWS_EC2_METADATA_SERVICE_ENDPOINT): \(e); without it the VPC CIDRs and the primary "
                + "interface are unknown: set VPC_CIDRS, NODE_PRIMARY_INTERFACE (and TRUNK_INTERFACE with ENABLE_POD_ENI) to run without cloud metadata"
        case .ec2(let e):
            "cannot list the instance's network interfaces through the EC2 API (DescribeNetworkInterfaces): \(e); "
                + "set TRUNK_INTERFACE to run without it, or grant ec2:DescribeNetworkInterfaces"
        case .netlink(let e): "cannot list the node's links: \(e)"
        case .primaryLinkMissing(let mac): "no link on this node has the primary ENI's MAC \(mac); set NODE_PRIMARY_INTERFACE"
        case .noVPCCIDRs(let mac): "instance metadata lists no IPv4 CIDR for the VPC of \(mac); set VPC_CIDRS"
        }
    }
}

/// Fills in what the overrides left out, from instance metadata and EC2 (SPEC sections 6, 7).
/// Pure apart from the three protocols, so its logic tests run without a cloud or privileges.
public struct NodeDiscovery: Sendable {
    let metadata: any InstanceMetadataProvider
    /// The EC2 client for a region (known only once metadata has answered).
    let ec2: @Sendable (_ region: String) -> any EC2NetworkInterfaceAPI
    let links: @Sendable () throws(NetlinkError) -> [LinkInfo]
    let logger: Logger

    public init(metadata: any InstanceMetadataProvider, ec2: @escaping @Sendable (_ region: String) -> any EC2NetworkInterfaceAPI,
                links: @escaping @Sendable () throws(NetlinkError) -> [LinkInfo], logger: Logger) {
        self.metadata = metadata; self.ec2 = ec2; self.links = links; self.logger = logger
    }

    /// Every override given: no cloud call, the config as it is.
    public static func fromOverrides(_ c: IPAMDConfig) -> DiscoveredNode {
        DiscoveredNode(metadata: nil, primaryInterface: c.node.primaryInterface, primaryIP: c.node.primaryIP,
                       vpcCIDRs: c.vpcCIDRs, trunk: c.trunk, attachedTrunk: nil, knownENIMACs: [])
    }

    public func discover(_ c: IPAMDConfig) async throws(DiscoveryError) -> DiscoveredNode {
        guard c.needsDiscovery else { return Self.fromOverrides(c) }
        let md: InstanceMetadata
        do { md = try await metadata.instanceMetadata() } catch { throw .metadata(error) }
        var node = DiscoveredNode(metadata: md, primaryInterface: c.node.primaryInterface, primaryIP: c.node.primaryIP ?? md.primaryIPv4,
                                  vpcCIDRs: c.vpcCIDRs, trunk: c.trunk, attachedTrunk: nil, knownENIMACs: [])
        if !c.primaryInterfaceGiven {
            let all: [LinkInfo]
            do { all = try links() } catch { throw .netlink(error) }
            guard let link = all.first(where: { $0.mac == md.primaryMAC }) else { throw .primaryLinkMissing(md.primaryMAC) }
            node.primaryInterface = link.name
        }
        if node.vpcCIDRs.isEmpty {
            node.vpcCIDRs = md.primary?.vpcCIDRs.map(\.network) ?? []
            guard !node.vpcCIDRs.isEmpty || c.externalSNAT else { throw .noVPCCIDRs(mac: md.primaryMAC) }
        }
        if c.enablePodENI && c.trunk == nil {
            let enis: [NetworkInterfaceDescription]
            do { enis = try await ec2(c.cloud.region ?? md.region).describeInstanceNetworkInterfaces(instanceID: md.instanceID) } catch {
                throw .ec2(error)
            }
            node.knownENIMACs = Set(enis.map(\.mac))
            node.enis = enis
            node.attachedTrunk = enis.first(where: \.isTrunk)?.mac
        }
        logger.info("discovered the node", metadata: [
            "instance_id": "\(md.instanceID)", "region": "\(md.region)", "az": "\(md.availabilityZone)",
            "primary_interface": "\(node.primaryInterface)", "primary_ip": "\(node.primaryIP.map(\.description) ?? "")",
            "vpc_cidrs": "\(node.vpcCIDRs.map(\.description))", "trunk": "\(node.trunk?.description ?? node.attachedTrunk?.description ?? (c.enablePodENI ? "not attached yet" : "pod ENI off"))",
        ])
        return node
    }
}

extension IPAMDConfig {
    /// The config with what discovery found filled in.
    public func with(_ d: DiscoveredNode) -> IPAMDConfig {
        var c = self
        c.vpcCIDRs = d.vpcCIDRs
        c.node.vpcCIDRs = d.vpcCIDRs
        c.node.primaryInterface = d.primaryInterface
        c.node.primaryIP = d.primaryIP
        c.trunk = d.trunk
        return c
    }
}
