import CoreMetrics
import Synchronization

/// What ipamd records, through swift-metrics: components take one of these (tests pass one with
/// their own factory), the executable bootstraps the Prometheus one.
public struct IPAMDMetrics: Sendable {
    let factory: any MetricsFactory
    /// The RPC latency timers made so far, by method and result: every request records one, and
    /// the factory's lookup by label and dimensions cost more than the recording.
    private let rpcTimers = TimerCache()

    public init(factory: any MetricsFactory) { self.factory = factory }

    /// The process-wide factory (ipamd bootstraps Prometheus; no-op until then).
    public static var system: IPAMDMetrics { IPAMDMetrics(factory: MetricsSystem.factory) }

    func count(_ name: MetricName, _ dimensions: [(String, String)] = [], by n: Int = 1) {
        Counter(label: name.rawValue, dimensions: dimensions, factory: factory).increment(by: n)
    }

    // MARK: the reference's

    public func buildInfo(version: String, swiftVersion: String) {
        Gauge(label: MetricName.buildInfo.rawValue, dimensions: [("version", version), ("swiftversion", swiftVersion)], factory: factory).record(1)
    }

    public func error(fn: String) { count(.ipamdErrors, [("fn", fn)]) }
    public func reconciled(fn: String) { count(.reconciles, [("fn", fn)]) }
    public func podENIError(fn: String) { count(.podENIErrors, [("fn", fn)]) }

    /// Runs `body` counted in `awscni_ipamd_action_inprogress{fn}`.
    public func inProgress<T>(_ fn: String, _ body: () async throws -> T) async rethrows -> T {
        let meter = Meter(label: MetricName.actionsInProgress.rawValue, dimensions: [("fn", fn)], factory: factory)
        meter.increment()
        defer { meter.decrement() }
        return try await body()
    }

    /// One AWS request attempt (IMDS, EC2, STS): its latency, and the error if it failed.
    public func awsRequest(api: String, duration: Duration, status: Int?, errorCode: String?) {
        let failed = errorCode != nil
        Recorder(label: MetricName.awsAPILatency.rawValue,
                 dimensions: [("api", api), ("error", failed ? "true" : "false"), ("status", status.map(String.init) ?? "")],
                 aggregate: true, factory: factory).record(duration.milliseconds)
        if let errorCode { count(.awsAPIErrors, [("api", api), ("error", errorCode)]) }
    }

    public func ec2Request(action: String) { count(.ec2Requests, [("fn", action)]) }

    public func startupDuration(_ d: Duration) {
        Gauge(label: MetricName.startupDuration.rawValue, factory: factory).record(d.seconds)
    }

    // MARK: ours

    public func rpc(method: String, result: String, duration: Duration) {
        rpcTimers.timer(method, result) {
            Timer(label: MetricName.rpcLatency.rawValue, dimensions: [("method", method), ("result", result)], factory: factory)
        }.recordNanoseconds(duration.nanoseconds)
    }

    public func branchPods(_ n: Int) { Gauge(label: MetricName.branchPods.rawValue, factory: factory).record(n) }

    public func annotationWait(_ d: Duration, outcome: String) {
        Timer(label: MetricName.annotationWait.rawValue, dimensions: [("outcome", outcome)], factory: factory).recordNanoseconds(d.nanoseconds)
    }

    public func watchRestarted() { count(.watchRestarts) }
    public func watchRelisted() { count(.watchRelists) }
    public func nodeSetupRepaired() { count(.nodeSetupRepairs) }
    public func leakedObjectsRemoved(_ n: Int) { if n > 0 { count(.leakedObjectsRemoved, by: n) } }
    public func checkpointWritten(ok: Bool) { count(.checkpointWrites, [("result", ok ? "ok" : "error")]) }

    // MARK: the regular pods' pool (the reference's names)

    public func addIPRequest() { count(.addIPRequests) }
    public func delIPRequest(reason: String) { count(.delIPRequests, [("reason", reason)]) }
    public func noAvailableIP() { count(.noAvailableIPs) }

    /// The pool as it is now; `perENI`: addresses held per ENI id.
    public func pool(total: Int, assigned: Int, enis: Int, maxENIs: Int, maxIPs: Int, perENI: [String: Int]) {
        Gauge(label: MetricName.totalIPs.rawValue, factory: factory).record(total)
        Gauge(label: MetricName.assignedIPs.rawValue, factory: factory).record(assigned)
        Gauge(label: MetricName.enisAllocated.rawValue, factory: factory).record(enis)
        Gauge(label: MetricName.eniMax.rawValue, factory: factory).record(maxENIs)
        Gauge(label: MetricName.ipMax.rawValue, factory: factory).record(maxIPs)
        for (eni, n) in perENI { Gauge(label: MetricName.assignedPerENI.rawValue, dimensions: [("eni", eni)], factory: factory).record(n) }
    }
}

/// Timers by two dimension values, made once each.
final class TimerCache: Sendable {
    private struct Series: Hashable {
        let first: String
        let second: String
    }

    private let timers = Mutex<[Series: Timer]>([:])

    func timer(_ first: String, _ second: String, make: () -> Timer) -> Timer {
        timers.withLock { timers in
            let series = Series(first: first, second: second)
            if let known = timers[series] { return known }
            let made = make()
            timers[series] = made
            return made
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
