import AWSCloud
import Foundation
import IPAMDCloud
import IPAMDCore
import NetModel
import Netlink
import NodeSetup
import Synchronization
import TestSupport
import Testing

/// Instance metadata and EC2 as values, counting calls.
final class FakeCloud: InstanceMetadataProvider, EC2NetworkInterfaceAPI {
    struct State {
        var metadata: InstanceMetadata
        var enis: [NetworkInterfaceDescription]
        var cidrs: [IPPrefix]
        var metadataError: CloudError?
        var ec2Error: CloudError?
        var metadataCalls = 0
        var ec2Calls = 0
    }
    let state: Mutex<State>

    static let primaryMAC = MACAddress("02:00:00:00:00:10")!
    static let trunkMAC = MACAddress("02:00:00:00:00:20")!

    init(trunkAttached: Bool = true, vpcCIDRs: [IPPrefix] = [IPPrefix("10.0.0.0/16")!]) {
        let primary = InterfaceMetadata(mac: Self.primaryMAC, deviceNumber: 0, interfaceID: "eni-primary", subnetID: "subnet-1",
                                        subnetCIDR: IPPrefix("10.0.0.0/19")!, vpcID: "vpc-1", vpcCIDRs: vpcCIDRs,
                                        localIPv4s: [IPv4Address("10.0.0.4")!])
        var enis = [NetworkInterfaceDescription(id: "eni-primary", mac: Self.primaryMAC, interfaceType: "interface", deviceIndex: 0,
                                                subnetID: "subnet-1", vpcID: "vpc-1", privateIPv4s: [IPv4Address("10.0.0.4")!])]
        if trunkAttached { enis.append(Self.trunk) }
        state = Mutex(State(metadata: InstanceMetadata(instanceID: "i-1", region: "us-west-2", availabilityZone: "us-west-2a",
                                                       primaryMAC: Self.primaryMAC, primaryIPv4: IPv4Address("10.0.0.4")!, interfaces: [primary]),
                            enis: enis, cidrs: vpcCIDRs))
    }

    static let trunk = NetworkInterfaceDescription(id: "eni-trunk", mac: trunkMAC, interfaceType: "trunk", deviceIndex: 1,
                                                   subnetID: "subnet-1", vpcID: "vpc-1", privateIPv4s: [])

    func instanceMetadata() async throws(CloudError) -> InstanceMetadata {
        let (md, e) = state.withLock { s in s.metadataCalls += 1; return (s.metadata, s.metadataError) }
        if let e { throw e }
        return md
    }

    func vpcCIDRs(mac: MACAddress) async throws(CloudError) -> [IPPrefix] {
        let (c, e) = state.withLock { s in s.metadataCalls += 1; return (s.cidrs, s.metadataError) }
        if let e { throw e }
        return c
    }

    func describeInstanceNetworkInterfaces(instanceID: String) async throws(CloudError) -> [NetworkInterfaceDescription] {
        let (enis, e) = state.withLock { s in s.ec2Calls += 1; return (s.enis, s.ec2Error) }
        if let e { throw e }
        return enis
    }

    var calls: (metadata: Int, ec2: Int) { state.withLock { ($0.metadataCalls, $0.ec2Calls) } }
}

/// A FakeNetlink shared with code that wants Sendable closures (used from one task at a time).
final class SharedNetlink: @unchecked Sendable {
    let fake = FakeNetlink()
    func links() throws(NetlinkError) -> [LinkInfo] { try fake.links() }
}

@Suite struct NodeDiscoveryTests {
    static let env = ["POD_ENI_SOURCE": "file:/tmp/none.json", "ENABLE_POD_ENI": "true"]

    func discovery(_ cloud: FakeCloud, _ net: SharedNetlink) -> NodeDiscovery {
        NodeDiscovery(metadata: cloud, ec2: { _ in cloud }, links: { () throws(NetlinkError) in try net.links() }, logger: quiet)
    }

    func node() -> SharedNetlink {
        let n = SharedNetlink()
        _ = n.fake.addLink("ens5", mac: FakeCloud.primaryMAC, up: true)
        _ = n.fake.addLink("ens6", mac: FakeCloud.trunkMAC)
        return n
    }

    @Test func overridesMeanNoCloudCall() async throws {
        let cloud = FakeCloud()
        let c = try IPAMDConfig.fromEnvironment(Self.env.merging(["TRUNK_INTERFACE": "eth1", "VPC_CIDRS": "10.9.0.0/16"]) { _, b in b })
        let d = try await discovery(cloud, node()).discover(c)
        #expect(d.metadata == nil && d.vpcCIDRs == [IPPrefix("10.9.0.0/16")!] && d.trunk == .name("eth1"))
        #expect(cloud.calls.metadata == 0 && cloud.calls.ec2 == 0)
    }

    @Test func findsPrimaryLinkCIDRsAndTrunk() async throws {
        let cloud = FakeCloud()
        let d = try await discovery(cloud, node()).discover(try IPAMDConfig.fromEnvironment(Self.env))
        #expect(d.primaryInterface == "ens5" && d.primaryIP == IPv4Address("10.0.0.4"))
        #expect(d.vpcCIDRs == [IPPrefix("10.0.0.0/16")!])
        #expect(d.attachedTrunk == FakeCloud.trunkMAC)
        #expect(d.knownENIMACs == [FakeCloud.primaryMAC, FakeCloud.trunkMAC])
        #expect(cloud.calls.ec2 == 1)
    }

    @Test func givenPrimaryInterfaceAndCIDRsAreKept() async throws {
        let cloud = FakeCloud()
        let c = try IPAMDConfig.fromEnvironment(Self.env.merging(["NODE_PRIMARY_INTERFACE": "eth0", "VPC_CIDRS": "10.9.0.0/16"]) { _, b in b })
        let d = try await discovery(cloud, node()).discover(c)
        #expect(d.primaryInterface == "eth0" && d.vpcCIDRs == [IPPrefix("10.9.0.0/16")!])
    }

    @Test func failures() async throws {
        let c = try IPAMDConfig.fromEnvironment(Self.env)
        let noLink = SharedNetlink()
        await #expect { try await discovery(FakeCloud(), noLink).discover(c) } throws: { e in
            if case .primaryLinkMissing(FakeCloud.primaryMAC) = e as! DiscoveryError { return true }
            return false
        }
        await #expect { try await discovery(FakeCloud(vpcCIDRs: []), node()).discover(c) } throws: { e in
            if case .noVPCCIDRs = e as! DiscoveryError { return true }
            return false
        }
        let down = FakeCloud()
        down.state.withLock { $0.metadataError = .timeout(url: "http://169.254.169.254/latest/api/token") }
        await #expect { try await discovery(down, node()).discover(c) } throws: { e in
            guard case .metadata = e as! DiscoveryError else { return false }
            return "\(e)".contains("VPC_CIDRS")
        }
        let denied = FakeCloud()
        denied.state.withLock { $0.ec2Error = .api(status: 403, code: "UnauthorizedOperation", message: "no", requestID: "r-1") }
        await #expect { try await discovery(denied, node()).discover(c) } throws: { e in
            guard case .ec2(let inner) = e as! DiscoveryError else { return false }
            return inner.isRetryable == false && "\(e)".contains("ec2:DescribeNetworkInterfaces")
        }
    }
}

@Suite struct TrunkWatcherTests {
    func watcher(_ cloud: FakeCloud, _ net: FakeNetlink, locator: NetlinkTrunkLocator, expected: MACAddress? = nil) -> TrunkWatcher {
        TrunkWatcher(locator: locator, netlink: net, ec2: cloud, instanceID: "i-1", knownMACs: [FakeCloud.primaryMAC],
                     expectedMAC: expected, mtu: 9001, podLinkPrefixes: ["eni", "vlan"], logger: quiet, confirmDelays: [])
    }

    /// Pod links come and go without an EC2 call; the trunk's link is confirmed with one call,
    /// brought up with the ENI MTU, and the locator learns it.
    @Test func newLinkIsConfirmedOnceAndBroughtUp() async throws {
        let cloud = FakeCloud(trunkAttached: false)
        let net = FakeNetlink()
        _ = net.addLink("ens5", mac: FakeCloud.primaryMAC, up: true)
        let locator = NetlinkTrunkLocator(client: net, spec: nil)
        let w = watcher(cloud, net, locator: locator)
        _ = net.addLink("eni1a2b3c", kind: "veth", up: true)
        _ = net.addLink("vlan.eth.5", kind: "vlan", up: true)
        #expect(await w.look() == nil)
        #expect(cloud.calls.ec2 == 0, "pod links are never asked about")
        cloud.state.withLock { $0.enis.append(FakeCloud.trunk) }
        let link = net.addLink("ens6", mac: FakeCloud.trunkMAC, mtu: 1500)
        #expect(await w.look() == FakeCloud.trunkMAC)
        #expect(cloud.calls.ec2 == 1)
        let up = try #require(net.linkTable["ens6"])
        #expect(up.isUp && up.mtu == 9001)
        #expect(locator.spec == .mac(FakeCloud.trunkMAC))
        #expect(try locator.trunkIndex() == link.index)
    }

    /// EC2 already lists the trunk but its link is not on the node: no EC2 call, the link is
    /// brought up when it appears.
    @Test func attachedTrunkWaitsForItsLinkOnly() async throws {
        let cloud = FakeCloud()
        let net = FakeNetlink()
        let locator = NetlinkTrunkLocator(client: net, spec: nil)
        let w = watcher(cloud, net, locator: locator, expected: FakeCloud.trunkMAC)
        #expect(await w.look() == nil)
        _ = net.addLink("ens6", mac: FakeCloud.trunkMAC)
        let (events, feed) = AsyncStream.makeStream(of: Void.self)
        feed.yield()
        #expect(await w.run(events: events) == FakeCloud.trunkMAC)
        #expect(cloud.calls.ec2 == 0)
        #expect(net.linkTable["ens6"]?.isUp == true)
    }

    /// An AddNetwork waiting for the trunk goes on as soon as it arrives, and one that waits in
    /// vain returns nil after its bound (the handler answers "pending", CNI code 11).
    @Test func waitersAreWokenByTheArrival() async throws {
        let net = FakeNetlink()
        let link = net.addLink("ens6", mac: FakeCloud.trunkMAC, up: true)
        let locator = NetlinkTrunkLocator(client: net, spec: nil)
        #expect(await locator.awaitTrunk(until: .now + .milliseconds(50)) == .timedOut)
        #expect(try locator.trunkIndex() == nil)
        async let waited = locator.awaitTrunk(until: .now + .seconds(30))
        #expect(await eventually { locator.waiters == 1 })
        locator.trunkArrived(.mac(FakeCloud.trunkMAC))
        #expect(await waited == .ready)
        #expect(try locator.trunkIndex() == link.index)
        // At shutdown a wait ends at once.
        let other = NetlinkTrunkLocator(client: net, spec: nil)
        async let ended = other.awaitTrunk(until: .now + .seconds(30))
        #expect(await eventually { other.waiters == 1 })
        other.shutdown()
        #expect(await ended == .closed)
    }
}

@Suite struct VPCCIDRRefresherTests {
    @Test func newCIDRIsAppliedThenPublished() async throws {
        let cloud = FakeCloud()
        let facts = NodeFacts(vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        let applied = Mutex<[[IPPrefix]]>([])
        let r = VPCCIDRRefresher(metadata: cloud, primaryMAC: FakeCloud.primaryMAC, facts: facts,
                                 apply: { c throws(NodeSetupError) in applied.withLock { $0.append(c) } }, logger: quiet)
        #expect(await r.refreshOnce() == false, "unchanged: nothing applied")
        let grown = [IPPrefix("10.0.0.0/16")!, IPPrefix("100.64.0.0/16")!]
        cloud.state.withLock { $0.cidrs = grown }
        #expect(await r.refreshOnce())
        #expect(facts.vpcCIDRs == grown && applied.withLock { $0 } == [grown])
        // A failed read or an empty answer never shrinks the set to nothing.
        cloud.state.withLock { $0.cidrs = [] }
        #expect(await r.refreshOnce() == false)
        cloud.state.withLock { $0.metadataError = .http(status: 500, url: "x") }
        #expect(await r.refreshOnce() == false)
        #expect(facts.vpcCIDRs == grown)
    }

    @Test func failedApplyKeepsTheKnownSet() async throws {
        let cloud = FakeCloud(vpcCIDRs: [IPPrefix("10.0.0.0/16")!, IPPrefix("100.64.0.0/16")!])
        let facts = NodeFacts(vpcCIDRs: [IPPrefix("10.0.0.0/16")!])
        let r = VPCCIDRRefresher(metadata: cloud, primaryMAC: FakeCloud.primaryMAC, facts: facts,
                                 apply: { _ throws(NodeSetupError) in throw .primaryInterfaceMissing("eth0") }, logger: quiet)
        #expect(await r.refreshOnce() == false)
        #expect(facts.vpcCIDRs == [IPPrefix("10.0.0.0/16")!])
    }
}
