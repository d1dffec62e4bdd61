import AWSCloud
import EnforcingMode
import Foundation
import IPAMDPool
import IPAMPool
import NetModel
import Synchronization
import Testing
import TestSupport

/// EC2 as the pool sees it, in memory: an instance type's limits, ENIs with addresses drawn from
/// one subnet, attachments, and injected failures.
final class FakePoolEC2: EC2PoolAPI, @unchecked Sendable {
    struct ENI { var d: NetworkInterfaceDescription }
    private let lock = NSLock()
    private var enis: [String: ENI] = [:]
    private var next: UInt32 = 0x0a00_0010  // 10.0.0.16 on
    private var counter = 0
    var limits = InstanceTypeLimits(instanceType: "m5.large", maxENIs: 3, ipv4PerENI: 10)
    /// Every call fails with this while set (throttling, 5xx).
    var failure: CloudError?
    private(set) var calls: [String: Int] = [:]

    init(primary: String = "eni-primary") {
        let ip = take()
        enis[primary] = ENI(d: NetworkInterfaceDescription(id: primary, mac: MACAddress("0a:00:00:00:00:01")!, interfaceType: "interface", deviceIndex: 0,
                                                           subnetID: "subnet-1", vpcID: "vpc-1", privateIPv4s: [ip], primaryIPv4: ip, attachmentID: "attach-0"))
    }

    private func take() -> IPv4Address { next += 1; return IPv4Address(next) }

    private func call<T>(_ name: String, _ body: () throws(CloudError) -> T) throws(CloudError) -> T {
        lock.lock(); defer { lock.unlock() }
        calls[name, default: 0] += 1
        if let failure { throw failure }
        return try body()
    }

    var attached: [NetworkInterfaceDescription] { lock.withLock { enis.values.map(\.d).filter { $0.deviceIndex != nil }.sorted { $0.deviceIndex! < $1.deviceIndex! } } }
    var all: [NetworkInterfaceDescription] { lock.withLock { enis.values.map(\.d) } }
    func count(_ name: String) -> Int { lock.withLock { calls[name] ?? 0 } }

    func describeInstanceNetworkInterfaces(instanceID: String) async throws(CloudError) -> [NetworkInterfaceDescription] {
        try call("DescribeInstanceNetworkInterfaces") { enis.values.map(\.d).filter { $0.deviceIndex != nil } }
    }
    /// What the VPC resource controller does: a trunk ENI attached at `deviceIndex`.
    func attachTrunk(deviceIndex: Int) {
        lock.withLock {
            let ip = take()
            enis["eni-trunk"] = ENI(d: NetworkInterfaceDescription(id: "eni-trunk", mac: MACAddress("0a:00:00:00:0f:01")!, interfaceType: "trunk",
                                                                    deviceIndex: deviceIndex, subnetID: "subnet-1", vpcID: "vpc-1", privateIPv4s: [ip],
                                                                    primaryIPv4: ip, attachmentID: "attach-trunk"))
        }
    }
    func instanceTypeLimits(_ instanceType: String) async throws(CloudError) -> InstanceTypeLimits { try call("DescribeInstanceTypes") { limits } }
    func networkInterfaces(ids: [String]) async throws(CloudError) -> [NetworkInterfaceDescription] {
        try call("DescribeNetworkInterfaces") { ids.compactMap { enis[$0]?.d } }
    }
    func createNetworkInterface(_ r: ENIRequest) async throws(CloudError) -> NetworkInterfaceDescription {
        try call("CreateNetworkInterface") {
            counter += 1
            let ip = take()
            let d = NetworkInterfaceDescription(id: "eni-\(counter)", mac: MACAddress(bytes: [0x0a, 0, 0, 0, 1, UInt8(counter)])!, interfaceType: "interface",
                                                deviceIndex: nil, subnetID: r.subnetID, vpcID: "vpc-1", privateIPv4s: [ip], primaryIPv4: ip,
                                                description: r.description, securityGroupIDs: r.securityGroupIDs, tags: r.tags)
            enis[d.id] = ENI(d: d)
            return d
        }
    }
    func attachNetworkInterface(id: String, instanceID: String, deviceIndex: Int) async throws(CloudError) -> String {
        try call("AttachNetworkInterface") { () throws(CloudError) -> String in
            let n = enis.values.filter { $0.d.deviceIndex != nil }.count
            guard n < limits.maxENIs else { throw .api(status: 400, code: "AttachmentLimitExceeded", message: "", requestID: nil) }
            guard !enis.values.contains(where: { $0.d.deviceIndex == deviceIndex }) else {
                throw .api(status: 400, code: "InvalidParameterValue", message: "device index \(deviceIndex) in use", requestID: nil)
            }
            enis[id]!.d.deviceIndex = deviceIndex
            enis[id]!.d.attachmentID = "attach-\(id)"
            return "attach-\(id)"
        }
    }
    func setDeleteOnTermination(id: String, attachmentID: String) async throws(CloudError) {
        try call("ModifyNetworkInterfaceAttribute") { enis[id]!.d.deleteOnTermination = true }
    }
    func assignPrivateIPv4(id: String, count: Int) async throws(CloudError) -> [IPv4Address] {
        try call("AssignPrivateIpAddresses") { () throws(CloudError) -> [IPv4Address] in
            guard enis[id]!.d.privateIPv4s.count + count <= limits.ipv4PerENI else {
                throw .api(status: 400, code: "PrivateIpAddressLimitExceeded", message: "", requestID: nil)
            }
            let new = (0..<count).map { _ in take() }
            enis[id]!.d.privateIPv4s += new
            return new
        }
    }
    func unassignPrivateIPv4(id: String, _ addresses: [IPv4Address]) async throws(CloudError) {
        try call("UnassignPrivateIpAddresses") { enis[id]!.d.privateIPv4s.removeAll { addresses.contains($0) } }
    }
    private var nextPrefix: UInt32 = 0x0a00_1000  // 10.0.16.0/28 on
    func assignIPv4Prefixes(id: String, count: Int) async throws(CloudError) -> [IPPrefix] {
        try call("AssignPrivateIpAddresses") { () throws(CloudError) -> [IPPrefix] in
            guard enis[id]!.d.privateIPv4s.count + enis[id]!.d.ipv4Prefixes.count + count <= limits.ipv4PerENI else {
                throw .api(status: 400, code: "PrivateIpAddressLimitExceeded", message: "", requestID: nil)
            }
            let new = (0..<count).map { _ in
                defer { nextPrefix += 16 }
                return IPPrefix(address: .v4(IPv4Address(nextPrefix)), length: 28)!
            }
            enis[id]!.d.ipv4Prefixes += new
            return new
        }
    }
    func unassignIPv4Prefixes(id: String, _ prefixes: [IPPrefix]) async throws(CloudError) {
        try call("UnassignPrivateIpAddresses") { enis[id]!.d.ipv4Prefixes.removeAll { prefixes.contains($0) } }
    }
    func detachNetworkInterface(attachmentID: String) async throws(CloudError) {
        try call("DetachNetworkInterface") {
            for (k, v) in enis where v.d.attachmentID == attachmentID { enis[k]!.d.attachmentID = nil; enis[k]!.d.deviceIndex = nil }
        }
    }
    func deleteNetworkInterface(id: String) async throws(CloudError) {
        try call("DeleteNetworkInterface") { () throws(CloudError) in
            guard enis[id]?.d.deviceIndex == nil else { throw .api(status: 400, code: "InvalidNetworkInterface.InUse", message: "", requestID: nil) }
            enis[id] = nil
        }
    }
}

/// Links appear at once, named by device number; what was configured is kept.
final class FakeENIHost: ENIHost, @unchecked Sendable {
    private let lock = NSLock()
    private var devices: [MACAddress: String] = [:]
    private(set) var configured: [String: SecondaryENI] = [:]
    func awaitLink(mac: MACAddress, until deadline: ContinuousClock.Instant) async throws -> String? {
        lock.withLock {
            if devices[mac] == nil { devices[mac] = "eth\(devices.count + 1)" }
            return devices[mac]
        }
    }
    func configure(_ eni: SecondaryENI, mtu: UInt32) throws { lock.withLock { configured[eni.link] = eni } }
    func unconfigure(_ eni: SecondaryENI) throws { _ = lock.withLock { configured.removeValue(forKey: eni.link) } }
    var links: [String: SecondaryENI] { lock.withLock { configured } }
}

@Suite struct PoolManagerTests {
    static func settings(_ targets: PoolTargets = PoolTargets(), trunk: Bool = true) -> PoolSettings {
        var s = PoolSettings(targets: targets, reserveTrunkSlot: trunk, instanceID: "i-1", instanceType: "m5.large", primaryENIID: "eni-primary",
                             subnetID: "subnet-1", subnet: IPPrefix("10.0.0.0/19")!, securityGroupIDs: ["sg-b", "sg-a"], clusterName: "prod")
        s.decreaseInterval = .zero
        s.eniMinimumLife = .zero
        s.cooldown = .zero
        return s
    }

    func started(_ targets: PoolTargets = PoolTargets(), trunk: Bool = true) async throws -> (PoolManager, FakePoolEC2, FakeENIHost) {
        let ec2 = FakePoolEC2(), host = FakeENIHost()
        let m = PoolManager(settings: Self.settings(targets, trunk: trunk), ec2: ec2, host: host, logger: quiet)
        _ = try await m.start(attached: ec2.attached, subnets: [:], restored: [])
        return (m, ec2, host)
    }

    func holder(_ n: Int) -> AddressHolder { AddressHolder(networkName: "aws-cni", containerID: "c\(n)", ifName: "eth0") }

    /// Settles the pool: sizing steps until nothing changes.
    func settle(_ m: PoolManager) async {
        var last = (-1, -1)
        for _ in 0..<20 {
            await m.reconcile()
            let now = (await m.pool.counts.total, await m.pool.enis.count)
            if now == last { return }
            last = now
        }
    }

    func counts(_ m: PoolManager) async -> (enis: Int, total: Int, assigned: Int) {
        let c = await m.pool.counts
        return (await m.pool.enis.count, c.total, c.assigned)
    }

    func pods(_ m: PoolManager, _ range: Range<Int>) async -> [AddressAssignment] {
        var out: [AddressAssignment] = []
        for n in range {
            await settle(m)
            if case .success(let a) = await m.assign(holder(n), until: .now) { out.append(a) }
        }
        await settle(m)
        return out
    }

    /// WARM_ENI_TARGET=1 on an m5.large (3 ENIs, one kept for the trunk: 18 pod addresses).
    @Test func warmENITargetKeepsAWholeENISpare() async throws {
        let (m, ec2, host) = try await started()
        await settle(m)
        #expect(await counts(m) == (1, 9, 0), "the primary ENI filled: 9 addresses warm")
        let first = await pods(m, 0..<1)
        #expect(first.first?.deviceNumber == 0)
        #expect(await counts(m) == (2, 18, 1), "a second ENI once fewer than 9 are free")
        let new = try #require(ec2.attached.last)
        #expect(new.deviceIndex == 1 && new.deleteOnTermination && new.description == "aws-K8S-i-1")
        #expect(new.securityGroupIDs == ["sg-a", "sg-b"] && new.subnetID == "subnet-1")
        #expect(new.tags["node.k8s.amazonaws.com/instance_id"] == "i-1" && new.tags["cluster.k8s.amazonaws.com/name"] == "prod"
                && new.tags["eks:eni:owner"] == "amazon-vpc-cni" && new.tags["node.k8s.amazonaws.com/createdAt"] != nil)
        #expect(host.links.values.map(\.deviceNumber) == [1], "its link configured with table 2")
        _ = await pods(m, 1..<18)
        #expect(await counts(m) == (2, 18, 18), "no third ENI: its slot is the trunk's")
        let refused = await m.assign(holder(99), until: .now)
        guard case .failure(.full(let e, let a)) = refused else { Issue.record("full: \(refused)"); return }
        #expect(e == 2 && a == 18)
        for n in 0..<18 { _ = await m.release(holder(n).key) }
        await settle(m)
        #expect(await counts(m) == (1, 9, 0), "back to one warm ENI's worth; the second ENI freed")
        #expect(ec2.all.count == 1, "and deleted")
        #expect(host.links.isEmpty, "its table removed")
    }

    @Test func warmAndMinimumIPTargets() async throws {
        let (m, _, _) = try await started(PoolTargets(warmENI: 0, warmIP: 3, minimumIP: 5))
        await settle(m)
        #expect(await counts(m) == (1, 5, 0), "MINIMUM_IP_TARGET 5")
        _ = await pods(m, 0..<4)
        #expect(await counts(m) == (1, 7, 4), "WARM_IP_TARGET 3 free beyond 4 pods")
        _ = await pods(m, 4..<10)
        #expect(await counts(m) == (2, 13, 10), "a second ENI once the primary is full")
        for n in 0..<10 { _ = await m.release(holder(n).key) }
        await settle(m)
        let c = await counts(m)
        #expect(c.total == 5 && c.assigned == 0, "back to MINIMUM_IP_TARGET")
    }

    /// The trunk the resource controller attaches after start holds a device index and an
    /// interface slot: the pool attaches around it and counts it toward the instance's limit.
    @Test func aTrunkAttachedAfterStartHoldsItsDeviceAndSlot() async throws {
        let (m, ec2, _) = try await started()
        await settle(m)
        ec2.attachTrunk(deviceIndex: 1)
        _ = await pods(m, 0..<18)
        #expect(ec2.attached.map(\.deviceIndex) == [0, 1, 2], "the new ENI at device 2")
        #expect(ec2.attached.last?.interfaceType == "interface")
        #expect(await counts(m) == (2, 18, 18), "primary, trunk and one more: the m5.large's 3")
        guard case .failure(.full) = await m.assign(holder(99), until: .now) else { Issue.record("not full"); return }
    }

    /// A trunk attached before start holds its slot from the start.
    @Test func aTrunkAttachedAtStartCountsTowardTheLimit() async throws {
        let ec2 = FakePoolEC2(), host = FakeENIHost()
        ec2.attachTrunk(deviceIndex: 1)
        let m = PoolManager(settings: Self.settings(trunk: false), ec2: ec2, host: host, logger: quiet)
        _ = try await m.start(attached: ec2.attached, subnets: [:], restored: [])
        #expect(await m.capacity == 18, "two of the three ENIs for pods")
        _ = await pods(m, 0..<18)
        #expect(ec2.attached.map(\.deviceIndex) == [0, 1, 2])
        guard case .failure(.full) = await m.assign(holder(99), until: .now) else { Issue.record("not full"); return }
    }

    @Test func withoutTheTrunkSlotAThirdENI() async throws {
        let (m, ec2, _) = try await started(trunk: false)
        _ = await pods(m, 0..<19)
        #expect(await counts(m) == (3, 27, 19))
        #expect(ec2.attached.map(\.deviceIndex) == [0, 1, 2])
    }

    /// Throttled EC2 never fails an ADD the warm pool can serve; an empty pool answers within the bound.
    @Test func throttlingNeverFailsAnADDThePoolCanServe() async throws {
        let (m, ec2, _) = try await started()
        await settle(m)
        ec2.failure = .api(status: 503, code: "RequestLimitExceeded", message: "Request limit exceeded.", requestID: nil)
        for n in 0..<9 {
            let r = await m.assign(holder(n), until: .now)
            guard case .success = r else { Issue.record("pod \(n): \(r)"); return }
            await m.reconcile()
        }
        let r = await m.assign(holder(9), until: .now + .milliseconds(50))
        guard case .failure(.refilling(let e)) = r else { Issue.record("refilling: \(r)"); return }
        #expect(e?.contains("RequestLimitExceeded") == true)
        ec2.failure = nil
        let waiting = Task { await m.assign(holder(9), until: .now + .seconds(30)) }
        await m.reconcile()
        guard case .success(let a) = await waiting.value else { Issue.record("served once EC2 answers"); return }
        #expect(a.deviceNumber == 1)
    }

    @Test func restartKeepsHoldersAndCoolsTheRest() async throws {
        let (m, ec2, _) = try await started()
        let served = await pods(m, 0..<3)
        var s = Self.settings()
        s.cooldown = .seconds(30)
        let again = PoolManager(settings: s, ec2: ec2, host: FakeENIHost(), logger: quiet)
        let gone = IPv4Address("10.9.9.9")!
        let missing = try await again.start(attached: ec2.attached, subnets: [:],
                                            restored: served.map { ($0.holder, $0.address) } + [(holder(7), gone)])
        #expect(missing.map(\.1) == [gone], "an address no longer on an ENI is reported")
        for a in served { #expect(await again.holding(a.holder.key)?.address == a.address) }
        let r = await again.assign(holder(50), until: .now)
        guard case .failure = r else { Issue.record("unheld addresses cool down after a restart: \(r)"); return }
    }

    /// Prefix delegation, WARM_PREFIX_TARGET 1: one free /28 kept, 16 addresses each.
    @Test func prefixDelegationKeepsAFreePrefix() async throws {
        let (m, ec2, _) = try await started(PoolTargets(warmENI: 0, warmPrefix: 1, prefixDelegation: true))
        await settle(m)
        #expect(await counts(m) == (1, 16, 0), "one prefix")
        let first = await pods(m, 0..<1)
        #expect(await counts(m) == (1, 32, 1), "a second prefix once the first is in use")
        #expect(ec2.attached.first?.ipv4Prefixes.count == 2)
        #expect(first.first.map { a in ec2.attached.first!.ipv4Prefixes.contains { $0.contains(.v4(a.address)) } } == true)
        _ = await pods(m, 1..<17)
        #expect(await counts(m) == (1, 48, 17))
        for n in 0..<17 { _ = await m.release(holder(n).key) }
        await settle(m)
        #expect(await counts(m) == (1, 16, 0), "back to one free prefix")
        #expect(ec2.attached.first?.ipv4Prefixes.count == 1)
    }
}
