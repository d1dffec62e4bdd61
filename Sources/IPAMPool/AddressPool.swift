import NetModel

/// Who holds an address: the reference's checkpoint key (network name, container id, interface
/// name), with the pod's name for `/v1/enis` and the logs.
public struct AddressHolder: Hashable, Sendable, Codable {
    public var networkName: String
    public var containerID: String
    public var ifName: String
    public var namespace: String
    public var name: String

    public init(networkName: String, containerID: String, ifName: String, namespace: String = "", name: String = "") {
        self.networkName = networkName; self.containerID = containerID; self.ifName = ifName
        self.namespace = namespace; self.name = name
    }

    /// What identifies the sandbox's interface; the pod's name is only for people.
    public var key: Key { Key(networkName: networkName, containerID: containerID, ifName: ifName) }

    public struct Key: Hashable, Sendable {
        public var networkName: String
        public var containerID: String
        public var ifName: String
        public init(networkName: String, containerID: String, ifName: String) {
            self.networkName = networkName; self.containerID = containerID; self.ifName = ifName
        }
    }
}

/// One of the node's ENIs as the pool uses it (never the trunk, never an EFA-only interface).
public struct PoolENI: Hashable, Sendable {
    public var id: String
    public var deviceNumber: Int
    public var primaryIP: IPv4Address
    public var subnet: IPPrefix
    /// When ipamd attached it (or found it at start): an ENI is not freed in its first minute.
    public var since: ContinuousClock.Instant

    public init(id: String, deviceNumber: Int, primaryIP: IPv4Address, subnet: IPPrefix, since: ContinuousClock.Instant) {
        self.id = id; self.deviceNumber = deviceNumber; self.primaryIP = primaryIP; self.subnet = subnet; self.since = since
    }

    public var isPrimary: Bool { deviceNumber == 0 }
}

/// An address handed to a pod, with what its datapath needs to know about the ENI.
public struct AddressAssignment: Hashable, Sendable {
    public var address: IPv4Address
    public var eniID: String
    public var deviceNumber: Int
    public var holder: AddressHolder
}

/// The state of one address.
public enum SlotState: Hashable, Sendable {
    case free
    case assigned(AddressHolder)
    /// Released; the VPC may still route it to the old pod's host until `until` passes.
    case coolingDown(until: ContinuousClock.Instant)
}

/// The regular pods' addresses on the node's ENIs, as pure state: assignment and release in
/// constant time (no EC2 call; ENIs are few), cool-down, the counts the planner sizes the pool
/// by, and what may be handed back to EC2. The pool manager feeds it EC2's and the kernel's
/// facts and the clock; nothing here does I/O.
public struct AddressPool: Sendable {
    struct Slot: Hashable, Sendable {
        var eniID: String
        /// The /28 it came from under prefix delegation.
        var prefix: IPPrefix?
        var state: SlotState
    }

    public private(set) var enis: [String: PoolENI] = [:]
    var slots: [IPv4Address: Slot] = [:]
    /// Free addresses per ENI, taken from the end.
    var free: [String: [IPv4Address]] = [:]
    var holders: [AddressHolder.Key: IPv4Address] = [:]
    /// Released addresses in release order: one cool-down for all, so the oldest is first.
    var cooling: [(address: IPv4Address, until: ContinuousClock.Instant)] = []
    public let cooldown: Duration

    public init(cooldown: Duration = .seconds(30)) { self.cooldown = cooldown }

    // MARK: ENIs and their addresses

    /// Adds an ENI (or updates its facts); its addresses come with `add(_:to:)`.
    public mutating func addENI(_ eni: PoolENI) {
        enis[eni.id] = eni
        if free[eni.id] == nil { free[eni.id] = [] }
    }

    /// Secondary addresses EC2 assigned to `eniID`; addresses the pool has already are left as
    /// they are. `coolUntil`: held back until then (after a restart, an address the checkpoint no
    /// longer lists may have been a pod's moments ago).
    public mutating func add(_ addresses: [IPv4Address], to eniID: String, prefix: IPPrefix? = nil, coolUntil: ContinuousClock.Instant? = nil) {
        guard let eni = enis[eniID] else { return }
        for a in addresses where slots[a] == nil && a != eni.primaryIP {
            if let coolUntil {
                slots[a] = Slot(eniID: eniID, prefix: prefix, state: .coolingDown(until: coolUntil))
                cooling.append((a, coolUntil))
            } else {
                slots[a] = Slot(eniID: eniID, prefix: prefix, state: .free)
                free[eniID, default: []].append(a)
            }
        }
        if coolUntil != nil { cooling.sort { $0.until < $1.until } }
    }

    /// A delegated /28: its 16 addresses.
    public mutating func add(prefix: IPPrefix, to eniID: String, coolUntil: ContinuousClock.Instant? = nil) {
        add(Self.addresses(of: prefix), to: eniID, prefix: prefix, coolUntil: coolUntil)
    }

    public static func addresses(of prefix: IPPrefix) -> [IPv4Address] {
        guard case .v4(let base) = prefix.network.address else { return [] }
        let count = UInt32(1) << UInt32(32 - Int(prefix.length))
        return (0..<count).map { IPv4Address(base.value + $0) }
    }

    /// Drops addresses (EC2 took them back, or they were handed back); only free or cooling
    /// ones are dropped: an address a pod holds stays until the pod is gone. Returns those dropped.
    @discardableResult
    public mutating func remove(_ addresses: [IPv4Address]) -> [IPv4Address] {
        var dropped: [IPv4Address] = []
        for a in addresses {
            guard let slot = slots[a] else { continue }
            if case .assigned = slot.state { continue }
            slots[a] = nil
            free[slot.eniID]?.removeAll { $0 == a }
            cooling.removeAll { $0.address == a }
            dropped.append(a)
        }
        return dropped
    }

    /// Drops an ENI and its addresses; refused (false) while a pod holds one of them.
    public mutating func removeENI(_ id: String) -> Bool {
        let mine = slots.filter { $0.value.eniID == id }
        if mine.values.contains(where: { if case .assigned = $0.state { true } else { false } }) { return false }
        remove(Array(mine.keys))
        enis[id] = nil
        free[id] = nil
        return true
    }

    // MARK: pods

    /// The address for a sandbox's interface: the one it already holds (a repeated ADD), else a
    /// free one from the ENI with the lowest device number (so later ENIs drain and can go back).
    /// nil: nothing free now (cooling addresses come back after their cool-down).
    public mutating func assign(_ holder: AddressHolder, now: ContinuousClock.Instant) -> AddressAssignment? {
        if let held = holders[holder.key], let slot = slots[held] { return assignment(held, slot, holder) }
        expireCooldowns(now: now)
        for eni in enis.values.sorted(by: { $0.deviceNumber < $1.deviceNumber }) {
            guard let a = free[eni.id]?.popLast(), var slot = slots[a] else { continue }
            slot.state = .assigned(holder)
            slots[a] = slot
            holders[holder.key] = a
            return assignment(a, slot, holder)
        }
        return nil
    }

    /// Records an assignment found in the checkpoint; false when the address is not in the pool
    /// (no longer on its ENI) or another holder has it.
    public mutating func restore(_ holder: AddressHolder, address: IPv4Address) -> Bool {
        guard var slot = slots[address] else { return false }
        switch slot.state {
        case .assigned(let h): return h.key == holder.key
        case .free: free[slot.eniID]?.removeAll { $0 == address }
        case .coolingDown: cooling.removeAll { $0.address == address }
        }
        slot.state = .assigned(holder)
        slots[address] = slot
        holders[holder.key] = address
        return true
    }

    /// Releases the sandbox's address into cool-down; nil when it holds none (DEL is idempotent).
    public mutating func release(_ key: AddressHolder.Key, now: ContinuousClock.Instant) -> AddressAssignment? {
        guard let a = holders.removeValue(forKey: key), var slot = slots[a], case .assigned(let holder) = slot.state else { return nil }
        let until = now + cooldown
        slot.state = .coolingDown(until: until)
        slots[a] = slot
        cooling.append((a, until))
        return assignment(a, slot, holder)
    }

    public func holding(_ key: AddressHolder.Key) -> AddressAssignment? {
        guard let a = holders[key], let slot = slots[a], case .assigned(let h) = slot.state else { return nil }
        return assignment(a, slot, h)
    }

    /// When the next cooling address becomes free (nil: none is cooling).
    public var nextCoolingExpiry: ContinuousClock.Instant? { cooling.first?.until }

    /// Cooled addresses become free.
    public mutating func expireCooldowns(now: ContinuousClock.Instant) {
        var n = 0
        while n < cooling.count, cooling[n].until <= now {
            let a = cooling[n].address
            if var slot = slots[a], case .coolingDown = slot.state {
                slot.state = .free
                slots[a] = slot
                free[slot.eniID, default: []].append(a)
            }
            n += 1
        }
        if n > 0 { cooling.removeFirst(n) }
    }

    func assignment(_ a: IPv4Address, _ slot: Slot, _ holder: AddressHolder) -> AddressAssignment {
        AddressAssignment(address: a, eniID: slot.eniID, deviceNumber: enis[slot.eniID]?.deviceNumber ?? 0, holder: holder)
    }

    // MARK: what the planner and the introspection read

    public var counts: PoolCounts {
        var c = PoolCounts(total: slots.count, assigned: holders.count)
        var prefixes: [IPPrefix: Bool] = [:]  // prefix → has an address not free
        for slot in slots.values {
            guard let p = slot.prefix else { continue }
            let busy: Bool = if case .free = slot.state { false } else { true }
            prefixes[p] = (prefixes[p] ?? false) || busy
        }
        c.prefixes = prefixes.count
        c.freePrefixes = prefixes.values.filter { !$0 }.count
        return c
    }

    public func state(of address: IPv4Address) -> SlotState? { slots[address]?.state }

    /// Each ENI's addresses with their state, by device number then address.
    public var layout: [(eni: PoolENI, addresses: [(address: IPv4Address, state: SlotState)])] {
        enis.values.sorted { $0.deviceNumber < $1.deviceNumber }.map { eni in
            (eni, slots.filter { $0.value.eniID == eni.id }.map { ($0.key, $0.value.state) }.sorted { $0.address.value < $1.address.value })
        }
    }

    /// The ENI's address slots in use: one per secondary address, one per delegated prefix.
    public func slotsUsed(on eniID: String) -> Int {
        var singles = 0
        var prefixes = Set<IPPrefix>()
        for slot in slots.values where slot.eniID == eniID {
            if let p = slot.prefix { prefixes.insert(p) } else { singles += 1 }
        }
        return singles + prefixes.count
    }

    public func assigned(on eniID: String) -> Int {
        slots.values.filter { if $0.eniID == eniID, case .assigned = $0.state { true } else { false } }.count
    }

    /// Up to `count` free addresses (not cooling) to hand back to EC2, from the ENI with the highest
    /// device number first; grouped per ENI, since one Unassign call takes one ENI's addresses.
    public func surplus(_ count: Int) -> [String: [IPv4Address]] {
        var left = count
        var out: [String: [IPv4Address]] = [:]
        for eni in enis.values.sorted(by: { $0.deviceNumber > $1.deviceNumber }) where left > 0 {
            let take = (free[eni.id] ?? []).filter { slots[$0]?.prefix == nil }.prefix(left)
            if !take.isEmpty { out[eni.id] = Array(take) }
            left -= take.count
        }
        return out
    }

    /// Prefixes none of whose addresses is held or cooling, up to `count`, last ENI first.
    public func surplusPrefixes(_ count: Int) -> [String: [IPPrefix]] {
        var busy: Set<IPPrefix> = [], all: [IPPrefix: String] = [:]
        for slot in slots.values {
            guard let p = slot.prefix else { continue }
            all[p] = slot.eniID
            if case .free = slot.state {} else { busy.insert(p) }
        }
        var out: [String: [IPPrefix]] = [:]
        var left = count
        for eni in enis.values.sorted(by: { $0.deviceNumber > $1.deviceNumber }) where left > 0 {
            let take = all.filter { $0.value == eni.id && !busy.contains($0.key) }.map(\.key).sorted { $0.description < $1.description }.prefix(left)
            if !take.isEmpty { out[eni.id] = Array(take) }
            left -= take.count
        }
        return out
    }

    /// An ENI that may be detached and deleted: not the primary, no address held or cooling,
    /// attached for at least `minimumLife`. The highest device number first.
    public func removableENI(now: ContinuousClock.Instant, minimumLife: Duration = .seconds(60)) -> PoolENI? {
        enis.values.sorted { $0.deviceNumber > $1.deviceNumber }.first { eni in
            !eni.isPrimary && now - eni.since >= minimumLife
                && !slots.values.contains { s in
                    if s.eniID == eni.id, case .free = s.state { false } else { s.eniID == eni.id }
                }
        }
    }
}

/// Why an ADD got no address.
public enum PoolShortage: Error, Sendable, Equatable, CustomStringConvertible {
    /// Every ENI the instance type allows is attached and full.
    case full(enis: Int, addresses: Int)
    /// Still refilling when the bound passed (EC2 slow, throttled, or failing).
    case refilling(lastError: String?)
    case shuttingDown

    public var description: String {
        switch self {
        case let .full(enis, addresses):
            "the node's ENIs are full (\(enis) ENIs, \(addresses) pod addresses, all held or cooling down); the instance type allows no more pods"
        case .refilling(let e): "no free address yet; the pool is being refilled" + (e.map { " (last EC2 error: \($0))" } ?? "")
        case .shuttingDown: "ipamd is shutting down"
        }
    }
}
