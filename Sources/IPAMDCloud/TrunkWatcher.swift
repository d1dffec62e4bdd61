import AWSCloud
import IPAMDCore
import Logging
import NetModel
import Netlink
import Synchronization

/// Waits for the trunk ENI when it is not on the node yet. The VPC resource controller attaches
/// it minutes after ipamd signals SecurityGroupsForPods; the kernel then creates a link with the
/// trunk's MAC. Each link notification lists the links again; a link with a MAC not seen before
/// (not a pod's veth or VLAN) is checked with one EC2 DescribeNetworkInterfaces, repeated with
/// backoff only while EC2 does not list the new ENI yet (eventual consistency). Nothing polls
/// EC2 while no link appears. Found: brought up with the ENI MTU, then AddNetworks go on.
public final class TrunkWatcher: Sendable {
    let locator: NetlinkTrunkLocator
    let netlink: LinksAccess
    let ec2: any EC2NetworkInterfaceAPI
    let instanceID: String
    /// Set when EC2 already lists the trunk but its link is not on the node yet.
    let expectedMAC: MACAddress?
    let mtu: UInt32
    /// Pod links (veth prefixes, VLAN links) are never an ENI.
    let podLinkPrefixes: [String]
    let logger: Logger
    /// MACs already judged (the ENIs at start, links checked and found not to be the trunk).
    private let judged: Mutex<Set<MACAddress>>
    /// EC2 calls made while waiting, for tests and the closing report.
    private let calls = Mutex(0)
    /// How long to wait for EC2 to list a new link's ENI before giving up on that link.
    let confirmDelays: [Duration]

    public init(locator: NetlinkTrunkLocator, netlink: any NetlinkClient, ec2: any EC2NetworkInterfaceAPI, instanceID: String,
                knownMACs: Set<MACAddress>, expectedMAC: MACAddress?, mtu: UInt32, podLinkPrefixes: [String], logger: Logger,
                confirmDelays: [Duration] = [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16)]) {
        self.locator = locator; self.netlink = LinksAccess(netlink); self.ec2 = ec2; self.instanceID = instanceID
        self.expectedMAC = expectedMAC; self.mtu = mtu; self.podLinkPrefixes = podLinkPrefixes; self.logger = logger
        self.confirmDelays = confirmDelays
        judged = Mutex(knownMACs.subtracting(expectedMAC.map { [$0] } ?? []))
    }

    public var ec2Calls: Int { calls.withLock { $0 } }

    /// Returns the trunk's MAC once it is up and the locator knows it; nil when `events` ended first.
    @discardableResult
    public func run(events: AsyncStream<Void>) async -> MACAddress? {
        if let mac = await look() { return mac }
        for await _ in events {
            if let mac = await look() { return mac }
        }
        return nil
    }

    /// One look at the links; the trunk's MAC when it is found and up.
    public func look() async -> MACAddress? {
        let links: [LinkInfo]
        do { links = try netlink.links() } catch {
            logger.error("cannot list links while waiting for the trunk", metadata: ["error": "\(error)"])
            return nil
        }
        if let expectedMAC {
            guard let link = links.first(where: { $0.mac == expectedMAC }) else { return nil }
            logger.info("trunk link present", metadata: ["mac": "\(expectedMAC)", "link": "\(link.name)"])
            return bringUp(link) ? expectedMAC : nil
        }
        let fresh = links.filter { l in
            // An ENI is a device without a link kind (ena); veth stands in for one in the test
            // nodes. Bridges, dummies, tunnels of other agents are never asked about.
            guard let mac = l.mac, l.name != "lo", l.kind.isEmpty || l.kind == "veth" else { return false }
            guard !podLinkPrefixes.contains(where: { l.name.hasPrefix($0) }) else { return false }
            return !judged.withLock { $0.contains(mac) }
        }
        for link in fresh {
            guard let mac = link.mac else { continue }
            if let trunk = await confirm(mac) {
                logger.info("trunk attached", metadata: ["eni": "\(trunk.id)", "mac": "\(mac)", "link": "\(link.name)", "ec2_calls_waiting": "\(ec2Calls)"])
                return bringUp(link) ? mac : nil
            }
            judged.withLock { _ = $0.insert(mac) }
        }
        return nil
    }

    /// Asks EC2 what the new MAC is; waits (with backoff) while EC2 does not list it yet.
    func confirm(_ mac: MACAddress) async -> NetworkInterfaceDescription? {
        for delay in [Duration.zero] + confirmDelays {
            if delay > .zero {
                do { try await Task.sleep(for: delay) } catch { return nil }
            }
            calls.withLock { $0 += 1 }
            do {
                let enis = try await ec2.describeInstanceNetworkInterfaces(instanceID: instanceID)
                if let eni = enis.first(where: { $0.mac == mac }) { return eni.isTrunk ? eni : nil }
            } catch {
                logger.warning("cannot ask EC2 about a new interface; will ask again", metadata: ["mac": "\(mac)", "error": "\(error)"])
            }
        }
        logger.info("a new link's MAC is not an ENI of this instance; ignored", metadata: ["mac": "\(mac)"])
        return nil
    }

    func bringUp(_ link: LinkInfo) -> Bool {
        do {
            if link.mtu != mtu { try netlink.setMTU(index: link.index, mtu: mtu) }
            try netlink.setUp(index: link.index)
        } catch {
            logger.error("cannot bring the trunk up", metadata: ["link": "\(link.name)", "mtu": "\(mtu)", "error": "\(error)"])
            return false
        }
        guard let mac = link.mac else { return false }
        locator.trunkArrived(.mac(mac))
        return true
    }
}

/// The watcher's own netlink connection, used by one look at a time (the watcher's task).
final class LinksAccess: @unchecked Sendable {
    private let lock = Mutex(())
    private let client: any NetlinkClient

    init(_ client: any NetlinkClient) { self.client = client }

    func links() throws(NetlinkError) -> [LinkInfo] { try lock.withLock { (_) throws(NetlinkError) in try client.links() } }
    func setMTU(index: Int32, mtu: UInt32) throws(NetlinkError) { try lock.withLock { (_) throws(NetlinkError) in try client.setMTU(index: index, mtu: mtu) } }
    func setUp(index: Int32) throws(NetlinkError) { try lock.withLock { (_) throws(NetlinkError) in try client.setLinkUp(index: index) } }
}
