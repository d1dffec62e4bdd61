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

    public init(namespace: String, name: String, podUID: String, containerID: String, ifName: String, branch: Bool,
                vlanID: UInt16, eniID: String, ipv4: String?, mac: String, servedAt: String) {
        self.namespace = namespace; self.name = name; self.podUID = podUID; self.containerID = containerID
        self.ifName = ifName; self.branch = branch; self.vlanID = vlanID; self.eniID = eniID; self.ipv4 = ipv4
        self.mac = mac; self.servedAt = servedAt
    }

    /// Like PodRequest.key: "namespace/name", or the container id for runtimes without pod identity.
    public var key: String { name.isEmpty ? containerID : "\(namespace)/\(name)" }

    public var podRequest: PodRequest {
        PodRequest(podName: name, podNamespace: namespace, podUID: podUID, containerID: containerID, ifName: ifName)
    }

    /// Whether this pod and `other` need the same VLAN or the same address.
    func overlaps(vlanID v: UInt16, ipv4 ip: String?) -> Bool { vlanID == v || (ip != nil && ipv4 == ip) }
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
public final class PodRegistry: Sendable {
    private let pods = Mutex([String: ServedPod]())
    private let store: (any ServedPodStore)?

    public init(store: (any ServedPodStore)? = nil) { self.store = store }

    /// Loads the checkpoint (nothing when there is none yet).
    public func restore() throws(CheckpointError) -> Int {
        guard let store else { return 0 }
        let loaded = try store.load()
        pods.withLock { p in for s in loaded { p[s.key] = s } }
        return loaded.count
    }

    /// Records `pod` unless a pod that `isLive` still says holds its VLAN or address is another
    /// pod: then nothing changes and the holder is returned. Entries of pods no longer live are
    /// dropped. Decided under one lock, so two ADDs for one VLAN cannot both win.
    public func claim(_ pod: ServedPod, isLive: (ServedPod) -> Bool) throws(CheckpointError) -> Claim {
        try pods.withLock { (p: inout [String: ServedPod]) throws(CheckpointError) -> Claim in
            var released: [ServedPod] = []
            for (key, q) in p where key != pod.key && q.overlaps(vlanID: pod.vlanID, ipv4: pod.ipv4) {
                if isLive(q) { return .conflict(q) }
                released.append(q)
            }
            if let earlier = p[pod.key], earlier.containerID != pod.containerID { released.append(earlier) }
            var next = p
            for q in released where next[q.key]?.containerID == q.containerID { next[q.key] = nil }
            next[pod.key] = pod
            try store?.save(Array(next.values))
            p = next
            return .recorded(released: released)
        }
    }

    /// Removes the entry unless it belongs to another container: a late DEL of an old sandbox
    /// must not drop the pod's newer sandbox. Returns the entry either way.
    public func remove(key: String, containerID: String) throws(CheckpointError) -> (pod: ServedPod, removed: Bool)? {
        try pods.withLock { (pods: inout [String: ServedPod]) throws(CheckpointError) -> (pod: ServedPod, removed: Bool)? in
            guard let p = pods[key] else { return nil }
            if !containerID.isEmpty && !p.containerID.isEmpty && p.containerID != containerID { return (p, false) }
            var next = pods
            next[key] = nil
            try store?.save(Array(next.values))
            pods = next
            return (p, true)
        }
    }

    /// Drops the entries `keep` refuses (on start: pods whose VLAN link no longer carries their
    /// container's tag were deleted while ipamd was down). Returns what was dropped.
    public func prune(keep: (ServedPod) -> Bool) throws(CheckpointError) -> [ServedPod] {
        try pods.withLock { (p: inout [String: ServedPod]) throws(CheckpointError) -> [ServedPod] in
            let dropped = p.values.filter { !keep($0) }
            guard !dropped.isEmpty else { return [] }
            var next = p
            for d in dropped { next[d.key] = nil }
            try store?.save(Array(next.values))
            p = next
            return dropped
        }
    }

    public func get(key: String) -> ServedPod? { pods.withLock { $0[key] } }

    /// Sorted by namespace/name for stable output.
    public var all: [ServedPod] {
        pods.withLock { Array($0.values) }.sorted { ($0.namespace, $0.name, $0.containerID) < ($1.namespace, $1.name, $1.containerID) }
    }
}

enum Clock {
    static func rfc3339Now() -> String { Timestamp.rfc3339Now(fractionDigits: 3) }
}
