import Datapath
import EnforcingMode
import IPAMDPool
import Logging
import NetModel
import Netlink
import Synchronization

/// The node side of the pool's ENIs over netlink: a new ENI's link is awaited through link
/// notifications (no polling), then its table is applied with the plan applier (rollback on
/// failure) and its MTU set.
public final class NetlinkENIHost: ENIHost {
    private let client: Mutex<LibNLClient>
    private let sysctl: ProcSysctl
    private let logger: Logger

    public init(sysctl: ProcSysctl = ProcSysctl(), logger: Logger) throws(NetlinkError) {
        client = Mutex(try LibNLClient())
        self.sysctl = sysctl
        self.logger = logger
    }

    func link(mac: MACAddress) throws(NetlinkError) -> LinkInfo? {
        try client.withLock { (c) throws(NetlinkError) in try c.link(withMAC: mac) }
    }

    public func awaitLink(mac: MACAddress, until deadline: ContinuousClock.Instant) async throws -> String? {
        if let l = try link(mac: mac) { return l.name }
        guard ContinuousClock.now < deadline else { return nil }
        // Subscribed before looking again: a link that appears in between is reported.
        let stream = try await LinkEventStream(logger: logger)
        defer { stream.finish() }
        if let l = try link(mac: mac) { return l.name }
        return try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                for await _ in stream.events { if let l = try self.link(mac: mac) { return l.name } }
                return nil
            }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            let found = try await group.next() ?? nil
            group.cancelAll()
            stream.finish()
            return found
        }
    }

    public func configure(_ eni: SecondaryENI, mtu: UInt32) throws {
        guard let steps = ENITablePlanner.setup(eni) else { return }
        try client.withLock { (c) throws in
            guard let l = try c.link(named: eni.link) else { throw ENIHostError.linkGone(eni.link) }
            if l.mtu != mtu { try c.setMTU(index: l.index, mtu: mtu) }
            try PlanApplier(context: DatapathContext(host: c, pod: nil, podNamespaceFD: -1, sysctl: sysctl), logger: logger).setup(steps)
        }
        logger.info("ENI link set up", metadata: ["link": "\(eni.link)", "device_number": "\(eni.deviceNumber)", "mtu": "\(mtu)"])
    }

    public func unconfigure(_ eni: SecondaryENI) throws {
        let failures = client.withLock { c in
            PlanApplier(context: DatapathContext(host: c, pod: nil, podNamespaceFD: -1, sysctl: sysctl), logger: logger)
                .teardown(ENITablePlanner.teardown(eni))
        }
        if let first = failures.first { throw first }
    }
}

public enum ENIHostError: Error, Sendable, Equatable {
    /// The ENI's link went away between finding it and setting it up (detached meanwhile).
    case linkGone(String)
}
