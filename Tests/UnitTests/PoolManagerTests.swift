import AWSCloud
import EnforcingMode
import Foundation
import IPAMDPool
import IPAMPool
import NetModel
import Synchronization
import Testing
import TestSupport

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

    /// An ADD that takes the pool below its target starts the refill at once: with a tick that
    /// never comes, the running loop still attaches the second ENI after the first pod.
    @Test func anADDBelowTheTargetWakesTheSizingLoop() async throws {
        let ec2 = FakePoolEC2(), host = FakeENIHost()
        var settings = Self.settings()
        settings.tick = .seconds(3600)
        let m = PoolManager(settings: settings, ec2: ec2, host: host, logger: quiet)
        _ = try await m.start(attached: ec2.attached, subnets: [:], restored: [])
        let loop = Task { await m.run() }
        defer { loop.cancel() }
        #expect(await eventually { await counts(m) == (1, 9, 0) }, "the first sizing step fills the primary")
        guard case .success = await m.assign(holder(0), until: .now) else { Issue.record("no address"); return }
        let refilled = await eventually { await counts(m) == (2, 18, 1) }
        let now = await counts(m)
        #expect(refilled, "refilled without the tick: \(now)")
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
