import AWSCloud
import IPAMDCore
import IPAMDMetrics
import Logging
import NetModel
import NodeSetup

/// Reads the VPC's CIDRs from instance metadata every `interval`. A CIDR associated with the
/// VPC later (a secondary CIDR for more pods) must be exempt from SNAT, or pod traffic to it
/// would leave with the node's address and the node's security groups. A change replaces the
/// SNAT-exempt set in one transaction (pods are not touched) and then the set every AddNetwork
/// reply carries. A failed read keeps the set known (never an empty set: fail closed).
public struct VPCCIDRRefresher: Sendable {
    let metadata: any InstanceMetadataProvider
    let primaryMAC: MACAddress
    let facts: NodeFacts
    let apply: @Sendable ([IPPrefix]) throws(NodeSetupError) -> Void
    let metrics: IPAMDMetrics
    let logger: Logger

    public init(metadata: any InstanceMetadataProvider, primaryMAC: MACAddress, facts: NodeFacts,
                apply: @escaping @Sendable ([IPPrefix]) throws(NodeSetupError) -> Void, metrics: IPAMDMetrics = .system, logger: Logger) {
        self.metadata = metadata; self.primaryMAC = primaryMAC; self.facts = facts; self.apply = apply; self.logger = logger
        self.metrics = metrics
    }

    /// Until cancelled.
    public func run(every interval: Duration) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            await refreshOnce()
        }
    }

    /// One read; returns whether the set changed.
    @discardableResult
    public func refreshOnce() async -> Bool {
        metrics.reconciled(fn: "vpcCIDRs")
        let read: [IPPrefix]
        do { read = try await metadata.vpcCIDRs(mac: primaryMAC).map(\.network) } catch {
            metrics.error(fn: "vpcCIDRRefresh")
            logger.warning("cannot re-read the VPC CIDRs; keeping the known set", metadata: ["error": "\(error)"])
            return false
        }
        let current = facts.vpcCIDRs
        guard !read.isEmpty, Set(read) != Set(current) else { return false }
        do { try apply(read) } catch {
            metrics.error(fn: "vpcCIDRRefresh")
            logger.error("cannot update the SNAT-exempt set; keeping the known set", metadata: ["vpc_cidrs": "\(read.map(\.description))", "error": "\(error)"])
            return false
        }
        facts.setVPCCIDRs(read)
        logger.info("VPC CIDRs changed", metadata: ["before": "\(current.map(\.description))", "now": "\(read.map(\.description))"])
        return true
    }
}
