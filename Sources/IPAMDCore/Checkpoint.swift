#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import IPAMDProtocol
import NetModel
import NodeSetup
import Synchronization

public struct CheckpointError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) { self.path = path; self.reason = reason }

    public var description: String { "checkpoint \(path): \(reason)" }
}

/// The checkpoint file (AWS_VPC_K8S_CNI_BACKING_STORE) in the reference's shape,
/// `{"version":"vpc-cni-ipam/1","allocations":[...]}`: regular pods are its allocations, as the
/// reference writes them (so either agent reads the other's after an upgrade or a rollback),
/// plus our own `branchPods` (the reference does not record branch pods). Allocations this ipamd
/// cannot read as a pod's are kept as they are. Written atomically: temp file, fsync, rename.
public final class FileCheckpoint: ServedPodStore {
    public static let version = "vpc-cni-ipam/1"

    struct Shape: Codable {
        var version: String
        var allocations: [JSONValue]
        var branchPods: [ServedPod]?
    }

    /// One allocation as the reference writes it; the optional fields are ours (the reference
    /// ignores fields it does not know).
    struct Allocation: Codable {
        struct Metadata: Codable {
            var k8sPodNamespace: String?
            var k8sPodName: String?
        }
        var networkName: String?
        var containerID: String
        var ifName: String?
        var ipv4: String?
        /// Unix time in nanoseconds, as the reference records it.
        var allocationTimestamp: Int64?
        var metadata: Metadata?
        var podUID: String?
        var eniID: String?
        var deviceNumber: Int?
        var netns: String?
        var servedAt: String?
    }

    public let path: String
    /// Allocations found at load that are not a regular pod's, written back unchanged (encoded).
    private let foreign = Mutex<[[UInt8]]>([])
    /// Each served pod's JSON, encoded once: a write costs a concatenation, not an encoding of
    /// every pod on the node.
    private let encodedPods = Mutex<[ServedPod: [UInt8]]>([:])

    public init(path: String) { self.path = path }

    public func load() throws(CheckpointError) -> [ServedPod] {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path) } catch {
            if error.errno == ENOENT { return [] }
            throw CheckpointError(path: path, reason: "\(error)")
        }
        let shape: Shape
        do { shape = try JSONDecoder().decode(Shape.self, from: Data(bytes)) } catch {
            throw CheckpointError(path: path, reason: "not a checkpoint (\(error))")
        }
        guard shape.version == Self.version else {
            throw CheckpointError(path: path, reason: "version \"\(shape.version)\"; this ipamd reads \"\(Self.version)\"")
        }
        var regular: [ServedPod] = [], kept: [[UInt8]] = []
        do {
            for value in shape.allocations {
                let encoded = try Self.encoder.encode(value)
                if let a = try? JSONDecoder().decode(Allocation.self, from: encoded), let pod = Self.pod(a) { regular.append(pod) } else { kept.append(Array(encoded)) }
            }
        } catch {
            throw CheckpointError(path: path, reason: "cannot encode its allocations: \(error)")
        }
        foreign.withLock { $0 = kept }
        return regular + (shape.branchPods ?? [])
    }

    static func pod(_ a: Allocation) -> ServedPod? {
        guard let ip = a.ipv4, IPv4Address(ip) != nil, !a.containerID.isEmpty else { return nil }
        let servedAt = a.servedAt ?? a.allocationTimestamp.map { Timestamp.rfc3339(unixNanoseconds: $0) } ?? ""
        return ServedPod(namespace: a.metadata?.k8sPodNamespace ?? "", name: a.metadata?.k8sPodName ?? "", podUID: a.podUID ?? "",
                         containerID: a.containerID, ifName: a.ifName ?? "eth0", branch: false, vlanID: 0, eniID: a.eniID ?? "", ipv4: ip,
                         mac: "", servedAt: servedAt, netns: a.netns, networkName: a.networkName ?? "", deviceNumber: a.deviceNumber)
    }

    static func allocation(_ p: ServedPod) -> Allocation {
        Allocation(networkName: p.networkName, containerID: p.containerID, ifName: p.ifName, ipv4: p.ipv4,
                   allocationTimestamp: Timestamp.unixNanoseconds(rfc3339: p.servedAt),
                   metadata: .init(k8sPodNamespace: p.namespace, k8sPodName: p.name), podUID: p.podUID.isEmpty ? nil : p.podUID,
                   eniID: p.eniID.isEmpty ? nil : p.eniID, deviceNumber: p.deviceNumber, netns: p.netns, servedAt: p.servedAt)
    }

    /// Renames an unusable checkpoint to `<path>.corrupt-<UTC time>` (kept for a human to read;
    /// the next write starts a fresh file). Returns the new path.
    public func moveAside(now: String = Timestamp.rfc3339Now(fractionDigits: 0)) throws(CheckpointError) -> String {
        let aside = path + ".corrupt-" + now.filter { $0 != ":" }
        guard rename(path, aside) == 0 else {
            throw CheckpointError(path: path, reason: "cannot move it aside to \(aside): \(String(cString: strerror(errno)))")
        }
        foreign.withLock { $0 = [] }
        return aside
    }

    /// The document encoding `Shape` with sorted keys gives ("allocations" < "branchPods" <
    /// "version"), put together from the cached parts.
    public func save(_ pods: [ServedPod]) throws(CheckpointError) {
        // Keys built once, not in every comparison (the sort was a sixth of a 110-pod write).
        let sorted = pods.map { (key: $0.key, pod: $0) }.sorted { ($0.key, $0.pod.containerID) < ($1.key, $1.pod.containerID) }.map(\.pod)
        var allocations = foreign.withLock { $0 }
        var branch: [[UInt8]] = []
        do {
            try encodedPods.withLock { cache in
                var next: [ServedPod: [UInt8]] = [:]
                for pod in sorted {
                    let bytes = try cache[pod] ?? Array(pod.branch ? Self.encoder.encode(pod) : Self.encoder.encode(Self.allocation(pod)))
                    if pod.branch { branch.append(bytes) } else { allocations.append(bytes) }
                    next[pod] = bytes
                }
                cache = next
            }
        } catch {
            throw CheckpointError(path: path, reason: "cannot encode: \(error)")
        }
        var out = Array(#"{"allocations":["#.utf8)
        out += Self.joined(allocations)
        out += Array(#"],"branchPods":["#.utf8)
        out += Self.joined(branch)
        out += Array(#"],"version":"\#(Self.version)"}"#.utf8)
        do { try AtomicFile.write(path, out, mode: 0o644) } catch {
            throw CheckpointError(path: path, reason: "\(error)")
        }
    }

    static func joined(_ items: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, item) in items.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out += item
        }
        return out
    }

    private static var encoder: JSONEncoder {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return enc
    }
}

/// Any JSON value, kept as read (for allocations another agent wrote; tests read nft and conflist
/// JSON with it too).
public enum JSONValue: Codable, Sendable, Hashable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            // Integers (timestamps) stay integers.
            if n.rounded() == n, abs(n) < 9e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
