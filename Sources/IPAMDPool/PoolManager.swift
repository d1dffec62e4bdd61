import AWSCloud
import EnforcingMode
import IPAMDCore
import IPAMDMetrics
import IPAMDProtocol
import IPAMPool
import Logging
import NetModel

/// The node side of a secondary ENI: its link, once the kernel shows it, and its route table
/// (SPEC section 3a). A protocol so the pool's logic tests need neither netlink nor root.
public protocol ENIHost: Sendable {
    /// The link with `mac`, waiting for the kernel to show it until `deadline` (nil: not by then).
    func awaitLink(mac: MACAddress, until deadline: ContinuousClock.Instant) async throws -> String?
    /// MTU, up, rp_filter, its address, table d+1 and rule 32765 (idempotent).
    func configure(_ eni: SecondaryENI, mtu: UInt32) throws
    /// Removes the rule and table routes `configure` made (before the ENI is detached).
    func unconfigure(_ eni: SecondaryENI) throws
}

/// What the pool manager is configured with (the reference's variables, SPEC section 3a).
public struct PoolSettings: Sendable {
    public var targets: PoolTargets
    /// `MAX_ENI`: nil leaves the instance type's limit.
    public var maxENI: Int?
    /// Pod ENI on and no trunk attached: one interface slot stays free for the trunk.
    public var reserveTrunkSlot: Bool
    public var instanceID: String
    public var instanceType: String
    /// New ENIs go into the primary ENI's subnet with its security groups.
    public var primaryENIID: String
    public var subnetID: String
    public var subnet: IPPrefix
    public var securityGroupIDs: [String]
    public var clusterName: String?
    public var mtu: UInt32 = 9001
    public var cooldown: Duration = .seconds(30)
    /// How often the pool is sized.
    public var tick: Duration = .seconds(5)
    /// Addresses and ENIs go back to EC2 at most this often.
    public var decreaseInterval: Duration = .seconds(30)
    /// An ENI is not freed in its first minute.
    public var eniMinimumLife: Duration = .seconds(60)
    /// How long a new ENI may take to show up as a link.
    public var attachWait: Duration = .seconds(60)

    public init(targets: PoolTargets, maxENI: Int? = nil, reserveTrunkSlot: Bool, instanceID: String, instanceType: String,
                primaryENIID: String, subnetID: String, subnet: IPPrefix, securityGroupIDs: [String], clusterName: String? = nil) {
        self.targets = targets; self.maxENI = maxENI; self.reserveTrunkSlot = reserveTrunkSlot; self.instanceID = instanceID
        self.instanceType = instanceType; self.primaryENIID = primaryENIID; self.subnetID = subnetID; self.subnet = subnet
        self.securityGroupIDs = securityGroupIDs; self.clusterName = clusterName
    }
}

/// The regular pods' warm pool (SPEC section 3a): sizes the pool on a 5 s tick by the reference's
/// targets, grows it through EC2 (addresses on an ENI with room, else a new ENI), hands back
/// surplus after the cool-down, and answers ADD and DEL from memory. ADD never calls EC2: an
/// empty pool wakes the sizing loop and the ADD waits for it within its bound.
public actor PoolManager: AddressPoolService {
    public let settings: PoolSettings
    let ec2: any EC2PoolAPI
    let host: any ENIHost
    let logger: Logger
    let metrics: IPAMDMetrics
    /// What `/v1/enis` shows, published after every change.
    public nonisolated let board: PoolSnapshotBoard
    public private(set) var pool: AddressPool
    public private(set) var limits = ENILimits(maxENIs: 1, addressesPerENI: 1)
    /// Changes of the pool (waiting ADDs look again).
    let changed = ChangeSignal()
    /// Wakes the sizing loop early (an ADD found nothing free).
    let wake = ChangeSignal()
    var lastDecrease: ContinuousClock.Instant
    var lastError: String?
    var closed = false
    /// ENIs removed from the pool whose detach or delete has not gone through yet.
    var leaving: [String: String?] = [:]  // ENI id → attachment id (nil once detached)
    /// ENI MACs by id, for `/v1/enis`.
    public private(set) var macs: [String: MACAddress] = [:]

    public init(settings: PoolSettings, ec2: any EC2PoolAPI, host: any ENIHost, metrics: IPAMDMetrics = .system,
                board: PoolSnapshotBoard = PoolSnapshotBoard(), logger: Logger) {
        self.settings = settings; self.ec2 = ec2; self.host = host; self.logger = logger; self.metrics = metrics; self.board = board
        pool = AddressPool(cooldown: settings.cooldown)
        lastDecrease = .now
    }

    /// Attached ENIs the pool does not use (the trunk, EFA, `no_manage`): they hold interface
    /// slots of the instance all the same. Learnt at start and before each attach.
    var otherENIs = 0
    var trunkAttached = false
    /// A slot kept for the trunk: pod ENI on and the trunk not attached yet.
    var reserveTrunkSlot: Bool { settings.reserveTrunkSlot && !trunkAttached }

    /// The addresses the instance type allows for pods, on every ENI the pool may use.
    public var capacity: Int {
        max(limits.maxENIs - otherENIs - (reserveTrunkSlot ? 1 : 0), 1) * limits.podAddressesPerENI(prefixDelegation: settings.targets.prefixDelegation)
    }

    // MARK: start

    /// Takes the instance type's limits and the ENIs attached now (the trunk and other types
    /// left out), with their addresses; the checkpoint's holders get theirs back, every other
    /// address cools down first (it may have been a pod's moments before the restart). Returns
    /// the holders whose address is no longer on any ENI.
    public func start(attached: [NetworkInterfaceDescription], subnets: [MACAddress: IPPrefix], restored: [(AddressHolder, IPv4Address)],
                      now: ContinuousClock.Instant = .now) async throws(CloudError) -> [(AddressHolder, IPv4Address)] {
        let type = try await ec2.instanceTypeLimits(settings.instanceType)
        limits = ENILimits(maxENIs: min(type.maxENIs, settings.maxENI ?? type.maxENIs), addressesPerENI: type.ipv4PerENI)
        for eni in attached where Self.poolUses(eni) {
            guard let device = eni.deviceIndex, let primary = eni.primaryIPv4 else { continue }
            let subnet = subnets[eni.mac] ?? settings.subnet
            pool.addENI(PoolENI(id: eni.id, deviceNumber: device, primaryIP: primary, subnet: subnet, since: now))
            macs[eni.id] = eni.mac
            pool.add(eni.privateIPv4s, to: eni.id, coolUntil: now + settings.cooldown)
            for p in eni.ipv4Prefixes { pool.add(prefix: p, to: eni.id, coolUntil: now + settings.cooldown) }
            if device != 0 { await bringUp(eni, subnet: subnet, until: now + .seconds(5)) }
        }
        noteOthers(attached)
        var missing: [(AddressHolder, IPv4Address)] = []
        for (holder, address) in restored where !pool.restore(holder, address: address) { missing.append((holder, address)) }
        report()
        logger.info("address pool started", metadata: [
            "enis": "\(pool.enis.count)", "addresses": "\(pool.counts.total)", "restored": "\(restored.count - missing.count)",
            "max_enis": "\(limits.maxENIs)", "addresses_per_eni": "\(limits.addressesPerENI)", "capacity": "\(capacity)",
        ])
        changed.broadcast()
        return missing
    }

    /// Whether the pool takes addresses from an attached ENI: a plain interface not marked
    /// `no_manage`, as in the reference.
    static func poolUses(_ eni: NetworkInterfaceDescription) -> Bool {
        eni.interfaceType == "interface" && eni.tags["node.k8s.amazonaws.com/no_manage"] != "true"
    }

    /// `attached`: every ENI on the instance now.
    func noteOthers(_ attached: [NetworkInterfaceDescription]) {
        otherENIs = attached.filter { pool.enis[$0.id] == nil && leaving[$0.id] == nil }.count
        trunkAttached = attached.contains { $0.interfaceType == "trunk" }
    }

    func bringUp(_ eni: NetworkInterfaceDescription, subnet: IPPrefix, until deadline: ContinuousClock.Instant) async {
        guard let device = eni.deviceIndex, let primary = eni.primaryIPv4 else { return }
        do {
            guard let link = try await host.awaitLink(mac: eni.mac, until: deadline) else {
                logger.warning("ENI attached but no link with its MAC yet", metadata: ["eni": "\(eni.id)", "mac": "\(eni.mac)"])
                return
            }
            try host.configure(SecondaryENI(deviceNumber: device, link: link, primaryIP: .v4(primary), subnet: subnet), mtu: settings.mtu)
        } catch {
            logger.error("cannot set up the ENI's link", metadata: ["eni": "\(eni.id)", "error": "\(error)"])
        }
    }

    // MARK: pods

    /// An address for the sandbox's interface, waiting until `deadline` when none is free.
    public func assign(_ holder: AddressHolder, until deadline: ContinuousClock.Instant) async -> Result<AddressAssignment, PoolShortage> {
        while true {
            if closed { return .failure(.shuttingDown) }
            if let a = pool.assign(holder, now: .now) {
                changed.broadcast()
                report()
                // Below its target: the refill starts now, not at the next tick, so pods arriving
                // in a burst find addresses (with EC2 failing, the tick paces the retries).
                if lastError == nil, PoolPlanner.tooLow(settings.targets, pool.counts, limits: limits, maxPods: capacity) { wake.broadcast() }
                return .success(a)
            }
            if isFull { return .failure(.full(enis: pool.enis.count, addresses: pool.counts.total)) }
            if ContinuousClock.now >= deadline { return .failure(.refilling(lastError: lastError)) }
            wake.broadcast()
            // Returns at the next change of the pool, when a cooling address becomes free, or at
            // the deadline; the loop looks again.
            await changed.waitForNextChange(until: min(deadline, pool.nextCoolingExpiry ?? deadline))
        }
    }

    /// Every ENI the instance allows is attached and has all its addresses, and none is free
    /// or cooling: only a DEL makes room.
    var isFull: Bool {
        let c = pool.counts
        return c.total >= capacity && c.available == 0
    }

    public func release(_ key: AddressHolder.Key) -> AddressAssignment? {
        let released = pool.release(key, now: .now)
        if released != nil {
            changed.broadcast()
            report()
        }
        return released
    }

    public func holding(_ key: AddressHolder.Key) -> AddressAssignment? { pool.holding(key) }

    /// ipamd is stopping: waiting ADDs answer at once. The sizing loop ends with its own
    /// service (cancelled in its turn of the graceful shutdown), not here: a service that ends
    /// before its turn makes the service group cancel every other one.
    public func shutdown() {
        closed = true
        changed.close()
    }

    // MARK: sizing

    /// Sizes the pool every tick, or at once when an ADD found it empty, until cancelled.
    public func run() async {
        while !Task.isCancelled {
            // An ADD that wakes the loop while it is sizing must not wait for the next tick.
            let seen = wake.generation
            await reconcile()
            await wake.waitForChange(after: seen, until: .now + settings.tick)
        }
    }

    /// One step: grow, or hand back surplus addresses or a surplus ENI, or finish leaving ENIs.
    public func reconcile(now: ContinuousClock.Instant = .now) async {
        pool.expireCooldowns(now: now)
        let t = settings.targets
        let counts = pool.counts
        do throws(CloudError) {
            try await finishLeaving()
            if PoolPlanner.tooLow(t, counts, limits: limits, maxPods: capacity) {
                try await grow(PoolPlanner.growth(t, counts, limits: limits), now: now)
            } else if now - lastDecrease >= settings.decreaseInterval {
                if PoolPlanner.tooHigh(t, counts) {
                    try await shrink(PoolPlanner.over(t, counts), now: now)
                } else if PoolPlanner.surplusENI(t, counts, limits: limits), let eni = pool.removableENI(now: now, minimumLife: settings.eniMinimumLife) {
                    try await free(eni, now: now)
                }
            }
            lastError = nil
        } catch {
            // Throttling, 5xx, limits: the next tick tries again; ADDs keep taking what is free.
            lastError = error.description
            logger.warning("address pool: EC2 call failed; trying again next tick", metadata: ["error": "\(error)"])
        }
        changed.broadcast()
        report()
    }

    /// The pool's gauges and `/v1/enis` view, after every change that matters to them.
    func report() {
        board.publish(pool.layout.map { eni, addresses in
            PoolENISnapshot(id: eni.id, mac: macs[eni.id], deviceNumber: eni.deviceNumber, subnet: eni.subnet, addresses: addresses.map { a, state in
                switch state {
                case .free: PoolENISnapshot.Address(address: a, holder: nil, coolingDown: false)
                case .assigned(let h): PoolENISnapshot.Address(address: a, holder: h, coolingDown: false)
                case .coolingDown: PoolENISnapshot.Address(address: a, holder: nil, coolingDown: true)
                }
            })
        })
        let c = pool.counts
        metrics.pool(total: c.total, assigned: c.assigned, enis: pool.enis.count, maxENIs: limits.maxENIs, maxIPs: capacity,
                     perENI: Dictionary(uniqueKeysWithValues: pool.enis.keys.map { ($0, pool.assigned(on: $0)) }))
    }

    /// Adds `count` slots (addresses, or /28 prefixes with prefix delegation): on an ENI with
    /// room (lowest device number first), else on a new ENI.
    func grow(_ count: Int, now: ContinuousClock.Instant) async throws(CloudError) {
        guard count > 0 else { return }
        let slots = limits.slotsPerENI
        for eni in pool.enis.values.sorted(by: { $0.deviceNumber < $1.deviceNumber }) {
            let room = slots - pool.slotsUsed(on: eni.id)
            guard room > 0 else { continue }
            try await fill(eni.id, slots: min(count, room))
            logger.info("address pool grew", metadata: ["eni": "\(eni.id)", "slots": "\(min(count, room))", "total": "\(pool.counts.total)"])
            return
        }
        let attached = pool.enis.count + leaving.count + otherENIs
        guard PoolPlanner.roomForENI(attached: attached, limits: limits, reserveTrunkSlot: reserveTrunkSlot) else { return }
        try await attachENI(addresses: min(count, slots), now: now)
    }

    func attachENI(addresses: Int, now: ContinuousClock.Instant) async throws(CloudError) {
        // EC2's view of the instance, as the reference asks before each attach: the trunk (which
        // the resource controller may attach at any time), EFA and other owners' ENIs hold device
        // indexes and count toward the instance's limit too.
        let onInstance = try await ec2.describeInstanceNetworkInterfaces(instanceID: settings.instanceID)
        noteOthers(onInstance)
        guard PoolPlanner.roomForENI(attached: onInstance.count, limits: limits, reserveTrunkSlot: reserveTrunkSlot) else {
            logger.debug("no room for another ENI", metadata: ["attached": "\(onInstance.count)", "max_enis": "\(limits.maxENIs)"])
            return
        }
        let used = Set(onInstance.compactMap(\.deviceIndex)).union(pool.enis.values.map(\.deviceNumber))
        guard let device = (1..<max(limits.maxENIs, 2)).first(where: { !used.contains($0) }) else { return }
        var tags = ["node.k8s.amazonaws.com/instance_id": settings.instanceID,
                    "node.k8s.amazonaws.com/createdAt": Timestamp.rfc3339Now(fractionDigits: 0)]
        if let cluster = settings.clusterName {
            tags["cluster.k8s.amazonaws.com/name"] = cluster
            tags["eks:eni:owner"] = "amazon-vpc-cni"
        }
        let eni = try await ec2.createNetworkInterface(ENIRequest(subnetID: settings.subnetID, securityGroupIDs: settings.securityGroupIDs.sorted(),
                                                                  description: "aws-K8S-\(settings.instanceID)", tags: tags))
        let attachment: String
        do throws(CloudError) {
            attachment = try await ec2.attachNetworkInterface(id: eni.id, instanceID: settings.instanceID, deviceIndex: device)
        } catch {
            // Not attached: it must not stay behind as an orphan in the subnet.
            try? await ec2.deleteNetworkInterface(id: eni.id)
            throw error
        }
        try await ec2.setDeleteOnTermination(id: eni.id, attachmentID: attachment)
        guard let primary = eni.primaryIPv4 else { throw .malformed(url: "", reason: "\(eni.id) has no private address") }
        pool.addENI(PoolENI(id: eni.id, deviceNumber: device, primaryIP: primary, subnet: settings.subnet, since: now))
        macs[eni.id] = eni.mac
        logger.info("attached an ENI", metadata: ["eni": "\(eni.id)", "device_index": "\(device)", "mac": "\(eni.mac)"])
        var described = eni
        described.deviceIndex = device
        await bringUp(described, subnet: settings.subnet, until: .now + settings.attachWait)
        if addresses > 0 { try await fill(eni.id, slots: addresses) }
    }

    /// Asks EC2 for `slots` more secondary addresses, or /28 prefixes with prefix delegation.
    func fill(_ eniID: String, slots: Int) async throws(CloudError) {
        if settings.targets.prefixDelegation {
            for p in try await ec2.assignIPv4Prefixes(id: eniID, count: slots) { pool.add(prefix: p, to: eniID) }
        } else {
            pool.add(try await ec2.assignPrivateIPv4(id: eniID, count: slots), to: eniID)
        }
    }

    /// Hands `count` free addresses back (never one still cooling down, never one a pod holds);
    /// with prefix delegation, whole prefixes none of whose addresses is held or cooling.
    func shrink(_ count: Int, now: ContinuousClock.Instant) async throws(CloudError) {
        if settings.targets.prefixDelegation {
            let t = settings.targets, c = pool.counts
            let prefixes = t.ipTargetsSet ? count / Prefix.addresses : c.freePrefixes - t.warmPrefix
            for (eniID, list) in pool.surplusPrefixes(prefixes) {
                for p in list { pool.remove(AddressPool.addresses(of: p)) }
                do throws(CloudError) { try await ec2.unassignIPv4Prefixes(id: eniID, list) } catch {
                    for p in list { pool.add(prefix: p, to: eniID) }
                    throw error
                }
                logger.info("address pool shrank", metadata: ["eni": "\(eniID)", "prefixes_returned": "\(list.count)", "total": "\(pool.counts.total)"])
            }
            lastDecrease = now
            return
        }
        for (eniID, addresses) in pool.surplus(count) {
            // Out of the pool first, so no ADD takes one while EC2 is asked.
            let taken = pool.remove(addresses)
            do throws(CloudError) { try await ec2.unassignPrivateIPv4(id: eniID, taken) } catch {
                pool.add(taken, to: eniID)
                throw error
            }
            logger.info("address pool shrank", metadata: ["eni": "\(eniID)", "returned": "\(taken.count)", "total": "\(pool.counts.total)"])
        }
        lastDecrease = now
    }

    /// Detaches and deletes an ENI nobody uses (its link's table first).
    func free(_ eni: PoolENI, now: ContinuousClock.Instant) async throws(CloudError) {
        guard pool.removeENI(eni.id) else { return }
        lastDecrease = now
        let described = try await ec2.networkInterfaces(ids: [eni.id]).first
        if let mac = described?.mac {
            // The link goes with the detach; its rule and table would not.
            if let link = try? await host.awaitLink(mac: mac, until: .now) {
                try? host.unconfigure(SecondaryENI(deviceNumber: eni.deviceNumber, link: link, primaryIP: .v4(eni.primaryIP), subnet: eni.subnet))
            }
        }
        macs[eni.id] = nil
        leaving[eni.id] = described?.attachmentID
        logger.info("freeing a surplus ENI", metadata: ["eni": "\(eni.id)", "device_index": "\(eni.deviceNumber)"])
        try await finishLeaving()
    }

    /// Detach, then delete (EC2 refuses the delete until the detach has finished: next tick).
    func finishLeaving() async throws(CloudError) {
        for (id, attachment) in leaving {
            if let attachment {
                try await ec2.detachNetworkInterface(attachmentID: attachment)
                leaving[id] = .some(nil)
            }
            try await ec2.deleteNetworkInterface(id: id)
            leaving[id] = nil
        }
    }
}
