/// The warm-pool arithmetic for regular pods, as pure values (issue 14): how many addresses the
/// node's ENIs should hold, given the reference's target variables, and whether to grow or shrink.
/// No EC2, no clock: the pool manager feeds it counts and acts on the answer.

/// The reference's variables (`WARM_ENI_TARGET` 1, `WARM_IP_TARGET`, `MINIMUM_IP_TARGET`,
/// `WARM_PREFIX_TARGET`, `ENABLE_PREFIX_DELEGATION`). 0 for the IP targets means "not set".
public struct PoolTargets: Hashable, Sendable {
    public var warmENI: Int
    public var warmIP: Int
    public var minimumIP: Int
    public var warmPrefix: Int
    public var prefixDelegation: Bool

    public init(warmENI: Int = 1, warmIP: Int = 0, minimumIP: Int = 0, warmPrefix: Int = 0, prefixDelegation: Bool = false) {
        self.warmENI = warmENI; self.warmIP = warmIP; self.minimumIP = minimumIP
        self.warmPrefix = warmPrefix; self.prefixDelegation = prefixDelegation
    }

    /// With either IP target set, the pool is sized in addresses, not in whole ENIs.
    public var ipTargetsSet: Bool { warmIP != 0 || minimumIP != 0 }
}

/// What the instance type allows (`DescribeInstanceTypes`), after the reference's adjustments.
public struct ENILimits: Hashable, Sendable {
    /// Network interfaces the instance takes (`MaximumNetworkInterfaces`), `MAX_ENI` applied.
    public var maxENIs: Int
    /// Private IPv4 addresses per interface (`Ipv4AddressesPerInterface`), the ENI's own included.
    public var addressesPerENI: Int

    public init(maxENIs: Int, addressesPerENI: Int) { self.maxENIs = maxENIs; self.addressesPerENI = addressesPerENI }

    /// Secondary addresses (or /28 prefixes) one ENI can hold: its primary address is never a pod's.
    public var slotsPerENI: Int { max(addressesPerENI - 1, 0) }

    /// Pod addresses one ENI can hold: a slot is an address, or 16 with prefix delegation.
    public func podAddressesPerENI(prefixDelegation: Bool) -> Int {
        slotsPerENI * (prefixDelegation ? Prefix.addresses : 1)
    }
}

public enum Prefix {
    /// A delegated IPv4 prefix is a /28.
    public static let length = 28
    public static let addresses = 16
}

/// The pool as counted now.
public struct PoolCounts: Hashable, Sendable {
    /// Addresses the pool holds for pods (delegated prefixes counted by their addresses).
    public var total: Int
    /// Held by a pod.
    public var assigned: Int
    /// Delegated prefixes, and those with no address assigned (prefix delegation only).
    public var prefixes: Int
    public var freePrefixes: Int

    public init(total: Int, assigned: Int, prefixes: Int = 0, freePrefixes: Int = 0) {
        self.total = total; self.assigned = assigned; self.prefixes = prefixes; self.freePrefixes = freePrefixes
    }

    /// Addresses cooling down count as available: they come back before a new ENI could.
    public var available: Int { total - assigned }
}

public enum PoolPlanner {
    /// Addresses missing against the IP targets (0 when they are not set or are met).
    public static func short(_ t: PoolTargets, _ c: PoolCounts) -> Int {
        max(t.warmIP - c.available, t.minimumIP - c.total, 0)
    }

    /// Addresses beyond the IP targets that may be returned (never below `MINIMUM_IP_TARGET`).
    public static func over(_ t: PoolTargets, _ c: PoolCounts) -> Int {
        max(min(max(c.available - t.warmIP, 0), c.total - t.minimumIP), 0)
    }

    /// Whether the pool should grow. `maxPods`: the node's pod capacity; a pool that can
    /// already address that many pods never grows.
    public static func tooLow(_ t: PoolTargets, _ c: PoolCounts, limits: ENILimits, maxPods: Int) -> Bool {
        if c.total >= maxPods { return false }
        if t.ipTargetsSet { return short(t, c) > 0 }
        let (per, warm) = t.prefixDelegation ? (Prefix.addresses, t.warmPrefix) : (limits.slotsPerENI, t.warmENI)
        return c.available < per * warm || (warm == 0 && c.available == 0)
    }

    /// Whether addresses (or prefixes) should be returned. With only `WARM_ENI_TARGET`, single
    /// addresses are never returned, only whole ENIs (`surplusENI`).
    public static func tooHigh(_ t: PoolTargets, _ c: PoolCounts) -> Bool {
        if t.ipTargetsSet { return over(t, c) > 0 }
        if t.prefixDelegation { return c.freePrefixes > t.warmPrefix }
        return false
    }

    /// How many secondary addresses (or prefixes) to ask EC2 for in one step of growing.
    public static func growth(_ t: PoolTargets, _ c: PoolCounts, limits: ENILimits) -> Int {
        if t.prefixDelegation {
            let wanted = t.ipTargetsSet ? (short(t, c) + Prefix.addresses - 1) / Prefix.addresses : t.warmPrefix - c.freePrefixes
            return min(max(wanted, 1), limits.slotsPerENI)
        }
        return t.ipTargetsSet ? min(short(t, c), limits.slotsPerENI) : limits.slotsPerENI
    }

    /// Whether a whole ENI's worth of addresses is free beyond `WARM_ENI_TARGET` (the mode
    /// without IP targets returns ENIs, not addresses).
    public static func surplusENI(_ t: PoolTargets, _ c: PoolCounts, limits: ENILimits) -> Bool {
        guard !t.ipTargetsSet else { return false }
        return c.available >= (t.warmENI + 1) * limits.podAddressesPerENI(prefixDelegation: t.prefixDelegation)
    }

    /// Whether another ENI may be attached: the instance's limit, less one slot held for the trunk
    /// while pod ENI is enabled and no trunk is attached yet.
    public static func roomForENI(attached: Int, limits: ENILimits, reserveTrunkSlot: Bool) -> Bool {
        attached < limits.maxENIs - (reserveTrunkSlot ? 1 : 0)
    }
}
