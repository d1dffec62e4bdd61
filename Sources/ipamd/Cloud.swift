import AsyncHTTPClient
import AWSCloud
import EnforcingMode
import Foundation
import IPAMDCloud
import IPAMDCore
import Logging
import NetModel
import Netlink
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
            let made = EC2Client(endpoint: settings.ec2Endpoint ?? EC2Client.endpoint(environment: [:], region: region), region: region,
                                 credentials: chain, httpClient: .shared, logger: logger)
            c = made
            return made
        }
    }

    var ec2Calls: [String: Int] { ec2Client.withLock { $0?.calls.snapshot() ?? [:] } }
}

/// Runs async start-up work from the synchronous main thread, which must stay the thread that
/// waits for SIGTERM (async top-level code would hand the main thread to dispatch, whose signal
/// mask lets SIGTERM through unhandled). The ipamd concurrency issue replaces this with
/// swift-service-lifecycle.
func awaitingOnThisThread<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<T?>(nil)
    Task.detached {
        let value = await body()
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
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

/// While the trunk is not on the node: watches link notifications for it (TrunkWatcher).
func watchForTrunk(_ node: DiscoveredNode, config: IPAMDConfig, cloud: CloudConnections, locator: NetlinkTrunkLocator,
                   logger: Logger) -> LinkEventStream? {
    guard let md = node.metadata else { return nil }
    let stream: LinkEventStream
    let client: LibNLClient
    do {
        stream = try LinkEventStream(logger: logger)
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
    Task.detached {
        if await watcher.run(events: stream.events) != nil { stream.finish() }
    }
    return stream
}
