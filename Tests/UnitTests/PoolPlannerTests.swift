import IPAMPool
import Testing

/// The reference's warm-pool arithmetic (issue 14), on an m5.large: 3 ENIs, 10 addresses each.
@Suite struct PoolPlannerTests {
    let m5large = ENILimits(maxENIs: 3, addressesPerENI: 10)

    @Test func defaultKeepsOneSpareENIsWorth() {
        let t = PoolTargets()
        // 9 pod addresses per ENI; one warm ENI means 9 available.
        #expect(PoolPlanner.tooLow(t, PoolCounts(total: 9, assigned: 0), limits: m5large, maxPods: 29) == false)
        #expect(PoolPlanner.tooLow(t, PoolCounts(total: 9, assigned: 1), limits: m5large, maxPods: 29) == true)
        #expect(PoolPlanner.growth(t, PoolCounts(total: 9, assigned: 1), limits: m5large) == 9)
        // Single addresses are never returned in this mode; a whole spare ENI beyond the warm one is.
        #expect(PoolPlanner.tooHigh(t, PoolCounts(total: 27, assigned: 0)) == false)
        #expect(PoolPlanner.surplusENI(t, PoolCounts(total: 27, assigned: 9), limits: m5large) == true)
        #expect(PoolPlanner.surplusENI(t, PoolCounts(total: 27, assigned: 10), limits: m5large) == false)
    }

    @Test func warmIPTargetGrowsAndShrinksByAddresses() {
        let t = PoolTargets(warmIP: 5)
        #expect(PoolPlanner.short(t, PoolCounts(total: 9, assigned: 7)) == 3)
        #expect(PoolPlanner.tooLow(t, PoolCounts(total: 9, assigned: 7), limits: m5large, maxPods: 29))
        #expect(PoolPlanner.growth(t, PoolCounts(total: 9, assigned: 7), limits: m5large) == 3)
        #expect(PoolPlanner.over(t, PoolCounts(total: 12, assigned: 2)) == 5)
        #expect(PoolPlanner.tooHigh(t, PoolCounts(total: 12, assigned: 2)))
        #expect(!PoolPlanner.tooHigh(t, PoolCounts(total: 7, assigned: 2)))
        #expect(!PoolPlanner.surplusENI(t, PoolCounts(total: 27, assigned: 0), limits: m5large))
    }

    @Test func minimumIPTargetHoldsAFloor() {
        let t = PoolTargets(warmIP: 2, minimumIP: 10)
        #expect(PoolPlanner.short(t, PoolCounts(total: 4, assigned: 0)) == 6)
        // Nothing is returned below the minimum, however much is free.
        #expect(PoolPlanner.over(t, PoolCounts(total: 10, assigned: 0)) == 0)
        #expect(PoolPlanner.over(t, PoolCounts(total: 14, assigned: 0)) == 4)
    }

    @Test func prefixDelegationCountsSixteenPerPrefix() {
        let t = PoolTargets(warmPrefix: 1, prefixDelegation: true)
        #expect(m5large.podAddressesPerENI(prefixDelegation: true) == 144)
        #expect(PoolPlanner.tooLow(t, PoolCounts(total: 16, assigned: 1, prefixes: 1, freePrefixes: 0), limits: m5large, maxPods: 110))
        #expect(PoolPlanner.growth(t, PoolCounts(total: 16, assigned: 1, prefixes: 1, freePrefixes: 0), limits: m5large) == 1)
        #expect(PoolPlanner.tooHigh(t, PoolCounts(total: 48, assigned: 1, prefixes: 3, freePrefixes: 2)))
        let withIPs = PoolTargets(warmIP: 20, prefixDelegation: true)
        #expect(PoolPlanner.growth(withIPs, PoolCounts(total: 16, assigned: 15, prefixes: 1), limits: m5large) == 2)
    }

    @Test func capacityAndTheTrunkSlot() {
        // A pool that already addresses the node's pod capacity never grows.
        #expect(!PoolPlanner.tooLow(PoolTargets(), PoolCounts(total: 29, assigned: 29), limits: m5large, maxPods: 29))
        #expect(PoolPlanner.roomForENI(attached: 2, limits: m5large, reserveTrunkSlot: false))
        #expect(!PoolPlanner.roomForENI(attached: 2, limits: m5large, reserveTrunkSlot: true))
    }
}
