#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import NetModel
import Synchronization

/// Re-checks the node setup every `interval` and applies it again when something drifted: a host
/// firewall reload (`nft flush ruleset`) or an admin deleting a rule must not leave standard-mode
/// pods without SNAT until ipamd restarts. Runs on its own thread, the only user of `setup`'s
/// netlink and nftables handles after start (hence @unchecked: they are not thread-safe, and only
/// that thread touches them; `state` guards the rest).
public final class NodeReconciler: @unchecked Sendable {
    let setup: NodeSetup
    let interval: Duration
    let logger: Logger
    private let state: Mutex<(settings: NodeSettings, report: NodeSetupReport, stopped: Bool, repairs: Int)>
    /// Serialises the uses of `setup`'s handles (the loop's checks, CIDR updates from discovery).
    private let applying = Mutex(())
    /// Written to wake the thread for stop (no polling of a flag).
    private let wake: (read: Int32, write: Int32)

    public init(setup: NodeSetup, settings: NodeSettings, report: NodeSetupReport, interval: Duration, logger: Logger) {
        self.setup = setup; self.interval = interval; self.logger = logger
        state = Mutex((settings, report, false, 0))
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            // Not inherited by anything ipamd might exec.
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC); _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        }
        wake = (fds[0], fds[1])
    }

    deinit { close(wake.read); close(wake.write) }

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

    public func start() {
        let t = Thread { [self] in loop() }
        t.start()
    }

    public func stop() {
        state.withLock { $0.stopped = true }
        var b: UInt8 = 1
        _ = write(wake.write, &b, 1)
    }

    func loop() {
        let ms = Int32(clamping: interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000)
        while !state.withLock({ $0.stopped }) {
            var p = pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, ms) > 0 { continue }  // woken for stop: the loop condition ends it
            checkOnce()
        }
    }
}
