import Logging
import NetModel
import Synchronization

/// Re-checks the node setup every `interval` and applies it again when something drifted: a host
/// firewall reload (`nft flush ruleset`) or an admin deleting a rule must not leave standard-mode
/// pods without SNAT until ipamd restarts. `run` is one task of ipamd's service group.
/// @unchecked: `setup`'s netlink and nftables handles are not thread-safe; every use of them is
/// under `applying`, and `state` guards the rest.
public final class NodeReconciler: @unchecked Sendable {
    let setup: NodeSetup
    let interval: Duration
    let logger: Logger
    private let state: Mutex<(settings: NodeSettings, report: NodeSetupReport, repairs: Int)>
    /// Serialises the uses of `setup`'s handles (the loop's checks, CIDR updates from discovery).
    private let applying = Mutex(())

    public init(setup: NodeSetup, settings: NodeSettings, report: NodeSetupReport, interval: Duration, logger: Logger) {
        self.setup = setup; self.interval = interval; self.logger = logger
        state = Mutex((settings, report, 0))
    }

    /// How many times drift was found and repaired.
    public var repairs: Int { state.withLock { $0.repairs } }

    /// Checks once; repairs when needed. Returns what had drifted.
    @discardableResult
    public func checkOnce() -> [String] {
        applying.withLock { _ in check() }
    }

    public var settings: NodeSettings { state.withLock { $0.settings } }

    /// The VPC's CIDRs changed: only the SNAT-exempt set is replaced (one nft transaction), and
    /// later drift checks compare with the new set.
    public func updateVPCCIDRs(_ cidrs: [IPPrefix]) throws(NodeSetupError) {
        try applying.withLock { (_) throws(NodeSetupError) in
            let (settings, report) = state.withLock { s in
                s.settings.vpcCIDRs = cidrs
                return (s.settings, s.report)
            }
            let fresh = try setup.updateExemptSet(settings, report: report)
            state.withLock { $0.report = fresh }
        }
    }

    private func check() -> [String] {
        let (settings, report) = state.withLock { ($0.settings, $0.report) }
        let drift = setup.drift(settings, since: report)
        guard !drift.isEmpty else { return [] }
        logger.warning("node setup drifted; applying it again", metadata: ["drift": "\(drift)"])
        do {
            let fresh = try setup.apply(settings)
            state.withLock { $0.report = fresh; $0.repairs += 1 }
        } catch {
            logger.error("node setup repair failed; will retry", metadata: ["error": "\(error)"])
        }
        return drift
    }

    /// Checks every `interval` until cancelled (ipamd's shutdown). `checked` hears of each check:
    /// what had drifted and whether it was repaired (for metrics).
    public func run(checked: @Sendable (_ drift: [String], _ repaired: Bool) -> Void = { _, _ in }) async {
        while true {
            do { try await Task.sleep(for: interval) } catch { return }
            let before = repairs
            let drift = checkOnce()
            checked(drift, repairs > before)
        }
    }
}
