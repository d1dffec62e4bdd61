import Foundation
import IPAMDProtocol
import IPAMDMetrics
import Logging
import Synchronization

/// What the pod cache needs to know about one pod (from the Kubernetes watch).
public struct PodFacts: Sendable, Hashable {
    public var namespace: String
    public var name: String
    public var uid: String
    /// containers[0] has a resource limit whose key starts with `vpc.amazonaws.com/pod-eni`.
    public var branch: Bool
    /// The `vpc.amazonaws.com/pod-eni` annotation, as written.
    public var annotation: String?
    /// For a mirror pod (static pod), the `kubernetes.io/config.mirror` value: kubelet passes the
    /// static pod's UID, which is this, not the mirror's UID.
    public var mirrorOf: String?

    public init(namespace: String, name: String, uid: String, branch: Bool, annotation: String? = nil, mirrorOf: String? = nil) {
        self.namespace = namespace; self.name = name; self.uid = uid; self.branch = branch
        self.annotation = annotation; self.mirrorOf = mirrorOf
    }

    public var key: String { "\(namespace)/\(name)" }
}

/// The pods on this node as the watch last reported them, and a pod-ENI source that answers from
/// them without any API request. A branch pod whose annotation has not arrived makes AddNetwork
/// wait (up to `waitBound`) instead of failing at once: the watch delivers the annotation a few
/// hundred milliseconds after the controller writes it, and the waiting request is woken then.
/// State sits behind one lock; waits are async and end at a monotonic deadline (`ChangeSignal`).
public final class PodCache: PodENISource, Sendable {
    struct Entry {
        var facts: PodFacts
        /// Parsed annotation: .branch or .invalid; nil when there is none.
        var parsed: PodENILookup?
        var annotationArrivedAt: String?
    }
    struct State {
        var pods: [String: Entry] = [:]
        var synced = false
    }

    private let state = Mutex(State())
    private let changed = ChangeSignal()
    public let waitBound: Double
    let ipv4: Bool
    let ipv6: Bool
    let metrics: IPAMDMetrics
    let logger: Logger

    public init(waitBound: Double, ipv4: Bool = true, ipv6: Bool = false, metrics: IPAMDMetrics = .system, logger: Logger) {
        self.waitBound = waitBound; self.ipv4 = ipv4; self.ipv6 = ipv6; self.logger = logger; self.metrics = metrics
    }

    // MARK: feeding (the watch)

    /// After a (re)list: the complete set. Pods not in it are gone.
    public func replaceAll(_ all: [PodFacts]) {
        state.withLock { s in
            var next: [String: Entry] = [:]
            for f in all { next[f.key] = entry(for: f, old: s.pods[f.key]) }
            s.pods = next
            s.synced = true
        }
        changed.broadcast()
    }

    public func upsert(_ f: PodFacts) {
        state.withLock { s in s.pods[f.key] = entry(for: f, old: s.pods[f.key]) }
        changed.broadcast()
    }

    /// Removes the pod unless the cache already holds a newer pod of that name (another UID).
    public func remove(_ f: PodFacts) {
        state.withLock { s in
            if let e = s.pods[f.key], f.uid.isEmpty || e.facts.uid == f.uid { s.pods[f.key] = nil }
        }
        changed.broadcast()
    }

    /// Ends every wait (now and later) at once: ipamd is stopping, and an ADD told to retry
    /// reaches the next ipamd, while one left waiting would see its connection close unanswered.
    public func shutdown() { changed.close() }

    /// The watch lists every pod of the node.
    public var listsRegularPods: Bool { true }

    public func waitUntilSynced(timeout: Duration) async -> Bool {
        await changed.wait(until: .now + timeout) { isSynced } == .ready
    }

    public var isSynced: Bool { state.withLock { $0.synced } }
    public var count: Int { state.withLock { $0.pods.count } }
    /// Lookups parked right now (tests wait for this instead of sleeping).
    public var waiters: Int { changed.waiterCount }

    /// The cached facts of a pod (tests, debugging).
    public func facts(_ key: String) -> PodFacts? { state.withLock { $0.pods[key]?.facts } }

    private func entry(for f: PodFacts, old: Entry?) -> Entry {
        var e = Entry(facts: f)
        guard let a = f.annotation else { return e }
        if let old, old.facts.annotation == a, old.facts.uid == f.uid {
            e.parsed = old.parsed; e.annotationArrivedAt = old.annotationArrivedAt
            return e
        }
        do { e.parsed = .branch(try BranchENI.decode(annotation: a, ipv4: ipv4, ipv6: ipv6)) } catch { e.parsed = .invalid(error) }
        e.annotationArrivedAt = Clock.rfc3339Now()
        logger.info("pod-eni annotation arrived", metadata: ["pod": "\(f.key)", "uid": "\(f.uid)"])
        return e
    }

    // MARK: answering (RPC requests)

    public func lookup(key: String, containerID: String) -> PodENILookup {
        lookup(PodRequest(podName: key.contains("/") ? String(key.split(separator: "/", maxSplits: 1)[1]) : "",
                          podNamespace: key.contains("/") ? String(key.split(separator: "/", maxSplits: 1)[0]) : "",
                          containerID: containerID))
    }

    enum Evaluation {
        case answer(PodENILookup)
        /// Not answerable yet; the reason is the pending message (or the UID mismatch at the bound).
        case notYet(PodENILookup)
    }

    public func lookup(_ pod: PodRequest) -> PodENILookup {
        switch evaluateNow(pod) {
        case .answer(let r), .notYet(let r): r
        }
    }

    public func awaitDetails(for pod: PodRequest, until deadline: ContinuousClock.Instant) async -> WaitOutcome {
        guard case .notYet(let why) = evaluateNow(pod) else { return .ready }
        logger.info("AddNetwork waits for pod details", metadata: ["pod": "\(pod.key)", "reason": "\(why)"])
        let started = ContinuousClock.now
        let outcome = await changed.wait(until: deadline) {
            if case .answer = evaluateNow(pod) { true } else { false }
        }
        let label = switch outcome { case .ready: "arrived"; case .timedOut: "timedOut"; case .closed: "shutdown" }
        metrics.annotationWait(.now - started, outcome: label)
        if outcome == .ready { logger.info("pod details arrived while AddNetwork waited", metadata: ["pod": "\(pod.key)"]) }
        return outcome
    }

    func evaluateNow(_ pod: PodRequest) -> Evaluation {
        // Kubernetes pods always have a name: a request without one is not a pod we know.
        guard !pod.podName.isEmpty else { return .answer(.notFound) }
        return state.withLock { evaluate(pod, $0) }
    }

    func evaluate(_ pod: PodRequest, _ s: State) -> Evaluation {
        guard s.synced else { return .notYet(.pending("the pod list from the API server has not arrived yet")) }
        guard let e = s.pods[pod.key] else {
            return .notYet(.pending("pod \(pod.key) is not in the watch cache of this node (yet)"))
        }
        if !pod.podUID.isEmpty && pod.podUID != e.facts.uid && pod.podUID != e.facts.mirrorOf {
            // The cache may still hold a deleted pod of the same name; its successor may be one event away.
            return .notYet(.uidMismatch(cached: e.facts.uid, requested: pod.podUID))
        }
        guard e.facts.branch else { return .answer(.regular) }
        guard let parsed = e.parsed else {
            return .notYet(.pending("branch pod \(pod.key) has no vpc.amazonaws.com/pod-eni annotation yet"))
        }
        return .answer(parsed)
    }

    public func podViews() -> [PodView] {
        let entries = state.withLock { Array($0.pods.values) }
        return entries.map { e in
            var v = PodView(namespace: e.facts.namespace, name: e.facts.name, podUID: e.facts.uid, branch: e.facts.branch, state: .regular)
            v.annotationArrivedAt = e.annotationArrivedAt
            switch e.parsed {
            case .branch(let b)?:
                v.state = .ready
                v.vlanID = b.vlanID; v.eniID = b.eniID; v.ipv4 = b.ipv4?.description; v.mac = b.mac.description
            case .invalid(let err)?:
                v.state = .invalid; v.problem = err.description
            default:
                v.state = e.facts.branch ? .pending : .regular
            }
            return v
        }
    }
}
