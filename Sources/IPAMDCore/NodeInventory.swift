import NetModel
import Synchronization

/// One of the instance's ENIs as ipamd knows it (for `/v1/enis`).
public struct ENIRecord: Sendable, Hashable {
    /// The EC2 id; empty when only an override named the link (no cloud call was made).
    public var id: String
    public var mac: MACAddress?
    /// The local link, when known.
    public var linkName: String?
    public var deviceNumber: Int
    public var networkCard: Int
    public var isPrimary: Bool
    public var isTrunk: Bool
    public var subnetID: String
    public var subnetCIDR: IPPrefix?

    public init(id: String, mac: MACAddress?, linkName: String? = nil, deviceNumber: Int, networkCard: Int = 0, isPrimary: Bool,
                isTrunk: Bool, subnetID: String = "", subnetCIDR: IPPrefix? = nil) {
        self.id = id; self.mac = mac; self.linkName = linkName; self.deviceNumber = deviceNumber; self.networkCard = networkCard
        self.isPrimary = isPrimary; self.isTrunk = isTrunk; self.subnetID = subnetID; self.subnetCIDR = subnetCIDR
    }
}

/// The node's ENIs as discovery found them, updated when a late trunk arrives; and whether ipamd
/// is ready (node setup done and the plugin installed: `/readyz`).
public final class NodeInventory: Sendable {
    private let state = Mutex<(enis: [ENIRecord], ready: Bool)>(([], false))

    public init(enis: [ENIRecord] = []) { state.withLock { $0.enis = enis } }

    public var enis: [ENIRecord] { state.withLock { $0.enis } }

    /// Adds the ENI, or replaces the one with its id or MAC.
    public func record(_ eni: ENIRecord) {
        state.withLock { s in
            s.enis.removeAll { ($0.id == eni.id && !eni.id.isEmpty) || ($0.mac != nil && $0.mac == eni.mac) }
            s.enis.append(eni)
            s.enis.sort { ($0.networkCard, $0.deviceNumber, $0.id) < ($1.networkCard, $1.deviceNumber, $1.id) }
        }
    }

    public var isReady: Bool { state.withLock { $0.ready } }
    public func markReady(_ ready: Bool = true) { state.withLock { $0.ready = ready } }
}
