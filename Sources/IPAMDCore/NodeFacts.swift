import NetModel
import Synchronization

/// What ipamd learned about the node that may change while it runs: the VPC's CIDRs (a CIDR
/// associated with the VPC later is read again from instance metadata). Every AddNetwork reply
/// carries the current set; the SNAT table is updated by the node reconciler.
public final class NodeFacts: Sendable {
    private let cidrs: Mutex<[IPPrefix]>

    public init(vpcCIDRs: [IPPrefix]) { cidrs = Mutex(vpcCIDRs) }

    public var vpcCIDRs: [IPPrefix] { cidrs.withLock { $0 } }

    /// Replaces the set; returns whether it changed.
    @discardableResult
    public func setVPCCIDRs(_ new: [IPPrefix]) -> Bool {
        cidrs.withLock { c in
            guard c != new else { return false }
            c = new
            return true
        }
    }
}
