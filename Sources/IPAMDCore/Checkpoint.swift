#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import IPAMDProtocol
import NodeSetup
import Synchronization

public struct CheckpointError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) { self.path = path; self.reason = reason }

    public var description: String { "checkpoint \(path): \(reason)" }
}

/// The checkpoint file (AWS_VPC_K8S_CNI_BACKING_STORE) in the reference's shape,
/// `{"version":"vpc-cni-ipam/1","allocations":[...]}`, plus our own `branchPods` (the reference
/// does not record branch pods). Allocations written by another agent (the reference, before an
/// upgrade) are kept as they are. Written atomically: temp file, fsync, rename.
public final class FileCheckpoint: ServedPodStore {
    public static let version = "vpc-cni-ipam/1"

    struct Shape: Codable {
        var version: String
        var allocations: [JSONValue]
        var branchPods: [ServedPod]?
    }

    public let path: String
    /// The allocations found at load, written back unchanged (kept encoded).
    private let allocations = Mutex<[UInt8]>(Array("[]".utf8))
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
        do { try allocations.withLock { $0 = try Array(Self.encoder.encode(shape.allocations)) } } catch {
            throw CheckpointError(path: path, reason: "cannot encode its allocations: \(error)")
        }
        return shape.branchPods ?? []
    }

    /// Renames an unusable checkpoint to `<path>.corrupt-<UTC time>` (kept for a human to read;
    /// the next write starts a fresh file). Returns the new path.
    public func moveAside(now: String = Timestamp.rfc3339Now(fractionDigits: 0)) throws(CheckpointError) -> String {
        let aside = path + ".corrupt-" + now.filter { $0 != ":" }
        guard rename(path, aside) == 0 else {
            throw CheckpointError(path: path, reason: "cannot move it aside to \(aside): \(String(cString: strerror(errno)))")
        }
        allocations.withLock { $0 = Array("[]".utf8) }
        return aside
    }

    /// The document encoding `Shape` with sorted keys gives ("allocations" < "branchPods" <
    /// "version"), put together from the cached parts.
    public func save(_ pods: [ServedPod]) throws(CheckpointError) {
        // Keys built once, not in every comparison (the sort was a sixth of a 110-pod write).
        let sorted = pods.map { (key: $0.key, pod: $0) }.sorted { ($0.key, $0.pod.containerID) < ($1.key, $1.pod.containerID) }.map(\.pod)
        var out = Array(#"{"allocations":"#.utf8)
        out += allocations.withLock { $0 }
        out += Array(#","branchPods":["#.utf8)
        do {
            try encodedPods.withLock { cache in
                var next: [ServedPod: [UInt8]] = [:]
                for (i, pod) in sorted.enumerated() {
                    let bytes = try cache[pod] ?? Array(Self.encoder.encode(pod))
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    out += bytes
                    next[pod] = bytes
                }
                cache = next
            }
        } catch {
            throw CheckpointError(path: path, reason: "cannot encode: \(error)")
        }
        out += Array(#"],"version":"\#(Self.version)"}"#.utf8)
        do { try AtomicFile.write(path, out, mode: 0o644) } catch {
            throw CheckpointError(path: path, reason: "\(error)")
        }
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
