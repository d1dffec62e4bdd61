import IPAMPool
import NetModel
import Synchronization

/// The regular pods' address pool as the RPC handler uses it (IPAMDPool's PoolManager in ipamd;
/// a protocol so the handler's tests need no EC2).
public protocol AddressPoolService: Sendable {
    /// An address for the sandbox's interface (the one it holds on a repeated ADD), waiting until
    /// `deadline` while the pool refills.
    func assign(_ holder: AddressHolder, until deadline: ContinuousClock.Instant) async -> Result<AddressAssignment, PoolShortage>
    /// Into the cool-down; nil when the sandbox holds none.
    func release(_ key: AddressHolder.Key) async -> AddressAssignment?
    /// Waiting ADDs answer "shutting down".
    func shutdown() async
}

/// The pool as `/v1/enis` shows it: every ENI with its addresses and who holds each. The pool
/// manager publishes it after every change, so the introspection endpoint reads it without
/// waiting for the pool.
public struct PoolENISnapshot: Sendable, Hashable {
    public struct Address: Sendable, Hashable {
        public var address: IPv4Address
        /// nil: free or cooling down.
        public var holder: AddressHolder?
        public var coolingDown: Bool
        public init(address: IPv4Address, holder: AddressHolder?, coolingDown: Bool) {
            self.address = address; self.holder = holder; self.coolingDown = coolingDown
        }
    }
    public var id: String
    public var mac: MACAddress?
    public var deviceNumber: Int
    public var subnet: IPPrefix
    public var addresses: [Address]

    public init(id: String, mac: MACAddress?, deviceNumber: Int, subnet: IPPrefix, addresses: [Address]) {
        self.id = id; self.mac = mac; self.deviceNumber = deviceNumber; self.subnet = subnet; self.addresses = addresses
    }
}

public final class PoolSnapshotBoard: Sendable {
    private let enis = Mutex<[PoolENISnapshot]>([])
    public init() {}
    public func publish(_ snapshot: [PoolENISnapshot]) { enis.withLock { $0 = snapshot } }
    public var current: [PoolENISnapshot] { enis.withLock { $0 } }
}

extension PodRegistry {
    /// The regular pods' addresses as the checkpoint records them: what a starting pool gives
    /// back to their holders.
    public var regularPodAddresses: [(AddressHolder, IPv4Address)] {
        all.filter { !$0.branch }.compactMap { p -> (AddressHolder, IPv4Address)? in
            guard let ip = p.ipv4.flatMap({ IPv4Address($0) }) else { return nil }
            return (AddressHolder(networkName: p.networkName ?? "", containerID: p.containerID, ifName: p.ifName, namespace: p.namespace, name: p.name), ip)
        }
    }
}
