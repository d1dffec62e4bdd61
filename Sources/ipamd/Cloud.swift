import AsyncHTTPClient
import AWSCloud
import EnforcingMode
import Foundation
import IPAMDCloud
import IPAMDCore
import IPAMDMetrics
import Logging
import NetModel
import Netlink
import ServiceLifecycle
import Synchronization

/// The cloud clients of this ipamd run, made only when something must be discovered: with every
/// override given, none of this exists and no cloud call is made.
final class CloudConnections: Sendable {
    let settings: CloudSettings
    let imds: IMDSClient
    let logger: Logger
    private let ec2Client = Mutex<EC2Client?>(nil)

    init(settings: CloudSettings, logger: Logger) {
        self.settings = settings; self.logger = logger
        imds = IMDSClient(endpoint: settings.metadataEndpoint, httpClient: .shared, logger: logger)
    }

    /// One EC2 client (one credentials chain) for the run, made for the node's region.
    func ec2(region: String) -> EC2Client {
        ec2Client.withLock { c in
            if let c { return c }
            let chain = AWSCredentialsChain.standard(environment: settings.credentialEnvironment, region: region,
                                                     http: AsyncHTTPClientTransport(client: .shared, logger: logger), imds: imds, logger: logger)
            let metrics = IPAMDMetrics.system
            let counter = CallCounter { call in
                metrics.ec2Request(action: call.api)
                metrics.awsRequest(api: call.api, duration: call.duration, status: call.status, errorCode: call.errorCode)
            }
            let made = EC2Client(endpoint: settings.ec2Endpoint ?? EC2Client.endpoint(environment: [:], region: region), region: region,
                                 credentials: chain, httpClient: .shared, counter: counter, logger: logger)
            c = made
            return made
        }
    }

    var ec2Calls: [String: Int] { ec2Client.withLock { $0?.calls.snapshot() ?? [:] } }
}

/// Discovery at start: what the overrides left out, or exit (ipamd does not serve without the
/// VPC's CIDRs: it would SNAT VPC traffic).
func discoverNode(_ config: IPAMDConfig, cloud: CloudConnections?, logger: Logger) async -> DiscoveredNode {
    guard let cloud else { return NodeDiscovery.fromOverrides(config) }
    let discovery = NodeDiscovery(metadata: cloud.imds, ec2: { cloud.ec2(region: $0) },
                                  links: { () throws(NetlinkError) in try LibNLClient().links() }, logger: logger)
    do {
        return try await discovery.discover(config)
    } catch {
        logger.critical("node discovery failed; not serving", metadata: ["error": "\(error)"])
        exit(1)
    }
}

/// While the trunk is not on the node: watches link notifications for it (TrunkWatcher), as a
/// service that ends once the trunk is up (or at shutdown).
func watchForTrunk(_ node: DiscoveredNode, config: IPAMDConfig, cloud: CloudConnections, locator: NetlinkTrunkLocator,
                   inventory: @escaping @Sendable (MACAddress) -> Void, logger: Logger) async -> (any Service)? {
    guard let md = node.metadata else { return nil }
    let stream: LinkEventStream
    let client: LibNLClient
    do {
        stream = try await LinkEventStream(logger: logger)
        client = try LibNLClient()
    } catch {
        logger.critical("cannot watch for the trunk's link", metadata: ["error": "\(error)"])
        exit(1)
    }
    let watcher = TrunkWatcher(locator: locator, netlink: client, ec2: cloud.ec2(region: config.cloud.region ?? md.region),
                               instanceID: md.instanceID, knownMACs: node.knownENIMACs, expectedMAC: node.attachedTrunk,
                               mtu: config.eniMTU, podLinkPrefixes: [config.node.vethPrefix, Naming.strictVethPrefix], logger: logger)
    if node.attachedTrunk == nil {
        logger.info("no trunk attached yet; waiting for it (branch pods wait up to POD_ENI_WAIT_TIMEOUT, then retry)")
    }
    return ClosureService {
        let mac = await cancelWhenGracefulShutdown { await watcher.run(events: stream.events) }
        stream.finish()
        if let mac { inventory(mac) }
    }
}

/// The ENIs discovery saw, for `/v1/enis`; with overrides only, the trunk by its link.
func inventoryRecords(_ d: DiscoveredNode, config: IPAMDConfig) -> [ENIRecord] {
    guard let md = d.metadata else {
        guard case .name(let link)? = config.trunk else { return [] }
        return [ENIRecord(id: "", mac: nil, linkName: link, deviceNumber: 0, isPrimary: false, isTrunk: true)]
    }
    return md.interfaces.map { i in
        ENIRecord(id: i.interfaceID, mac: i.mac, linkName: i.mac == md.primaryMAC ? d.primaryInterface : nil, deviceNumber: i.deviceNumber,
                  networkCard: i.networkCard ?? 0, isPrimary: i.mac == md.primaryMAC, isTrunk: i.mac == d.attachedTrunk,
                  subnetID: i.subnetID, subnetCIDR: i.subnetCIDR)
    }
}
