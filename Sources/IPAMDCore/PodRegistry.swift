import IPAMDMetrics
import IPAMDProtocol
import Logging
import Synchronization

/// A branch pod ipamd has served an AddNetwork for; what `/v1/pods` shows.
public struct ServedPod: Codable, Sendable, Hashable {
    public var namespace: String
    public var name: String
    public var podUID: String
    public var containerID: String
    public var ifName: String
    public var branch: Bool
    public var vlanID: UInt16
    public var eniID: String
    public var ipv4: String?
    public var mac: String
    /// RFC 3339 UTC time of the AddNetwork answer.
    public var servedAt: String
    /// The enforcing mode the pod was built in ("strict", "standard"); nil in checkpoints written
    /// before it was recorded.
    public var mode: String?
    /// The pod's network namespace as the runtime passed it (for `ipamd explain`); nil in
    /// checkpoints written before it was recorded.
    public var netns: String?
    /// A regular pod's CNI network name (its address's holder key with container id and ifName).
    public var networkName: String?
    /// A regular pod's ENI device number (0: the primary ENI).
    public var deviceNumber: Int?

    public init(namespace: String, name: String, podUID: String, containerID: String, ifName: String, branch: Bool,
                vlanID: UInt16, eniID: String, ipv4: String?, mac: String, servedAt: String, mode: String? = nil, netns: String? = nil,
                networkName: String? = nil, deviceNumber: Int? = nil) {
        self.namespace = namespace; self.name = name; self.podUID = podUID; self.containerID = containerID
        self.ifName = ifName; self.branch = branch; self.vlanID = vlanID; self.eniID = eniID; self.ipv4 = ipv4
        self.mac = mac; self.servedAt = servedAt; self.mode = mode; self.netns = netns
        self.networkName = networkName; self.deviceNumber = deviceNumber
    }

    /// Like PodRequest.key: "namespace/name", or the container id for runtimes without pod identity.
    public var key: String { name.isEmpty ? containerID : "\(namespace)/\(name)" }

    public var podRequest: PodRequest {
        PodRequest(podName: name, podNamespace: namespace, podUID: podUID, containerID: containerID, ifName: ifName)
    }

    /// Whether this pod and `other` need the same VLAN or the same address (regular pods have
    /// no VLAN: VLAN 0 is nobody's).
    func overlaps(vlanID v: UInt16, ipv4 ip: String?) -> Bool { (v != 0 && vlanID == v) || (ip != nil && ipv4 == ip) }
}

/// Where the served pods survive a restart (the checkpoint). A protocol so tests keep it in memory.
public protocol ServedPodStore: Sendable {
    func load() throws(CheckpointError) -> [ServedPod]
    func save(_ pods: [ServedPod]) throws(CheckpointError)
}

/// What `claim` decided.
public enum Claim: Sendable, Equatable {
    /// Recorded. `released` lists the containers whose entries it replaced: an earlier sandbox
    /// of the same pod, or pods that held the VLAN or address and are gone from the source.
    case recorded(released: [ServedPod])
    /// A pod that is still running holds the VLAN or the address: the annotation is stale or
    /// duplicated, and building would tear down that pod's datapath.
    case conflict(ServedPod)
}

/// The pods served, keyed like PodRequest.key; every change is written to the checkpoint before
/// it is answered, so a restarted (or SIGKILLed) ipamd still knows who holds which VLAN.
///
/// Decisions are made under one lock; the write happens after it, as a group commit: a write
/// takes every change made so far, and a request whose change an earlier write already carried
/// returns without writing. Concurrent ADDs then share one write instead of queueing for one
/// each (with the store on a disk, each write is an fsync).
public final class PodRegistry: Sendable {
    private struct State {
        var pods: [String: ServedPod] = [:]
        /// Bumped by every change.
        var version: UInt64 = 0
    }

    private let state = Mutex(State())
    /// The version the checkpoint holds; also serialises the writes. Lock order: this, then `state`.
    private let written = Mutex<UInt64>(0)
    /// The version the checkpoint holds, readable without waiting for a write in progress.
    private let durable = Atomic<UInt64>(0)
    private let store: (any ServedPodStore)?
    private let metrics: IPAMDMetrics

    public init(store: (any ServedPodStore)? = nil, metrics: IPAMDMetrics = .system) { self.store = store; self.metrics = metrics }

    /// Loads the checkpoint (nothing when there is none yet).
    public func restore() throws(CheckpointError) -> Int {
        guard let store else { return 0 }
        let loaded = try store.load()
        state.withLock { s in for p in loaded { s.pods[p.key] = p } }
        metrics.branchPods(loaded.filter(\.branch).count)
        return loaded.count
    }

    /// Records `pod` unless a pod that `isLive` still says holds its VLAN or address is another
    /// pod: then nothing changes and the holder is returned. Entries of pods no longer live are
    /// dropped. Decided under one lock, so two ADDs for one VLAN cannot both win.
    public func claim(_ pod: ServedPod, isLive: (ServedPod) -> Bool) throws(CheckpointError) -> Claim {
        let decided = state.withLock { (s: inout State) -> (Claim, previous: ServedPod?, version: UInt64) in
            let previous = s.pods[pod.key]
            // A repeated ADD of the same sandbox with the same details (a runtime's retry): nothing
            // changes, so nothing is written; it returns once the checkpoint holds the entry. No
            // other entry can overlap it: every claim releases or refuses the ones it overlaps.
            if var same = previous {
                same.servedAt = pod.servedAt
                if same == pod { return (.recorded(released: []), nil, s.version) }
            }
            var released: [ServedPod] = []
            for (key, q) in s.pods where key != pod.key && q.overlaps(vlanID: pod.vlanID, ipv4: pod.ipv4) {
                if isLive(q) { return (.conflict(q), nil, 0) }
                released.append(q)
            }
            if let previous, previous.containerID != pod.containerID { released.append(previous) }
            for q in released where s.pods[q.key]?.containerID == q.containerID { s.pods[q.key] = nil }
            s.pods[pod.key] = pod
            s.version += 1
            return (.recorded(released: released), previous, s.version)
        }
        guard case .recorded(let released) = decided.0 else { return decided.0 }
        // Not recorded after all: put back what this claim replaced, unless changed since.
        try persist(through: decided.version) { pods in
            guard pods[pod.key] == pod else { return }
            pods[pod.key] = decided.previous
            for q in released where pods[q.key] == nil { pods[q.key] = q }
        }
        return decided.0
    }

    /// Removes the entry unless it belongs to another container: a late DEL of an old sandbox
    /// must not drop the pod's newer sandbox. Returns the entry either way.
    public func remove(key: String, containerID: String) throws(CheckpointError) -> (pod: ServedPod, removed: Bool)? {
        let decided = state.withLock { (s: inout State) -> (pod: ServedPod, removed: Bool, version: UInt64)? in
            guard let p = s.pods[key] else { return nil }
            if !containerID.isEmpty && !p.containerID.isEmpty && p.containerID != containerID { return (p, false, 0) }
            s.pods[key] = nil
            s.version += 1
            return (p, true, s.version)
        }
        guard let decided else { return nil }
        if decided.removed {
            try persist(through: decided.version) { pods in if pods[key] == nil { pods[key] = decided.pod } }
        }
        return (decided.pod, decided.removed)
    }

    /// Drops the entries `keep` refuses (on start: pods whose VLAN link no longer carries their
    /// container's tag were deleted while ipamd was down). Returns what was dropped.
    public func prune(keep: (ServedPod) -> Bool) throws(CheckpointError) -> [ServedPod] {
        let decided = state.withLock { (s: inout State) -> (dropped: [ServedPod], version: UInt64) in
            let dropped = s.pods.values.filter { !keep($0) }
            guard !dropped.isEmpty else { return ([], 0) }
            for d in dropped { s.pods[d.key] = nil }
            s.version += 1
            return (dropped, s.version)
        }
        guard !decided.dropped.isEmpty else { return [] }
        try persist(through: decided.version) { pods in for d in decided.dropped where pods[d.key] == nil { pods[d.key] = d } }
        return decided.dropped
    }

    public func get(key: String) -> ServedPod? { state.withLock { $0.pods[key] } }

    /// `pod` is recorded as it is (its serve time aside) and the checkpoint holds it: claiming it
    /// again changes nothing and waits for no write.
    public func isDurablyRecorded(_ pod: ServedPod) -> Bool {
        state.withLock { s in
            guard var same = s.pods[pod.key] else { return false }
            same.servedAt = pod.servedAt
            return same == pod && (store == nil || durable.load(ordering: .acquiring) >= s.version)
        }
    }

    /// Sorted by namespace/name for stable output.
    public var all: [ServedPod] {
        state.withLock { Array($0.pods.values) }.sorted { ($0.namespace, $0.name, $0.containerID) < ($1.namespace, $1.name, $1.containerID) }
    }

    /// Returns once the checkpoint holds `version` or a later one. When the write fails, `undo`
    /// takes the change back in memory (the next write carries the undo) and the error is thrown.
    private func persist(through version: UInt64, orUndo undo: (inout [String: ServedPod]) -> Void) throws(CheckpointError) {
        guard let store, durable.load(ordering: .acquiring) < version else { return }
        do {
            try written.withLock { (w: inout UInt64) throws(CheckpointError) in
                // A write that started after this change carried it.
                guard w < version else { return }
                let (pods, v) = state.withLock { (Array($0.pods.values), $0.version) }
                do throws(CheckpointError) { try store.save(pods) } catch {
                    metrics.checkpointWritten(ok: false)
                    throw error
                }
                metrics.checkpointWritten(ok: true)
                metrics.branchPods(pods.filter(\.branch).count)
                w = v
                durable.store(v, ordering: .releasing)
            }
        } catch {
            state.withLock { s in
                undo(&s.pods)
                s.version += 1
            }
            throw error
        }
    }
}

enum Clock {
    static func rfc3339Now() -> String { Timestamp.rfc3339Now(fractionDigits: 3) }
}
