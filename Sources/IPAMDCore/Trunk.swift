#if canImport(Glibc)
import Glibc
#endif
import Netlink
import NetModel
import Synchronization

/// Finds the trunk's ifindex in the node namespace.
public protocol TrunkLocator: Sendable {
    func trunkIndex() throws(NetlinkError) -> Int32?
    /// While the trunk is not known yet (not attached to the instance: the VPC resource
    /// controller attaches it minutes after ipamd signals the feature), waits for it to arrive,
    /// for ipamd to stop, or for `deadline`.
    func awaitTrunk(until deadline: ContinuousClock.Instant) async -> WaitOutcome
    /// The trunk is not known yet: discovery is waiting for it to be attached.
    var awaitingAttachment: Bool { get }
    /// ipamd is stopping: waits end at once.
    func shutdown()
}

extension TrunkLocator {
    public func awaitTrunk(until deadline: ContinuousClock.Instant) async -> WaitOutcome { .ready }
    public var awaitingAttachment: Bool { false }
    public func shutdown() {}
}

/// Looks the trunk up by name or MAC through netlink, caching the index. A cached index is
/// trusted for `recheckInterval` seconds, then re-checked with one get-by-index request (a
/// re-created trunk gets a new index). Re-checking on every request serialised all AddNetworks
/// on one netlink socket, which under 16 concurrent clients was a third of ipamd's time.
public final class NetlinkTrunkLocator: TrunkLocator, @unchecked Sendable {
    // @unchecked: the client is used only under `lock`, so one thread at a time.
    private let client: any NetlinkClient
    /// nil until discovery names the trunk (TRUNK_INTERFACE, or EC2's InterfaceType trunk).
    private let specState: Mutex<IPAMDConfig.TrunkSpec?>
    /// Wakes the AddNetworks waiting for a trunk that is not attached yet.
    private let arrival = ChangeSignal()
    private let recheckNanos: UInt64
    private let lock = Mutex<Int32?>(nil)
    /// The last index netlink confirmed, and when (CLOCK_MONOTONIC nanoseconds).
    private let confirmed = Mutex<(index: Int32, at: UInt64)?>(nil)

    public init(client: any NetlinkClient, spec: IPAMDConfig.TrunkSpec?, recheckInterval: Double = 1) {
        self.client = client
        specState = Mutex(spec)
        recheckNanos = UInt64(max(recheckInterval, 0) * 1e9)
    }

    public var spec: IPAMDConfig.TrunkSpec? { specState.withLock { $0 } }

    public var awaitingAttachment: Bool { spec == nil }

    /// Discovery found the trunk: AddNetworks waiting for it go on.
    public func trunkArrived(_ spec: IPAMDConfig.TrunkSpec) {
        specState.withLock { $0 = spec }
        arrival.broadcast()
    }

    /// ipamd is stopping: waiting AddNetworks answer at once.
    public func shutdown() { arrival.close() }

    /// AddNetworks waiting for the trunk right now (tests).
    public var waiters: Int { arrival.waiterCount }

    public func awaitTrunk(until deadline: ContinuousClock.Instant) async -> WaitOutcome {
        await arrival.wait(until: deadline) { spec != nil }
    }

    public func trunkIndex() throws(NetlinkError) -> Int32? {
        guard let spec else { return nil }
        let now = Self.monotonicNanos()
        if let c = confirmed.withLock({ $0 }), now &- c.at < recheckNanos { return c.index }
        let index = try lock.withLock { (cached: inout Int32?) throws(NetlinkError) -> Int32? in
            if let idx = cached, let l = try client.link(index: idx), matches(l, spec) { return idx }
            let found: LinkInfo?
            switch spec {
            case .name(let n): found = try client.link(named: n)
            case .mac(let m): found = try client.link(withMAC: m)
            }
            cached = found?.index
            return cached
        }
        confirmed.withLock { $0 = index.map { ($0, now) } }
        return index
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    func matches(_ l: LinkInfo, _ spec: IPAMDConfig.TrunkSpec) -> Bool {
        switch spec {
        case .name(let n): l.name == n
        case .mac(let m): l.mac == m
        }
    }
}
