import Foundation
import IPAMDProtocol
import Logging

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
/// Waiting blocks the RPC connection's own thread on a condition variable; no polling.
public final class PodCache: PodENISource, @unchecked Sendable {
    // @unchecked: every mutable field is accessed only with `cond` locked.
    struct Entry {
        var facts: PodFacts
        /// Parsed annotation: .branch or .invalid; nil when there is none.
        var parsed: PodENILookup?
        var annotationArrivedAt: String?
    }

    private let cond = NSCondition()
    private var pods: [String: Entry] = [:]
    private var synced = false
    private var closing = false
    private var waiting = 0
    public let waitBound: Double
    let ipv4: Bool
    let ipv6: Bool
    let logger: Logger

    public init(waitBound: Double, ipv4: Bool = true, ipv6: Bool = false, logger: Logger) {
        self.waitBound = waitBound; self.ipv4 = ipv4; self.ipv6 = ipv6; self.logger = logger
    }

    // MARK: feeding (the watch)

    /// After a (re)list: the complete set. Pods not in it are gone.
    public func replaceAll(_ all: [PodFacts]) {
        cond.lock()
        var next: [String: Entry] = [:]
        for f in all { next[f.key] = entry(for: f, old: pods[f.key]) }
        pods = next
        synced = true
        cond.broadcast()
        cond.unlock()
    }

    public func upsert(_ f: PodFacts) {
        cond.lock()
        pods[f.key] = entry(for: f, old: pods[f.key])
        cond.broadcast()
        cond.unlock()
    }

    /// Removes the pod unless the cache already holds a newer pod of that name (another UID).
    public func remove(_ f: PodFacts) {
        cond.lock()
        if let e = pods[f.key], f.uid.isEmpty || e.facts.uid == f.uid { pods[f.key] = nil }
        cond.broadcast()
        cond.unlock()
    }

    /// Answers every waiting lookup (and every later one that would wait) with `.shuttingDown`:
    /// ipamd is stopping, and an ADD told to retry reaches the next ipamd, while one left waiting
    /// would see its connection close unanswered.
    public func shutdown() {
        cond.lock()
        closing = true
        cond.broadcast()
        cond.unlock()
    }

    public func waitUntilSynced(timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while !synced && !closing && cond.wait(until: deadline) {}
        return synced
    }

    public var isSynced: Bool { cond.lock(); defer { cond.unlock() }; return synced }
    public var count: Int { cond.lock(); defer { cond.unlock() }; return pods.count }
    /// Lookups blocked on the condition right now (tests wait for this instead of sleeping).
    public var waiters: Int { cond.lock(); defer { cond.unlock() }; return waiting }

    /// The cached facts of a pod (tests, debugging).
    public func facts(_ key: String) -> PodFacts? { cond.lock(); defer { cond.unlock() }; return pods[key]?.facts }

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

    // MARK: answering (RPC threads)

    public func lookup(key: String, containerID: String) -> PodENILookup {
        lookup(PodRequest(podName: key.contains("/") ? String(key.split(separator: "/", maxSplits: 1)[1]) : "",
                          podNamespace: key.contains("/") ? String(key.split(separator: "/", maxSplits: 1)[0]) : "",
                          containerID: containerID), wait: false)
    }

    enum Evaluation {
        case answer(PodENILookup)
        /// Not answerable yet; the reason is the pending message (or the UID mismatch at the bound).
        case notYet(PodENILookup)
    }

    public func lookup(_ pod: PodRequest, wait: Bool) -> PodENILookup {
        // Kubernetes pods always have a name: a request without one is not a pod we know.
        guard !pod.podName.isEmpty else { return .notFound }
        // Monotonic: a wall-clock step (NTP at boot) must not shorten or stretch the wait.
        let deadline = ContinuousClock.now + .seconds(wait ? waitBound : 0)
        cond.lock()
        defer { cond.unlock() }
        var waited = false
        while true {
            switch evaluate(pod) {
            case .answer(let r):
                if waited { logger.info("pod details arrived while AddNetwork waited", metadata: ["pod": "\(pod.key)"]) }
                return r
            case .notYet(let r):
                let left = deadline - ContinuousClock.now
                if left <= .zero { return r }
                if closing { return .shuttingDown }
                if !waited { logger.info("AddNetwork waits for pod details", metadata: ["pod": "\(pod.key)", "reason": "\(r)"]) }
                waited = true
                // NSCondition's timed wait runs on the wall clock, so it gets slices of at most
                // 1 s and the monotonic deadline is checked after each; the watch's broadcasts
                // still wake us at once. Spurious wake-ups just re-evaluate.
                let slice = min(left, .seconds(1))
                waiting += 1
                _ = cond.wait(until: Date(timeIntervalSinceNow: Double(slice.components.seconds) + Double(slice.components.attoseconds) / 1e18))
                waiting -= 1
            }
        }
    }

    /// Called with `cond` locked.
    func evaluate(_ pod: PodRequest) -> Evaluation {
        guard synced else { return .notYet(.pending("the pod list from the API server has not arrived yet")) }
        guard let e = pods[pod.key] else {
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
        cond.lock()
        let entries = Array(pods.values)
        cond.unlock()
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
