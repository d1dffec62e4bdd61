import Netlink
import NetModel
import Synchronization

/// Finds the trunk's ifindex in the node namespace.
public protocol TrunkLocator: Sendable {
    func trunkIndex() throws(NetlinkError) -> Int32?
}

/// Looks the trunk up by name or MAC through netlink, caching the index and re-checking it
/// with one get-by-index request (a re-created trunk gets a new index).
public final class NetlinkTrunkLocator: TrunkLocator, @unchecked Sendable {
    // @unchecked: the client is used only under `lock`, so one thread at a time.
    private let client: any NetlinkClient
    private let spec: IPAMDConfig.TrunkSpec
    private let lock = Mutex<Int32?>(nil)

    public init(client: any NetlinkClient, spec: IPAMDConfig.TrunkSpec) {
        self.client = client
        self.spec = spec
    }

    public func trunkIndex() throws(NetlinkError) -> Int32? {
        try lock.withLock { (cached: inout Int32?) throws(NetlinkError) -> Int32? in
            if let idx = cached, let l = try client.link(index: idx), matches(l) { return idx }
            let found: LinkInfo?
            switch spec {
            case .name(let n): found = try client.link(named: n)
            case .mac(let m): found = try client.link(withMAC: m)
            }
            cached = found?.index
            return cached
        }
    }

    func matches(_ l: LinkInfo) -> Bool {
        switch spec {
        case .name(let n): l.name == n
        case .mac(let m): l.mac == m
        }
    }
}
