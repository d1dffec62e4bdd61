import Foundation
import IPAMDProtocol
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
}

/// The pods served, keyed like PodRequest.key. Thread-safe.
public final class PodRegistry: Sendable {
    private let pods = Mutex([String: ServedPod]())

    public init() {}

    public func record(_ pod: ServedPod, key: String) { pods.withLock { $0[key] = pod } }

    /// Removes the entry unless it belongs to another container: a late DEL of an old sandbox
    /// must not drop the pod's newer sandbox. Returns the entry either way.
    public func remove(key: String, containerID: String) -> (pod: ServedPod, removed: Bool)? {
        pods.withLock { pods in
            guard let p = pods[key] else { return nil }
            if !containerID.isEmpty && !p.containerID.isEmpty && p.containerID != containerID { return (p, false) }
            pods[key] = nil
            return (p, true)
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
