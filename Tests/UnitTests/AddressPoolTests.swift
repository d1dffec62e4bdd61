import IPAMPool
import NetModel
import Testing
import TestSupport

/// The regular pods' address pool (issue 14) as pure state: assignment, cool-down, restore from
/// the checkpoint, what may go back to EC2, and a random model check of its invariants.
@Suite struct AddressPoolTests {
    let t0 = ContinuousClock.now
    let subnet = IPPrefix("10.0.0.0/19")!

    func ip(_ s: String) -> IPv4Address { IPv4Address(s)! }
    func holder(_ n: Int) -> AddressHolder { AddressHolder(networkName: "aws-cni", containerID: "c\(n)", ifName: "eth0", namespace: "default", name: "p\(n)") }

    /// The primary ENI (device 0) with .10-.12, a secondary (device 1) with .20-.21.
    func twoENIs() -> AddressPool {
        var pool = AddressPool()
        pool.addENI(PoolENI(id: "eni-0", deviceNumber: 0, primaryIP: ip("10.0.0.5"), subnet: subnet, since: t0))
        pool.addENI(PoolENI(id: "eni-1", deviceNumber: 1, primaryIP: ip("10.0.0.6"), subnet: subnet, since: t0))
        pool.add([ip("10.0.0.10"), ip("10.0.0.11"), ip("10.0.0.12"), ip("10.0.0.5")], to: "eni-0")
        pool.add([ip("10.0.0.20"), ip("10.0.0.21")], to: "eni-1")
        return pool
    }

    @Test func assignsFromTheLowestDeviceAndRepeatsForTheSameSandbox() throws {
        var pool = twoENIs()
        #expect(pool.counts == PoolCounts(total: 5, assigned: 0), "an ENI's own address is never a pod's")
        var got: [AddressAssignment] = []
        for n in 0..<3 { got.append(try #require(pool.assign(holder(n), now: t0) as AddressAssignment?)) }
        #expect(got.allSatisfy { $0.eniID == "eni-0" && $0.deviceNumber == 0 })
        #expect(Set(got.map { $0.address }).count == 3)
        let repeated = pool.assign(holder(1), now: t0)
        #expect(repeated == got[1], "a repeated ADD gets the address it holds")
        let fourth = pool.assign(holder(3), now: t0)
        #expect(fourth?.eniID == "eni-1" && fourth?.deviceNumber == 1)
        #expect(pool.counts == PoolCounts(total: 5, assigned: 4))
        #expect(pool.holding(holder(3).key) == fourth)
    }

    @Test func aReleasedAddressCoolsDownBeforeAnotherPodGetsIt() throws {
        var pool = AddressPool(cooldown: .seconds(30))
        pool.addENI(PoolENI(id: "eni-0", deviceNumber: 0, primaryIP: ip("10.0.0.5"), subnet: subnet, since: t0))
        pool.add([ip("10.0.0.10")], to: "eni-0")
        let first = pool.assign(holder(1), now: t0)
        #expect(first?.address == ip("10.0.0.10"))
        let released = pool.release(holder(1).key, now: t0 + .seconds(1)), again = pool.release(holder(1).key, now: t0 + .seconds(1))
        #expect(released == first && again == nil, "a second DEL finds nothing")
        #expect(pool.state(of: ip("10.0.0.10")) == .coolingDown(until: t0 + .seconds(31)))
        #expect(pool.counts == PoolCounts(total: 1, assigned: 0), "cooling counts as available")
        let early = pool.assign(holder(2), now: t0 + .seconds(30))
        #expect(early == nil, "still cooling 29 s after the release")
        let later = pool.assign(holder(2), now: t0 + .seconds(31))
        #expect(later?.address == ip("10.0.0.10") && later?.holder == holder(2))
    }

    @Test func restoreTakesTheCheckpointsHoldersAndRefusesTheRest() {
        var pool = twoENIs()
        let restored = [pool.restore(holder(1), address: ip("10.0.0.20")), pool.restore(holder(1), address: ip("10.0.0.20")),
                        pool.restore(holder(2), address: ip("10.0.0.20")), pool.restore(holder(3), address: ip("10.0.0.99"))]
        #expect(restored == [true, true, false, false], "the holder, the same again, another holder of its address, an address gone")
        #expect(pool.holding(holder(1).key)?.eniID == "eni-1")
        #expect(pool.counts.assigned == 1)
        // After a restart, addresses nobody holds are held back for a cool-down.
        var restarted = AddressPool()
        restarted.addENI(PoolENI(id: "eni-0", deviceNumber: 0, primaryIP: ip("10.0.0.5"), subnet: subnet, since: t0))
        restarted.add([ip("10.0.0.10")], to: "eni-0", coolUntil: t0 + .seconds(30))
        let early = restarted.assign(holder(1), now: t0), later = restarted.assign(holder(1), now: t0 + .seconds(30))
        #expect(early == nil && later?.address == ip("10.0.0.10"))
    }

    @Test func whatMayGoBackToEC2() {
        var pool = twoENIs()
        #expect(pool.removableENI(now: t0 + .seconds(30)) == nil, "an ENI lives at least a minute")
        #expect(pool.removableENI(now: t0 + .seconds(60))?.id == "eni-1", "never the primary")
        #expect(pool.restore(holder(1), address: ip("10.0.0.21")) == true)
        #expect(pool.removableENI(now: t0 + .seconds(60)) == nil, "a pod holds one of its addresses")
        let refused = pool.removeENI("eni-1")
        #expect(!refused)
        _ = pool.release(holder(1).key, now: t0 + .seconds(60))
        #expect(pool.removableENI(now: t0 + .seconds(61)) == nil, "an address still cooling")
        pool.expireCooldowns(now: t0 + .seconds(90))
        #expect(pool.removableENI(now: t0 + .seconds(90))?.id == "eni-1")
        #expect(pool.surplus(3) == ["eni-1": [ip("10.0.0.20"), ip("10.0.0.21")], "eni-0": [ip("10.0.0.10")]], "free addresses, the last ENI first")
        let removed = pool.removeENI("eni-1")
        #expect(removed && pool.counts == PoolCounts(total: 3, assigned: 0))
        let dropped = pool.remove([ip("10.0.0.10")])
        #expect(dropped == [ip("10.0.0.10")] && pool.counts.total == 2)
    }

    @Test func prefixesCountWholeAndGoBackWhole() throws {
        var pool = AddressPool()
        let p0 = IPPrefix("10.0.1.0/28")!, p1 = IPPrefix("10.0.1.16/28")!
        pool.addENI(PoolENI(id: "eni-0", deviceNumber: 0, primaryIP: ip("10.0.0.5"), subnet: subnet, since: t0))
        pool.add(prefix: p0, to: "eni-0")
        pool.add(prefix: p1, to: "eni-0")
        #expect(pool.counts == PoolCounts(total: 32, assigned: 0, prefixes: 2, freePrefixes: 2))
        let a = try #require(pool.assign(holder(1), now: t0) as AddressAssignment?)
        #expect(p0.contains(.v4(a.address)) || p1.contains(.v4(a.address)))
        #expect(pool.counts == PoolCounts(total: 32, assigned: 1, prefixes: 2, freePrefixes: 1))
        let back = pool.surplusPrefixes(2)["eni-0"] ?? []
        #expect(back.count == 1 && !back[0].contains(.v4(a.address)), "only the prefix nobody uses")
        #expect(pool.surplus(5).isEmpty, "prefix addresses go back as prefixes, not one by one")
    }

    /// Random ADD/DEL/clock steps against a plain model: nobody shares an address, a released
    /// address is never reassigned within the cool-down, nothing is refused while one is free,
    /// the counts match.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func randomStepsKeepTheInvariants(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var pool = AddressPool(cooldown: .seconds(30))
        for d in 0..<3 {
            pool.addENI(PoolENI(id: "eni-\(d)", deviceNumber: d, primaryIP: IPv4Address(UInt32(0x0a00_0000 + d)), subnet: subnet, since: t0))
            pool.add((1...9).map { IPv4Address(UInt32(0x0a00_0100 + d * 16 + $0)) }, to: "eni-\(d)")
        }
        var now = t0
        var held: [Int: IPv4Address] = [:]
        var cooling: [IPv4Address: ContinuousClock.Instant] = [:]  // released less than 30 s ago
        for step in 0..<2_000 {
            let n = Int(rng.next() % 40)
            switch rng.next() % 3 {
            case 0:
                let got = pool.assign(holder(n), now: now)
                if let prior = held[n] {
                    #expect(got?.address == prior, "seed \(seed) step \(step): a repeated ADD moved")
                } else if let got {
                    #expect(!held.values.contains(got.address), "seed \(seed) step \(step): \(got.address) given twice")
                    #expect(cooling[got.address] == nil, "seed \(seed) step \(step): reassigned within the cool-down")
                    held[n] = got.address
                } else {
                    #expect(held.count + cooling.count == 27, "seed \(seed) step \(step): refused with \(27 - held.count - cooling.count) free")
                }
            case 1:
                let r = pool.release(holder(n).key, now: now)
                #expect(r?.address == held[n], "seed \(seed) step \(step): DEL released another address")
                if let a = held.removeValue(forKey: n) { cooling[a] = now }
            default:
                now += .seconds(Int64(rng.next() % 20))
                cooling = cooling.filter { now - $0.value < .seconds(30) }
            }
            #expect(pool.counts == PoolCounts(total: 27, assigned: held.count), "seed \(seed) step \(step): counts")
        }
    }
}
